"""A deployment's autoscaling settings: the fields, their defaults and ranges, validation, and how a
PATCH applies. The scheduler stores and validates them, the autoscaler decides with them, the router
honours the two kingpost extensions (through the route table), the CLI offers them.

    field                           default  range
    min_replica                     0        0 .. max_replica_cap (the cluster's cap, default 10)
    max_replica                     1        1 .. max_replica_cap
    autoscaling_window              60 s     10 .. 3600
    scale_down_delay                900 s    0 .. 3600
    concurrency_target              1        1 .. 1,000,000
    target_utilization_percentage   70       1 .. 100
  kingpost extensions, beside Baseten's fields:
    backpressure_policy             queue    queue: a request that finds every replica busy waits in the
                                             router's bounded queue (429 once it is full);
                                             reject: it gets 429 at once, for callers that retry elsewhere
    cold_start_timeout_seconds      300      1 .. 3600: how long a request waits for a first ready replica
                                             (from zero, or while the first one loads) before its 503
    request_logging_sample_rate     0        0 .. 1: the share of requests whose input and output the
                                             runner logs (0: none; kingpost_runner/request_log.py)
    request_logging_max_bytes       1024     1 .. 16384: each logged body is cut there

A development deployment keeps Baseten's defaults (its fixed constraints for live reload): a change
to one of Baseten's fields is refused; the extensions may change. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from kingpost.errors import InvalidArgument

QUEUE = "queue"
REJECT = "reject"
BACKPRESSURE_POLICIES = (QUEUE, REJECT)

DEFAULT_MAX_REPLICA_CAP = 10
# The largest count the API carries (int32): the cap for services that leave it to the scheduler.
NO_CAP = 2**31 - 1
CONCURRENCY_TARGET_MAX = 1_000_000
DEFAULT_COLD_START_TIMEOUT_SECONDS = 300
DEFAULT_REQUEST_LOGGING_MAX_BYTES = 1024
MAX_REQUEST_LOGGING_BYTES = 16384

ACCEPTED = "ACCEPTED"
UNCHANGED = "UNCHANGED"


@dataclass(frozen=True)
class AutoscalingSettings:
    min_replica: int = 0
    max_replica: int = 1
    autoscaling_window: int = 60
    scale_down_delay: int = 900
    concurrency_target: int = 1
    target_utilization_percentage: int = 70
    backpressure_policy: str = QUEUE
    cold_start_timeout_seconds: int = DEFAULT_COLD_START_TIMEOUT_SECONDS
    request_logging_sample_rate: float = 0.0
    request_logging_max_bytes: int = DEFAULT_REQUEST_LOGGING_MAX_BYTES


DEFAULTS = AutoscalingSettings()
FIELDS = tuple(f.name for f in fields(AutoscalingSettings))
EXTENSION_FIELDS = ("backpressure_policy", "cold_start_timeout_seconds", "request_logging_sample_rate",
                    "request_logging_max_bytes")
BASETEN_FIELDS = tuple(f for f in FIELDS if f not in EXTENSION_FIELDS)


def ranges(max_replica_cap: int = DEFAULT_MAX_REPLICA_CAP) -> dict[str, tuple[int, int]]:
    """Each numeric field's allowed range, both ends included."""
    return {
        "min_replica": (0, max_replica_cap),
        "max_replica": (1, max_replica_cap),
        "autoscaling_window": (10, 3600),
        "scale_down_delay": (0, 3600),
        "concurrency_target": (1, CONCURRENCY_TARGET_MAX),
        "target_utilization_percentage": (1, 100),
        "cold_start_timeout_seconds": (1, 3600),
        "request_logging_sample_rate": (0, 1),
        "request_logging_max_bytes": (1, MAX_REQUEST_LOGGING_BYTES),
    }


def validate(
    settings: AutoscalingSettings, max_replica_cap: int = DEFAULT_MAX_REPLICA_CAP
) -> AutoscalingSettings:
    """`settings` if every field is in its range; else InvalidArgument naming each field, value and range."""
    problems = []
    for field_name, (low, high) in ranges(max_replica_cap).items():
        value = getattr(settings, field_name)
        if not low <= value <= high:
            problems.append(f"{field_name} = {value}: must be {low} to {high}")
    if settings.backpressure_policy not in BACKPRESSURE_POLICIES:
        problems.append(f"backpressure_policy = {settings.backpressure_policy!r}: must be one of "
                        + " or ".join(repr(p) for p in BACKPRESSURE_POLICIES))
    if not problems and settings.min_replica > settings.max_replica:
        problems.append(f"min_replica = {settings.min_replica}: must not exceed max_replica = "
                        f"{settings.max_replica}")
    if problems:
        raise InvalidArgument("; ".join(problems))
    return settings


def updated(
    current: AutoscalingSettings, changes: Mapping[str, Any], max_replica_cap: int = DEFAULT_MAX_REPLICA_CAP
) -> AutoscalingSettings:
    """`current` with `changes` (the fields a PATCH set), validated."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidArgument(
            f"unknown autoscaling settings: {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    return validate(replace(current, **changes), max_replica_cap)


@dataclass(frozen=True)
class PatchResult:
    settings: AutoscalingSettings
    status: str  # ACCEPTED or UNCHANGED
    message: str


def apply_patch(
    current: AutoscalingSettings, changes: Mapping[str, Any], *, is_development: bool,
    max_replica_cap: int = DEFAULT_MAX_REPLICA_CAP,
) -> PatchResult:
    """A deployment's PATCH: UNCHANGED when it changes nothing; raises InvalidArgument naming the field."""
    new = updated(current, changes, max_replica_cap) if changes else current
    if new == current:
        return PatchResult(current, UNCHANGED, "autoscaling settings are unchanged")
    changed = [n for n in FIELDS if getattr(new, n) != getattr(current, n)]
    if is_development and any(n in BASETEN_FIELDS for n in changed):
        raise InvalidArgument(
            "a development deployment has fixed autoscaling settings (0-1 replicas, 60 s window, 900 s "
            "scale-down delay, concurrency target 1); publish or promote it to change them")
    described = ", ".join(f"{n} = {getattr(new, n)}" for n in changed)
    return PatchResult(new, ACCEPTED, f"autoscaling settings updated: {described}")


def as_dict(settings: AutoscalingSettings) -> dict[str, Any]:
    """Field name → value: for a JSON column or a proto's keyword arguments."""
    return {n: getattr(settings, n) for n in FIELDS}


def from_dict(stored: Mapping[str, Any] | None) -> AutoscalingSettings:
    """Settings from `as_dict`'s shape; missing fields take their default (rows written before a
    field existed), other keys are ignored."""
    given = {n: type(getattr(DEFAULTS, n))(stored[n]) for n in FIELDS if stored and n in stored}
    return replace(DEFAULTS, **given)
