"""Generate the tap's stream schemas from WHOOP's OpenAPI document.

    python tap-whoop/scripts/generate_schemas.py [--spec spec/whoop-openapi.yaml] [--check]

The spec is the single source of truth: every `$ref` is resolved inline, OpenAPI's `format`s become JSON
Schema types (int32/int64 → integer, float → number, date-time kept), and a property the spec does not list
as `required` becomes nullable. `tests/test_schemas.py` asserts the committed files equal this script's
output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = ROOT / "spec" / "whoop-openapi.yaml"
SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "tap_whoop" / "schemas"

# stream name -> component schema in the spec
STREAM_COMPONENTS = {
    "cycles": "Cycle",
    "sleeps": "Sleep",
    "recoveries": "Recovery",
    "workouts": "WorkoutV2",
    "profile": "UserBasicProfile",
    "body_measurement": "UserBodyMeasurement",
}

# Fields the tap adds to a record that the endpoint itself does not return.
ADDED_FIELDS = {
    "body_measurement": {
        "user_id": {
            "description": "The WHOOP User these measurements belong to (added by the tap from the profile)",
            "type": "integer",
        },
    },
}

_SCALAR_TYPES = {"string", "integer", "number", "boolean"}


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def _convert(spec: dict[str, Any], node: dict[str, Any], *, nullable: bool) -> dict[str, Any]:
    node = _resolve(spec, node)
    kind = node.get("type", "object" if "properties" in node else None)
    out: dict[str, Any] = {}
    if "description" in node:
        out["description"] = " ".join(node["description"].split())
    if kind == "object":
        required = set(node.get("required", []))
        out["type"] = ["object", "null"] if nullable else "object"
        out["properties"] = {
            name: _convert(spec, prop, nullable=name not in required)
            for name, prop in node.get("properties", {}).items()
        }
    elif kind == "array":
        out["type"] = ["array", "null"] if nullable else "array"
        out["items"] = _convert(spec, node["items"], nullable=False)
    elif kind in _SCALAR_TYPES:
        out["type"] = [kind, "null"] if nullable else kind
        if node.get("format") == "date-time":
            out["format"] = "date-time"
    else:
        msg = f"Unsupported schema node: {node!r}"
        raise ValueError(msg)
    return out


def generate(spec_path: Path = DEFAULT_SPEC) -> dict[str, dict[str, Any]]:
    """Return {stream name: JSON Schema} built from the spec."""
    spec = yaml.safe_load(spec_path.read_text())
    schemas = {}
    for stream, component in STREAM_COMPONENTS.items():
        schema = _convert(spec, spec["components"]["schemas"][component], nullable=False)
        # The component's description is about the API response, not the stream.
        schema.pop("description", None)
        schema["properties"].update(ADDED_FIELDS.get(stream, {}))
        schemas[stream] = schema
    return schemas


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--out", type=Path, default=SCHEMAS_DIR)
    parser.add_argument("--check", action="store_true", help="fail if the committed schemas are stale")
    args = parser.parse_args(argv)
    stale = []
    for stream, schema in generate(args.spec).items():
        path = args.out / f"{stream}.json"
        if args.check:
            if not path.exists() or path.read_text() != render(schema):
                stale.append(path.name)
        else:
            path.write_text(render(schema))
    if stale:
        print(f"Stale schemas (re-run scripts/generate_schemas.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
