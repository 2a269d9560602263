"""What an API key may do, as Baseten's key types say it — the one rule, for every service.

- WORKSPACE_MANAGE_ALL: manage and invoke everything (the admin key, and keys made without a type).
- WORKSPACE_INVOKE: call models only; with `model_ids`, only those models.

Pure: the interceptor (management, builds) and the router (predict) ask it, with the key's scope
from the route table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kingpost.errors import InvalidArgument

MANAGE_ALL = "WORKSPACE_MANAGE_ALL"
INVOKE = "WORKSPACE_INVOKE"
TYPES = (MANAGE_ALL, INVOKE)


@dataclass(frozen=True)
class Scope:
    manage: bool = True
    # Invoke-only keys: the model ids they may call; empty for every model.
    model_ids: frozenset[str] = frozenset()

    def management_refusal(self, what: str) -> str | None:
        """None when this key may do the management call `what`; else the 403 message."""
        if self.manage:
            return None
        return (f"this API key may only invoke models ({INVOKE}{self._models()}); {what} needs a "
                f"{MANAGE_ALL} key")

    def invoke_refusal(self, model_id: str, model_name: str = "") -> str | None:
        """None when this key may call the model; else the 403 message."""
        if self.manage or not self.model_ids or model_id in self.model_ids:
            return None
        named = f"{model_name!r} ({model_id})" if model_name else repr(model_id)
        return f"this API key may invoke only {self._models().removeprefix(' for ')}, not model {named}"

    def _models(self) -> str:
        return f" for model {', '.join(sorted(self.model_ids))}" if self.model_ids else ""


WORKSPACE = Scope()


def scope_of(key_type: str, model_ids: Iterable[str] = ()) -> Scope:
    return WORKSPACE if key_type != INVOKE else Scope(manage=False, model_ids=frozenset(model_ids))


def check_new_key(key_type: str, model_ids: Iterable[str]) -> str:
    """The type a new key gets (MANAGE_ALL when empty); refuses an unknown type, or models on a
    management key."""
    key_type = key_type or MANAGE_ALL
    if key_type not in TYPES:
        raise InvalidArgument(f"API key type {key_type!r} is not one kingpost has: {', '.join(TYPES)}")
    if key_type == MANAGE_ALL and list(model_ids):
        raise InvalidArgument(f"model_ids limit a {INVOKE} key; a {MANAGE_ALL} key reaches every model")
    return key_type
