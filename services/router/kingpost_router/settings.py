"""The router's settings: `KINGPOST_*` variables over the TOML file `kingpost router --config FILE`."""

from __future__ import annotations

import socket
from typing import Literal

from pydantic import Field, field_validator, model_validator

from kingpost.autoscaling_settings import DEFAULT_COLD_START_TIMEOUT_SECONDS
from kingpost.wire_limits import MAX_MESSAGE_BYTES
from kingpost.settings import ServiceSettings

# Room for the rest of the PredictRequest around the body (ids, content type, framing).
_ENVELOPE_BYTES = 64 * 1024


def default_router_id() -> str:
    return f"router-{socket.gethostname()}"


class RouterSettings(ServiceSettings):
    # The scheduler's SchedulerService, which streams the route table.
    scheduler_address: str = "127.0.0.1:50052"
    # Names this router's concurrency samples (kp.metrics.concurrency.<router_id>).
    router_id: str = Field(default_factory=default_router_id, min_length=1)
    # Deadline of one call to a runner, streaming included.
    request_timeout_seconds: float = Field(600.0, gt=0)
    # Requests that wait for a free replica slot, per deployment; beyond it 429. Queue time counts
    # toward request_timeout_seconds.
    max_queue_per_deployment: int = Field(1000, ge=0)
    # How long requests to an active deployment with no ready replica (scaled to zero, waking up)
    # wait for one before they answer 503, for a route that sets none (the scheduler sets each
    # deployment's own, whose default is this one).
    cold_start_timeout_seconds: float = Field(float(DEFAULT_COLD_START_TIMEOUT_SECONDS), gt=0)
    # Larger bodies answer 413.
    max_body_bytes: int = Field(100 * 1024 * 1024, gt=0)
    # With tracing on (OTEL_EXPORTER_OTLP_ENDPOINT): the share of requests without a caller's
    # traceparent that the router traces; a caller's traceparent decides for its own request. A
    # traced request costs the router ~100 µs of CPU, a tenth of a no-op request (BENCHMARKS.md).
    trace_root_ratio: float = Field(0.01, ge=0.0, le=1.0)

    # Envoy's admin address ("host:port"), when Envoy sends predict requests straight to replicas
    # (issue 20): the router reads its stats every second for the autoscaler's concurrency samples and
    # its own /metrics (envoy_poll.py). Empty: off.
    envoy_admin_address: str = ""
    # "envoy": Envoy sends predict and sync straight to the replicas that serve HTTP, and this
    # router is its control plane: on every route table it writes Envoy's routes and clusters to
    # envoy_xds_dir (xds_files.py), and it serves what Envoy sends it (deployments at zero, Triton,
    # the key check). "router": every request crosses this router, as before.
    data_path: Literal["router", "envoy"] = "router"
    # The folder Envoy watches (kingpost.gateway_direct writes its first files there).
    envoy_xds_dir: str = ""

    # `{prefix}/websocket`: the HTTP/1.1 listener Envoy sends WebSocket upgrades to (ws_server.py);
    # port 0 picks a free one.
    websocket_host: str = "127.0.0.1"
    websocket_port: int = Field(0, ge=0, le=65535)

    # -- async inference (async_predict) --
    # Secrets that sign webhooks besides those managed with `kingpost webhook-secrets` (which come
    # first): X-BASETEN-SIGNATURE has one v1= per secret. None at all: webhooks go unsigned.
    webhook_secrets: list[str] = Field(default_factory=list)
    # Webhooks to loopback, private and link-local addresses (the platform's own network): refused
    # unless this is true.
    allow_internal_webhooks: bool = False
    # Larger async_predict bodies answer 413 (Baseten's limit).
    async_max_body_bytes: int = Field(256 * 1024, gt=0)
    # Queued plus in-progress async requests per deployment; beyond it 429. 0: no limit.
    async_max_outstanding_per_deployment: int = Field(100_000, ge=0)
    # Model calls this router runs at once per deployment's async queue, at most.
    async_max_concurrency_per_deployment: int = Field(64, gt=0)
    # A worker that dies holding a job: another gets it after this long.
    async_ack_wait_seconds: float = Field(30.0, ge=1)
    # `store_result` keeps outputs up to this size (larger ones go to the webhook only).
    async_max_stored_result_bytes: int = Field(1024 * 1024, ge=0)

    @field_validator("webhook_secrets")
    @classmethod
    def _secrets_look_like_secrets(cls, value: list[str]) -> list[str]:
        for secret in value:
            if not secret.startswith("whsec_") or len(secret) < 20:
                raise ValueError("each webhook secret must start with 'whsec_' and be at least 20 characters")
        return value

    @field_validator("envoy_admin_address")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if value and (not host or not port.isdigit() or not 0 < int(port) < 65536):
            raise ValueError(f"{value!r} is not 'host:port' (Envoy's admin address), or empty for off")
        return value

    @model_validator(mode="after")
    def _envoy_has_a_folder(self) -> RouterSettings:
        if self.data_path == "envoy" and not self.envoy_xds_dir:
            raise ValueError("data_path 'envoy' needs envoy_xds_dir: the folder Envoy reads its routes from")
        return self

    @field_validator("max_body_bytes")
    @classmethod
    def _fits_a_message(cls, value: int) -> int:
        limit = MAX_MESSAGE_BYTES - _ENVELOPE_BYTES
        if value > limit:
            raise ValueError(f"must be at most {limit} (the gRPC message limit less the envelope)")
        return value
