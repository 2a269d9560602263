"""A deployment's autoscaling settings: Baseten's fields, ranges and defaults, and how a PATCH applies.

    min_replica                     0      0 .. max_replica_cap
    max_replica                     1      1 .. max_replica_cap (the cluster's cap, default 10)
    autoscaling_window              60 s   10 .. 3600
    scale_down_delay                900 s  0 .. 3600
    concurrency_target              1      >= 1
    target_utilization_percentage   70     1 .. 100

Development deployments keep these defaults (Baseten's fixed constraints for live reload); a
change to one is refused. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from kingpost.errors import InvalidArgument

ACCEPTED = "ACCEPTED"
UNCHANGED = "UNCHANGED"
DEFAULT_MAX_REPLICA_CAP = 10
CONCURRENCY_TARGET_MAX = 1_000_000


@dataclass(frozen=True)
class Autoscaling:
    min_replica: int = 0
    max_replica: int = 1
    autoscaling_window: int = 60
    scale_down_delay: int = 900
    concurrency_target: int = 1
    target_utilization_percentage: int = 70


DEVELOPMENT = Autoscaling()
FIELDS = tuple(f.name for f in fields(Autoscaling))


def ranges(max_replica_cap: int) -> dict[str, tuple[int, int]]:
    return {
        "min_replica": (0, max_replica_cap),
        "max_replica": (1, max_replica_cap),
        "autoscaling_window": (10, 3600),
        "scale_down_delay": (0, 3600),
        "concurrency_target": (1, CONCURRENCY_TARGET_MAX),
        "target_utilization_percentage": (1, 100),
    }


def validate(settings: Autoscaling, max_replica_cap: int = DEFAULT_MAX_REPLICA_CAP) -> Autoscaling:
    """`settings` if every field is in Baseten's range; else InvalidArgument naming each field and range."""
    problems = []
    for name, (low, high) in ranges(max_replica_cap).items():
        value = getattr(settings, name)
        if not low <= value <= high:
            problems.append(f"{name} = {value}: must be {low} to {high}")
    if not problems and settings.min_replica > settings.max_replica:
        problems.append(f"min_replica = {settings.min_replica}: must not exceed max_replica = "
                        f"{settings.max_replica}")
    if problems:
        raise InvalidArgument("; ".join(problems))
    return settings


@dataclass(frozen=True)
class PatchResult:
    settings: Autoscaling
    status: str
    message: str


def apply_patch(
    current: Autoscaling, changes: Mapping[str, int], *, is_development: bool,
    max_replica_cap: int = DEFAULT_MAX_REPLICA_CAP,
) -> PatchResult:
    """`changes`: the fields the PATCH set. Raises InvalidArgument naming the field and its range."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidArgument(f"unknown autoscaling settings: {', '.join(unknown)}")
    new = replace(current, **changes)
    if new == current:
        return PatchResult(current, UNCHANGED, "autoscaling settings are unchanged")
    if is_development:
        raise InvalidArgument(
            "a development deployment has fixed autoscaling settings (0-1 replicas, 60 s window, 900 s "
            "scale-down delay, concurrency target 1); publish or promote it to change them")
    validate(new, max_replica_cap)
    changed = ", ".join(f"{n} = {getattr(new, n)}" for n in FIELDS if getattr(new, n) != getattr(current, n))
    return PatchResult(new, ACCEPTED, f"autoscaling settings updated: {changed}")


def desired_after_scale(requested: int, settings: Autoscaling) -> int:
    """The count a ScaleDeployment(requested) leaves: within [min_replica, max_replica] (0 allowed at min 0)."""
    return max(settings.min_replica, min(max(requested, 0), max(settings.max_replica, settings.min_replica)))
