"""ManagementService, the public API: one class of handlers per resource, assembled here."""

from __future__ import annotations

from collections.abc import Sequence

from kingpost import autoscaling_settings
from kingpost.bus import Bus
from kingpost.v1 import management_pb2_grpc
from kingpost_scheduler.clients import BuildLookup
from kingpost_scheduler.control import Control
from kingpost_scheduler.handlers.deployments import ModelsAndDeployments
from kingpost_scheduler.handlers.environments import EnvironmentsAndPromotions
from kingpost_scheduler.handlers.keys_and_logs import KeysAndLogs
from kingpost_scheduler.handlers.nodes import StatusAndDevelopment
from kingpost_scheduler.handlers.observability import Observability
from kingpost_scheduler.handlers.secrets import Secrets
from kingpost_scheduler.handlers.webhook_secrets import WebhookSecrets
from kingpost_scheduler.router_scrape import RouterMetrics
from kingpost_scheduler.secret_box import SecretBox


class ManagementServicer(ModelsAndDeployments, EnvironmentsAndPromotions, KeysAndLogs, StatusAndDevelopment,
                         Observability, WebhookSecrets, Secrets, management_pb2_grpc.ManagementServiceServicer):
    def __init__(self, control: Control, builds: BuildLookup, bus: Bus | None = None, *,
                 max_replica_cap: int = autoscaling_settings.DEFAULT_MAX_REPLICA_CAP,
                 metrics_targets: Sequence[str] = (), secret_box: SecretBox | None = None) -> None:
        self.control = control
        self.metrics_targets = tuple(metrics_targets)
        self.router_metrics = RouterMetrics(self.metrics_targets)
        self.builds = builds
        self.bus = bus
        self.max_replica_cap = max_replica_cap
        self.secret_box = secret_box or SecretBox(SecretBox.new_key())
