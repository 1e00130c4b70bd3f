"""The singer-sdk's private names the tap relies on live in tap_whoop/sdk.py alone, and mean what they did.

Each check names what changed, so an SDK upgrade that breaks the adapter fails here first, in one line, rather
than somewhere in a run. make test-pythons runs this against the newest singer-sdk the tap's range allows.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from singer_sdk import Stream, Tap
from singer_sdk.helpers import _state
from singer_sdk.plugin_base import PluginBase
from singer_sdk.streams import RESTStream
from tap_whoop import sdk
from tap_whoop.tap import TapWhoop

PACKAGE = Path(sdk.__file__).parent
PRIVATE = re.compile(r"(?:\.|\bimport )(_[a-z]\w*)")


def sdk_private_names() -> set[str]:
    """Single-underscore names of the SDK's tap and stream classes: methods, and attributes they set."""
    names = set()
    for cls in (Tap, PluginBase, Stream, RESTStream):
        names |= {n for n in dir(cls) if n.startswith("_") and not n.startswith("__")}
        for klass in cls.__mro__:
            if klass.__module__.startswith("singer_sdk"):
                names |= set(re.findall(r"self\.(_[a-z]\w*)\s*[:=]", inspect.getsource(klass)))
    return names


def test_no_module_but_the_adapter_uses_a_private_sdk_name():
    private = sdk_private_names()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(sdk.__file__):
            continue
        text = path.read_text(encoding="utf-8")
        if "singer_sdk.helpers._" in text:
            found.append(f"{path.relative_to(PACKAGE)}: imports a private singer_sdk module")
        for number, line in enumerate(text.splitlines(), start=1):
            found += [
                f"{path.relative_to(PACKAGE)}:{number}: {name}"
                for name in PRIVATE.findall(line)
                if name in private
            ]
    assert not found, "private singer-sdk names outside tap_whoop/sdk.py:\n" + "\n".join(found)


def test_prepare_run_is_what_sync_all_does_before_its_loop():
    source = inspect.getsource(Tap.sync_all)
    prologue = source[: source.index("for stream in")]
    assert "self._reset_state_progress_markers()" in prologue
    assert "self._set_compatible_replication_methods()" in prologue
    assert not inspect.signature(Tap._reset_state_progress_markers).parameters.keys() - {"self"}
    assert not inspect.signature(Tap._set_compatible_replication_methods).parameters.keys() - {"self"}


def test_the_state_writer_installed_is_the_one_streams_write_through():
    assert "self._state_writer" in inspect.getsource(Tap.__init__)
    assert "return self._state_writer" in inspect.getsource(Tap.state_writer.fget)
    assert "state_writer.write_state" in inspect.getsource(Stream._write_state_message)
    tap = TapWhoop(config={"client_id": "c", "client_secret": "s"}, validate_config=False)
    writer = sdk.StateWriter(tap.message_writer)
    tap.use_state_writer(writer)
    assert tap.state_writer is writer


def test_the_state_helpers_keep_their_shape():
    assert sdk.StateWriter is _state.StateWriter
    assert callable(_state.StateWriter.write_state)
    assert list(inspect.signature(_state.reset_state_progress_markers).parameters) == [
        "stream_or_partition_state"
    ]


def test_the_stream_hooks_wrap_methods_the_sdk_still_calls():
    assert not inspect.signature(Stream._write_schema_message).parameters.keys() - {"self"}
    assert "self._write_schema_message()" in inspect.getsource(Stream)
    increment = inspect.signature(Stream._increment_stream_state)
    assert list(increment.parameters) == ["self", "latest_record", "context"]
    assert increment.parameters["context"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "self._increment_stream_state(" in inspect.getsource(Stream)
    # Every record written passes through it, and it is where the SDK drops what the schema does not know.
    generate = inspect.signature(Stream._generate_record_messages)
    assert list(generate.parameters) == ["self", "record"]
    assert "self._generate_record_messages(record)" in inspect.getsource(Stream._write_record_message)
    assert "conform_record_data_types(" in inspect.getsource(Stream._generate_record_messages)


def test_the_settings_check_wraps_the_sdks_validation():
    validate = inspect.signature(PluginBase._validate_config)
    assert list(validate.parameters) == ["self", "raise_errors"]
    assert "self._validate_config(" in inspect.getsource(PluginBase)
