"""The autoscaler's settings: where the scheduler is, how often to decide, and Baseten's defaults."""

from __future__ import annotations

from pydantic import Field

from kingpost.errors import InvalidArgument
from kingpost.settings import ServiceSettings

from kingpost_autoscaler.decision import AutoscalingSettings


class AutoscalerSettings(ServiceSettings):
    # SchedulerService, for ScaleDeployment.
    scheduler_address: str = "127.0.0.1:50053"
    tick_seconds: float = Field(2.0, gt=0)
    # Also decide each deployment when a router's sample arrives (steps up only; at most every 0.5 s).
    decide_on_samples: bool = True
    # A deployment scaled to zero with no traffic for this long is deactivated (Baseten: 14); 0 = never.
    idle_deactivation_days: float = Field(14.0, ge=0)
    # Used for every deployment until the scheduler shares each one's own settings.
    default_min_replica: int = Field(0, ge=0)
    default_max_replica: int = Field(1, ge=1)
    default_concurrency_target: int = Field(1, ge=1)
    default_target_utilization_percentage: int = Field(70, ge=1, le=100)
    default_autoscaling_window: float = Field(60.0, ge=10, le=3600)
    default_scale_down_delay: float = Field(900.0, ge=0, le=3600)

    def autoscaling_defaults(self) -> AutoscalingSettings:
        try:
            return AutoscalingSettings(
                min_replica=self.default_min_replica, max_replica=self.default_max_replica,
                concurrency_target=self.default_concurrency_target,
                target_utilization_percentage=self.default_target_utilization_percentage,
                autoscaling_window=self.default_autoscaling_window,
                scale_down_delay=self.default_scale_down_delay,
            )
        except ValueError as e:
            raise InvalidArgument(f"autoscaler defaults: {e}") from e
