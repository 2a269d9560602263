"""`truss_chains.streaming`: structured streams are not served by kingpost yet; the names exist so
that a chain file importing them loads, and using them says so."""

from __future__ import annotations

from typing import Any

NOT_YET = "structured streaming Chainlets are not supported by kingpost yet"


def stream_types(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError(NOT_YET)


def stream_writer(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError(NOT_YET)


def stream_reader(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError(NOT_YET)
