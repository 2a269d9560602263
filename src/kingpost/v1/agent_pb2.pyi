from kingpost.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartReplicaRequest(_message.Message):
    __slots__ = ("replica_id", "deployment_id", "model_id", "artifact_digest", "environment", "gpu_indices", "secrets", "request_logging_sample_rate", "request_logging_max_bytes")
    class SecretsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    GPU_INDICES_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LOGGING_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LOGGING_MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    deployment_id: str
    model_id: str
    artifact_digest: str
    environment: str
    gpu_indices: _containers.RepeatedScalarFieldContainer[int]
    secrets: _containers.ScalarMap[str, str]
    request_logging_sample_rate: float
    request_logging_max_bytes: int
    def __init__(self, replica_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., model_id: _Optional[str] = ..., artifact_digest: _Optional[str] = ..., environment: _Optional[str] = ..., gpu_indices: _Optional[_Iterable[int]] = ..., secrets: _Optional[_Mapping[str, str]] = ..., request_logging_sample_rate: _Optional[float] = ..., request_logging_max_bytes: _Optional[int] = ...) -> None: ...

class StartReplicaResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StopReplicaRequest(_message.Message):
    __slots__ = ("replica_id",)
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    def __init__(self, replica_id: _Optional[str] = ...) -> None: ...

class StopReplicaResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListReplicasRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListReplicasResponse(_message.Message):
    __slots__ = ("replicas",)
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaStatus]
    def __init__(self, replicas: _Optional[_Iterable[_Union[ReplicaStatus, _Mapping]]] = ...) -> None: ...

class ReplicaStatus(_message.Message):
    __slots__ = ("replica_id", "deployment_id", "state", "address", "pid")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    deployment_id: str
    state: _events_pb2.ReplicaState
    address: str
    pid: int
    def __init__(self, replica_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., state: _Optional[_Union[_events_pb2.ReplicaState, str]] = ..., address: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class PatchReplicaRequest(_message.Message):
    __slots__ = ("replica_id", "files", "deleted")
    class FilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    files: _containers.ScalarMap[str, bytes]
    deleted: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, replica_id: _Optional[str] = ..., files: _Optional[_Mapping[str, bytes]] = ..., deleted: _Optional[_Iterable[str]] = ...) -> None: ...

class PatchReplicaResponse(_message.Message):
    __slots__ = ("error", "load_seconds")
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOAD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    error: str
    load_seconds: float
    def __init__(self, error: _Optional[str] = ..., load_seconds: _Optional[float] = ...) -> None: ...
