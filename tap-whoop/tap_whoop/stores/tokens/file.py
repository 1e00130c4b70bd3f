"""The file token store (the default): one JSON file, mode 0600, guarded by an OS file lock.

The lock is released by the kernel when a process dies, so a crash never leaves a stale lock. Writes go to a
temp file in the same directory, fsync, `os.replace`, fsync of the directory. A temp file that a killed
process left complete is adopted on the next read when it is newer, which closes the window between
"written" and "renamed".
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tap_whoop import crash_points
from tap_whoop.errors import TokenStoreError, ensure_directory
from tap_whoop.stores.tokens.record import (
    LOCK_TIMEOUT_SECONDS,
    TokenKey,
    TokenRecord,
    TokenStore,
    TokenTransaction,
)

FILE_FORMAT = 1

logger = logging.getLogger("tap-whoop")


def default_token_store() -> str:
    """Per-user state file, following the XDG base-directory convention."""
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state_home, "tap-whoop", "tokens.json")


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX; Windows cannot open a directory and commits renames itself)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileTokenStore(TokenStore):
    """A JSON file `{"format": 1, "tokens": {"<client_id>/<athlete>": record}}`, mode 0600."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).expanduser().absolute()
        self.location = str(self.path)
        self._thread_lock = threading.RLock()

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _temp_files(self) -> list[Path]:
        return sorted(self.path.parent.glob(f".{self.path.name}.*.tmp"))

    def _read_document(self, path: Path) -> dict[str, Any]:
        with path.open(encoding="utf-8") as fh:
            document = json.load(fh)
        if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
            raise ValueError("unknown format")
        return document

    def _read(self) -> dict[str, Any]:
        try:
            return self._read_document(self.path)
        except FileNotFoundError:
            return {"format": FILE_FORMAT, "tokens": {}}
        except OSError as exc:
            raise TokenStoreError(_unreadable(self.location, exc)) from None
        except ValueError as exc:
            msg = (
                f"The token store {self.location} is unreadable or corrupt ({type(exc).__name__}). "
                "Move it aside and run `tap-whoop auth` to authorize again."
            )
            raise TokenStoreError(msg) from None

    def load(self, key: TokenKey) -> TokenRecord | None:
        data = self._read()["tokens"].get(key.id)
        return TokenRecord.from_dict(data) if data else None

    def records(self, client_id: str) -> dict[str, TokenRecord]:
        prefix = f"{client_id}/"
        return {
            key.removeprefix(prefix): TokenRecord.from_dict(data)
            for key, data in self._read()["tokens"].items()
            if key.startswith(prefix) and data
        }

    @contextlib.contextmanager
    def transaction(self, key: TokenKey) -> Iterator[TokenTransaction]:
        from filelock import FileLock, Timeout

        self._ensure_dir()
        lock = FileLock(str(self._lock_path), mode=0o600, thread_local=False)
        with self._thread_lock:
            try:
                lock.acquire(timeout=LOCK_TIMEOUT_SECONDS)
            except Timeout:
                waited = f"{LOCK_TIMEOUT_SECONDS:.0f}s"
                msg = f"Timed out after {waited} waiting for the token store lock {lock.lock_file}"
                raise TokenStoreError(msg) from None
            except OSError as exc:
                raise TokenStoreError(_unwritable(lock.lock_file, exc)) from None
            try:
                crash_points.reach("locked")
                self._recover_temp_files()
                yield TokenTransaction(self, key, self.load(key))
            finally:
                lock.release()

    def _ensure_dir(self) -> None:
        ensure_directory(self.path.parent, "the token store", TokenStoreError)

    def _recover_temp_files(self) -> None:
        """Adopt a complete temp file that a killed writer left behind if it is newer; drop the rest.

        Runs under the lock, so no live writer owns a temp file. "Newer" is per key: the temp file is a whole
        document written from the then-current file plus one changed record.
        """
        temps = self._temp_files()
        if not temps:
            return
        current = self._read()
        for temp in temps:
            try:
                candidate = self._read_document(temp)
            except (OSError, ValueError):
                candidate = None
            if candidate is not None and _newer(candidate["tokens"], current["tokens"]):
                logger.warning(
                    "Token store %s: recovered tokens saved by an interrupted run before it could finish.",
                    self.location,
                )
                os.replace(temp, self.path)
                _fsync_dir(self.path.parent)
                current = candidate
            else:
                temp.unlink(missing_ok=True)

    def _save(self, txn: TokenTransaction, record: TokenRecord) -> bool:
        document = self._read()
        document["tokens"][txn.key.id] = record.to_dict()
        self._write(document)
        return True

    def _delete(self, txn: TokenTransaction) -> None:
        document = self._read()
        document["tokens"].pop(txn.key.id, None)
        self._write(document)

    def _move(self, txn: TokenTransaction, target: TokenKey, record: TokenRecord) -> None:
        # One document holds every key, so one atomic write moves the record. Versions only grow: the
        # temp-file recovery compares them per key.
        document = self._read()
        previous = document["tokens"].get(target.id) or {}
        record.version = max(previous.get("version", 0), txn.record.version if txn.record else 0) + 1
        document["tokens"][target.id] = record.to_dict()
        document["tokens"].pop(txn.key.id, None)
        self._write(document)

    def _write(self, document: dict[str, Any]) -> None:
        prefix = f".{self.path.name}."
        try:
            fd, temp_name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            raise TokenStoreError(_unwritable(str(self.path.parent), exc)) from None
        try:
            # mkstemp creates the file 0600: the secret is never readable by others, not even briefly.
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(document, fh, indent=2, sort_keys=True)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            crash_points.reach("temp_written")
            os.replace(temp_name, self.path)
            crash_points.reach("replaced")
            _fsync_dir(self.path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise


def _unreadable(where: str, exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    return (
        f"Cannot read the token store {where}: {reason}. Fix the path or its permissions, or set token_store "
        "to a location you can write to."
    )


def _unwritable(where: str, exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    return (
        f"Cannot write the token store at {where}: {reason}. Free space or fix the permissions there, or set "
        "token_store to a location you can write to."
    )


def _newer(candidate: dict[str, Any], current: dict[str, Any]) -> bool:
    return any(
        record.get("version", 0) > current.get(key, {}).get("version", 0) for key, record in candidate.items()
    )
