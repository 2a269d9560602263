"""No service package imports another: what two services share lives in `kingpost` (src/kingpost/).

Read from the source (ast), not by importing: every `import`, `from … import` and
`importlib.import_module("…")` with a literal name, at any depth of every module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE_PACKAGES = {p.name: p for p in sorted(ROOT.glob("services/*/kingpost_*")) if p.is_dir()}


def imported_names(tree: ast.AST) -> list[tuple[int, str, bool]]:
    """(line, dotted name, inside a function) of every absolute import in `tree`."""
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, in_function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, in_function))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in ("import_module",
                                                                                             "__import__")):
            found.append((node.lineno, node.args[0].value, in_function))
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def other_services(source: str, own: str | None) -> list[tuple[int, str, bool]]:
    return [(line, name, lazy) for line, name, lazy in imported_names(ast.parse(source))
            if name.split(".")[0] in SERVICE_PACKAGES and name.split(".")[0] != own]


def test_the_checker_finds_every_form_of_import_and_ignores_the_packages_own() -> None:
    source = (
        "import kingpost_runner\n"
        "from kingpost_builder.requirements import RUNNER_PACKAGES\n"
        "from kingpost_scheduler import store\n"
        "from . import sibling\n"
        "import kingpost.bus\n"
        "def later():\n"
        "    import importlib\n"
        "    importlib.import_module('kingpost_router.main')\n"
    )
    assert other_services(source, own="kingpost_scheduler") == [
        (1, "kingpost_runner", False), (2, "kingpost_builder.requirements", False),
        (8, "kingpost_router.main", True)]


def test_every_service_is_checked() -> None:
    assert sorted(SERVICE_PACKAGES) == ["kingpost_autoscaler", "kingpost_builder", "kingpost_router",
                                        "kingpost_runner", "kingpost_scheduler", "kingpost_worker_agent"]


def test_no_service_package_imports_another() -> None:
    offences = []
    for own, package in SERVICE_PACKAGES.items():
        for path in sorted(package.rglob("*.py")):
            for line, name, _ in other_services(path.read_text(), own):
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert offences == [], "a service imports another service; move what they share to src/kingpost/:\n" + \
        "\n".join(offences)


def test_the_platform_package_loads_a_service_only_lazily_in_the_command_that_runs_it() -> None:
    # `kingpost build --dockerfile` and `kingpost <service> --config` run a service's own code in
    # this process; nothing else in `kingpost` may load a service package, and nothing at import time.
    offences = []
    for path in sorted((ROOT / "src" / "kingpost").rglob("*.py")):
        for line, name, lazy in other_services(path.read_text(), own=None):
            if not lazy or path.parent.name != "cli":
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert offences == [], "\n".join(offences)


def test_the_cli_starts_without_loading_pydantic() -> None:
    # Every `kingpost` command is a new process: pydantic would double the CLI's start (only
    # `chains push`, which needs it, loads it, in its own body).
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, kingpost.cli; print(sorted(m for m in sys.modules "
                               "if m.partition('.')[0] in ('pydantic', 'pydantic_settings')))"],
        capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert loaded == "[]"
