"""The autoscaler's settings: where the scheduler is, how often to decide, and Baseten's defaults."""

from __future__ import annotations

from pydantic import Field

from kingpost.autoscaling_settings import DEFAULTS, NO_CAP, AutoscalingSettings, validate
from kingpost.settings import ServiceSettings


class AutoscalerSettings(ServiceSettings):
    # SchedulerService, for ScaleDeployment.
    scheduler_address: str = "127.0.0.1:50053"
    tick_seconds: float = Field(2.0, gt=0)
    # Also decide each deployment when a router's sample arrives (steps up only; at most every 0.5 s).
    decide_on_samples: bool = True
    # A deployment scaled to zero with no traffic for this long is deactivated (Baseten: 14); 0 = never.
    idle_deactivation_days: float = Field(14.0, ge=0)
    # Used for a deployment until the route table describes it (its own settings); ranges as in
    # kingpost.autoscaling_settings.
    default_min_replica: int = Field(DEFAULTS.min_replica, ge=0)
    default_max_replica: int = Field(DEFAULTS.max_replica, ge=1)
    default_concurrency_target: int = Field(DEFAULTS.concurrency_target, ge=1)
    default_target_utilization_percentage: int = Field(DEFAULTS.target_utilization_percentage, ge=1, le=100)
    default_autoscaling_window: int = Field(DEFAULTS.autoscaling_window, ge=10, le=3600)
    default_scale_down_delay: int = Field(DEFAULTS.scale_down_delay, ge=0, le=3600)

    def autoscaling_defaults(self) -> AutoscalingSettings:
        """The defaults as settings; InvalidArgument naming the field when they contradict each other."""
        return validate(AutoscalingSettings(
            min_replica=self.default_min_replica, max_replica=self.default_max_replica,
            concurrency_target=self.default_concurrency_target,
            target_utilization_percentage=self.default_target_utilization_percentage,
            autoscaling_window=self.default_autoscaling_window,
            scale_down_delay=self.default_scale_down_delay,
        ), max_replica_cap=NO_CAP)
