"""`secrets`, as a Truss model's __init__ receives it: a lookup-only Mapping over declared names.

`secrets["name"]` resolves, like truss's server, the value declared in config.yaml (a default or
null), overridden by env `TRUSS_SECRET_<name>`, overridden by the file `<secrets_dir>/<name>`.
Names not declared in config.yaml, and declared names with no value anywhere, raise SecretNotFound.
Values are never logged or shown in repr.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator, Mapping

ENV_PREFIX = "TRUSS_SECRET_"
DEFAULT_SECRETS_DIR = pathlib.Path("/secrets")


class SecretNotFound(KeyError):
    """A secret that is not declared in config.yaml, or has no value."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "secret not found"


class Secrets(Mapping[str, str]):
    def __init__(
        self,
        declared: Mapping[str, str | None],
        *,
        environ: Mapping[str, str] | None = None,
        secrets_dir: pathlib.Path = DEFAULT_SECRETS_DIR,
    ) -> None:
        self._declared = dict(declared)
        self._environ = os.environ if environ is None else environ
        self._dir = secrets_dir

    def __getitem__(self, name: str) -> str:
        if name not in self._declared:
            raise SecretNotFound(
                f"Secret '{name}' is not declared in config.yaml. Add it under `secrets:` "
                f"(e.g. `{name}: null`) and set its value with `kingpost secrets set {name}`."
            )
        value = self._declared[name]
        value = self._environ.get(ENV_PREFIX + name, value)
        path = self._dir / name
        if path.is_file():
            value = path.read_text()
        if not value:
            raise SecretNotFound(
                f"Secret '{name}' has no value: set it with `kingpost secrets set {name}` "
                f"(or env {ENV_PREFIX}{name})."
            )
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._declared)

    def __len__(self) -> int:
        return len(self._declared)

    def __repr__(self) -> str:
        return f"Secrets(names={sorted(self._declared)!r})"
