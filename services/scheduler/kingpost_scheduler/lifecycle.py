"""A deployment's life: names, the push that creates it, its status, how many replicas it wants.

    push ─▶ BUILDING ─(build SUCCEEDED)─▶ DEPLOYING ─(a replica READY)─▶ ACTIVE ◀─▶ UNHEALTHY
               │                              │                               (every replica
               └─(build FAILED)─▶ FAILED ◀─(replica FAILED before any served)   crash-loops)

Only a build that fails or a model that does not load at its first start fails a deployment
(FAILED; `activate` tries the same build again, a new push is the usual fix). Once it has served,
crashes heal (healing.py): the deployment stays ACTIVE while any replica serves or restarts at
once, and is UNHEALTHY only while every replica crash-loops. A push without `publish` replaces the
development deployment (the previous one is deleted and its replicas stopped); published
deployments are named `deployment-N`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kingpost.deployment_status import (  # noqa: F401  (the statuses, re-exported for the scheduler)
    ACTIVE,
    BUILDING,
    DEPLOYING,
    FAILED,
    INACTIVE,
    SCALED_TO_ZERO,
    UNHEALTHY,
    WAKING_UP,
)
from kingpost.errors import Conflict, InvalidArgument
from kingpost_scheduler import healing
from kingpost_scheduler.facts import Replica

BUILD_BUILDING = "BUILDING"
BUILD_SUCCEEDED = "SUCCEEDED"
BUILD_FAILED = "FAILED"

DEVELOPMENT = "development"
PRODUCTION = "production"

NAME_RULE = "1 to 64 characters: letters, digits, '_', '.', '-', starting with a letter or digit"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")
_PUBLISHED = re.compile(r"^deployment-(\d+)$")


def validate_name(kind: str, name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidArgument(f"{kind} {name!r} is not valid: {NAME_RULE}")
    return name


MODEL_NAME_RULE = "1 to 100 printable characters, no '/', not starting or ending with a space"
# Baseten's model names are display names ("Stable Diffusion XL"), and truss's own examples use
# spaces, so a Truss must deploy with its name unchanged; '/' would break addressing by name.
_MODEL_NAME = re.compile(r"^[^\s/\x00-\x1f\x7f](?:[^/\x00-\x1f\x7f]{0,98}[^\s/\x00-\x1f\x7f])?$")


def validate_model_name(name: str) -> str:
    if not _MODEL_NAME.match(name or ""):
        raise InvalidArgument(f"model name {name!r} is not valid: {MODEL_NAME_RULE}")
    return name


@dataclass(frozen=True)
class DeploymentFacts:
    id: str
    name: str
    status: str
    status_reason: str = ""
    artifact_digest: str = ""
    active: bool = True
    deleted: bool = False
    is_development: bool = False
    min_replica: int = 0
    max_replica: int = 1
    desired_replicas: int = 1
    # The environment it serves as current deployment, "" for none.
    environment: str = ""
    # A replica of it has been READY: a load failure no longer fails it (healing.py).
    has_served: bool = False


@dataclass(frozen=True)
class Status:
    status: str
    reason: str = ""


def retry_refusal(d: DeploymentFacts) -> str:
    """Why a deployment cannot be retried (Baseten's `retry`), "" when it can: a FAILED one whose build
    succeeded starts replicas again (the model failed to load, say for a secret set since)."""
    if d.status != FAILED:
        return f"deployment {d.id} is {d.status}, not FAILED: there is nothing to retry"
    if not d.artifact_digest:
        return f"deployment {d.id}'s build failed: push a fixed Truss"
    return ""


def deployment_status(d: DeploymentFacts, replicas: Iterable[Replica], *, waiting: str = "") -> Status:
    """The status a deployment shows, from what is stored about it and its replicas. `waiting`: why
    a replica it wants fits on no node (placement.why_not), shown as its reason while it serves
    nothing (ACTIVE with fewer replicas than wanted says so too)."""
    status = _status(d, replicas)
    if waiting and status.status in (ACTIVE, DEPLOYING, WAKING_UP):
        return Status(status.status, f"waiting for a node: {waiting}")
    return status


def _status(d: DeploymentFacts, replicas: Iterable[Replica]) -> Status:
    if d.status == FAILED:
        return Status(FAILED, d.status_reason)
    if not d.artifact_digest:
        return Status(BUILDING)
    if not d.active:
        return Status(INACTIVE)
    replicas = list(replicas)
    if any(healing.serves(r) for r in replicas):
        return Status(ACTIVE)
    looping = healing.all_crash_looping(replicas, d.has_served)
    if looping:
        return Status(UNHEALTHY, healing.unhealthy_reason(looping))
    # Scale to zero (the autoscaler's ScaleDeployment 0 at min_replica 0), and the way back.
    if desired_replicas(d) == 0:
        return Status(SCALED_TO_ZERO)
    if d.status in (SCALED_TO_ZERO, WAKING_UP):
        return Status(WAKING_UP)
    return Status(DEPLOYING)


# Why a deployment in each status serves no request, as callers read it after "status: X: ".
_NOT_SERVING = {
    BUILDING: "its build has not finished",
    DEPLOYING: "its first replica is starting",
    SCALED_TO_ZERO: "no replica runs; the next request wakes it",
    WAKING_UP: "a replica is starting",
    INACTIVE: "deactivated; `kingpost deployments activate` brings it back",
    FAILED: "push a fixed Truss",
    UNHEALTHY: "every replica is crash-looping",
}


def not_serving_reason(status: str, failure: str = "") -> str:
    """Why a deployment in `status` is not serving, in a caller's words; "" while it serves.
    `failure`: the stored reason: a FAILED deployment's (the build's or the model's error), an
    UNHEALTHY one's (its replicas' crash loop), or why a replica it wants fits on no node."""
    if failure and status in (FAILED, UNHEALTHY, DEPLOYING, WAKING_UP, ACTIVE):
        return failure
    return _NOT_SERVING.get(status, "")


@dataclass(frozen=True)
class BuildOutcome:
    status: str
    reason: str
    artifact_digest: str


def after_build(d: DeploymentFacts, state: str, artifact_digest: str, message: str) -> BuildOutcome:
    """What a build's state means for a deployment waiting on it (idempotent: repeats change nothing)."""
    if d.status == FAILED or d.artifact_digest:
        return BuildOutcome(d.status, d.status_reason, d.artifact_digest)
    if state == BUILD_SUCCEEDED and artifact_digest:
        return BuildOutcome(DEPLOYING, "", artifact_digest)
    if state == BUILD_FAILED:
        return BuildOutcome(FAILED, f"build failed: {message}" if message else "build failed", "")
    return BuildOutcome(BUILDING, "", "")


def has_served(d: DeploymentFacts, status: str) -> bool:
    """Whether it has served, once its status is `status` (it never forgets)."""
    return d.has_served or status == ACTIVE


def activated(d: DeploymentFacts) -> Status:
    """The status `activate` gives: a FAILED deployment whose build succeeded tries its model again
    (DEPLOYING, as new: a load failure at its first start fails it again); others keep theirs."""
    if d.status == FAILED and d.artifact_digest:
        return Status(DEPLOYING)
    return Status(d.status, d.status_reason)


def desired_replicas(d: DeploymentFacts) -> int:
    """Replicas a deployment wants now: the autoscaler's count within [min_replica, max_replica]
    (0 is scale to zero, at min_replica 0); a development deployment stays within 0..1."""
    if d.deleted or not d.active or d.status == FAILED or not d.artifact_digest:
        return 0
    if d.is_development:
        return clamp_scale(d.desired_replicas, 0, 1)
    return clamp_scale(d.desired_replicas, d.min_replica, d.max_replica)


def clamp_scale(requested: int, min_replica: int, max_replica: int) -> int:
    return max(min_replica, 0, min(requested, max(max_replica, min_replica)))


def scale_to(d: DeploymentFacts, requested: int) -> int:
    """The count the autoscaler's request sets: within [min_replica, max_replica]; a development
    deployment within 0..1 (Baseten's fixed development constraints)."""
    if d.is_development:
        return clamp_scale(requested, 0, 1)
    return clamp_scale(requested, d.min_replica, d.max_replica)


def idle_deactivates(d: DeploymentFacts) -> bool:
    """An idle deployment is deactivated only once it is scaled to zero (the autoscaler's call)."""
    return d.active and d.status == SCALED_TO_ZERO


def next_deployment_name(existing: Iterable[str]) -> str:
    """`deployment-N`, one more than the highest N so far (a deleted number is never reused)."""
    highest = 0
    for name in existing:
        m = _PUBLISHED.match(name)
        if m:
            highest = max(highest, int(m.group(1)))
    return f"deployment-{highest + 1}"


def check_rename(d: DeploymentFacts, name: str, taken: Iterable[str]) -> str:
    """A published deployment's new name (cosmetic: ids, and so API paths, never change)."""
    if d.is_development:
        raise Conflict("the development deployment cannot be renamed: publish it (promote it) instead")
    validate_name("deployment name", name)
    if name in (DEVELOPMENT, PRODUCTION) or name in set(taken):
        raise Conflict(f"deployment name {name!r} is taken for this model")
    return name


@dataclass(frozen=True)
class PushPlan:
    name: str
    is_development: bool
    environment: str
    # Deployments the push replaces: delete them and stop their replicas.
    replaces: tuple[str, ...]


def plan_push(
    existing: Sequence[DeploymentFacts], *, publish: bool, environment: str, deployment_name: str
) -> PushPlan:
    """`existing`: the model's deployments, deleted ones included (their names stay taken)."""
    if environment:
        validate_name("environment name", environment)
        publish = True
    if not publish:
        if deployment_name and deployment_name != DEVELOPMENT:
            raise InvalidArgument(
                "a deployment name needs publish: the development deployment is 'development'")
        replaces = tuple(d.id for d in existing if d.is_development and not d.deleted)
        return PushPlan(DEVELOPMENT, True, "", replaces)
    if deployment_name:
        validate_name("deployment name", deployment_name)
        if deployment_name == DEVELOPMENT or any(d.name == deployment_name for d in existing):
            raise Conflict(f"deployment name {deployment_name!r} is taken for this model")
        name = deployment_name
    else:
        name = next_deployment_name(d.name for d in existing)
    return PushPlan(name, False, environment, ())
