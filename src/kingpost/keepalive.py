"""gRPC keepalive: one policy for both ends of every kingpost connection, and for Envoy's.

A client pings every `seconds` while it has calls open, also while a long call sends nothing (a
300-second prediction, an idle route watch); a ping unanswered within `TIMEOUT_SECONDS` closes
the connection, so a vanished peer fails its calls instead of holding them until their deadline.
Servers ping their clients at the same interval, and accept pings as often as every
`MIN_SECONDS / 2`, whatever interval they use themselves: gRPC's default server policy (pings
at most every 5 minutes, GOAWAY "too_many_pings" after the third early one) cut every call that
stayed quiet for a few client pings, which is how 240-second predictions got 502 and route watches
dropped every few minutes. So a process configured with any interval of at least `MIN_SECONDS`
talks to any other, and the interval is each process's own (`grpc_keepalive_seconds` in a
service's settings, `KINGPOST_GRPC_KEEPALIVE_SECONDS` for a runner).

Plain data, no grpc import: the runner, the services and Envoy's config all read it.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_SECONDS = 30.0
MIN_SECONDS = 1.0
TIMEOUT_SECONDS = 20.0
ENV_VAR = "KINGPOST_GRPC_KEEPALIVE_SECONDS"

Options = tuple[tuple[str, int], ...]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _checked(seconds: float) -> float:
    if not seconds >= MIN_SECONDS:  # also refuses NaN
        raise ValueError(f"the gRPC keepalive interval must be at least {MIN_SECONDS:g} s, not {seconds!r}")
    return seconds


def channel_options(seconds: float = DEFAULT_SECONDS) -> Options:
    """A client's side: ping every `seconds` while calls are open, quiet ones included."""
    return (
        ("grpc.keepalive_time_ms", _ms(_checked(seconds))),
        ("grpc.keepalive_timeout_ms", _ms(min(TIMEOUT_SECONDS, seconds))),
        # gRPC's default stops after two pings without data: a quiet call would go unwatched.
        ("grpc.http2.max_pings_without_data", 0),
    )


def server_options(seconds: float = DEFAULT_SECONDS) -> Options:
    """A server's side: ping clients every `seconds`; accept any client's pings (see the module doc)."""
    return (
        ("grpc.keepalive_time_ms", _ms(_checked(seconds))),
        ("grpc.keepalive_timeout_ms", _ms(min(TIMEOUT_SECONDS, seconds))),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(MIN_SECONDS / 2)),
        # Envoy pings its upstreams also between calls.
        ("grpc.keepalive_permit_without_calls", 1),
    )


def seconds_from_env(environ: Mapping[str, str]) -> float:
    """The interval from `KINGPOST_GRPC_KEEPALIVE_SECONDS` (for processes without a settings file)."""
    raw = environ.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_SECONDS
    try:
        return _checked(float(raw))
    except ValueError:
        raise ValueError(f"{ENV_VAR}={raw!r}: must be a number of seconds, at least {MIN_SECONDS:g}"
                         ) from None
