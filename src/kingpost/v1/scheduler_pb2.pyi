from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("version", "models", "api_key_sha256")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    API_KEY_SHA256_FIELD_NUMBER: _ClassVar[int]
    version: int
    models: _containers.RepeatedCompositeFieldContainer[ModelRoute]
    api_key_sha256: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[int] = ..., models: _Optional[_Iterable[_Union[ModelRoute, _Mapping]]] = ..., api_key_sha256: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelRoute(_message.Message):
    __slots__ = ("model_id", "name", "development_deployment_id", "environments", "deployments")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEVELOPMENT_DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    name: str
    development_deployment_id: str
    environments: _containers.RepeatedCompositeFieldContainer[EnvironmentRoute]
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentRoute]
    def __init__(self, model_id: _Optional[str] = ..., name: _Optional[str] = ..., development_deployment_id: _Optional[str] = ..., environments: _Optional[_Iterable[_Union[EnvironmentRoute, _Mapping]]] = ..., deployments: _Optional[_Iterable[_Union[DeploymentRoute, _Mapping]]] = ...) -> None: ...

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
    __slots__ = ("deployment_id", "active", "predict_concurrency", "replicas", "status", "status_reason")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PREDICT_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    active: bool
    predict_concurrency: int
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaRoute]
    status: str
    status_reason: str
    def __init__(self, deployment_id: _Optional[str] = ..., active: _Optional[bool] = ..., predict_concurrency: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[ReplicaRoute, _Mapping]]] = ..., status: _Optional[str] = ..., status_reason: _Optional[str] = ...) -> None: ...

class ReplicaRoute(_message.Message):
    __slots__ = ("replica_id", "address")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    address: str
    def __init__(self, replica_id: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

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
