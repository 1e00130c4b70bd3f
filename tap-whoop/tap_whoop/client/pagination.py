"""Pagination over WHOOP's `next_token` cursor."""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import BaseAPIPaginator

if t.TYPE_CHECKING:
    import requests


def response_payload(response: requests.Response) -> t.Any:
    """The decoded JSON body, parsed once per response (validation, paging and records all need it)."""
    cache = response.__dict__
    if "_whoop_payload" not in cache:
        cache["_whoop_payload"] = response.json()
    return cache["_whoop_payload"]


def next_token(response: requests.Response) -> str | None:
    payload = response_payload(response)
    return (payload.get("next_token") or None) if isinstance(payload, dict) else None


class NextTokenPaginator(BaseAPIPaginator[str | None]):
    """Follows `next_token` until it is absent (or `max_pages` were read), remembering the tokens it followed.

    The SDK's own guard only catches a token repeated on consecutive pages; a cycle A → B → A would page
    forever and emit duplicates. `is_repeat` lets the stream refuse such a page while validating it, before
    its records are emitted.
    """

    def __init__(self, max_pages: int | None = None) -> None:
        super().__init__(None)
        self.seen_tokens: set[str] = set()
        self.max_pages = max_pages
        self.truncated = False  # stopped at max_pages while WHOOP still had more

    def is_repeat(self, token: str | None) -> bool:
        return token is not None and token in self.seen_tokens

    def get_next(self, response: requests.Response) -> str | None:
        token = next_token(response)
        if token is not None and self.max_pages is not None and self.count >= self.max_pages:
            self.truncated = True
            return None
        if token is not None:
            self.seen_tokens.add(token)
        return token

    def continue_if_empty(self, response: requests.Response) -> bool:
        # An empty page that still carries a token is not the end of the collection.
        return next_token(response) is not None
