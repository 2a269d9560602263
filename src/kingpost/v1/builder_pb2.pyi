import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kingpost.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UploadSourceRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ("size_bytes", "build_id")
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    size_bytes: int
    build_id: str
    def __init__(self, size_bytes: _Optional[int] = ..., build_id: _Optional[str] = ...) -> None: ...

class UploadSourceResponse(_message.Message):
    __slots__ = ("build",)
    BUILD_FIELD_NUMBER: _ClassVar[int]
    build: Build
    def __init__(self, build: _Optional[_Union[Build, _Mapping]] = ...) -> None: ...

class GetBuildRequest(_message.Message):
    __slots__ = ("build_id",)
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    def __init__(self, build_id: _Optional[str] = ...) -> None: ...

class GetBuildResponse(_message.Message):
    __slots__ = ("build",)
    BUILD_FIELD_NUMBER: _ClassVar[int]
    build: Build
    def __init__(self, build: _Optional[_Union[Build, _Mapping]] = ...) -> None: ...

class FetchArtifactRequest(_message.Message):
    __slots__ = ("artifact_digest",)
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    artifact_digest: str
    def __init__(self, artifact_digest: _Optional[str] = ...) -> None: ...

class FetchArtifactResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    def __init__(self, chunk: _Optional[bytes] = ...) -> None: ...

class Build(_message.Message):
    __slots__ = ("build_id", "state", "artifact_digest", "message", "warnings", "truss", "created_at", "cached")
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    TRUSS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    state: _events_pb2.BuildState
    artifact_digest: str
    message: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    truss: TrussSummary
    created_at: _timestamp_pb2.Timestamp
    cached: bool
    def __init__(self, build_id: _Optional[str] = ..., state: _Optional[_Union[_events_pb2.BuildState, str]] = ..., artifact_digest: _Optional[str] = ..., message: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., truss: _Optional[_Union[TrussSummary, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cached: _Optional[bool] = ...) -> None: ...

class TrussSummary(_message.Message):
    __slots__ = ("model_name", "predict_concurrency", "cpu", "memory", "accelerator", "triton", "secrets", "required_secrets")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PREDICT_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    TRITON_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_SECRETS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    predict_concurrency: int
    cpu: str
    memory: str
    accelerator: str
    triton: str
    secrets: _containers.RepeatedScalarFieldContainer[str]
    required_secrets: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_name: _Optional[str] = ..., predict_concurrency: _Optional[int] = ..., cpu: _Optional[str] = ..., memory: _Optional[str] = ..., accelerator: _Optional[str] = ..., triton: _Optional[str] = ..., secrets: _Optional[_Iterable[str]] = ..., required_secrets: _Optional[_Iterable[str]] = ...) -> None: ...
