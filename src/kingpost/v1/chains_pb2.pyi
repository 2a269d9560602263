import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kingpost.v1 import management_pb2 as _management_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Chain(_message.Message):
    __slots__ = ("id", "name", "created_at", "deployments_count", "entrypoint_model_id", "team_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENTRYPOINT_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    created_at: _timestamp_pb2.Timestamp
    deployments_count: int
    entrypoint_model_id: str
    team_name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deployments_count: _Optional[int] = ..., entrypoint_model_id: _Optional[str] = ..., team_name: _Optional[str] = ...) -> None: ...

class Chainlet(_message.Message):
    __slots__ = ("name", "model_id", "deployment_id", "is_entrypoint", "status", "active_replica_count", "id", "instance_type_name", "autoscaling_settings")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    IS_ENTRYPOINT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_REPLICA_COUNT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_NAME_FIELD_NUMBER: _ClassVar[int]
    AUTOSCALING_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_id: str
    deployment_id: str
    is_entrypoint: bool
    status: str
    active_replica_count: int
    id: str
    instance_type_name: str
    autoscaling_settings: _management_pb2.AutoscalingSettings
    def __init__(self, name: _Optional[str] = ..., model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., is_entrypoint: _Optional[bool] = ..., status: _Optional[str] = ..., active_replica_count: _Optional[int] = ..., id: _Optional[str] = ..., instance_type_name: _Optional[str] = ..., autoscaling_settings: _Optional[_Union[_management_pb2.AutoscalingSettings, _Mapping]] = ...) -> None: ...

class ChainDeployment(_message.Message):
    __slots__ = ("id", "chain_id", "created_at", "is_development", "environment", "chainlets", "status", "promoted_entrypoint_deployment_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    IS_DEVELOPMENT_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CHAINLETS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_ENTRYPOINT_DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    chain_id: str
    created_at: _timestamp_pb2.Timestamp
    is_development: bool
    environment: str
    chainlets: _containers.RepeatedCompositeFieldContainer[Chainlet]
    status: str
    promoted_entrypoint_deployment_id: str
    def __init__(self, id: _Optional[str] = ..., chain_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., is_development: _Optional[bool] = ..., environment: _Optional[str] = ..., chainlets: _Optional[_Iterable[_Union[Chainlet, _Mapping]]] = ..., status: _Optional[str] = ..., promoted_entrypoint_deployment_id: _Optional[str] = ...) -> None: ...

class CreateChainDeploymentRequest(_message.Message):
    __slots__ = ("chain_name", "chainlets")
    CHAIN_NAME_FIELD_NUMBER: _ClassVar[int]
    CHAINLETS_FIELD_NUMBER: _ClassVar[int]
    chain_name: str
    chainlets: _containers.RepeatedCompositeFieldContainer[Chainlet]
    def __init__(self, chain_name: _Optional[str] = ..., chainlets: _Optional[_Iterable[_Union[Chainlet, _Mapping]]] = ...) -> None: ...

class CreateChainDeploymentResponse(_message.Message):
    __slots__ = ("chain", "deployment")
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    chain: Chain
    deployment: ChainDeployment
    def __init__(self, chain: _Optional[_Union[Chain, _Mapping]] = ..., deployment: _Optional[_Union[ChainDeployment, _Mapping]] = ...) -> None: ...

class ListChainsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListChainsResponse(_message.Message):
    __slots__ = ("chains",)
    CHAINS_FIELD_NUMBER: _ClassVar[int]
    chains: _containers.RepeatedCompositeFieldContainer[Chain]
    def __init__(self, chains: _Optional[_Iterable[_Union[Chain, _Mapping]]] = ...) -> None: ...

class GetChainRequest(_message.Message):
    __slots__ = ("chain_id",)
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    def __init__(self, chain_id: _Optional[str] = ...) -> None: ...

class ListChainDeploymentsRequest(_message.Message):
    __slots__ = ("chain_id",)
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    def __init__(self, chain_id: _Optional[str] = ...) -> None: ...

class ListChainDeploymentsResponse(_message.Message):
    __slots__ = ("deployments",)
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[ChainDeployment]
    def __init__(self, deployments: _Optional[_Iterable[_Union[ChainDeployment, _Mapping]]] = ...) -> None: ...

class PromoteChainDeploymentRequest(_message.Message):
    __slots__ = ("chain_id", "env_name", "deployment_id")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_NAME_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    env_name: str
    deployment_id: str
    def __init__(self, chain_id: _Optional[str] = ..., env_name: _Optional[str] = ..., deployment_id: _Optional[str] = ...) -> None: ...

class DeleteChainRequest(_message.Message):
    __slots__ = ("chain_id",)
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    def __init__(self, chain_id: _Optional[str] = ...) -> None: ...

class DeleteChainResponse(_message.Message):
    __slots__ = ("success", "id", "deleted")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    success: bool
    id: str
    deleted: bool
    def __init__(self, success: _Optional[bool] = ..., id: _Optional[str] = ..., deleted: _Optional[bool] = ...) -> None: ...
