from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRequest(_message.Message):
    __slots__ = ("model_id", "target", "environment", "deployment_id", "body")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    target: str
    environment: str
    deployment_id: str
    body: _httpbody_pb2.HttpBody
    def __init__(self, model_id: _Optional[str] = ..., target: _Optional[str] = ..., environment: _Optional[str] = ..., deployment_id: _Optional[str] = ..., body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ("model_id", "target", "environment", "deployment_id", "path", "body", "method", "query")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    target: str
    environment: str
    deployment_id: str
    path: str
    body: _httpbody_pb2.HttpBody
    method: str
    query: str
    def __init__(self, model_id: _Optional[str] = ..., target: _Optional[str] = ..., environment: _Optional[str] = ..., deployment_id: _Optional[str] = ..., path: _Optional[str] = ..., body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ..., method: _Optional[str] = ..., query: _Optional[str] = ...) -> None: ...

class RunRemoteRequest(_message.Message):
    __slots__ = ("chain_id", "target", "environment", "deployment_id", "body")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    target: str
    environment: str
    deployment_id: str
    body: _httpbody_pb2.HttpBody
    def __init__(self, chain_id: _Optional[str] = ..., target: _Optional[str] = ..., environment: _Optional[str] = ..., deployment_id: _Optional[str] = ..., body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...
