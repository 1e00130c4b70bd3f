"""Fields WHOOP adds are kept in `unmodelled_fields`, nested as sent, and named once per stream and field."""

from __future__ import annotations

import json
import logging

import pytest
from tap_whoop.streams.base import WhoopStream
from tap_whoop.streams.unmodelled import COLUMN, DECLARATION, UnmodelledFields, declare, split
from tap_whoop.tap import TapWhoop

from .conftest import run_tap

SCHEMA = declare(
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "score": {
                "type": ["object", "null"],
                "properties": {"strain": {"type": "number"}, "zones": {"type": "object", "properties": {}}},
            },
            "samples": {
                "type": "array",
                "items": {"type": "object", "properties": {"at": {"type": "string"}}},
            },
            "stream": {"type": "array", "items": {"type": "object"}},
            "extras": {"type": "object", "properties": {}, "additionalProperties": True},
            "blob": {"type": ["object", "null"]},
        },
    }
)


def test_unknown_fields_move_nested_as_sent_and_known_ones_stay():
    record = {
        "id": 1,
        "step_count": 5,
        "new_object": {"a": {"b": 1}},
        "score": {"strain": 9.5, "breathing_variability": 25.9, "zones": {"z6": 1}},
        "samples": [{"at": "x"}, {"at": "y", "quality": 3}, "odd"],
        "stream": [{"hr": 60, "anything": True}],
        "extras": {"free": 1},
        "blob": {"whatever": [1, 2]},
    }
    known, unknown, paths = split(record, SCHEMA)
    assert known == {
        "id": 1,
        "score": {"strain": 9.5, "zones": {}},
        "samples": [{"at": "x"}, {"at": "y"}, "odd"],
        "stream": [{"hr": 60, "anything": True}],  # items declared as plain objects: kept whole
        "extras": {"free": 1},  # additionalProperties: the SDK keeps them
        "blob": {"whatever": [1, 2]},  # an object without properties: anything goes
    }
    assert unknown == {
        "step_count": 5,
        "new_object": {"a": {"b": 1}},
        "score": {"breathing_variability": 25.9, "zones": {"z6": 1}},
        "samples": [None, {"quality": 3}, None],  # one entry per item, in order
    }
    assert paths == [
        "step_count",
        "new_object",
        "score.breathing_variability",
        "score.zones.z6",
        "samples[].quality",
    ]


def test_a_record_without_unknown_fields_has_none_and_a_missing_field_is_just_missing():
    keeper = UnmodelledFields()
    kept, new = keeper.keep({"id": 1}, SCHEMA)  # no score, no samples: WHOOP stopped sending them
    assert kept == {"id": 1, COLUMN: None}
    assert new == []


def test_each_field_is_new_once_per_keeper():
    keeper = UnmodelledFields()
    first, new = keeper.keep({"id": 1, "step_count": 5, "score": {"strain": 1.0, "hrv": 2}}, SCHEMA)
    assert json.loads(first[COLUMN]) == {"step_count": 5, "score": {"hrv": 2}}
    assert new == ["step_count", "score.hrv"]
    assert keeper.keep({"id": 2, "step_count": 6}, SCHEMA)[1] == []
    assert keeper.keep({"id": 3, "step_count": 7, "other": None}, SCHEMA)[1] == ["other"]


def test_a_stream_whose_schema_is_written_in_code_declares_it_too():
    class Coded(WhoopStream):
        name = "coded"
        path = "/v2/coded"
        schema = {"type": "object", "properties": {"id": {"type": "integer"}}}  # noqa: RUF012

    assert Coded.schema["properties"] == {"id": {"type": "integer"}, COLUMN: DECLARATION}


def test_declared_schema_is_a_copy_with_one_json_text_property():
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    declared = declare(schema)
    assert schema == {"type": "object", "properties": {"id": {"type": "integer"}}}
    assert declared["properties"][COLUMN]["type"] == ["string", "null"]
    assert declared["properties"][COLUMN]["contentMediaType"] == "application/json"


ADDED = {
    "cycles": ("cycle", {"daily_step_total": 1234, "score.breathing_variability": 25.9}),
    "sleeps": ("sleep", {"score.stage_summary.awake_count": 3}),
    "recoveries": ("recovery", {"score.hrv_trend": "up"}),
    "workouts": ("workout", {"gps": {"km": 5.2}}),
    "profile": ("profile", {"preferred_name": "Sam"}),
    "body_measurement": ("body_measurement", {"body_fat_percentage": 18.5}),
    # Beside a sleep's samples (the samples themselves are kept verbatim in `stream`).
    "sleep_signals": ("sleep_signals", {"sampling_interval_seconds": 60}),
}


@pytest.fixture
def sandbox(whoop_sandbox_factory):
    return whoop_sandbox_factory(days=6, athletes=1, rate_limits=[])


def nested(record: dict, path: str):
    for name in path.split("."):
        record = record.get(name) if isinstance(record, dict) else None
    return record


def test_every_whoop_stream_keeps_what_whoop_adds_and_names_it_once(sandbox, make_config, caplog):
    for resource, fields in ADDED.values():
        sandbox.add_fields(resource, fields)
    sandbox.stop_field("workout", "sport_name")  # modelled: simply absent, nothing breaks
    caplog.set_level(logging.WARNING)
    result = run_tap(make_config(sandbox, start_date="2020-01-01T00:00:00Z"))
    assert result.error is None

    schemas = {m["stream"]: m["schema"] for m in result.messages if m["type"] == "SCHEMA"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for stream, (_, fields) in ADDED.items():
        assert schemas[stream]["properties"][COLUMN]["type"] == ["string", "null"], stream
        records = result.records[stream]
        assert records, stream
        carrying = 0
        for record in records:
            kept = json.loads(record[COLUMN]) if record[COLUMN] else {}
            for path, value in fields.items():
                # A nested field comes only with its object (a record not yet scored has no score).
                assert nested(kept, path) == (value if "." not in path or "score" in record else None), stream
                assert nested(record, path) is None, f"{stream}: {path} left in the record"
            carrying += bool(kept)
        assert carrying, f"{stream}: no record carried the added fields"
        for path in fields:
            said = [w for w in warnings if w.startswith(f"{stream}: WHOOP sends `{path}`")]
            assert said == [
                f"{stream}: WHOOP sends `{path}`, which this tap does not model; its values are kept in "
                f"unmodelled_fields (stg_whoop__{stream}.unmodelled_fields)"
            ], stream
    assert all("sport_name" not in r for r in result.records["workouts"])
    assert not [w for w in warnings if "not found in catalog schema" in w]
    streams = TapWhoop(config={"client_id": "c", "client_secret": "s"}, validate_config=False).streams
    for stream in ("athletes", "deleted_records"):  # the tap's own streams: nothing WHOOP could add
        assert COLUMN not in streams[stream].schema["properties"]
