"""The singer-sdk's private names the tap relies on, all here and nowhere else.

The SDK has no public extension point for these: a run over many athletes that is not its loop over streams
(`Tap.sync_all` is final), a STATE writer of the tap's own, history read in turns that must not move the
bookmark, one SCHEMA message per stream for a run over many partitions, every record on its way to the
SDK's conformance (which drops the fields a schema does not declare, whatever `post_process` a stream
overrides), and settings checks JSON Schema cannot express. tests/test_sdk.py holds each name to what the
SDK does today and fails, naming it, when an upgrade changes one; the suite runs against the newest
singer-sdk the tap's range allows (make test-pythons).
"""

from __future__ import annotations

import typing as t

from singer_sdk import Tap
from singer_sdk.helpers._state import StateWriter, reset_state_progress_markers
from singer_sdk.streams import RESTStream

if t.TYPE_CHECKING:
    from collections.abc import Generator

    from singer_sdk.helpers.types import Context, Record
    from singer_sdk.singerlib import RecordMessage

__all__ = ["SdkStreamHooks", "SdkTapHooks", "StateWriter", "reset_state_progress_markers"]


class SdkTapHooks(Tap):
    """What the tap's own run (`tap_whoop.sync.scheduler`) needs of the SDK's tap."""

    def prepare_run(self) -> None:
        """What the SDK's `sync_all` does before its loop over streams."""
        self._reset_state_progress_markers()
        self._set_compatible_replication_methods()

    def use_state_writer(self, writer: StateWriter) -> None:
        """Every stream writes STATE through the tap's writer: make it this one."""
        self._state_writer = writer

    def extra_config_errors(self) -> list[str]:
        """Settings errors JSON Schema cannot express (the tap overrides this)."""
        return []

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = super()._validate_config(raise_errors=raise_errors)
        if errors:
            return errors
        errors = self.extra_config_errors()
        if errors and raise_errors:
            from singer_sdk.exceptions import ConfigValidationError

            raise ConfigValidationError("Config validation failed", errors=errors)
        for error in errors:
            self.logger.warning("Config: %s", error)
        return errors


class SdkStreamHooks(RESTStream):
    """Public hooks over three private ones of the SDK's stream."""

    def schema_message_due(self) -> bool:
        """Whether the stream's SCHEMA message goes out now (the SDK sends one per partition synced)."""
        return True

    def bookmark_moves(self) -> bool:
        """Whether records read now advance the partition's bookmark."""
        return True

    def record_to_write(self, record: Record) -> Record:
        """The record as its RECORD message carries it; called once per record written, just before the SDK
        conforms it to the schema (dropping what the schema does not declare)."""
        return record

    def _write_schema_message(self) -> None:
        if self.schema_message_due():
            super()._write_schema_message()

    def _generate_record_messages(self, record: Record) -> Generator[RecordMessage, None, None]:
        yield from super()._generate_record_messages(self.record_to_write(record))

    def _increment_stream_state(self, latest_record: Record, *, context: Context | None = None) -> None:
        if self.bookmark_moves():
            super()._increment_stream_state(latest_record, context=context)
