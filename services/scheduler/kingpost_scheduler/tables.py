"""The scheduler's tables (its alone; migrations under migrations/versions build them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kingpost import autoscaling_settings


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps in UTC, aware on the way out on SQLite (which stores no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class ModelRecord(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A deleted model's row stays until its replicas are gone; its name is freed at once (0002).
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class DeploymentRecord(Base):
    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    is_development: Mapped[bool] = mapped_column(Boolean, default=False)
    environment: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(32))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    build_id: Mapped[str] = mapped_column(String(64), index=True)
    artifact_digest: Mapped[str] = mapped_column(String(128), default="")
    predict_concurrency: Mapped[int] = mapped_column(Integer, default=1)
    min_replica: Mapped[int] = mapped_column(Integer, default=0)
    max_replica: Mapped[int] = mapped_column(Integer, default=1)
    autoscaling_window: Mapped[int] = mapped_column(Integer, default=60)
    scale_down_delay: Mapped[int] = mapped_column(Integer, default=900)
    concurrency_target: Mapped[int] = mapped_column(Integer, default=1)
    target_utilization_percentage: Mapped[int] = mapped_column(Integer, default=70)
    # kingpost's extensions of the autoscaling settings (0004).
    backpressure_policy: Mapped[str] = mapped_column(String(16), default=autoscaling_settings.QUEUE)
    cold_start_timeout_seconds: Mapped[int] = mapped_column(
        Integer, default=autoscaling_settings.DEFAULT_COLD_START_TIMEOUT_SECONDS)
    # Request logging, also extensions of the autoscaling settings (0010).
    request_logging_sample_rate: Mapped[float] = mapped_column(Float, default=0.0)
    request_logging_max_bytes: Mapped[int] = mapped_column(
        Integer, default=autoscaling_settings.DEFAULT_REQUEST_LOGGING_MAX_BYTES)
    desired_replicas: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When it left an environment to a promotion: it drains, then scales to zero (0002).
    demoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, default=None)
    # What each replica needs of its node (0005): the Truss's resources, from the build.
    cpu_millis: Mapped[int] = mapped_column(Integer, default=1000)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=2 * 2**30)
    accelerator: Mapped[str] = mapped_column(String(32), default="")  # "H100:2", "" for none
    # A replica of it has been READY: a load failure no longer fails it (0009).
    has_served: Mapped[bool] = mapped_column(Boolean, default=False)


class ReplicaRecord(Base):
    __tablename__ = "replicas"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(255), default="")
    # Its runner's HTTP data plane, which Envoy calls straight ("" when it serves none) (0011).
    http_address: Mapped[str] = mapped_column(String(255), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The indices of its node's GPUs it holds (0005).
    gpus: Mapped[list[int]] = mapped_column(JSON, default=list)
    # How often its node restarted its runner, and whether it holds the next start back (0009).
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    crash_looping: Mapped[bool] = mapped_column(Boolean, default=False)


class NodeRecord(Base):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(255))
    cpu_count: Mapped[int] = mapped_column(Integer, default=0)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    gpus: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    # 0005: what its agent calls it (unique among live nodes), its labels, whether it is draining,
    # and when it joined with a token (None: it only heartbeats, as `kingpost up`'s own agent).
    name: Mapped[str] = mapped_column(String(128), default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    draining: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, default=None)
    # The digest of the secret it joins again with (JoinNodeResponse.node_secret), "" for none.
    secret_sha256: Mapped[str] = mapped_column(String(64), default="")


class EnvironmentRecord(Base):
    __tablename__ = "environments"

    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The current deployment; None until one is promoted into it (0002: nullable).
    deployment_id: Mapped[str | None] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"),
                                                      nullable=True)
    # The candidate of the promotion in progress, "" for none (0002).
    candidate_deployment_id: Mapped[str] = mapped_column(String(32), default="")
    promotion_failure: Mapped[str] = mapped_column(Text, default="")
    # Autoscaling settings given to each deployment promoted here (0002).
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=dict)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, default=None)
    # The promotion in progress as a canary (0003): its window (0: a plain promotion), when the
    # candidate became eligible (None: waiting for ready replicas), and the stage it has reached.
    canary_duration_seconds: Mapped[int] = mapped_column(Integer, default=0)
    canary_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, default=None)
    canary_stage: Mapped[int] = mapped_column(Integer, default=0)


class ApiKeyRecord(Base):
    __tablename__ = "api_keys"

    prefix: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # Baseten's key type: WORKSPACE_MANAGE_ALL, or WORKSPACE_INVOKE (only `model_ids`, or every model).
    type: Mapped[str] = mapped_column(String(32), default="WORKSPACE_MANAGE_ALL")
    model_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class SecretRecord(Base):
    """A secret: its value only as Fernet ciphertext (the key is the operator's, not in the database)."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JoinTokenRecord(Base):
    """A token an agent joins the cluster with (`kingpost nodes token`), stored as its digest (0005)."""

    __tablename__ = "join_tokens"

    prefix: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
class ChainRecord(Base):
    """A Chain: its Chainlets are models; the entrypoint's model (named like the chain) serves run_remote."""

    __tablename__ = "chains"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    entrypoint_model_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChainDeploymentRecord(Base):
    """One version of a Chain: its id is its entrypoint's deployment id; `chainlets` lists every
    Chainlet's {name, model_id, deployment_id, is_entrypoint}."""

    __tablename__ = "chain_deployments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    chain_id: Mapped[str] = mapped_column(ForeignKey("chains.id", ondelete="CASCADE"), index=True)
    is_development: Mapped[bool] = mapped_column(Boolean, default=False)
    chainlets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookSecretRecord(Base):
    __tablename__ = "webhook_secrets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
