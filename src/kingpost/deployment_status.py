"""A deployment's status: the one vocabulary of every service and the CLI.

The list is the proto enum `kingpost.v1.DeploymentStatus` (the route table carries it). Everywhere
else — the management API (Baseten's `"status": "ACTIVE"`), the database, logs, metrics labels, the
CLI — a status is its name without the enum's prefix, and `name` / `value` are the one conversion:

    name(DeploymentStatus.DEPLOYMENT_STATUS_SCALED_TO_ZERO) == "SCALED_TO_ZERO"
    value("SCALED_TO_ZERO") == DeploymentStatus.DEPLOYMENT_STATUS_SCALED_TO_ZERO

Use the constants below instead of spelling a status.
"""

from __future__ import annotations

from kingpost.v1.scheduler_pb2 import DeploymentStatus

PREFIX = "DEPLOYMENT_STATUS_"


def name(status: DeploymentStatus.ValueType) -> str:
    """The status as the API shows it; "" for UNSPECIFIED (a table that carries none)."""
    if status == DeploymentStatus.DEPLOYMENT_STATUS_UNSPECIFIED:
        return ""
    return DeploymentStatus.Name(status).removeprefix(PREFIX)


def value(status_name: str) -> DeploymentStatus.ValueType:
    """The enum value of a status name; ValueError naming it and the known ones when unknown."""
    if status_name not in ALL:
        raise ValueError(f"deployment status {status_name!r} is not one of {', '.join(ALL)}")
    return DeploymentStatus.Value(PREFIX + status_name)


BUILDING = name(DeploymentStatus.DEPLOYMENT_STATUS_BUILDING)
DEPLOYING = name(DeploymentStatus.DEPLOYMENT_STATUS_DEPLOYING)
ACTIVE = name(DeploymentStatus.DEPLOYMENT_STATUS_ACTIVE)
SCALED_TO_ZERO = name(DeploymentStatus.DEPLOYMENT_STATUS_SCALED_TO_ZERO)
WAKING_UP = name(DeploymentStatus.DEPLOYMENT_STATUS_WAKING_UP)
INACTIVE = name(DeploymentStatus.DEPLOYMENT_STATUS_INACTIVE)
FAILED = name(DeploymentStatus.DEPLOYMENT_STATUS_FAILED)
UNHEALTHY = name(DeploymentStatus.DEPLOYMENT_STATUS_UNHEALTHY)

# Every status, in the enum's order.
ALL = tuple(name(v) for v in DeploymentStatus.values() if v != DeploymentStatus.DEPLOYMENT_STATUS_UNSPECIFIED)
