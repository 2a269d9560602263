"""`.kingpost/environment.json` in a code artifact: the layers a Truss runs with. The builder writes
it (`kingpost_builder.build`), the worker agent reads it (`environments.py`, `system_layer.py`).

    {"dependencies": "sha256:…",   the dependency layer (lock + wheels); absent or "": none
     "python_version": "3.11",     the Python the dependencies were locked for
     "lock_key": "deps-…",         what the dependency layer is cached by
     "system": "sha256:…"}         the system layer (system_packages); absent: none

A Truss without requirements or system_packages has no such file. Unknown keys are ignored, so an
older agent reads a newer builder's manifest; "system" is written only when there is one, so a
Truss without system_packages keeps the code digest it had before that key existed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from kingpost.errors import InvalidArgument

PATH = ".kingpost/environment.json"
_FIELDS = ("dependencies", "python_version", "lock_key", "system")


@dataclass(frozen=True)
class EnvironmentManifest:
    dependencies: str = ""  # the dependency layer's digest ("sha256:..."); "" = none (the base environment)
    python_version: str = ""  # "3.11"
    lock_key: str = ""  # the builder's dependency_key(lock, python_version)
    system: str = ""  # the system layer's digest; "" = none

    def to_json(self) -> str:
        data = {"dependencies": self.dependencies, "python_version": self.python_version,
                "lock_key": self.lock_key}
        if self.system:
            data["system"] = self.system
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str, source: str = PATH) -> EnvironmentManifest:
        """InvalidArgument naming `source` and what is wrong with it."""
        try:
            data = json.loads(text)
        except ValueError as e:
            raise InvalidArgument(f"{source} cannot be read: {e}") from None
        if not isinstance(data, dict):
            raise InvalidArgument(f"{source} cannot be read: a JSON object is expected, "
                                  f"not {type(data).__name__}")
        values = {}
        for name in _FIELDS:
            value = data.get(name, "")
            if not isinstance(value, str):
                raise InvalidArgument(f"{source} cannot be read: {name!r} must be a string, not {value!r}")
            values[name] = value
        manifest = EnvironmentManifest(**values)
        if manifest.dependencies and not manifest.python_version:
            raise InvalidArgument(f"{source} cannot be read: it names dependencies but no python_version")
        return manifest

    def with_system(self, digest: str) -> EnvironmentManifest:
        return dataclasses.replace(self, system=digest)


def read(truss_dir: Path) -> EnvironmentManifest | None:
    """The manifest of the Truss in `truss_dir` (an unpacked artifact); None when it has none."""
    path = truss_dir / PATH
    if not path.is_file():
        return None
    return EnvironmentManifest.from_json(path.read_text(errors="replace"), f"{PATH} in the artifact")


def write(truss_dir: Path, manifest: EnvironmentManifest) -> None:
    path = truss_dir / PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest.to_json())


def remove(truss_dir: Path) -> None:
    """Only the builder writes a manifest: one that came with the pushed source is dropped."""
    (truss_dir / PATH).unlink(missing_ok=True)
