"""The tap's settings are defined once, in tap_whoop/tap.py; both Meltano plugin definitions of the tap
(meltano.yml here and tap-whoop/meltano.yml) must say the same thing about each: name, kind, sensitivity and
description. A setting added to the tap fails this test until both files carry it; the failure prints the
entry to paste."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from tap_whoop.tap import TapWhoop

REPO = Path(__file__).resolve().parents[1]
MELTANO_FILES = [REPO / "meltano.yml", REPO / "tap-whoop" / "meltano.yml"]
# Meltano's kinds for the JSON Schema types the tap declares.
KINDS = {
    ("string", None): "string",
    ("string", "uri"): "string",
    ("string", "date-time"): "date_iso8601",
    ("integer", None): "integer",
    ("number", None): "decimal",
    ("boolean", None): "boolean",
    ("object", None): "object",
    ("array", None): "array",
}


def builtin_settings() -> set[str]:
    """The SDK's own settings (stream maps, flattening, batches): Meltano derives them from `capabilities`."""
    schema: dict = {"properties": {}}
    TapWhoop.append_builtin_config(schema)
    return set(schema["properties"])


@pytest.fixture(scope="module")
def about_settings() -> dict[str, dict]:
    result = CliRunner().invoke(TapWhoop.cli, ["--about", "--format=json"])
    assert result.exit_code == 0, result.output
    properties = json.loads(result.stdout)["settings"]["properties"]
    return {name: spec for name, spec in properties.items() if name not in builtin_settings()}


def expected_entry(name: str, spec: dict) -> dict:
    """The Meltano setting for one of the tap's settings, as both meltano.yml files must hold it."""
    json_type = next(t for t in spec["type"] if t != "null")
    entry = {"name": name, "kind": KINDS[json_type, spec.get("format")]}
    if spec.get("secret"):
        entry["sensitive"] = True
    if "description" in spec:
        entry["description"] = spec["description"]
    return entry


def tap_plugin(meltano_file: Path) -> dict:
    project = yaml.safe_load(meltano_file.read_text(encoding="utf-8"))
    (plugin,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-whoop"]
    return plugin


def test_the_tap_declares_settings(about_settings):
    assert {"client_id", "client_secret", "refresh_token", "token_store"} <= set(about_settings)


@pytest.mark.parametrize("meltano_file", MELTANO_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_meltano_settings_are_the_taps(meltano_file: Path, about_settings):
    declared = {s["name"]: s for s in tap_plugin(meltano_file).get("settings", [])}
    missing = [expected_entry(name, spec) for name, spec in about_settings.items() if name not in declared]
    assert not missing, f"{meltano_file.name} lacks\n{yaml.safe_dump(missing, sort_keys=False, width=110)}"
    assert list(declared) == list(about_settings), "the same settings, in the tap's order"
    for name, spec in about_settings.items():
        expected = expected_entry(name, spec)
        actual = {
            k: v for k, v in declared[name].items() if k in ("name", "kind", "sensitive", "description")
        }
        actual = {k: v for k, v in actual.items() if not (k == "sensitive" and v is False)}
        paste = yaml.safe_dump([expected], sort_keys=False, width=110)
        assert actual == expected, f"{meltano_file.name}: setting {name} should read\n{paste}"


@pytest.mark.parametrize("meltano_file", MELTANO_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_defaults_come_from_the_tap(meltano_file: Path, about_settings):
    """A default restated in meltano.yml would be a second place for it (the tap applies its own)."""
    restated = [s["name"] for s in tap_plugin(meltano_file).get("settings", []) if "value" in s]
    assert not restated
