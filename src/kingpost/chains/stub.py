"""A dependency as its caller sees it: an object whose `run_remote` has the dependency's own
signature and, behind it, one gRPC call through the router (InferenceService.Predict on the
dependency's deployment), so the dependency autoscales and wakes from zero like any model.

Per `depends(...)`: `retries` attempts in all (any failure before a response), `timeout_sec` per
attempt (then TimeoutError naming the Chainlet), `use_binary` (msgpack instead of JSON), and at most
`concurrency_limit` calls in flight from this replica.

A streaming dependency's `run_remote` is an async iterator (`async for chunk in dep.run_remote(...)`):
chunks come as the dependency yields them (str decoded from UTF-8, bytes as sent); attempts are retried
only until the first chunk (truss: "only before streaming starts"), and `timeout_sec` bounds the whole
stream; an error after a chunk is raised at that point of the iteration.

A call made while the Chainlet answers a request (`calling_for(headers)`, which serving.py sets
around `run_remote`) carries that request's `traceparent`/`tracestate` and `x-baseten-request-id`: the
dependency's spans join the caller's trace, under the caller's runner call, with the same request id.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import contextvars
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import grpc
import msgpack
from google.api import httpbody_pb2

from kingpost.chains.public_types import DeployedServiceDescriptor
from kingpost.chains.remote_errors import remote_exception
from kingpost.chains.signatures import Endpoint
from kingpost.grpc_status import HTTP_STATUS_KEY
from kingpost.v1 import inference_pb2, inference_pb2_grpc

JSON = "application/json"
BINARY = "application/octet-stream"
# What a dependency call passes on from the request the Chainlet is answering.
PASSED_ON = ("traceparent", "tracestate", "x-baseten-request-id")
_caller: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar("kingpost_chain_caller",
                                                                                      default=())


@contextlib.contextmanager
def calling_for(headers: Mapping[str, str]) -> Iterator[None]:
    """Calls made inside (and in threads started with a copy of this context, as asyncio.to_thread
    starts them) pass on the request's trace and id."""
    token = _caller.set(tuple((key, headers[key]) for key in PASSED_ON if headers.get(key)))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # a stream finished in another context than it began
            _caller.reset(token)


def _pack_default(obj: Any) -> Any:
    """numpy arrays as truss's msgpack_numpy maps (what the runner's codec decodes), raw bytes, no base64."""
    if type(obj).__module__ == "numpy" and hasattr(obj, "dtype") and hasattr(obj, "shape"):
        import numpy as np

        if obj.dtype.kind in ("O", "V"):
            raise TypeError(f"cannot send numpy arrays of dtype {obj.dtype}")
        return {b"nd": True, b"type": obj.dtype.str, b"kind": b"", b"shape": list(obj.shape),
                b"data": np.ascontiguousarray(obj).tobytes()}
    raise TypeError(f"cannot send {type(obj).__name__} as msgpack")


def _status_of(error: grpc.RpcError) -> int:
    for key, value in (error.trailing_metadata() or ()):  # type: ignore[attr-defined]
        if key == HTTP_STATUS_KEY:
            try:
                return int(value)
            except ValueError:
                break
    return 500


class _Target:
    """The dependency's address and the call's encoding, shared by the sync and async faces."""

    def __init__(self, descriptor: DeployedServiceDescriptor, endpoint: Endpoint, router: str,
                 api_key: str) -> None:
        self.name = descriptor.display_name or descriptor.name
        self.options = descriptor.options
        self.endpoint = endpoint
        self.router = router
        self.metadata = (("authorization", f"Api-Key {api_key}"),)
        self.request_fields = dict(model_id=descriptor.model, deployment_id=descriptor.deployment_id,
                                   target=descriptor.target if not descriptor.deployment_id else "")

    def request(self, kwargs: dict[str, Any]) -> inference_pb2.PredictRequest:
        if self.options.use_binary:
            data = msgpack.packb(self.endpoint.dump_input(kwargs, mode="python"), use_bin_type=True,
                                 default=_pack_default)
            body = httpbody_pb2.HttpBody(content_type=BINARY, data=data)
        else:
            body = httpbody_pb2.HttpBody(content_type=JSON,
                                         data=json.dumps(self.endpoint.dump_input(kwargs)).encode())
        return inference_pb2.PredictRequest(body=body, **self.request_fields)

    def response(self, chunks: list[httpbody_pb2.HttpBody]) -> Any:
        data = b"".join(c.data for c in chunks)
        content_type = chunks[0].content_type if chunks else JSON
        payload = msgpack.unpackb(data, raw=False) if content_type.startswith(BINARY) else json.loads(data)
        return self.endpoint.parse_output(payload)

    def error(self, error: grpc.RpcError) -> BaseException:
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[attr-defined]
            return TimeoutError(f"Timeout calling remote Chainlet `{self.name}` "
                                f"({self.options.timeout_sec} seconds limit).")
        return remote_exception(self.name, _status_of(error), error.details() or "")  # type: ignore[attr-defined]


class AsyncStub:
    """`await stub.run_remote(...)`: for a dependency whose `run_remote` is async."""

    def __init__(self, target: _Target) -> None:
        self._t = target
        self._channel: grpc.aio.Channel | None = None
        self._semaphore = asyncio.Semaphore(target.options.concurrency_limit)

    def _client(self) -> inference_pb2_grpc.InferenceServiceStub:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self._t.router)
        return inference_pb2_grpc.InferenceServiceStub(self._channel)

    async def run_remote(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.update(zip((p[0] for p in self._t.endpoint.params), args))
        request = self._t.request(kwargs)
        async with self._semaphore:
            for attempt in range(1, self._t.options.retries + 1):
                try:
                    call = self._client().Predict(request, timeout=self._t.options.timeout_sec,
                                                  metadata=self._t.metadata + _caller.get())
                    chunks = [chunk async for chunk in call]
                    return self._t.response(chunks)
                except grpc.RpcError as e:
                    if attempt == self._t.options.retries:
                        raise self._t.error(e) from None
        raise AssertionError("unreachable")


class StreamStub(AsyncStub):
    """`async for chunk in stub.run_remote(...)`: for a dependency whose `run_remote` streams."""

    async def run_remote(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:  # type: ignore[override]
        kwargs.update(zip((p[0] for p in self._t.endpoint.params), args))
        request = self._t.request(kwargs)
        as_text = self._t.endpoint.stream_item is str
        async with self._semaphore:
            for attempt in range(1, self._t.options.retries + 1):
                call = self._client().Predict(request, timeout=self._t.options.timeout_sec,
                                              metadata=self._t.metadata + _caller.get())
                try:
                    message = await call.read()
                    break
                except grpc.RpcError as e:
                    if attempt == self._t.options.retries:
                        raise self._t.error(e) from None
            decoder = codecs.getincrementaldecoder("utf-8")()
            try:
                while message is not grpc.aio.EOF:
                    data = message.data  # type: ignore[union-attr]
                    if not as_text:
                        yield data
                    elif (text := decoder.decode(data)) or not data:  # a character split across chunks waits
                        yield text
                    message = await call.read()
                if as_text and (tail := decoder.decode(b"", final=True)):
                    yield tail
            except grpc.RpcError as e:
                raise self._t.error(e) from None
            finally:
                call.cancel()


class SyncStub:
    """`stub.run_remote(...)`: for a dependency whose `run_remote` is sync (callable from any thread)."""

    def __init__(self, target: _Target) -> None:
        self._t = target
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._semaphore = threading.BoundedSemaphore(target.options.concurrency_limit)

    def _client(self) -> inference_pb2_grpc.InferenceServiceStub:
        with self._lock:
            if self._channel is None:
                self._channel = grpc.insecure_channel(self._t.router)
        return inference_pb2_grpc.InferenceServiceStub(self._channel)

    def run_remote(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.update(zip((p[0] for p in self._t.endpoint.params), args))
        request = self._t.request(kwargs)
        with self._semaphore:
            for attempt in range(1, self._t.options.retries + 1):
                try:
                    chunks = list(self._client().Predict(request, timeout=self._t.options.timeout_sec,
                                                         metadata=self._t.metadata + _caller.get()))
                    return self._t.response(chunks)
                except grpc.RpcError as e:
                    if attempt == self._t.options.retries:
                        raise self._t.error(e) from None
        raise AssertionError("unreachable")


def make_stub(descriptor: DeployedServiceDescriptor, endpoint: Endpoint, router: str, api_key: str) -> Any:
    target = _Target(descriptor, endpoint, router, api_key)
    if endpoint.is_streaming:
        return StreamStub(target)
    return AsyncStub(target) if endpoint.is_async else SyncStub(target)
