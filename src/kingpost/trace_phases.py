"""How a runner tells the router what its phases of one request took, for the router's spans.

The model's environment holds no OpenTelemetry, so the runner makes no spans itself: for a traced
request (one that carries a `traceparent`) it sends its phases back in one trailing metadata entry,
wall-clock nanoseconds, and the router makes them child spans of its runner call:

    x-kingpost-phases: load=1733580000000000000,1733580002500000000;predict=1733580003000000000,1733580003000400000

Phases: `load` (the replica's `load()`, sent always: the router shows it only under a request that
waited for that cold start), `preprocess`, `predict` (to the last chunk, for a stream), `postprocess`.
"""

from __future__ import annotations

PHASES_KEY = "x-kingpost-phases"
NAMES = ("load", "preprocess", "predict", "postprocess")

Phase = tuple[str, int, int]


def encode(phases: list[Phase]) -> str:
    return ";".join(f"{name}={start},{end}" for name, start, end in phases)


def decode(value: str) -> list[Phase]:
    """The phases in `value`; anything malformed is skipped (a span less, never an error)."""
    phases = []
    for part in value.split(";"):
        name, _, times = part.partition("=")
        start, _, end = times.partition(",")
        if name in NAMES and start.isdigit() and end.isdigit() and int(start) <= int(end):
            phases.append((name, int(start), int(end)))
    return phases
