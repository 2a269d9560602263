import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kingpost.v1 import events_pb2 as _events_pb2
from kingpost.v1 import nodes_pb2 as _nodes_pb2
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
    __slots__ = ("model_id", "deployment_id", "window_seconds", "observed_seconds", "requests", "errors", "request_rate", "latency_p50_seconds", "latency_p95_seconds", "latency_p99_seconds", "desired_replicas", "ready_replicas", "start_epoch_millis", "end_epoch_millis", "mode", "step_seconds", "metric_descriptors", "metric_values")
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
    START_EPOCH_MILLIS_FIELD_NUMBER: _ClassVar[int]
    END_EPOCH_MILLIS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STEP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    METRIC_DESCRIPTORS_FIELD_NUMBER: _ClassVar[int]
    METRIC_VALUES_FIELD_NUMBER: _ClassVar[int]
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
    start_epoch_millis: float
    end_epoch_millis: float
    mode: str
    step_seconds: _struct_pb2.Value
    metric_descriptors: _containers.RepeatedCompositeFieldContainer[MetricDescriptor]
    metric_values: _containers.RepeatedCompositeFieldContainer[MetricValueSet]
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., window_seconds: _Optional[int] = ..., observed_seconds: _Optional[float] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., request_rate: _Optional[float] = ..., latency_p50_seconds: _Optional[float] = ..., latency_p95_seconds: _Optional[float] = ..., latency_p99_seconds: _Optional[float] = ..., desired_replicas: _Optional[int] = ..., ready_replicas: _Optional[int] = ..., start_epoch_millis: _Optional[float] = ..., end_epoch_millis: _Optional[float] = ..., mode: _Optional[str] = ..., step_seconds: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., metric_descriptors: _Optional[_Iterable[_Union[MetricDescriptor, _Mapping]]] = ..., metric_values: _Optional[_Iterable[_Union[MetricValueSet, _Mapping]]] = ...) -> None: ...

class MetricDescriptor(_message.Message):
    __slots__ = ("name", "unit_hint", "kind", "label_sets")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_HINT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LABEL_SETS_FIELD_NUMBER: _ClassVar[int]
    name: str
    unit_hint: str
    kind: str
    label_sets: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    def __init__(self, name: _Optional[str] = ..., unit_hint: _Optional[str] = ..., kind: _Optional[str] = ..., label_sets: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ...) -> None: ...

class MetricValueSet(_message.Message):
    __slots__ = ("start_epoch_millis", "values")
    START_EPOCH_MILLIS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    start_epoch_millis: float
    values: _containers.RepeatedCompositeFieldContainer[_struct_pb2.ListValue]
    def __init__(self, start_epoch_millis: _Optional[float] = ..., values: _Optional[_Iterable[_Union[_struct_pb2.ListValue, _Mapping]]] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "name", "created_at", "deployments_count", "production_deployment_id", "development_deployment_id", "instance_type_name", "team_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_COUNT_FIELD_NUMBER: _ClassVar[int]
    PRODUCTION_DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DEVELOPMENT_DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_NAME_FIELD_NUMBER: _ClassVar[int]
    TEAM_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    created_at: _timestamp_pb2.Timestamp
    deployments_count: int
    production_deployment_id: str
    development_deployment_id: str
    instance_type_name: str
    team_name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deployments_count: _Optional[int] = ..., production_deployment_id: _Optional[str] = ..., development_deployment_id: _Optional[str] = ..., instance_type_name: _Optional[str] = ..., team_name: _Optional[str] = ...) -> None: ...

class RequestBackpressureSettings(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: str
    def __init__(self, policy: _Optional[str] = ...) -> None: ...

class AutoscalingSettings(_message.Message):
    __slots__ = ("min_replica", "max_replica", "autoscaling_window", "scale_down_delay", "concurrency_target", "target_utilization_percentage", "backpressure_policy", "cold_start_timeout_seconds", "request_logging_sample_rate", "request_logging_max_bytes")
    MIN_REPLICA_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICA_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SCALE_DOWN_DELAY_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_UTILIZATION_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    BACKPRESSURE_POLICY_FIELD_NUMBER: _ClassVar[int]
    COLD_START_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LOGGING_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LOGGING_MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    min_replica: int
    max_replica: int
    autoscaling_window: int
    scale_down_delay: int
    concurrency_target: int
    target_utilization_percentage: int
    backpressure_policy: str
    cold_start_timeout_seconds: int
    request_logging_sample_rate: float
    request_logging_max_bytes: int
    def __init__(self, min_replica: _Optional[int] = ..., max_replica: _Optional[int] = ..., autoscaling_window: _Optional[int] = ..., scale_down_delay: _Optional[int] = ..., concurrency_target: _Optional[int] = ..., target_utilization_percentage: _Optional[int] = ..., backpressure_policy: _Optional[str] = ..., cold_start_timeout_seconds: _Optional[int] = ..., request_logging_sample_rate: _Optional[float] = ..., request_logging_max_bytes: _Optional[int] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("id", "name", "model_id", "created_at", "is_production", "is_development", "status", "status_reason", "active_replica_count", "autoscaling_settings", "environment", "build_id", "predict_concurrency", "replicas", "resources", "instance_type_name", "request_backpressure_settings")
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
    INSTANCE_TYPE_NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_BACKPRESSURE_SETTINGS_FIELD_NUMBER: _ClassVar[int]
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
    instance_type_name: str
    request_backpressure_settings: RequestBackpressureSettings
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., model_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., is_production: _Optional[bool] = ..., is_development: _Optional[bool] = ..., status: _Optional[str] = ..., status_reason: _Optional[str] = ..., active_replica_count: _Optional[int] = ..., autoscaling_settings: _Optional[_Union[AutoscalingSettings, _Mapping]] = ..., environment: _Optional[str] = ..., build_id: _Optional[str] = ..., predict_concurrency: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[DeploymentReplica, _Mapping]]] = ..., resources: _Optional[_Union[DeploymentResources, _Mapping]] = ..., instance_type_name: _Optional[str] = ..., request_backpressure_settings: _Optional[_Union[RequestBackpressureSettings, _Mapping]] = ...) -> None: ...

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

class GetLogsRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id", "build_id", "build_only", "replica_only", "limit", "since")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_ONLY_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ONLY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    build_id: str
    build_only: bool
    replica_only: bool
    limit: int
    since: _timestamp_pb2.Timestamp
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., build_id: _Optional[str] = ..., build_only: _Optional[bool] = ..., replica_only: _Optional[bool] = ..., limit: _Optional[int] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetLogsResponse(_message.Message):
    __slots__ = ("lines", "logs")
    LINES_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[_events_pb2.LogLine]
    logs: _containers.RepeatedCompositeFieldContainer[Log]
    def __init__(self, lines: _Optional[_Iterable[_Union[_events_pb2.LogLine, _Mapping]]] = ..., logs: _Optional[_Iterable[_Union[Log, _Mapping]]] = ...) -> None: ...

class Log(_message.Message):
    __slots__ = ("timestamp", "message", "replica", "level", "request_id")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    timestamp: str
    message: str
    replica: str
    level: str
    request_id: str
    def __init__(self, timestamp: _Optional[str] = ..., message: _Optional[str] = ..., replica: _Optional[str] = ..., level: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("prefix", "name", "created_at", "type", "model_ids", "team_name")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    TEAM_NAME_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    name: str
    created_at: _timestamp_pb2.Timestamp
    type: str
    model_ids: _containers.RepeatedScalarFieldContainer[str]
    team_name: str
    def __init__(self, prefix: _Optional[str] = ..., name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[str] = ..., model_ids: _Optional[_Iterable[str]] = ..., team_name: _Optional[str] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("name", "type", "model_ids")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    model_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., model_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "prefix", "name", "type", "model_ids")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    prefix: str
    name: str
    type: str
    model_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, api_key: _Optional[str] = ..., prefix: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., model_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class RevokeApiKeyResponse(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("success", "id", "deleted")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    success: bool
    id: str
    deleted: bool
    def __init__(self, success: _Optional[bool] = ..., id: _Optional[str] = ..., deleted: _Optional[bool] = ...) -> None: ...

class ActivateDeploymentRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ...) -> None: ...

class ActivateDeploymentResponse(_message.Message):
    __slots__ = ("success", "no_op")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    NO_OP_FIELD_NUMBER: _ClassVar[int]
    success: bool
    no_op: bool
    def __init__(self, success: _Optional[bool] = ..., no_op: _Optional[bool] = ...) -> None: ...

class DeactivateDeploymentRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ...) -> None: ...

class DeactivateDeploymentResponse(_message.Message):
    __slots__ = ("success", "no_op")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    NO_OP_FIELD_NUMBER: _ClassVar[int]
    success: bool
    no_op: bool
    def __init__(self, success: _Optional[bool] = ..., no_op: _Optional[bool] = ...) -> None: ...

class UpdateDeploymentRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id", "name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    name: str
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class DeleteDeploymentRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ...) -> None: ...

class DeleteDeploymentResponse(_message.Message):
    __slots__ = ("success", "id", "deleted", "model_id")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    success: bool
    id: str
    deleted: bool
    model_id: str
    def __init__(self, success: _Optional[bool] = ..., id: _Optional[str] = ..., deleted: _Optional[bool] = ..., model_id: _Optional[str] = ...) -> None: ...

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

class EnvironmentAutoscalingPatch(_message.Message):
    __slots__ = ("min_replica", "max_replica", "autoscaling_window", "scale_down_delay", "concurrency_target", "target_utilization_percentage", "backpressure_policy", "cold_start_timeout_seconds", "request_logging_sample_rate", "request_logging_max_bytes")
    MIN_REPLICA_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICA_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SCALE_DOWN_DELAY_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_UTILIZATION_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    BACKPRESSURE_POLICY_FIELD_NUMBER: _ClassVar[int]
    COLD_START_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LOGGING_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LOGGING_MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    min_replica: int
    max_replica: int
    autoscaling_window: int
    scale_down_delay: int
    concurrency_target: int
    target_utilization_percentage: int
    backpressure_policy: str
    cold_start_timeout_seconds: int
    request_logging_sample_rate: float
    request_logging_max_bytes: int
    def __init__(self, min_replica: _Optional[int] = ..., max_replica: _Optional[int] = ..., autoscaling_window: _Optional[int] = ..., scale_down_delay: _Optional[int] = ..., concurrency_target: _Optional[int] = ..., target_utilization_percentage: _Optional[int] = ..., backpressure_policy: _Optional[str] = ..., cold_start_timeout_seconds: _Optional[int] = ..., request_logging_sample_rate: _Optional[float] = ..., request_logging_max_bytes: _Optional[int] = ...) -> None: ...

class Environment(_message.Message):
    __slots__ = ("name", "created_at", "model_id", "current_deployment", "autoscaling_settings", "promoting_deployment_id", "promotion_failure", "traffic", "promotion_settings", "current_canary", "instance_type", "request_backpressure_settings")
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
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_BACKPRESSURE_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    created_at: _timestamp_pb2.Timestamp
    model_id: str
    current_deployment: _struct_pb2.Value
    autoscaling_settings: AutoscalingSettings
    promoting_deployment_id: str
    promotion_failure: str
    traffic: _containers.ScalarMap[str, int]
    promotion_settings: PromotionSettings
    current_canary: Canary
    instance_type: _nodes_pb2.InstanceType
    request_backpressure_settings: RequestBackpressureSettings
    def __init__(self, name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model_id: _Optional[str] = ..., current_deployment: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., autoscaling_settings: _Optional[_Union[AutoscalingSettings, _Mapping]] = ..., promoting_deployment_id: _Optional[str] = ..., promotion_failure: _Optional[str] = ..., traffic: _Optional[_Mapping[str, int]] = ..., promotion_settings: _Optional[_Union[PromotionSettings, _Mapping]] = ..., current_canary: _Optional[_Union[Canary, _Mapping]] = ..., instance_type: _Optional[_Union[_nodes_pb2.InstanceType, _Mapping]] = ..., request_backpressure_settings: _Optional[_Union[RequestBackpressureSettings, _Mapping]] = ...) -> None: ...

class PromotionSettings(_message.Message):
    __slots__ = ("ramp_up_while_promoting", "ramp_up_duration_seconds", "redeploy_on_promotion", "rolling_deploy", "promotion_cleanup_strategy")
    RAMP_UP_WHILE_PROMOTING_FIELD_NUMBER: _ClassVar[int]
    RAMP_UP_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REDEPLOY_ON_PROMOTION_FIELD_NUMBER: _ClassVar[int]
    ROLLING_DEPLOY_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_CLEANUP_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    ramp_up_while_promoting: bool
    ramp_up_duration_seconds: int
    redeploy_on_promotion: bool
    rolling_deploy: bool
    promotion_cleanup_strategy: str
    def __init__(self, ramp_up_while_promoting: _Optional[bool] = ..., ramp_up_duration_seconds: _Optional[int] = ..., redeploy_on_promotion: _Optional[bool] = ..., rolling_deploy: _Optional[bool] = ..., promotion_cleanup_strategy: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("status", "message", "environment")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    status: str
    message: str
    environment: Environment
    def __init__(self, status: _Optional[str] = ..., message: _Optional[str] = ..., environment: _Optional[_Union[Environment, _Mapping]] = ...) -> None: ...

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

class GetEnvironmentRequest(_message.Message):
    __slots__ = ("model_id", "env_name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    env_name: str
    def __init__(self, model_id: _Optional[str] = ..., env_name: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("environment", "status", "message")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    environment: Environment
    status: str
    message: str
    def __init__(self, environment: _Optional[_Union[Environment, _Mapping]] = ..., status: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class DeleteEnvironmentRequest(_message.Message):
    __slots__ = ("model_id", "env_name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    env_name: str
    def __init__(self, model_id: _Optional[str] = ..., env_name: _Optional[str] = ...) -> None: ...

class DeleteEnvironmentResponse(_message.Message):
    __slots__ = ("success", "name", "model_id", "deleted")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    success: bool
    name: str
    model_id: str
    deleted: bool
    def __init__(self, success: _Optional[bool] = ..., name: _Optional[str] = ..., model_id: _Optional[str] = ..., deleted: _Optional[bool] = ...) -> None: ...

class RetryDeploymentRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ...) -> None: ...

class RetryDeploymentResponse(_message.Message):
    __slots__ = ("retried", "reason", "deployment")
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    retried: bool
    reason: str
    deployment: Deployment
    def __init__(self, retried: _Optional[bool] = ..., reason: _Optional[str] = ..., deployment: _Optional[_Union[Deployment, _Mapping]] = ...) -> None: ...

class ActivateEnvironmentRequest(_message.Message):
    __slots__ = ("model_id", "env_name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    env_name: str
    def __init__(self, model_id: _Optional[str] = ..., env_name: _Optional[str] = ...) -> None: ...

class DeactivateEnvironmentRequest(_message.Message):
    __slots__ = ("model_id", "env_name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    env_name: str
    def __init__(self, model_id: _Optional[str] = ..., env_name: _Optional[str] = ...) -> None: ...

class Secret(_message.Message):
    __slots__ = ("id", "created_at", "name", "team_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEAM_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    created_at: _timestamp_pb2.Timestamp
    name: str
    team_name: str
    def __init__(self, id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., name: _Optional[str] = ..., team_name: _Optional[str] = ...) -> None: ...

class UpsertSecretRequest(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class ListSecretsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSecretsResponse(_message.Message):
    __slots__ = ("secrets",)
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    secrets: _containers.RepeatedCompositeFieldContainer[Secret]
    def __init__(self, secrets: _Optional[_Iterable[_Union[Secret, _Mapping]]] = ...) -> None: ...

class DeleteSecretRequest(_message.Message):
    __slots__ = ("secret_name",)
    SECRET_NAME_FIELD_NUMBER: _ClassVar[int]
    secret_name: str
    def __init__(self, secret_name: _Optional[str] = ...) -> None: ...

class DeleteSecretResponse(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UpdateAutoscalingSettingsRequest(_message.Message):
    __slots__ = ("model_id", "deployment_id", "min_replica", "max_replica", "autoscaling_window", "scale_down_delay", "concurrency_target", "target_utilization_percentage", "backpressure_policy", "cold_start_timeout_seconds", "request_logging_sample_rate", "request_logging_max_bytes")
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
    REQUEST_LOGGING_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LOGGING_MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
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
    request_logging_sample_rate: float
    request_logging_max_bytes: int
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., min_replica: _Optional[int] = ..., max_replica: _Optional[int] = ..., autoscaling_window: _Optional[int] = ..., scale_down_delay: _Optional[int] = ..., concurrency_target: _Optional[int] = ..., target_utilization_percentage: _Optional[int] = ..., backpressure_policy: _Optional[str] = ..., cold_start_timeout_seconds: _Optional[int] = ..., request_logging_sample_rate: _Optional[float] = ..., request_logging_max_bytes: _Optional[int] = ...) -> None: ...

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
