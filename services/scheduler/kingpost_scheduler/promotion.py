"""Environments, promotion, and the deployment actions a user asks for: the rules, as data.

A deployment's actions (activate, deactivate, delete, promote) are allowed or refused by
TRANSITIONS, a table of the states each action may start from; `check` refuses an illegal one
with the reason and what to do instead. A deployment that serves an environment has a role that
limits it further: it cannot be deleted until another deployment replaces it there.

Promotion, Baseten's three steps:

    promote(env, dep) ─▶ candidate chosen (a new deployment when dep is the development one or
                         serves another environment; else dep itself), given env's autoscaling
                      ─▶ candidate ACTIVE (a READY replica) ─▶ env's current := candidate, in one
                         transaction, so one route table carries the swap
                      ─▶ the old one is demoted: it drains for DRAIN and then scales to zero

One promotion per environment at a time; a candidate that FAILS (or is deleted, deactivated)
ends the promotion with the reason, and the environment keeps its current deployment. `plan`
decides how a promotion begins (copy or reuse, canary or not, replicas wanted), `cancel` how it
ends early; each later step is `promotion_steps.step`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from kingpost.errors import Conflict
from kingpost_scheduler import deployment_defaults, lifecycle

# In-flight requests finish on the demoted deployment's open channels before its replicas stop.
DRAIN = timedelta(seconds=10)

DELETED = "DELETED"

ACTIVATE = "activate"
DEACTIVATE = "deactivate"
DELETE = "delete"
PROMOTE = "promote"

_LIVE = (lifecycle.BUILDING, lifecycle.DEPLOYING, lifecycle.ACTIVE, lifecycle.SCALED_TO_ZERO,
         lifecycle.WAKING_UP, lifecycle.UNHEALTHY)
# A FAILED deployment whose build failed: nothing to try again.
BUILD_FAILED = "FAILED (its build failed)"

# action → the states it may start from (anything else is refused with REFUSALS' advice).
TRANSITIONS: Mapping[str, frozenset[str]] = {
    # A FAILED deployment whose model did not load tries it again (lifecycle.activated).
    ACTIVATE: frozenset({lifecycle.INACTIVE, lifecycle.FAILED, *_LIVE}),
    DEACTIVATE: frozenset({lifecycle.INACTIVE, *_LIVE}),
    DELETE: frozenset({lifecycle.INACTIVE, lifecycle.FAILED, BUILD_FAILED, *_LIVE}),
    PROMOTE: frozenset(_LIVE),
}

# (action, state) → what to do instead.
REFUSALS: Mapping[tuple[str, str], str] = {
    (PROMOTE, lifecycle.INACTIVE): "activate it first",
    (PROMOTE, lifecycle.FAILED): "push a fixed Truss and promote the new deployment",
    (PROMOTE, BUILD_FAILED): "push a fixed Truss and promote the new deployment",
    (ACTIVATE, BUILD_FAILED): "push a fixed Truss: a build that failed has nothing to start",
    (DEACTIVATE, lifecycle.FAILED): "it has no compute to stop; delete it instead",
    (DEACTIVATE, BUILD_FAILED): "it has no compute to stop; delete it instead",
}


def state_of(d: lifecycle.DeploymentFacts) -> str:
    if d.deleted:
        return DELETED
    if d.status == lifecycle.FAILED:
        return lifecycle.FAILED if d.artifact_digest else BUILD_FAILED
    if not d.active:
        return lifecycle.INACTIVE
    return d.status


def check(action: str, d: lifecycle.DeploymentFacts, *, serves: str = "") -> None:
    """Refuse `action` on `d` unless TRANSITIONS allows it. `serves`: the environment whose
    current deployment `d` is ("" for none)."""
    state = state_of(d)
    if state == DELETED:
        raise Conflict(f"deployment {d.id} is deleted: nothing can be done with it")
    if state not in TRANSITIONS[action]:
        advice = REFUSALS.get((action, state), "")
        raise Conflict(f"cannot {action} deployment {d.id}: it is {state}" + (f"; {advice}" if advice else ""))
    if action == DELETE and serves:
        also = ", or delete the model" if serves == lifecycle.PRODUCTION else \
            f", or delete the environment {serves!r}"
        raise Conflict(f"deployment {d.id} is {serves}'s current deployment: promote another deployment "
                       f"to {serves} first{also}")


def validate_environment_name(name: str) -> str:
    return lifecycle.validate_name("environment name", name)


def check_create_environment(name: str, existing: set[str]) -> None:
    validate_environment_name(name)
    if name in existing or name == lifecycle.PRODUCTION:
        raise Conflict(f"environment {name!r} exists already for this model")


def check_delete_environment(name: str) -> None:
    if name == lifecycle.PRODUCTION:
        raise Conflict("the production environment cannot be deleted: promote another deployment to "
                       "production to replace its deployment, or delete the model")


@dataclass(frozen=True)
class EnvironmentFacts:
    name: str
    current: str = ""  # deployment id, "" for none yet
    candidate: str = ""  # a promotion in progress


def needs_copy(d: lifecycle.DeploymentFacts, env: str, serving: Mapping[str, str], redeploy: bool = False) -> bool:
    """Baseten makes a new deployment for a promotion when the one promoted is the development
    deployment (it stays development) or serves another environment, or always where the
    environment's `redeploy_on_promotion` is set (`redeploy`). `serving`: deployment id → the
    environment it is current in."""
    return redeploy or d.is_development or serving.get(d.id, env) != env


def start_promotion(env: EnvironmentFacts, d: lifecycle.DeploymentFacts) -> None:
    """Refuse a promotion that cannot start."""
    if env.candidate:
        raise Conflict(f"a promotion to {env.name} is in progress (deployment {env.candidate}): wait for it "
                       "to finish, or cancel it (kingpost environments cancel-promotion)")
    check(PROMOTE, d)
    if env.current == d.id:
        raise Conflict(f"deployment {d.id} is {env.name}'s current deployment already")


@dataclass(frozen=True)
class PromotionPlan:
    """How a promotion begins. Its candidate takes the environment's autoscaling settings."""

    # Promote a new deployment made from the one asked for (deployment_defaults.promoted_copy).
    copy: bool
    # Promoted in place: its replicas were loaded without the environment's name; replace them.
    restart_replicas: bool
    # The canary's window; 0: a plain promotion (asked so, or the environment serves nothing yet).
    canary_duration_seconds: int
    # The candidate's replicas: ready ones first, as many as a canary needs to start.
    desired_replicas: int


def plan(env: EnvironmentFacts, d: lifecycle.DeploymentFacts, serving: Mapping[str, str], *,
         min_replica: int, duration_seconds: int, current_min_replica: int | None,
         redeploy: bool = False) -> PromotionPlan:
    """Promote `d` into `env`. `serving`: deployment id → the environment it is current in;
    `min_replica`: the environment's setting; `duration_seconds`: the canary window asked for
    (canary.duration_for); `current_min_replica`: the environment's current deployment's minimum,
    None when it has none; `redeploy`: the environment's redeploy_on_promotion."""
    start_promotion(env, d)
    copy = needs_copy(d, env.name, serving, redeploy)
    canary_duration = duration_seconds if current_min_replica is not None else 0
    desired = deployment_defaults.about_to_serve(min_replica)
    if canary_duration and current_min_replica is not None:
        # A canary waits for the current deployment's minimum of ready replicas: start them.
        desired = max(desired, current_min_replica)
    return PromotionPlan(copy=copy, restart_replicas=not copy, canary_duration_seconds=canary_duration,
                         desired_replicas=desired)


def deploy_into(env: EnvironmentFacts, *, min_replica: int) -> PromotionPlan:
    """A push straight into an environment: a promotion of the new deployment, never a canary."""
    if env.candidate:
        raise Conflict(f"a promotion to {env.name} is in progress (deployment {env.candidate}): wait for it "
                       "to finish")
    return PromotionPlan(copy=False, restart_replicas=False, canary_duration_seconds=0,
                         desired_replicas=deployment_defaults.about_to_serve(min_replica))


CANCELLED = "the promotion was cancelled"


def cancel(env: EnvironmentFacts, candidate: lifecycle.DeploymentFacts | None) -> bool:
    """End `env`'s promotion in progress (all traffic back to its current deployment); refused when
    there is none. True when the candidate must be demoted: it finishes its in-flight requests (the
    drain), then scales to zero; not when it serves (as this or another environment's current)."""
    if not env.candidate:
        raise Conflict(f"no promotion to {env.name} is in progress")
    return candidate is not None and candidate.id != env.current and not candidate.environment


@dataclass(frozen=True)
class Step:
    """What a promotion does next: swap (candidate → current), abort (with the reason), or wait."""

    swap: bool = False
    abort: str = ""


def promotion_step(candidate: lifecycle.DeploymentFacts | None, status: str) -> Step:
    """`status`: the candidate's status as shown now."""
    if candidate is None or candidate.deleted:
        return Step(abort="the deployment being promoted was deleted")
    if not candidate.active:
        return Step(abort=f"deployment {candidate.id} was deactivated during its promotion")
    if status == lifecycle.FAILED:
        return Step(abort=f"deployment {candidate.id} failed: {candidate.status_reason}".rstrip(": "))
    if status == lifecycle.ACTIVE:
        return Step(swap=True)
    return Step()


def drained(demoted_at: datetime | None, now: datetime, drain: timedelta = DRAIN) -> bool:
    """A demoted deployment scales to zero once its in-flight requests have had `drain` to finish."""
    return demoted_at is not None and now - demoted_at >= drain
