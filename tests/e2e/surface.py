"""What a user can reach, read from the code itself rather than listed by hand: the REST routes are the
`google.api.http` rules in the descriptor Envoy transcodes with, the commands are the `kingpost` click
tree. tests/e2e/test_surface.py exercises each and fails on one it did not, so a route or a command
cannot land without a test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from kingpost.cli import cli

DESCRIPTOR = Path(__file__).resolve().parents[2] / "src" / "kingpost" / "envoy" / "kingpost.binpb"


@dataclass(frozen=True)
class HttpRoute:
    method: str  # GET, POST, ... ("*": any, a passthrough)
    template: str  # "/v1/models/{model_id}", "/{target=development}/predict"
    rpc: str  # "kingpost.v1.ManagementService.GetModel"

    def matches(self, method: str, path: str) -> bool:
        return self.method in (method, "*") and path_pattern(self.template).fullmatch(path) is not None

    def __str__(self) -> str:
        return f"{self.method} {self.template} ({self.rpc})"


def path_pattern(template: str) -> re.Pattern[str]:
    """`{name}` is one path segment; `{name=literal}` that literal (`*` a segment, `**` the rest)."""
    parts = []
    for piece in re.split(r"(\{[^}]*\})", template):
        if piece.startswith("{"):
            _, _, bound = piece[1:-1].partition("=")
            literal = re.escape(bound).replace(r"\*\*", ".+").replace(r"\*", "[^/]+")
            parts.append(literal if bound else "[^/]+")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


# Routes Envoy serves without transcoding, so not in the descriptor: `{prefix}/websocket`, upgraded
# and relayed by the router's WebSocket listener (kingpost_router.ws_server).
WEBSOCKET_RPC = "kingpost_router.ws_server.WebsocketServer.handle"
WEBSOCKET_ROUTES = tuple(HttpRoute("GET", f"{model}{prefix}/websocket", WEBSOCKET_RPC)
                         for model in ("/models/{model_id}", "")
                         for prefix in ("/{target=development}", "/{target=production}",
                                        "/environments/{environment}", "/deployment/{deployment_id}"))


def http_routes(descriptor: Path = DESCRIPTOR) -> list[HttpRoute]:
    """The descriptor's routes, then those Envoy serves untranscoded (WEBSOCKET_ROUTES)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
    routes = []
    for file in files.file:
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    kind = binding.WhichOneof("pattern")
                    verb, template = ((binding.custom.kind, binding.custom.path) if kind == "custom"
                                      else (kind.upper(), getattr(binding, kind)))
                    routes.append(HttpRoute(verb, template, f"{file.package}.{service.name}.{method.name}"))
    return [*routes, *WEBSOCKET_ROUTES]


def cli_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command, as the words that name it: ("models", "list"), ("push",), ..."""
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += cli_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def command_of(argv: Sequence[str], group: click.Group = cli) -> tuple[str, ...]:
    """The command an argument list runs: the leading words that name a command in the tree."""
    words: list[str] = []
    command: click.Command = group
    for word in argv:
        if not isinstance(command, click.Group) or word not in command.commands:
            break
        command = command.commands[word]
        words.append(word)
    return tuple(words)


def unexercised_routes(routes: Iterable[HttpRoute], called: Iterable[tuple[str, str]]) -> list[str]:
    called = list(called)
    return [str(r) for r in routes if not any(r.matches(method, path) for method, path in called)]
