import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kingpost.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetMetricsTargetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetDeploymentMetricsRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id", "window_seconds")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    window_seconds: int
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., window_seconds: _Optional[int] = ...) -> None: ...

class GetDeploymentMetricsResponse(_message.Message):
    __slots__ = ("model_id", "deployment_id", "window_seconds", "observed_seconds", "requests", "errors", "request_rate", "latency_p50_seconds", "latency_p95_seconds", "latency_p99_seconds", "desired_replicas", "ready_replicas")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DESIRED_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    READY_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    window_seconds: int
    observed_seconds: float
    requests: int
    errors: int
    request_rate: float
    latency_p50_seconds: float
    latency_p95_seconds: float
    latency_p99_seconds: float
    desired_replicas: int
    ready_replicas: int
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., window_seconds: _Optional[int] = ..., observed_seconds: _Optional[float] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., request_rate: _Optional[float] = ..., latency_p50_seconds: _Optional[float] = ..., latency_p95_seconds: _Optional[float] = ..., latency_p99_seconds: _Optional[float] = ..., desired_replicas: _Optional[int] = ..., ready_replicas: _Optional[int] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "name", "created_at", "deployments_count", "production_deployment_id", "development_deployment_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_COUNT_FIELD_NUMBER: _ClassVar[int]
    PRODUCTION_DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DEVELOPMENT_DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    created_at: _timestamp_pb2.Timestamp
    deployments_count: int
    production_deployment_id: str
    development_deployment_id: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deployments_count: _Optional[int] = ..., production_deployment_id: _Optional[str] = ..., development_deployment_id: _Optional[str] = ...) -> None: ...

class AutoscalingSettings(_message.Message):
    __slots__ = ("min_replica", "max_replica", "autoscaling_window", "scale_down_delay", "concurrency_target", "target_utilization_percentage", "backpressure_policy", "cold_start_timeout_seconds")
    MIN_REPLICA_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICA_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SCALE_DOWN_DELAY_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_UTILIZATION_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    BACKPRESSURE_POLICY_FIELD_NUMBER: _ClassVar[int]
    COLD_START_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    min_replica: int
    max_replica: int
    autoscaling_window: int
    scale_down_delay: int
    concurrency_target: int
    target_utilization_percentage: int
    backpressure_policy: str
    cold_start_timeout_seconds: int
    def __init__(self, min_replica: _Optional[int] = ..., max_replica: _Optional[int] = ..., autoscaling_window: _Optional[int] = ..., scale_down_delay: _Optional[int] = ..., concurrency_target: _Optional[int] = ..., target_utilization_percentage: _Optional[int] = ..., backpressure_policy: _Optional[str] = ..., cold_start_timeout_seconds: _Optional[int] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("id", "name", "model_id", "created_at", "is_production", "is_development", "status", "status_reason", "active_replica_count", "autoscaling_settings", "environment", "build_id", "predict_concurrency", "replicas", "resources")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    IS_PRODUCTION_FIELD_NUMBER: _ClassVar[int]
    IS_DEVELOPMENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_REPLICA_COUNT_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICT_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    model_id: str
    created_at: _timestamp_pb2.Timestamp
    is_production: bool
    is_development: bool
    status: str
    status_reason: str
    active_replica_count: int
    autoscaling_settings: AutoscalingSettings
    environment: str
    build_id: str
    predict_concurrency: int
    replicas: _containers.RepeatedCompositeFieldContainer[DeploymentReplica]
    resources: DeploymentResources
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., model_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., is_production: _Optional[bool] = ..., is_development: _Optional[bool] = ..., status: _Optional[str] = ..., status_reason: _Optional[str] = ..., active_replica_count: _Optional[int] = ..., autoscaling_settings: _Optional[_Union[AutoscalingSettings, _Mapping]] = ..., environment: _Optional[str] = ..., build_id: _Optional[str] = ..., predict_concurrency: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[DeploymentReplica, _Mapping]]] = ..., resources: _Optional[_Union[DeploymentResources, _Mapping]] = ...) -> None: ...

class DeploymentResources(_message.Message):
    __slots__ = ("cpu", "memory_bytes", "accelerator", "instance_type")
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    cpu: float
    memory_bytes: int
    accelerator: str
    instance_type: str
    def __init__(self, cpu: _Optional[float] = ..., memory_bytes: _Optional[int] = ..., accelerator: _Optional[str] = ..., instance_type: _Optional[str] = ...) -> None: ...

class DeploymentReplica(_message.Message):
    __slots__ = ("id", "node_id", "state", "restarts", "crash_looping", "last_exit")
    ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    CRASH_LOOPING_FIELD_NUMBER: _ClassVar[int]
    LAST_EXIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    node_id: str
    state: str
    restarts: int
    crash_looping: bool
    last_exit: str
    def __init__(self, id: _Optional[str] = ..., node_id: _Optional[str] = ..., state: _Optional[str] = ..., restarts: _Optional[int] = ..., crash_looping: _Optional[bool] = ..., last_exit: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class CreateDeploymentRequest(_message.Message):
    __slots__ = ("model_name", "build_id", "publish", "environment", "deployment_name")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    build_id: str
    publish: bool
    environment: str
    deployment_name: str
    def __init__(self, model_name: _Optional[str] = ..., build_id: _Optional[str] = ..., publish: _Optional[bool] = ..., environment: _Optional[str] = ..., deployment_name: _Optional[str] = ...) -> None: ...

class CreateDeploymentResponse(_message.Message):
    __slots__ = ("model", "deployment")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    model: Model
    deployment: Deployment
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ..., deployment: _Optional[_Union[Deployment, _Mapping]] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("deployments",)
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    def __init__(self, deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ...) -> None: ...

class GetDeploymentRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ...) -> None: ...

class GetDeploymentResponse(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ...) -> None: ...

class GetLogsRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id", "build_id", "build_only", "replica_only", "limit")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_ONLY_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ONLY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    build_id: str
    build_only: bool
    replica_only: bool
    limit: int
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., build_id: _Optional[str] = ..., build_only: _Optional[bool] = ..., replica_only: _Optional[bool] = ..., limit: _Optional[int] = ...) -> None: ...

class GetLogsResponse(_message.Message):
    __slots__ = ("lines",)
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[_events_pb2.LogLine]
    def __init__(self, lines: _Optional[_Iterable[_Union[_events_pb2.LogLine, _Mapping]]] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("prefix", "name", "created_at")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    name: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, prefix: _Optional[str] = ..., name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "key")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    key: str
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., key: _Optional[str] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys",)
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class RevokeApiKeyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WebhookSecret(_message.Message):
    __slots__ = ("id", "secret", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    secret: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., secret: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateWebhookSecretRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateWebhookSecretResponse(_message.Message):
    __slots__ = ("webhook_secret", "secret")
    WEBHOOK_SECRET_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    webhook_secret: WebhookSecret
    secret: str
    def __init__(self, webhook_secret: _Optional[_Union[WebhookSecret, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListWebhookSecretsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWebhookSecretsResponse(_message.Message):
    __slots__ = ("webhook_secrets",)
    WEBHOOK_SECRETS_FIELD_NUMBER: _ClassVar[int]
    webhook_secrets: _containers.RepeatedCompositeFieldContainer[WebhookSecret]
    def __init__(self, webhook_secrets: _Optional[_Iterable[_Union[WebhookSecret, _Mapping]]] = ...) -> None: ...

class DeleteWebhookSecretRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteWebhookSecretResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("nodes", "models", "active_deployments")
    NODES_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeStatus]
    models: int
    active_deployments: int
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeStatus, _Mapping]]] = ..., models: _Optional[int] = ..., active_deployments: _Optional[int] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("node_id", "address", "cpu_count", "memory_bytes", "gpus", "replica_ids", "last_seen")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_IDS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    address: str
    cpu_count: int
    memory_bytes: int
    gpus: _containers.RepeatedCompositeFieldContainer[_events_pb2.Gpu]
    replica_ids: _containers.RepeatedScalarFieldContainer[str]
    last_seen: _timestamp_pb2.Timestamp
    def __init__(self, node_id: _Optional[str] = ..., address: _Optional[str] = ..., cpu_count: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[_events_pb2.Gpu, _Mapping]]] = ..., replica_ids: _Optional[_Iterable[str]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ("success",)
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    def __init__(self, success: _Optional[bool] = ...) -> None: ...

class ActivateDeploymentRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ...) -> None: ...

class ActivateDeploymentResponse(_message.Message):
    __slots__ = ("success",)
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    def __init__(self, success: _Optional[bool] = ...) -> None: ...

class DeactivateDeploymentRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ...) -> None: ...

class DeactivateDeploymentResponse(_message.Message):
    __slots__ = ("success",)
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    def __init__(self, success: _Optional[bool] = ...) -> None: ...

class UpdateDeploymentRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id", "name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    name: str
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class UpdateDeploymentResponse(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ...) -> None: ...

class DeleteDeploymentRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ...) -> None: ...

class DeleteDeploymentResponse(_message.Message):
    __slots__ = ("success",)
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    def __init__(self, success: _Optional[bool] = ...) -> None: ...

class PromoteDeploymentRequest(_message.Message):
    __slots__ = ("model_id", "env_name", "deployment_id", "scale_down_previous_deployment", "scale_down_previous_production", "preserve_env_instance_type", "ramp_up_duration_seconds")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_NAME_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SCALE_DOWN_PREVIOUS_DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    SCALE_DOWN_PREVIOUS_PRODUCTION_FIELD_NUMBER: _ClassVar[int]
    PRESERVE_ENV_INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RAMP_UP_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    env_name: str
    deployment_id: str
    scale_down_previous_deployment: bool
    scale_down_previous_production: bool
    preserve_env_instance_type: bool
    ramp_up_duration_seconds: int
    def __init__(self, model_id: _Optional[str] = ..., env_name: _Optional[str] = ..., deployment_id: _Optional[str] = ..., scale_down_previous_deployment: _Optional[bool] = ..., scale_down_previous_production: _Optional[bool] = ..., preserve_env_instance_type: _Optional[bool] = ..., ramp_up_duration_seconds: _Optional[int] = ...) -> None: ...

class PromoteDeploymentResponse(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ...) -> None: ...

class EnvironmentAutoscalingPatch(_message.Message):
    __slots__ = ("min_replica", "max_replica", "autoscaling_window", "scale_down_delay", "concurrency_target", "target_utilization_percentage", "backpressure_policy", "cold_start_timeout_seconds")
    MIN_REPLICA_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICA_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SCALE_DOWN_DELAY_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_UTILIZATION_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    BACKPRESSURE_POLICY_FIELD_NUMBER: _ClassVar[int]
    COLD_START_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    min_replica: int
    max_replica: int
    autoscaling_window: int
    scale_down_delay: int
    concurrency_target: int
    target_utilization_percentage: int
    backpressure_policy: str
    cold_start_timeout_seconds: int
    def __init__(self, min_replica: _Optional[int] = ..., max_replica: _Optional[int] = ..., autoscaling_window: _Optional[int] = ..., scale_down_delay: _Optional[int] = ..., concurrency_target: _Optional[int] = ..., target_utilization_percentage: _Optional[int] = ..., backpressure_policy: _Optional[str] = ..., cold_start_timeout_seconds: _Optional[int] = ...) -> None: ...

class Environment(_message.Message):
    __slots__ = ("name", "created_at", "model_id", "current_deployment", "autoscaling_settings", "promoting_deployment_id", "promotion_failure", "traffic", "promotion_settings", "current_canary")
    class TrafficEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENT_DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    PROMOTING_DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FAILURE_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_CANARY_FIELD_NUMBER: _ClassVar[int]
    name: str
    created_at: _timestamp_pb2.Timestamp
    model_id: str
    current_deployment: Deployment
    autoscaling_settings: AutoscalingSettings
    promoting_deployment_id: str
    promotion_failure: str
    traffic: _containers.ScalarMap[str, int]
    promotion_settings: PromotionSettings
    current_canary: Canary
    def __init__(self, name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model_id: _Optional[str] = ..., current_deployment: _Optional[_Union[Deployment, _Mapping]] = ..., autoscaling_settings: _Optional[_Union[AutoscalingSettings, _Mapping]] = ..., promoting_deployment_id: _Optional[str] = ..., promotion_failure: _Optional[str] = ..., traffic: _Optional[_Mapping[str, int]] = ..., promotion_settings: _Optional[_Union[PromotionSettings, _Mapping]] = ..., current_canary: _Optional[_Union[Canary, _Mapping]] = ...) -> None: ...

class PromotionSettings(_message.Message):
    __slots__ = ("ramp_up_while_promoting", "ramp_up_duration_seconds")
    RAMP_UP_WHILE_PROMOTING_FIELD_NUMBER: _ClassVar[int]
    RAMP_UP_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ramp_up_while_promoting: bool
    ramp_up_duration_seconds: int
    def __init__(self, ramp_up_while_promoting: _Optional[bool] = ..., ramp_up_duration_seconds: _Optional[int] = ...) -> None: ...

class Canary(_message.Message):
    __slots__ = ("deployment_id", "stage", "stages", "candidate_weight", "ramp_up_duration_seconds", "started_at")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    RAMP_UP_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    stage: int
    stages: int
    candidate_weight: int
    ramp_up_duration_seconds: int
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, deployment_id: _Optional[str] = ..., stage: _Optional[int] = ..., stages: _Optional[int] = ..., candidate_weight: _Optional[int] = ..., ramp_up_duration_seconds: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CancelPromotionRequest(_message.Message):
    __slots__ = ("model_id", "env_name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    env_name: str
    def __init__(self, model_id: _Optional[str] = ..., env_name: _Optional[str] = ...) -> None: ...

class CancelPromotionResponse(_message.Message):
    __slots__ = ("environment",)
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    environment: Environment
    def __init__(self, environment: _Optional[_Union[Environment, _Mapping]] = ...) -> None: ...

class ListEnvironmentsRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ListEnvironmentsResponse(_message.Message):
    __slots__ = ("environments",)
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    environments: _containers.RepeatedCompositeFieldContainer[Environment]
    def __init__(self, environments: _Optional[_Iterable[_Union[Environment, _Mapping]]] = ...) -> None: ...

class CreateEnvironmentRequest(_message.Message):
    __slots__ = ("model_id", "name", "autoscaling_settings", "promotion_settings")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    name: str
    autoscaling_settings: EnvironmentAutoscalingPatch
    promotion_settings: PromotionSettings
    def __init__(self, model_id: _Optional[str] = ..., name: _Optional[str] = ..., autoscaling_settings: _Optional[_Union[EnvironmentAutoscalingPatch, _Mapping]] = ..., promotion_settings: _Optional[_Union[PromotionSettings, _Mapping]] = ...) -> None: ...

class CreateEnvironmentResponse(_message.Message):
    __slots__ = ("environment",)
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    environment: Environment
    def __init__(self, environment: _Optional[_Union[Environment, _Mapping]] = ...) -> None: ...

class GetEnvironmentRequest(_message.Message):
    __slots__ = ("model_id", "env_name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    env_name: str
    def __init__(self, model_id: _Optional[str] = ..., env_name: _Optional[str] = ...) -> None: ...

class GetEnvironmentResponse(_message.Message):
    __slots__ = ("environment",)
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    environment: Environment
    def __init__(self, environment: _Optional[_Union[Environment, _Mapping]] = ...) -> None: ...

class UpdateEnvironmentRequest(_message.Message):
    __slots__ = ("model_id", "env_name", "autoscaling_settings", "promotion_settings")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_NAME_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    env_name: str
    autoscaling_settings: EnvironmentAutoscalingPatch
    promotion_settings: PromotionSettings
    def __init__(self, model_id: _Optional[str] = ..., env_name: _Optional[str] = ..., autoscaling_settings: _Optional[_Union[EnvironmentAutoscalingPatch, _Mapping]] = ..., promotion_settings: _Optional[_Union[PromotionSettings, _Mapping]] = ...) -> None: ...

class UpdateEnvironmentResponse(_message.Message):
    __slots__ = ("environment",)
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    environment: Environment
    def __init__(self, environment: _Optional[_Union[Environment, _Mapping]] = ...) -> None: ...

class DeleteEnvironmentRequest(_message.Message):
    __slots__ = ("model_id", "env_name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    env_name: str
    def __init__(self, model_id: _Optional[str] = ..., env_name: _Optional[str] = ...) -> None: ...

class DeleteEnvironmentResponse(_message.Message):
    __slots__ = ("success",)
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    def __init__(self, success: _Optional[bool] = ...) -> None: ...

class UpdateAutoscalingSettingsRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id", "min_replica", "max_replica", "autoscaling_window", "scale_down_delay", "concurrency_target", "target_utilization_percentage", "backpressure_policy", "cold_start_timeout_seconds")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_REPLICA_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICA_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SCALE_DOWN_DELAY_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_UTILIZATION_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    BACKPRESSURE_POLICY_FIELD_NUMBER: _ClassVar[int]
    COLD_START_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    min_replica: int
    max_replica: int
    autoscaling_window: int
    scale_down_delay: int
    concurrency_target: int
    target_utilization_percentage: int
    backpressure_policy: str
    cold_start_timeout_seconds: int
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., min_replica: _Optional[int] = ..., max_replica: _Optional[int] = ..., autoscaling_window: _Optional[int] = ..., scale_down_delay: _Optional[int] = ..., concurrency_target: _Optional[int] = ..., target_utilization_percentage: _Optional[int] = ..., backpressure_policy: _Optional[str] = ..., cold_start_timeout_seconds: _Optional[int] = ...) -> None: ...

class UpdateAutoscalingSettingsResponse(_message.Message):
    __slots__ = ("status", "message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: str
    message: str
    def __init__(self, status: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class PatchDevelopmentRequest(_message.Message):
    __slots__ = ("model_id", "files", "deleted")
    class FilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    files: _containers.ScalarMap[str, bytes]
    deleted: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_id: _Optional[str] = ..., files: _Optional[_Mapping[str, bytes]] = ..., deleted: _Optional[_Iterable[str]] = ...) -> None: ...

class PatchDevelopmentResponse(_message.Message):
    __slots__ = ("deployment_id", "reloaded", "errors", "load_seconds")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    RELOADED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LOAD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    reloaded: int
    errors: _containers.RepeatedScalarFieldContainer[str]
    load_seconds: float
    def __init__(self, deployment_id: _Optional[str] = ..., reloaded: _Optional[int] = ..., errors: _Optional[_Iterable[str]] = ..., load_seconds: _Optional[float] = ...) -> None: ...
