"""Where WHOOP's rotating tokens live between runs, and beside them the webhook events: the `token_store`
setting names a backend for both."""

from __future__ import annotations

from tap_whoop.stores.events.log import EventLog, app_fingerprint
from tap_whoop.stores.tokens.file import FileTokenStore, default_token_store
from tap_whoop.stores.tokens.record import TokenStore


def _location(setting: str | None) -> str:
    return (setting or "").strip() or default_token_store()


def open_token_store(setting: str | None) -> TokenStore:
    """The store named by the `token_store` setting: a SQLAlchemy URL (has `://`) or a file path."""
    value = _location(setting)
    if "://" in value:
        # Imported only here: SQLAlchemy is not needed by the file store.
        from tap_whoop.stores.tokens.sql import SqlTokenStore

        return SqlTokenStore(value)
    return FileTokenStore(value)


def open_event_log(setting: str | None, client_id: str) -> EventLog:
    """The webhook event log of one WHOOP app where its tokens live: beside a file store, or a table of a SQL
    store."""
    value = _location(setting)
    app = app_fingerprint(client_id)
    if "://" in value:
        from tap_whoop.stores.events.sql import SqlEventLog

        return SqlEventLog(value, app)
    from tap_whoop.stores.events.file import FileEventLog, event_log_path

    return FileEventLog(event_log_path(value), app)
