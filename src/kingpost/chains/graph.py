"""A Chain file's Chainlets → a checked graph: exactly one entrypoint, no cycles, unique names, a
typed `run_remote` each, dependencies declared only as `depends(...)` defaults. Every error names the
Chainlet, its file and line, and the rule it breaks, and all errors are reported at once.

Pure: classes in, a `ChainGraph` (or `ChainValidationError`) out; nothing is built or sent.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kingpost.chains import framework
from kingpost.chains.signatures import Endpoint, SignatureError, read_endpoint

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+$")


class ChainValidationError(ValueError):
    """The chain file breaks one or more rules; each line of the message is one of them."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("the chain is invalid:\n" + "\n".join(f"- {p}" for p in problems))


@dataclass(frozen=True)
class Chainlet:
    cls: type
    name: str  # the display name: remote_config.name or the class name
    endpoint: Endpoint
    # (parameter name, dependency's display name, options)
    dependencies: tuple[tuple[str, str, framework.RPCOptions], ...]
    takes_context: bool


@dataclass(frozen=True)
class ChainGraph:
    name: str  # the chain's name (mark_entrypoint's argument, else the entrypoint's class name)
    entrypoint: str
    # Dependencies before the Chainlets that call them; the entrypoint last.
    chainlets: tuple[Chainlet, ...]

    def by_name(self, name: str) -> Chainlet:
        return next(c for c in self.chainlets if c.name == name)


def where(cls: type) -> str:
    try:
        file = inspect.getsourcefile(cls) or "?"
        lines, line = inspect.getsourcelines(cls)
        # The `class` line itself, not a decorator above it.
        line += next((i for i, text in enumerate(lines) if text.lstrip().startswith("class ")), 0)
    except (OSError, TypeError):
        return f"`{cls.__name__}`"
    return f"`{cls.__name__}` ({file}:{line})"


def chainlets_in(namespace: Iterable[object]) -> list[type]:
    """The Chainlet classes among a module's values (not ChainletBase itself)."""
    found = []
    for value in namespace:
        if inspect.isclass(value) and issubclass(value, framework.ChainletBase) \
                and value is not framework.ChainletBase and value not in found:
            found.append(value)
    return found


def _init_problems(cls: type) -> list[str]:
    init = cls.__dict__.get("__init__")
    if init is None:
        return []
    problems = []
    seen: set[type] = set()
    params = list(inspect.signature(inspect.unwrap(init)).parameters.items())[1:]
    for i, (name, p) in enumerate(params):
        if isinstance(p.default, framework.DependencyMarker):
            dep = p.default.chainlet_cls
            if not (inspect.isclass(dep) and issubclass(dep, framework.ChainletBase)):
                problems.append(f"{where(cls)}: `{name}` depends on {dep!r}, which is not a Chainlet")
            elif dep in seen:
                problems.append(f"{where(cls)}: depends on `{dep.__name__}` more than once")
            seen.add(dep)
        elif isinstance(p.default, framework.ContextMarker):
            if i != len(params) - 1 or name != framework.CONTEXT_PARAM:
                problems.append(f"{where(cls)}: the context must be the last parameter, named "
                                f"`context=chains.depends_context()`")
        else:
            problems.append(f"{where(cls)}: `__init__` parameter `{name}` is neither a dependency "
                            f"(`chains.depends(...)`) nor the context (`chains.depends_context()`)")
    return problems


def _find_cycle(edges: dict[type, list[type]]) -> list[type] | None:
    state: dict[type, int] = {}
    stack: list[type] = []

    def visit(node: type) -> list[type] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def build_graph(classes: Sequence[type], *, source: str = "the chain file") -> ChainGraph:
    """Check the Chainlets defined in one chain file and order them for deployment."""
    problems: list[str] = []
    entrypoints = [c for c in classes if framework.is_entrypoint(c)]
    if not entrypoints:
        problems.append(f"{source} has no entrypoint: mark exactly one Chainlet with "
                        f"`@chains.mark_entrypoint`" + (f" (Chainlets found: "
                        f"{', '.join(c.__name__ for c in classes)})" if classes else " (no Chainlets found)"))
    elif len(entrypoints) > 1:
        problems.append(f"{source} has {len(entrypoints)} entrypoints, "
                        f"{' and '.join(where(c) for c in entrypoints)}: mark exactly one")
        entrypoints = entrypoints[:1]

    # Everything reachable from the entrypoint is deployed; others in the file are too, if checked.
    members: list[type] = list(classes)
    edges: dict[type, list[type]] = {}
    i = 0
    while i < len(members):
        cls = members[i]
        problems.extend(_init_problems(cls))
        deps = [d for d in framework.dependencies(cls)
                if inspect.isclass(d) and issubclass(d, framework.ChainletBase)]
        edges[cls] = deps
        for d in deps:
            if d not in members:
                members.append(d)
        i += 1

    cycle = _find_cycle(edges)
    if cycle:
        problems.append("dependency cycle: " + " -> ".join(c.__name__ for c in cycle)
                        + f" (at {where(cycle[0])}): a Chain must be a DAG")

    names: dict[str, type] = {}
    endpoints: dict[type, Endpoint] = {}
    for cls in members:
        name = framework.display_name(cls)
        if not NAME_RE.match(name):
            problems.append(f"{where(cls)}: name {name!r} must match {NAME_RE.pattern}")
        if name in names and names[name] is not cls:
            problems.append(f"{where(cls)}: name {name!r} is also used by {where(names[name])}")
        names[name] = cls
        try:
            endpoints[cls] = read_endpoint(cls)
        except SignatureError as e:
            problems.append(f"{where(cls)}: {e}")

    if problems:
        raise ChainValidationError(problems)

    entry = entrypoints[0]
    reachable: list[type] = []

    def order(cls: type) -> None:  # post-order: dependencies first
        if cls in reachable:
            return
        for d in edges[cls]:
            order(d)
        reachable.append(cls)

    order(entry)
    chain_name = framework.chain_display_name(entry)
    if not NAME_RE.match(chain_name.replace(" ", "-")):
        raise ChainValidationError([f"{where(entry)}: chain name {chain_name!r} must match {NAME_RE.pattern}"])
    chainlets = []
    for cls in reachable:
        deps, takes_context = framework.init_markers(cls)
        chainlets.append(Chainlet(
            cls=cls, name=framework.display_name(cls), endpoint=endpoints[cls],
            dependencies=tuple((p, framework.display_name(m.chainlet_cls), m.options) for p, m in deps.items()),
            takes_context=takes_context))
    return ChainGraph(name=chain_name, entrypoint=framework.display_name(entry), chainlets=tuple(chainlets))
