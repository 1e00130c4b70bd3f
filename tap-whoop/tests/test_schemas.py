"""The committed stream schemas are exactly what scripts/generate_schemas.py derives from WHOOP's spec."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from tap_whoop.tap import TapWhoop

TAP_ROOT = Path(__file__).resolve().parents[1]
SPEC = TAP_ROOT.parent / "spec" / "whoop-openapi.yaml"
EXAMPLES = TAP_ROOT.parent / "spec" / "examples"


def _load_generator():
    path = TAP_ROOT / "scripts" / "generate_schemas.py"
    spec = importlib.util.spec_from_file_location("generate_schemas", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


def test_committed_schemas_equal_generated():
    generated = generator.generate(SPEC)
    committed = {p.stem: p.read_text() for p in (TAP_ROOT / "tap_whoop" / "schemas").glob("*.json")}
    assert set(committed) == set(generated)
    for stream, schema in generated.items():
        assert committed[stream] == generator.render(schema), f"{stream}.json is stale: run the script"


@pytest.mark.parametrize(("stream", "component"), sorted(generator.STREAM_COMPONENTS.items()))
def test_schema_follows_spec_field_by_field(stream, component):
    spec = yaml.safe_load(SPEC.read_text())["components"]["schemas"][component]
    schema = json.loads((TAP_ROOT / "tap_whoop" / "schemas" / f"{stream}.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    added = set(generator.ADDED_FIELDS.get(stream, {}))
    assert set(schema["properties"]) == set(spec["properties"]) | added
    required = set(spec.get("required", [])) | added
    for name, prop in schema["properties"].items():
        assert ("null" in prop["type"]) == (name not in required), name


def test_types_nullability_and_formats():
    cycles = json.loads((TAP_ROOT / "tap_whoop" / "schemas" / "cycles.json").read_text())["properties"]
    assert cycles["id"]["type"] == "integer"
    assert cycles["updated_at"] == {**cycles["updated_at"], "type": "string", "format": "date-time"}
    assert cycles["end"]["type"] == ["string", "null"]
    score = cycles["score"]
    assert score["type"] == ["object", "null"]  # only present once SCORED
    assert score["properties"]["strain"]["type"] == "number"
    assert score["properties"]["max_heart_rate"]["type"] == "integer"
    sleeps = json.loads((TAP_ROOT / "tap_whoop" / "schemas" / "sleeps.json").read_text())["properties"]
    stage = sleeps["score"]["properties"]["stage_summary"]["properties"]
    assert stage["total_in_bed_time_milli"]["type"] == "integer"


@pytest.mark.parametrize(
    ("stream", "example"),
    [
        ("cycles", "cycle.json"),
        ("sleeps", "sleep.json"),
        ("recoveries", "recovery.json"),
        ("workouts", "workout.json"),
        ("profile", "user_profile_basic.json"),
    ],
)
def test_whoop_examples_validate(stream, example):
    schema = json.loads((TAP_ROOT / "tap_whoop" / "schemas" / f"{stream}.json").read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
        json.loads((EXAMPLES / example).read_text())
    )


def test_discovery_works_offline():
    """No credentials and no network: the catalog comes from the packaged schemas."""
    catalog = json.loads(TapWhoop(config={}, validate_config=False).catalog_json_text)
    streams = {s["tap_stream_id"]: s for s in catalog["streams"]}
    expected_keys = {
        "cycles": ["id"],
        "sleeps": ["id"],
        "recoveries": ["cycle_id"],
        "workouts": ["id"],
        "profile": ["user_id"],
        "body_measurement": ["user_id"],
        "deleted_records": ["stream", "id"],
        "sleep_signals": ["sleep_id", "part"],
        "athletes": ["user_id"],
    }
    assert {name: s["key_properties"] for name, s in streams.items()} == expected_keys
    for name in ("cycles", "sleeps", "recoveries", "workouts"):
        assert streams[name]["replication_key"] == "updated_at"
        assert streams[name]["replication_method"] == "INCREMENTAL"
    for name in ("profile", "body_measurement", "deleted_records", "sleep_signals"):
        assert streams[name]["replication_method"] == "FULL_TABLE"
