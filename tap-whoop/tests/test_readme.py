"""The README's tables restate the tap's own definitions (settings in tap.py, endpoints in streams.py): they
must say what the tap says. A change to a setting or an endpoint fails here until the README follows."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from tap_whoop.streams.base import WhoopStream
from tap_whoop.streams.endpoints import STREAM_TYPES
from tap_whoop.tap import TapWhoop

README = Path(__file__).resolve().parents[1] / "README.md"


def table_rows(text: str, header: str) -> list[str]:
    """The rows of the Markdown table whose header line starts with `header` (header and rule excluded)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def builtin_settings() -> set[str]:
    """The SDK's own settings (stream maps, flattening, batches), which the README mentions in a sentence."""
    schema: dict = {"properties": {}}
    TapWhoop.append_builtin_config(schema)
    return set(schema["properties"])


def test_the_settings_table_is_the_taps_about_output():
    about = CliRunner().invoke(TapWhoop.cli, ["--about", "--format=markdown"])
    assert about.exit_code == 0, about.output
    builtins = builtin_settings()
    # A row's first cell is the setting's name, dotted for nested ones (stream_maps.__else__).
    expected = [
        row
        for row in table_rows(about.stdout, "| Setting |")
        if row[2:].split(" |")[0].split(".")[0] not in builtins
    ]
    documented = table_rows(README.read_text(encoding="utf-8"), "| Setting |")
    assert documented == expected, "paste the tap's rows from `tap-whoop --about --format=markdown`"


def test_the_streams_table_names_each_streams_endpoint():
    rows = table_rows(README.read_text(encoding="utf-8"), "| stream | endpoint |")
    documented = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", "\n".join(rows), re.M))
    endpoints = {stream.name: stream.path for stream in STREAM_TYPES if issubclass(stream, WhoopStream)}
    assert documented == {name: path for name, path in endpoints.items() if path}
    # Streams of the tap's own data (no WHOOP endpoint) are in the table too.
    named = set(re.findall(r"^\| `(\w+)` \|", "\n".join(rows), re.M))
    assert named == {stream.name for stream in STREAM_TYPES}
