"""What a model method receives as `request` (there is no fastapi/starlette in the runner).

Supported: `request.headers` (case-insensitive, read-only; the gRPC metadata the router forwards,
e.g. `accept`, `traceparent`, `x-baseten-request-id`, plus `content-type`), `await request.body()`,
`await request.json()`, `await request.is_disconnected()`, `request.method` ("POST") and
`request.url.path`. Not supported: `request.state`, `request.client`, `request.stream()`, forms, cookies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only headers (the first value wins for repeated keys)."""

    def __init__(self, items: Iterable[tuple[str, str | bytes]]) -> None:
        self._items: dict[str, str] = {}
        for key, value in items:
            if isinstance(value, bytes):  # binary (-bin) metadata
                continue
            self._items.setdefault(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class _URL:
    def __init__(self, path: str) -> None:
        self.path = path

    def __str__(self) -> str:
        return self.path


class ModelRequest:
    method = "POST"

    def __init__(self, headers: Headers, body: bytes, is_done: Callable[[], bool] = lambda: False,
                 path: str = "/v1/models/model:predict") -> None:
        self.headers = headers
        self._body = body
        self._is_done = is_done
        self.url = _URL(path)

    async def body(self) -> bytes:
        return self._body

    async def json(self) -> Any:
        return json.loads(self._body)

    async def is_disconnected(self) -> bool:
        return self._is_done()
