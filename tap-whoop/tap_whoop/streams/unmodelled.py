"""Fields WHOOP sends that a stream's schema does not know: kept in `unmodelled_fields`, and named once.

WHOOP adds fields to its API without notice, and the SDK drops whatever a schema does not declare ("... not
found in catalog schema. Ignoring."). So before a record meets that check, every field the schema does not
know moves, nested as WHOOP sent it, into the one property every WHOOP stream declares: `{"step_count": 5}`,
`{"score": {"breathing_variability": 25.9}}`. Inside an array whose items the schema describes, the items'
unknown fields go under the array's name as a list, one entry per item (null for an item without any), so
position ties them back; items declared as plain objects (no properties) are kept whole where they are.

The property is JSON text, not an object: a loader that flattens nested objects into columns would split an
object into columns that do not exist (target-duckdb 0.8.0 flattens every object value down to its
`data_flattening_max_level`, whatever the schema says, and loses the rest). dbt parses it (whoop_json).
"""

from __future__ import annotations

import json
import typing as t

COLUMN = "unmodelled_fields"
DECLARATION: dict[str, t.Any] = {
    "type": ["string", "null"],
    "contentMediaType": "application/json",
    "description": (
        "Every field WHOOP sent that this tap does not model, nested as sent, as a JSON object (text); null "
        "when there is none. Kept so a field WHOOP adds is never lost before the tap models it."
    ),
}

Tree = dict[str, t.Any]


def declare(schema: dict[str, t.Any]) -> dict[str, t.Any]:
    """The stream's schema with `unmodelled_fields` declared (a copy; the schema given is not changed)."""
    return {**schema, "properties": {**schema.get("properties", {}), COLUMN: DECLARATION}}


def _types(schema: t.Mapping[str, t.Any]) -> set[str]:
    kind = schema.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _describes(schema: t.Mapping[str, t.Any]) -> bool:
    """Whether an object schema lists what it holds (else any content is as declared: kept whole)."""
    return "object" in _types(schema) and "properties" in schema and not schema.get("additionalProperties")


def split(
    value: t.Mapping[str, t.Any], schema: t.Mapping[str, t.Any], prefix: str = ""
) -> tuple[Tree, Tree, list[str]]:
    """(what the schema knows, what it does not, the paths of the fields it does not know: `step_count`,
    `score.breathing_variability`, `samples[].quality`), the first two nested as `value` is."""
    known: Tree = {}
    unknown: Tree = {}
    found: list[str] = []
    properties = schema.get("properties", {})
    for name, item in value.items():
        path, prop = f"{prefix}{name}", properties.get(name)
        if prop is None:
            unknown[name] = item
            found.append(path)
        elif isinstance(item, dict) and _describes(prop):
            known[name], inside, more = split(item, prop, f"{path}.")
            if inside:
                unknown[name] = inside
                found += more
        elif isinstance(item, list) and "array" in _types(prop) and _describes(prop.get("items") or {}):
            items = prop["items"]
            parts = [split(i, items, f"{path}[].") if isinstance(i, dict) else (i, {}, []) for i in item]
            known[name] = [k for k, _, _ in parts]
            if any(u for _, u, _ in parts):
                unknown[name] = [u or None for _, u, _ in parts]
                found += list(dict.fromkeys(p for _, _, more in parts for p in more))
        else:
            known[name] = item
    return known, unknown, found


class UnmodelledFields:
    """One stream's keeper for a run: moves unknown fields into `unmodelled_fields` and says, once per field
    path, which ones it has not named before."""

    def __init__(self) -> None:
        self.named: set[str] = set()

    def keep(self, record: t.Mapping[str, t.Any], schema: t.Mapping[str, t.Any]) -> tuple[Tree, list[str]]:
        """(the record with its unknown fields moved into `unmodelled_fields`, the paths first seen now)."""
        known, unknown, found = split(record, schema)
        known[COLUMN] = json.dumps(unknown, separators=(",", ":"), ensure_ascii=False) if unknown else None
        new = [p for p in found if p not in self.named]
        self.named.update(new)
        return known, new
