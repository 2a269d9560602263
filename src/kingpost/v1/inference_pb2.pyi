from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class V2InferRequest(_message.Message):
    __slots__ = ("model_id", "target", "environment", "deployment_id", "v2_model", "body")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    V2_MODEL_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    target: str
    environment: str
    deployment_id: str
    v2_model: str
    body: _httpbody_pb2.HttpBody
    def __init__(self, model_id: _Optional[str] = ..., target: _Optional[str] = ..., environment: _Optional[str] = ..., deployment_id: _Optional[str] = ..., v2_model: _Optional[str] = ..., body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

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

class WakeRequest(_message.Message):
    __slots__ = ("model_id", "target", "environment", "deployment_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    target: str
    environment: str
    deployment_id: str
    def __init__(self, model_id: _Optional[str] = ..., target: _Optional[str] = ..., environment: _Optional[str] = ..., deployment_id: _Optional[str] = ...) -> None: ...

class WakeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

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

class AsyncRunRemoteRequest(_message.Message):
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

class AsyncPredictRequest(_message.Message):
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

class AsyncPredictResponse(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class GetAsyncQueueStatusRequest(_message.Message):
    __slots__ = ("model_id", "target", "environment", "deployment_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    target: str
    environment: str
    deployment_id: str
    def __init__(self, model_id: _Optional[str] = ..., target: _Optional[str] = ..., environment: _Optional[str] = ..., deployment_id: _Optional[str] = ...) -> None: ...

class GetAsyncQueueStatusResponse(_message.Message):
    __slots__ = ("model_id", "deployment_id", "num_queued_requests", "num_in_progress_requests")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_QUEUED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NUM_IN_PROGRESS_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    deployment_id: str
    num_queued_requests: int
    num_in_progress_requests: int
    def __init__(self, model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., num_queued_requests: _Optional[int] = ..., num_in_progress_requests: _Optional[int] = ...) -> None: ...

class GetAsyncRequestRequest(_message.Message):
    __slots__ = ("model_id", "request_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    request_id: str
    def __init__(self, model_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class AsyncError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class GetAsyncRequestResponse(_message.Message):
    __slots__ = ("request_id", "model_id", "deployment_id", "status", "webhook_status", "created_at", "status_at", "errors", "result")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_AT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model_id: str
    deployment_id: str
    status: str
    webhook_status: str
    created_at: str
    status_at: str
    errors: _containers.RepeatedCompositeFieldContainer[AsyncError]
    result: _struct_pb2.Value
    def __init__(self, request_id: _Optional[str] = ..., model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., status: _Optional[str] = ..., webhook_status: _Optional[str] = ..., created_at: _Optional[str] = ..., status_at: _Optional[str] = ..., errors: _Optional[_Iterable[_Union[AsyncError, _Mapping]]] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class CancelAsyncRequestRequest(_message.Message):
    __slots__ = ("model_id", "request_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    request_id: str
    def __init__(self, model_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelAsyncRequestResponse(_message.Message):
    __slots__ = ("request_id", "canceled", "message")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CANCELED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    canceled: bool
    message: str
    def __init__(self, request_id: _Optional[str] = ..., canceled: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class AsyncJob(_message.Message):
    __slots__ = ("request_id", "model_id", "deployment_id", "model_input", "webhook_endpoint", "priority", "created_at", "max_time_in_queue_seconds", "max_attempts", "initial_delay_seconds", "max_delay_seconds", "store_result", "traceparent")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_INPUT_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MAX_TIME_IN_QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STORE_RESULT_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model_id: str
    deployment_id: str
    model_input: bytes
    webhook_endpoint: str
    priority: int
    created_at: float
    max_time_in_queue_seconds: float
    max_attempts: int
    initial_delay_seconds: float
    max_delay_seconds: float
    store_result: bool
    traceparent: str
    def __init__(self, request_id: _Optional[str] = ..., model_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., model_input: _Optional[bytes] = ..., webhook_endpoint: _Optional[str] = ..., priority: _Optional[int] = ..., created_at: _Optional[float] = ..., max_time_in_queue_seconds: _Optional[float] = ..., max_attempts: _Optional[int] = ..., initial_delay_seconds: _Optional[float] = ..., max_delay_seconds: _Optional[float] = ..., store_result: _Optional[bool] = ..., traceparent: _Optional[str] = ...) -> None: ...
