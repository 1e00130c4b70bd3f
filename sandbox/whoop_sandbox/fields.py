"""WHOOP changes the shape of what it serves: fields it starts sending, fields it stops sending.

Applied to every record as it is served (collections, single records, profile, body measurement), never to
the stored data: turning a change off gives the old shape back. Fields are dotted paths: `daily_step_total`
(any JSON value, objects included), `score.breathing_variability` (inside `score`, only where the record has
one: a record not yet scored gets no score). `since_ms` limits an addition to records created at or after it
(a metric WHOOP computes only from its launch on).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Addition:
    fields: dict[tuple[str, ...], Any]
    since_ms: int | None = None


def _path(path: object) -> tuple[str, ...]:
    # Checked here: over the control plane, any JSON value arrives.
    parts = tuple(path.split(".")) if isinstance(path, str) else ()
    if not parts or not all(parts):
        raise ValueError(f"a field path is dotted names (sport_name, score.strain), got {path!r}")
    return parts


@dataclass
class FieldChanges:
    added: dict[str, list[Addition]] = field(default_factory=dict)
    removed: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    def add(self, resource: str, fields: object, since_ms: int | None = None) -> None:
        if not isinstance(fields, dict) or not fields:
            raise ValueError("fields must be a non-empty JSON object of field names and values")
        paths = {_path(name): copy.deepcopy(value) for name, value in fields.items()}
        self.added.setdefault(resource, []).append(Addition(paths, since_ms))

    def remove(self, resource: str, path: object) -> None:
        self.removed.setdefault(resource, []).append(_path(path))

    def clear(self, resource: str | None = None) -> None:
        for changes in (self.added, self.removed):
            if resource is None:
                changes.clear()
            else:
                changes.pop(resource, None)

    def touches(self, resource: str) -> bool:
        """Whether anything changes what `resource` serves."""
        return bool(self.added.get(resource) or self.removed.get(resource))

    def apply(self, resource: str, body: dict[str, Any], created_ms: int | None) -> dict[str, Any]:
        """`body` as served after the changes (a copy when any applies; `body` itself is never changed)."""
        additions = [
            a
            for a in self.added.get(resource, [])
            if a.since_ms is None or created_ms is None or created_ms >= a.since_ms
        ]
        removals = self.removed.get(resource, [])
        if not additions and not removals:
            return body
        served = copy.deepcopy(body)
        for addition in additions:
            for parts, value in addition.fields.items():
                parent = _parent(served, parts)
                if parent is not None:
                    parent[parts[-1]] = copy.deepcopy(value)
        for parts in removals:
            parent = _parent(served, parts)
            if parent is not None:
                parent.pop(parts[-1], None)
        return served


def _parent(body: dict[str, Any], parts: tuple[str, ...]) -> dict[str, Any] | None:
    """The object holding the path's last name, or None when the record lacks one on the way."""
    target: Any = body
    for name in parts[:-1]:
        target = target.get(name)
        if not isinstance(target, dict):
            return None
    return target
