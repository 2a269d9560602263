import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kingpost.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateJoinTokenRequest(_message.Message):
    __slots__ = ("ttl_seconds", "description")
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ttl_seconds: int
    description: str
    def __init__(self, ttl_seconds: _Optional[int] = ..., description: _Optional[str] = ...) -> None: ...

class CreateJoinTokenResponse(_message.Message):
    __slots__ = ("token", "expires_at")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("id", "name", "address", "cpu_count", "memory_bytes", "gpus", "labels", "state", "last_seen", "replica_ids", "cpus_free", "memory_free_bytes", "free_gpu_indices", "joined_at", "cpu_overcommit", "memory_overcommit")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    REPLICA_IDS_FIELD_NUMBER: _ClassVar[int]
    CPUS_FREE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FREE_GPU_INDICES_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_FIELD_NUMBER: _ClassVar[int]
    CPU_OVERCOMMIT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_OVERCOMMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    address: str
    cpu_count: int
    memory_bytes: int
    gpus: _containers.RepeatedCompositeFieldContainer[_events_pb2.Gpu]
    labels: _containers.ScalarMap[str, str]
    state: str
    last_seen: _timestamp_pb2.Timestamp
    replica_ids: _containers.RepeatedScalarFieldContainer[str]
    cpus_free: float
    memory_free_bytes: int
    free_gpu_indices: _containers.RepeatedScalarFieldContainer[int]
    joined_at: _timestamp_pb2.Timestamp
    cpu_overcommit: float
    memory_overcommit: float
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., address: _Optional[str] = ..., cpu_count: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[_events_pb2.Gpu, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., state: _Optional[str] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replica_ids: _Optional[_Iterable[str]] = ..., cpus_free: _Optional[float] = ..., memory_free_bytes: _Optional[int] = ..., free_gpu_indices: _Optional[_Iterable[int]] = ..., joined_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cpu_overcommit: _Optional[float] = ..., memory_overcommit: _Optional[float] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    def __init__(self, nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ...) -> None: ...

class GetNodeRequest(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: str
    def __init__(self, node: _Optional[str] = ...) -> None: ...

class DrainNodeRequest(_message.Message):
    __slots__ = ("node", "undo")
    NODE_FIELD_NUMBER: _ClassVar[int]
    UNDO_FIELD_NUMBER: _ClassVar[int]
    node: str
    undo: bool
    def __init__(self, node: _Optional[str] = ..., undo: _Optional[bool] = ...) -> None: ...

class RemoveNodeRequest(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: str
    def __init__(self, node: _Optional[str] = ...) -> None: ...

class RemoveNodeResponse(_message.Message):
    __slots__ = ("success",)
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    def __init__(self, success: _Optional[bool] = ...) -> None: ...

class JoinNodeRequest(_message.Message):
    __slots__ = ("token", "node_id", "name", "address", "cpu_count", "memory_bytes", "gpus", "labels", "node_secret")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NODE_SECRET_FIELD_NUMBER: _ClassVar[int]
    token: str
    node_id: str
    name: str
    address: str
    cpu_count: int
    memory_bytes: int
    gpus: _containers.RepeatedCompositeFieldContainer[_events_pb2.Gpu]
    labels: _containers.ScalarMap[str, str]
    node_secret: str
    def __init__(self, token: _Optional[str] = ..., node_id: _Optional[str] = ..., name: _Optional[str] = ..., address: _Optional[str] = ..., cpu_count: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[_events_pb2.Gpu, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., node_secret: _Optional[str] = ...) -> None: ...

class JoinNodeResponse(_message.Message):
    __slots__ = ("node_id", "nats_url", "internal_token", "builder_address", "artifact_store", "artifact_bucket", "heartbeat_interval_seconds", "node_secret")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NATS_URL_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BUILDER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_STORE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_BUCKET_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    NODE_SECRET_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    nats_url: str
    internal_token: str
    builder_address: str
    artifact_store: str
    artifact_bucket: str
    heartbeat_interval_seconds: float
    node_secret: str
    def __init__(self, node_id: _Optional[str] = ..., nats_url: _Optional[str] = ..., internal_token: _Optional[str] = ..., builder_address: _Optional[str] = ..., artifact_store: _Optional[str] = ..., artifact_bucket: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[float] = ..., node_secret: _Optional[str] = ...) -> None: ...

class ListInstanceTypesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListInstanceTypesResponse(_message.Message):
    __slots__ = ("instance_types",)
    INSTANCE_TYPES_FIELD_NUMBER: _ClassVar[int]
    instance_types: _containers.RepeatedCompositeFieldContainer[InstanceType]
    def __init__(self, instance_types: _Optional[_Iterable[_Union[InstanceType, _Mapping]]] = ...) -> None: ...

class InstanceType(_message.Message):
    __slots__ = ("name", "vcpus", "memory_bytes", "gpu_type", "gpu_count", "vram_bytes", "usd_per_minute", "id", "memory_limit_mib", "millicpu_limit", "gpu_memory_limit_mib")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPU_TYPE_FIELD_NUMBER: _ClassVar[int]
    GPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    VRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    USD_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_MIB_FIELD_NUMBER: _ClassVar[int]
    MILLICPU_LIMIT_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_LIMIT_MIB_FIELD_NUMBER: _ClassVar[int]
    name: str
    vcpus: int
    memory_bytes: int
    gpu_type: str
    gpu_count: int
    vram_bytes: int
    usd_per_minute: float
    id: str
    memory_limit_mib: int
    millicpu_limit: int
    gpu_memory_limit_mib: int
    def __init__(self, name: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., gpu_type: _Optional[str] = ..., gpu_count: _Optional[int] = ..., vram_bytes: _Optional[int] = ..., usd_per_minute: _Optional[float] = ..., id: _Optional[str] = ..., memory_limit_mib: _Optional[int] = ..., millicpu_limit: _Optional[int] = ..., gpu_memory_limit_mib: _Optional[int] = ...) -> None: ...
