"""One call to a runner: its channel, the bytes forwarded, and what a failure means to the caller.

Runner errors travel back unchanged (code, details, trailing metadata with `x-http-status`): this
is the one place that talks raw gRPC to runners rather than through `kingpost.rpc`, because
`from_rpc_error` would fold codes and drop trailers. Failures of the connection itself become:
- `NotConnected`: no connection was made, so the model has not run: the caller may try another
  replica (the one retry that cannot run a model twice), or hold the request until one answers;
- a 502 naming the crash: the runner had the request and stopped answering (its process died:
  `kill -9`, an out-of-memory kill, `os._exit` in `predict`); never retried, the model may have run;
- a 504 when the runner took longer than the request's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.api import httpbody_pb2
from opentelemetry.trace import Tracer

from kingpost import rpc
from kingpost.errors import DeadlineExceeded, ModelError
from kingpost.grpc_status import HTTP_STATUS_KEY
from kingpost.v1 import runner_pb2, runner_pb2_grpc
from kingpost_router import tracing
from kingpost_router.routes import Deployment, Replica

# A runner that comes back on the same address is reachable within a second, not gRPC's
# default reconnect backoff of up to two minutes (calls fail fast while a channel backs off).
# No transparent retries inside gRPC: the router retries itself, and only before anything was sent;
# gRPC's retry machinery also costs every call CPU.
RUNNER_CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 1000),
                          ("grpc.enable_retries", 0))

_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
_DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED
_READY = grpc.ChannelConnectivity.READY
_SHUTDOWN = grpc.ChannelConnectivity.SHUTDOWN


# Hears a Sync call's initial metadata (the server's status and headers) before its first chunk.
OnHeaders = Callable[[Any], Awaitable[None]]


class Passthrough(Exception):
    """The runner's own status, to be re-raised unchanged."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self.error = error


class NotConnected(Exception):
    """The runner could not be reached: the request never left the router."""

    def __init__(self, replica: Replica, detail: str) -> None:
        self.replica = replica
        self.detail = f"replica {replica.replica_id} at {replica.address}: {detail}"


class _Upstream:
    """One runner address: its channel and the bound Predict, Sync and Websocket methods."""

    __slots__ = ("channel", "predict", "sync", "websocket")

    def __init__(self, address: str, keepalive_seconds: float) -> None:
        options = (*rpc.channel_options(keepalive_seconds), *RUNNER_CHANNEL_OPTIONS)
        self.channel = grpc.aio.insecure_channel(address, options=options)
        stub = runner_pb2_grpc.RunnerServiceStub(self.channel)
        self.predict = stub.Predict
        self.sync = stub.Sync
        self.websocket = stub.Websocket


class Forwarder:
    def __init__(self, *, release: Callable[[str, str], None], unreachable: Callable[[Replica, str], None],
                 keepalive_seconds: float, tracer: Tracer | None = None, close_grace: float = 600.0) -> None:
        """`release(deployment_id, replica_id)` gives a call's slot back when it ends;
        `unreachable(replica, why)` hears of a runner that refused a connection (before the slot
        is released, so that the slot goes to no request bound for the same runner)."""
        self._release = release
        self._keepalive_seconds = keepalive_seconds
        self._unreachable = unreachable
        self._tracer = tracer
        self._close_grace = close_grace
        self._upstreams: dict[str, _Upstream] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # Requests in a runner call now, per deployment id (the autoscaler's input). Plain ints
        # mutated on one event loop: no locks needed.
        self.in_flight: dict[str, int] = {}

    def set_addresses(self, addresses: frozenset[str]) -> int:
        """A channel per runner address: new ones opened, removed ones closed once their calls
        end. Returns how many were closed."""
        for address in addresses - self._upstreams.keys():
            self._upstreams[address] = _Upstream(address, self._keepalive_seconds)
        removed = [self._upstreams.pop(a) for a in list(self._upstreams) if a not in addresses]
        for upstream in removed:
            task = asyncio.get_running_loop().create_task(upstream.channel.close(grace=self._close_grace))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return len(removed)

    @property
    def channels(self) -> int:
        return len(self._upstreams)

    async def close(self) -> None:
        upstreams, self._upstreams = list(self._upstreams.values()), {}
        await asyncio.gather(*(u.channel.close(grace=None) for u in upstreams), *self._closing,
                             return_exceptions=True)

    async def wait_connectable(self, address: str) -> bool:
        """True once the runner at `address` accepts a connection (the channel reconnects with a
        backoff of at most a second); False when its channel is closed (gone from the table)."""
        upstream = self._upstreams.get(address)
        if upstream is None:
            return False
        channel = upstream.channel
        state = channel.get_state(try_to_connect=True)
        while state is not _READY:
            if state is _SHUTDOWN or self._upstreams.get(address) is not upstream:
                return False
            await channel.wait_for_state_change(state)
            state = channel.get_state(try_to_connect=True)
        return True

    def _upstream(self, address: str) -> _Upstream:
        upstream = self._upstreams.get(address)
        if upstream is None:  # the table changed under this call; open it as set_addresses would
            upstream = self._upstreams[address] = _Upstream(address, self._keepalive_seconds)
        return upstream

    def _ended(self, deployment_id: str, replica_id: str) -> None:
        """A runner call (or connection) is over: no longer in flight, its slot given back."""
        left = self.in_flight[deployment_id] - 1
        if left:
            self.in_flight[deployment_id] = left
        else:
            del self.in_flight[deployment_id]
        self._release(deployment_id, replica_id)

    @contextlib.asynccontextmanager
    async def websocket(self, deployment: Deployment, replica: Replica, metadata: list[tuple[str, str]]
                        ) -> AsyncIterator[grpc.aio.StreamStreamCall]:
        """A Websocket stream to the replica, whose slot the caller took: counted in flight (an open
        connection is load, for the autoscaler) and its slot given back when it ends."""
        upstream = self._upstream(replica.address)
        did = deployment.deployment_id
        self.in_flight[did] = self.in_flight.get(did, 0) + 1
        call = upstream.websocket(metadata=metadata)
        try:
            yield call
        finally:
            if not call.done():
                call.cancel()
            self._ended(did, replica.replica_id)

    async def forward(
        self,
        deployment: Deployment,
        replica: Replica,
        request: runner_pb2.RunnerPredictRequest | runner_pb2.RunnerSyncRequest,
        metadata: list[tuple[str, str]],
        timeout: float,
        trace: tracing.RequestTrace | None = None,
        on_headers: OnHeaders | None = None,
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        """Call the replica, whose slot the caller took; the slot is given back at the end.
        A `RunnerSyncRequest` goes to Sync, whose initial metadata `on_headers` hears first."""
        upstream = self._upstream(replica.address)
        did = deployment.deployment_id
        self.in_flight[did] = self.in_flight.get(did, 0) + 1
        call_span = None
        if trace is not None:
            call_span = tracing.start_call(trace, deployment, replica)
            metadata = tracing.with_context(metadata, call_span)
        sync = on_headers is not None
        call = (upstream.sync if sync else upstream.predict)(request, timeout=timeout, metadata=metadata)
        sent = False
        code = "OK"
        try:
            if sync:
                headers = await call.initial_metadata()
                if headers:  # none: the call failed before the server answered (raised below)
                    await on_headers(headers)  # type: ignore[misc]
            async for chunk in call:
                sent = True
                yield chunk
            if call_span is not None:
                tracing.runner_phases(trace, call_span, await call.trailing_metadata() or ())  # type: ignore[arg-type]
        except grpc.aio.AioRpcError as e:
            code = e.code().name
            error = translate(e, sent, replica, timeout)
            if isinstance(error, NotConnected):
                self._unreachable(replica, error.detail)
            raise error from None
        except BaseException:
            code = "CANCELLED"
            raise
        finally:
            if not call.done():
                call.cancel()
            self._ended(did, replica.replica_id)
            if call_span is not None:
                tracing.finish(call_span, code)


def translate(e: grpc.aio.AioRpcError, sent: bool, replica: Replica, timeout: float) -> Exception:
    """What a failed runner call means to the caller (the module docstring lists the cases)."""
    code = e.code()
    trailers = e.trailing_metadata() or ()
    from_runner = any(key == HTTP_STATUS_KEY for key, _ in trailers)
    if code is _UNAVAILABLE and not from_runner:
        details = e.details() or ""
        # gRPC's words for "no connection was made"; anything else (e.g. "Socket closed",
        # "Connection reset by peer") means the runner had the request and may have run the model.
        if not sent and "failed to connect" in details.lower():
            return NotConnected(replica, details)
        return ModelError(
            f"replica {replica.replica_id} stopped answering mid-request: its runner crashed or was killed "
            f"({details}); the request was not retried, as the model may have run", http_status=502)
    if code is _DEADLINE and not from_runner:
        return DeadlineExceeded(f"the model did not answer within {timeout:g} s")
    return Passthrough(e)
