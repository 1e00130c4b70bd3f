"""The file event log: JSON lines beside the file token store, appended under an OS file lock and fsynced.

`tokens.json` gets `tokens.events.jsonl` (mode 0600, restored if someone loosened it) and its lock
`tokens.events.jsonl.lock`, a lock of its own so a delivery never waits for a token refresh. The log is never
opened through a symbolic link: one planted where the log will be created would otherwise make the service
append to (and keep the mode of) whatever file it points at. An append takes the lock, writes one line, fsyncs
it (and the directory when the file is new) and only then returns, so an acknowledged event survives a
crash. A writer killed mid-line leaves an unterminated tail: readers ignore it and the next writer
truncates it (that delivery was never acknowledged, and WHOOP retries it). Pruning rewrites the file like
the token store writes its file: temp file, fsync, `os.replace`, directory fsync.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tap_whoop.deletions.events import WebhookEvent
from tap_whoop.errors import ensure_directory
from tap_whoop.stores.events.log import EventLog, EventLogError, StoredEvent
from tap_whoop.stores.tokens.file import _fsync_dir
from tap_whoop.stores.tokens.record import LOCK_TIMEOUT_SECONDS

logger = logging.getLogger("tap-whoop")

# Windows has no O_NOFOLLOW (nor symlinks a non-administrator can plant).
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def event_log_path(token_file: str | os.PathLike[str]) -> Path:
    """Where the events of a file token store live: beside it, `<name>.events.jsonl`."""
    path = Path(token_file).expanduser().absolute()
    return path.with_name(f"{path.stem}.events.jsonl")


class FileEventLog(EventLog):
    """JSON lines `{"seq", "app", "received_at", "user_id", "id", "type", "trace_id"}`, one event each."""

    def __init__(self, path: str | os.PathLike[str], app: str):
        self.path = Path(path).expanduser().absolute()
        self.location = str(self.path)
        self.app = app
        self._thread_lock = threading.Lock()
        # What this process has indexed of the file (the writer's dedupe index), valid for one inode.
        self._inode: int | None = None
        self._offset = 0
        self._last_seq = 0
        self._traces: set[tuple[str, str]] = set()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        ensure_directory(self.path.parent, "the webhook event log", EventLogError)
        lock = FileLock(str(self.path) + ".lock", mode=0o600, thread_local=False)
        with self._thread_lock:
            try:
                lock.acquire(timeout=LOCK_TIMEOUT_SECONDS)
            except Timeout:
                waited = f"{LOCK_TIMEOUT_SECONDS:.0f}s"
                msg = f"Timed out after {waited} waiting for the event log lock {lock.lock_file}"
                raise EventLogError(msg) from None
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise EventLogError(f"Cannot lock the event log with {lock.lock_file}: {reason}.") from None
            try:
                yield
            finally:
                lock.release()

    def prepare(self) -> None:
        with self._locked():  # creates the directory and the lock file beside the log
            pass

    def append(self, event: WebhookEvent, received_at: dt.datetime) -> bool:
        with self._locked():
            try:
                return self._append(event, received_at)
            except OSError as exc:
                raise EventLogError(self._cannot("write", exc)) from None

    def _append(self, event: WebhookEvent, received_at: dt.datetime) -> bool:
        created = not os.path.lexists(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | NOFOLLOW, 0o600)
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) != 0o600:
                os.fchmod(fd, 0o600)  # created by someone else, or loosened since: events name athletes
            self._catch_up(fd)
            if (self.app, event.trace_id) in self._traces:
                return False
            stored = StoredEvent(self._last_seq + 1, received_at, event)
            line = (json.dumps(stored.to_dict(self.app), sort_keys=True) + "\n").encode()
            os.write(fd, line)
            os.fsync(fd)
            if created:
                _fsync_dir(self.path.parent)
        finally:
            os.close(fd)
        self._offset += len(line)
        self._last_seq = stored.seq
        self._traces.add((self.app, event.trace_id))
        return True

    def _cannot(self, action: str, exc: OSError) -> str:
        if exc.errno == errno.ELOOP:
            return (
                f"Cannot {action} the event log {self.location}: it is a symbolic link, which the log never "
                "follows. Remove it (or set token_store to a directory of your own)."
            )
        reason = exc.strerror or type(exc).__name__
        return f"Cannot {action} the event log {self.location}: {reason}."

    def _read_bytes(self) -> bytes | None:
        """The whole file, None when there is none yet."""
        try:
            fd = os.open(self.path, os.O_RDONLY | NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise EventLogError(self._cannot("read", exc)) from None
        try:
            with os.fdopen(fd, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise EventLogError(self._cannot("read", exc)) from None

    def _catch_up(self, fd: int) -> None:
        """Index what other writers appended since we last looked; cut off a dead writer's partial line."""
        info = os.fstat(fd)
        if info.st_ino != self._inode or info.st_size < self._offset:
            self._inode, self._offset, self._last_seq, self._traces = info.st_ino, 0, 0, set()
        if info.st_size == self._offset:
            return
        # Read through the descriptor already opened: a second open by name could meet another file.
        tail = os.pread(fd, info.st_size - self._offset, self._offset)
        end = tail.rfind(b"\n") + 1
        complete, partial = tail[:end], tail[end:]
        for data in _parse_lines(complete, self.location):
            self._last_seq = max(self._last_seq, int(data["seq"]))
            self._traces.add((str(data["app"]), str(data["trace_id"])))
        self._offset += len(complete)
        if partial:
            logger.warning("Event log %s: dropping a line a killed writer left unfinished.", self.location)
            os.ftruncate(fd, self._offset)
            os.fsync(fd)

    def read(self, after: int = 0) -> list[StoredEvent]:
        data = self._read_bytes()
        if data is None:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # an unterminated tail was never acknowledged
        events = [
            StoredEvent.from_dict(d)
            for d in _parse_lines(complete, self.location)
            if d["app"] == self.app and int(d["seq"]) > after
        ]
        return sorted(events, key=lambda e: e.seq)

    def newest_seq(self) -> int:
        data = self._read_bytes()
        if data is None:
            return 0
        return max(
            (int(d["seq"]) for d in _parse_lines(data[: data.rfind(b"\n") + 1], self.location)), default=0
        )

    def prune(self, before: dt.datetime) -> int:
        with self._locked():
            try:
                return self._prune(before)
            except OSError as exc:
                raise EventLogError(self._cannot("prune", exc)) from None

    def _prune(self, before: dt.datetime) -> int:
        data = self._read_bytes()
        if data is None:
            return 0
        lines = [line for line in data[: data.rfind(b"\n") + 1].splitlines() if line.strip()]
        if len(lines) < 2:
            return 0
        keep = [line for line in lines[:-1] if not _received_before(line, before)]
        keep.append(lines[-1])  # the newest stays: seq must never restart
        dropped = len(lines) - len(keep)
        if dropped:
            self._rewrite(b"".join(line + b"\n" for line in keep))
        return dropped

    def _rewrite(self, content: bytes) -> None:
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, self.path)
            _fsync_dir(self.path.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        self._inode = None  # re-index the new file on the next append


def _received_before(line: bytes, before: dt.datetime) -> bool:
    try:
        return StoredEvent.from_dict(json.loads(line)).received_at < before
    except (ValueError, KeyError, TypeError):
        return False  # unreadable lines are kept for a person to look at


def _parse_lines(data: bytes, location: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
            if isinstance(parsed, dict) and {"seq", "app", "trace_id"} <= parsed.keys():
                yield parsed
                continue
        except ValueError:
            pass
        logger.warning("Event log %s: skipping unreadable line %d.", location, number)
