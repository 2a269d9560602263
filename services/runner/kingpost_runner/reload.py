"""Live reload: import the model again, from the same Truss directory or a patched copy of it.

Everything this process imported from the Truss (the model module, its helper modules, `packages/`)
is forgotten first, so the new code is what runs; sys.path entries and the working directory move
to the new directory. Nothing of this is kept when the new model fails to import or load: the old
modules, sys.path and working directory come back, and the caller keeps serving the old model.
"""

from __future__ import annotations

import importlib
import logging
import os
import pathlib
import sys
from types import ModuleType

from kingpost_runner import loader
from kingpost_runner.truss_config import TrussConfig, load_config
from kingpost_runner.truss_model import ModelMethods

log = logging.getLogger(__name__)


def _inside(path: str | None, roots: tuple[pathlib.Path, ...]) -> bool:
    if not path:
        return False
    p = pathlib.Path(path)
    return any(p == root or root in p.parents for root in roots)


def truss_modules(roots: tuple[pathlib.Path, ...]) -> dict[str, ModuleType]:
    """The imported modules whose source lies under one of `roots`."""
    return {name: m for name, m in list(sys.modules.items())
            if isinstance(m, ModuleType) and _inside(getattr(m, "__file__", None), roots)}


def moved_path(entries: list[str], old: pathlib.Path, new: pathlib.Path) -> list[str]:
    """sys.path with every entry under `old` pointing to the same place under `new`."""
    out = []
    for entry in entries:
        p = pathlib.Path(entry) if entry else None
        if p is not None and (p == old or old in p.parents):
            out.append(str(new / p.relative_to(old)))
        else:
            out.append(entry)
    return out


def reload_model(
    old_dir: pathlib.Path, new_dir: pathlib.Path, *, environment: str | None, secrets_dir: pathlib.Path,
) -> tuple[TrussConfig, ModelMethods]:
    """Construct and load the model from `new_dir`; raises whatever the model's code raised."""
    config = load_config(new_dir)
    roots = (old_dir.resolve(), new_dir.resolve())
    old_modules = truss_modules(roots)
    old_path = list(sys.path)
    old_cwd = os.getcwd()
    for name in old_modules:
        del sys.modules[name]
    sys.path[:] = moved_path(sys.path, roots[0], roots[1])
    for path in config.package_dirs(new_dir):
        if path.is_dir() and str(path) not in sys.path:
            sys.path.append(str(path))
    os.environ.update(config.environment_variables)
    # A .pyc is checked by the source's mtime in whole seconds and its size: two edits within one
    # second that keep the size would load stale code. Reloaded code is compiled afresh, never cached.
    sys.dont_write_bytecode = True
    importlib.invalidate_caches()
    try:
        os.chdir(new_dir)
        _, methods = loader.load_model(new_dir, config, environment=environment, secrets_dir=secrets_dir,
                                       retries=0)
    except BaseException:
        for name in truss_modules(roots):
            sys.modules.pop(name, None)
        sys.modules.update(old_modules)
        sys.path[:] = old_path
        os.chdir(old_cwd)
        raise
    return config, methods
