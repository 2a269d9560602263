"""Each promotion in progress takes its next step, decided over plain facts; the reconcile pass
applies the decision in its transaction, so one route table carries a swap or a new canary stage.

    candidate deleted, deactivated or FAILED ─▶ abort (with the reason; the environment keeps its
                                                 current deployment)
    candidate not ACTIVE yet ─────────────────▶ wait
    candidate ACTIVE, a canary over another ──▶ canary.step: start once eligible, then one stage
      deployment                                 per tenth of the window; swap once it has passed
    candidate ACTIVE otherwise ───────────────▶ swap: the candidate becomes current, the previous
                                                 one is demoted (it drains, then scales to zero)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kingpost_scheduler import canary, lifecycle, promotion


@dataclass(frozen=True)
class InProgress:
    """An environment's promotion in progress, as stored."""

    model_id: str
    environment: str
    current: str  # its current deployment's id, "" for none
    candidate: str
    canary_duration_seconds: int = 0  # 0: a plain promotion
    canary_started_at: datetime | None = None
    canary_stage: int = 0


@dataclass(frozen=True)
class Decision:
    abort: str = ""  # end the promotion with this reason
    swap: bool = False  # the candidate becomes current (and the previous one, when another, is demoted)
    demote: str = ""  # with swap: the previous deployment's id, "" when there is none to demote
    canary_started_at: datetime | None = None  # the canary's start, when this step started it
    canary_stage: int | None = None  # the canary's new stage, when this step moved it

    @property
    def waits(self) -> bool:
        return not (self.abort or self.swap or self.canary_started_at or self.canary_stage is not None)


def step(p: InProgress, candidate: lifecycle.DeploymentFacts | None, candidate_status: str,
         previous: lifecycle.DeploymentFacts | None, candidate_ready: int, now: datetime) -> Decision:
    """`candidate_status`: the status the candidate shows now; `previous`: the environment's current
    deployment (None when it has none, or it was deleted); `candidate_ready`: its READY replicas."""
    s = promotion.promotion_step(candidate, candidate_status)
    if s.abort:
        return Decision(abort=s.abort)
    if not s.swap or candidate is None:
        return Decision()
    other = previous is not None and previous.id != candidate.id
    if p.canary_duration_seconds and previous is not None and other:
        c = canary.step(p.canary_duration_seconds, p.canary_started_at, p.canary_stage, candidate_ready,
                        previous.min_replica, now)
        if not c.done:
            return Decision(
                canary_started_at=c.started_at if c.started_at != p.canary_started_at else None,
                canary_stage=c.stage if c.stage != p.canary_stage else None)
    return Decision(swap=True, demote=previous.id if previous is not None and other else "")
