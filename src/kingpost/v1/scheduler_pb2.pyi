from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeploymentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPLOYMENT_STATUS_UNSPECIFIED: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_BUILDING: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_DEPLOYING: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_ACTIVE: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_SCALED_TO_ZERO: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_WAKING_UP: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_INACTIVE: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_FAILED: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_UNHEALTHY: _ClassVar[DeploymentStatus]
DEPLOYMENT_STATUS_UNSPECIFIED: DeploymentStatus
DEPLOYMENT_STATUS_BUILDING: DeploymentStatus
DEPLOYMENT_STATUS_DEPLOYING: DeploymentStatus
DEPLOYMENT_STATUS_ACTIVE: DeploymentStatus
DEPLOYMENT_STATUS_SCALED_TO_ZERO: DeploymentStatus
DEPLOYMENT_STATUS_WAKING_UP: DeploymentStatus
DEPLOYMENT_STATUS_INACTIVE: DeploymentStatus
DEPLOYMENT_STATUS_FAILED: DeploymentStatus
DEPLOYMENT_STATUS_UNHEALTHY: DeploymentStatus

class WatchRoutesRequest(_message.Message):
    __slots__ = ("watcher",)
    WATCHER_FIELD_NUMBER: _ClassVar[int]
    watcher: str
    def __init__(self, watcher: _Optional[str] = ...) -> None: ...

class WatchRoutesResponse(_message.Message):
    __slots__ = ("table",)
    TABLE_FIELD_NUMBER: _ClassVar[int]
    table: RouteTable
    def __init__(self, table: _Optional[_Union[RouteTable, _Mapping]] = ...) -> None: ...

class RouteTable(_message.Message):
    __slots__ = ("version", "models", "api_key_sha256", "invoke_only_keys", "webhook_secrets")
    class InvokeOnlyKeysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: InvokeScope
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[InvokeScope, _Mapping]] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    API_KEY_SHA256_FIELD_NUMBER: _ClassVar[int]
    INVOKE_ONLY_KEYS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_SECRETS_FIELD_NUMBER: _ClassVar[int]
    version: int
    models: _containers.RepeatedCompositeFieldContainer[ModelRoute]
    api_key_sha256: _containers.RepeatedScalarFieldContainer[str]
    invoke_only_keys: _containers.MessageMap[str, InvokeScope]
    webhook_secrets: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[int] = ..., models: _Optional[_Iterable[_Union[ModelRoute, _Mapping]]] = ..., api_key_sha256: _Optional[_Iterable[str]] = ..., invoke_only_keys: _Optional[_Mapping[str, InvokeScope]] = ..., webhook_secrets: _Optional[_Iterable[str]] = ...) -> None: ...

class InvokeScope(_message.Message):
    __slots__ = ("model_ids",)
    MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    model_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelRoute(_message.Message):
    __slots__ = ("model_id", "name", "development_deployment_id", "environments", "deployments", "chain_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEVELOPMENT_DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    name: str
    development_deployment_id: str
    environments: _containers.RepeatedCompositeFieldContainer[EnvironmentRoute]
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentRoute]
    chain_id: str
    def __init__(self, model_id: _Optional[str] = ..., name: _Optional[str] = ..., development_deployment_id: _Optional[str] = ..., environments: _Optional[_Iterable[_Union[EnvironmentRoute, _Mapping]]] = ..., deployments: _Optional[_Iterable[_Union[DeploymentRoute, _Mapping]]] = ..., chain_id: _Optional[str] = ...) -> None: ...

class EnvironmentRoute(_message.Message):
    __slots__ = ("name", "deployments")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    deployments: _containers.RepeatedCompositeFieldContainer[WeightedDeployment]
    def __init__(self, name: _Optional[str] = ..., deployments: _Optional[_Iterable[_Union[WeightedDeployment, _Mapping]]] = ...) -> None: ...

class WeightedDeployment(_message.Message):
    __slots__ = ("deployment_id", "weight")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    weight: int
    def __init__(self, deployment_id: _Optional[str] = ..., weight: _Optional[int] = ...) -> None: ...

class DeploymentRoute(_message.Message):
    __slots__ = ("deployment_id", "active", "predict_concurrency", "replicas", "status", "status_reason", "backpressure_policy", "cold_start_timeout_seconds", "autoscaling", "wake_with")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PREDICT_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    BACKPRESSURE_POLICY_FIELD_NUMBER: _ClassVar[int]
    COLD_START_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_FIELD_NUMBER: _ClassVar[int]
    WAKE_WITH_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    active: bool
    predict_concurrency: int
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaRoute]
    status: DeploymentStatus
    status_reason: str
    backpressure_policy: str
    cold_start_timeout_seconds: float
    autoscaling: DeploymentAutoscaling
    wake_with: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deployment_id: _Optional[str] = ..., active: _Optional[bool] = ..., predict_concurrency: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[ReplicaRoute, _Mapping]]] = ..., status: _Optional[_Union[DeploymentStatus, str]] = ..., status_reason: _Optional[str] = ..., backpressure_policy: _Optional[str] = ..., cold_start_timeout_seconds: _Optional[float] = ..., autoscaling: _Optional[_Union[DeploymentAutoscaling, _Mapping]] = ..., wake_with: _Optional[_Iterable[str]] = ...) -> None: ...

class DeploymentAutoscaling(_message.Message):
    __slots__ = ("min_replica", "max_replica", "autoscaling_window", "scale_down_delay", "concurrency_target", "target_utilization_percentage", "desired_replicas")
    MIN_REPLICA_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICA_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SCALE_DOWN_DELAY_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_UTILIZATION_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    DESIRED_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    min_replica: int
    max_replica: int
    autoscaling_window: int
    scale_down_delay: int
    concurrency_target: int
    target_utilization_percentage: int
    desired_replicas: int
    def __init__(self, min_replica: _Optional[int] = ..., max_replica: _Optional[int] = ..., autoscaling_window: _Optional[int] = ..., scale_down_delay: _Optional[int] = ..., concurrency_target: _Optional[int] = ..., target_utilization_percentage: _Optional[int] = ..., desired_replicas: _Optional[int] = ...) -> None: ...

class ReplicaRoute(_message.Message):
    __slots__ = ("replica_id", "address", "http_address")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HTTP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    address: str
    http_address: str
    def __init__(self, replica_id: _Optional[str] = ..., address: _Optional[str] = ..., http_address: _Optional[str] = ...) -> None: ...

class ScaleDeploymentRequest(_message.Message):
    __slots__ = ("deployment_id", "replicas")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    replicas: int
    def __init__(self, deployment_id: _Optional[str] = ..., replicas: _Optional[int] = ...) -> None: ...

class ScaleDeploymentResponse(_message.Message):
    __slots__ = ("replicas",)
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    replicas: int
    def __init__(self, replicas: _Optional[int] = ...) -> None: ...

class DeactivateIdleDeploymentRequest(_message.Message):
    __slots__ = ("deployment_id", "idle_seconds")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    idle_seconds: float
    def __init__(self, deployment_id: _Optional[str] = ..., idle_seconds: _Optional[float] = ...) -> None: ...

class DeactivateIdleDeploymentResponse(_message.Message):
    __slots__ = ("deactivated",)
    DEACTIVATED_FIELD_NUMBER: _ClassVar[int]
    deactivated: bool
    def __init__(self, deactivated: _Optional[bool] = ...) -> None: ...
