"""Short random IDs with a type prefix: mdl_, dep_, rep_, node_, bld_."""

from __future__ import annotations

import secrets

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_id(prefix: str, length: int = 10) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def is_id(value: str, prefix: str) -> bool:
    """Whether `value` could be an id made by `new_id(prefix)` (so it is safe in a NATS subject)."""
    head, sep, tail = value.partition("_")
    return head == prefix and bool(sep) and bool(tail) and all(c in _ALPHABET for c in tail)
