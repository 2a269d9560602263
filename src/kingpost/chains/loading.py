"""Importing a chain file: `truss_chains` names kingpost's SDK (so a file written for truss deploys
unchanged, with no truss installed), the file's folder is its chain root on sys.path, and the
module is imported under its own name (as it will be in the runner, from the bundled packages/).
"""

from __future__ import annotations

import importlib
import pathlib
import sys
import types

from kingpost.chains.graph import ChainGraph, ChainValidationError, build_graph, chainlets_in

ALIASES = {"truss_chains": "kingpost.chains", "truss_chains.streaming": "kingpost.chains.streaming",
           "truss_chains.pydantic_numpy": "kingpost.chains.pydantic_numpy"}


def install_alias() -> None:
    """Make `import truss_chains` give kingpost.chains, even where truss itself is installed (runners
    hold kingpost, not the `truss_chains` shim package beside it)."""
    for alias, target in ALIASES.items():
        if alias not in sys.modules:
            sys.modules[alias] = importlib.import_module(target)


def import_chain_module(path: pathlib.Path) -> types.ModuleType:
    install_alias()
    path = path.resolve()
    if not path.is_file() or path.suffix != ".py":
        raise ChainValidationError([f"{path} is not a Python file"])
    name = path.stem
    if not name.isidentifier() or name == "model":
        raise ChainValidationError([f"{path}: a chain file's name must be a Python module name other than "
                                    f"`model` (no `-`): rename it"])
    root = str(path.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    existing = sys.modules.get(name)
    if existing is not None and pathlib.Path(getattr(existing, "__file__", "") or "").resolve() != path:
        raise ChainValidationError([f"{path}: its module name `{name}` is already taken by "
                                    f"{getattr(existing, '__file__', existing)}: rename the file"])
    try:
        return importlib.import_module(name)
    except ChainValidationError:
        raise
    except Exception as e:
        raise ChainValidationError([f"{path} failed to import: {type(e).__name__}: {e}"]) from e


def load_chain(path: pathlib.Path) -> tuple[types.ModuleType, ChainGraph]:
    """Import the chain file and check it (ChainValidationError lists every problem)."""
    module = import_chain_module(path)
    own = [c for c in chainlets_in(vars(module).values()) if c.__module__ == module.__name__]
    return module, build_graph(own, source=str(path))
