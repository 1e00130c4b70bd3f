"""Where WHOOP's rotating tokens live between runs: the `token_store` setting names a backend."""

from __future__ import annotations

from tap_whoop.stores.file import FileTokenStore, default_token_store
from tap_whoop.stores.record import TokenStore


def open_token_store(setting: str | None) -> TokenStore:
    """The store named by the `token_store` setting: a SQLAlchemy URL (has `://`) or a file path."""
    value = (setting or "").strip() or default_token_store()
    if "://" in value:
        # Imported only here: SQLAlchemy is not needed by the file store.
        from tap_whoop.stores.sql import SqlTokenStore

        return SqlTokenStore(value)
    return FileTokenStore(value)
