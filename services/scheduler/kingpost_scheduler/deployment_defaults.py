"""What a new deployment starts with, in one place: its status, settings and replica counts.

A deployment is made two ways: by a push (`CreateDeployment`), and by a promotion that must copy
the deployment it promotes (the development one, or one that serves another environment). Both
start from Baseten's autoscaling defaults and one replica wanted; `predict_concurrency` is 1 until
the build says otherwise (the Truss's `runtime.predict_concurrency`, read when the build finishes).

A deployment that is about to serve (activated again, or a promotion's candidate) wants its minimum
of replicas, and at least one whatever its minimum: Baseten waits for a ready replica before it
swaps, even for a deployment scaled to zero until now.
"""

from __future__ import annotations

from dataclasses import dataclass

from kingpost.autoscaling_settings import DEFAULTS, AutoscalingSettings
from kingpost_scheduler import lifecycle

PREDICT_CONCURRENCY = 1
DESIRED_REPLICAS = 1


@dataclass(frozen=True)
class NewDeployment:
    name: str
    is_development: bool
    status: str
    build_id: str
    artifact_digest: str = ""
    predict_concurrency: int = PREDICT_CONCURRENCY
    autoscaling: AutoscalingSettings = DEFAULTS
    desired_replicas: int = DESIRED_REPLICAS


def pushed(plan: lifecycle.PushPlan, build_id: str) -> NewDeployment:
    """A pushed deployment: BUILDING until its build's outcome is applied (lifecycle.after_build)."""
    return NewDeployment(name=plan.name, is_development=plan.is_development, status=lifecycle.BUILDING,
                         build_id=build_id)


def promoted_copy(name: str, build_id: str, artifact_digest: str, predict_concurrency: int) -> NewDeployment:
    """The published copy a promotion makes: the same build, DEPLOYING at once when it is built."""
    return NewDeployment(
        name=name, is_development=False,
        status=lifecycle.DEPLOYING if artifact_digest else lifecycle.BUILDING,
        build_id=build_id, artifact_digest=artifact_digest, predict_concurrency=predict_concurrency)


def about_to_serve(min_replica: int) -> int:
    """The replicas a deployment wants when it is activated, or becomes a promotion's candidate."""
    return max(1, min_replica)
