"""The error hierarchy survives the trip through a gRPC status: class, message and HTTP status;
and a servicer's handler that raises one ends its RPC with that status."""

from __future__ import annotations

import inspect
from typing import Any

import grpc
import pytest

from kingpost import errors, grpc_status


class FakeRpcError(grpc.RpcError):
    """What a client sees: a code, details and trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str | None, trailers: tuple[tuple[str, str], ...] = ()):
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailers


class FakeContext:
    """Records what grpc_abort tells the server context; abort raises, as grpc.aio's does."""

    def __init__(self) -> None:
        self.trailers: Any = None
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def set_trailing_metadata(self, trailers: Any) -> None:
        self.trailers = trailers

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


# What each class travels as: clients and the gateway (Envoy's gRPC → HTTP mapping) depend on these.
ROUND_TRIPPING = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PayloadTooLarge, grpc.StatusCode.OUT_OF_RANGE),
    (errors.TooManyRequests, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.Internal, grpc.StatusCode.INTERNAL),
]


async def wire(err: errors.KingpostError) -> FakeRpcError:
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await grpc_status.grpc_abort(context, err)  # type: ignore[arg-type]
    assert context.aborted is not None
    return FakeRpcError(context.aborted[0], context.aborted[1], tuple(context.trailers))


@pytest.mark.parametrize(("cls", "code"), ROUND_TRIPPING, ids=[cls.__name__ for cls, _ in ROUND_TRIPPING])
async def test_each_error_travels_as_its_code_and_comes_back_as_itself(
    cls: type[errors.KingpostError], code: grpc.StatusCode
) -> None:
    on_the_wire = await wire(cls("model 'llama' says no"))
    assert on_the_wire.code() is code
    back = grpc_status.from_rpc_error(on_the_wire)
    assert type(back) is cls
    assert back.message == "model 'llama' says no"
    assert back.http_status == cls.http_status


async def test_a_model_error_keeps_the_models_own_status() -> None:
    on_the_wire = await wire(errors.ModelError("I'm a teapot", http_status=418))
    assert on_the_wire.code() is grpc.StatusCode.INTERNAL
    back = grpc_status.from_rpc_error(on_the_wire)
    assert back.http_status == 418
    assert str(back) == "I'm a teapot"


def test_payload_too_large_is_413_even_though_grpc_has_no_such_code() -> None:
    err = errors.PayloadTooLarge("upload over 1 GiB")
    assert err.http_status == 413
    assert grpc_status.trailing_metadata(err) == (("x-http-status", "413"),)


def test_statuses_from_elsewhere_map_to_the_nearest_class() -> None:
    # No x-http-status trailer (a peer that is not kingpost): the class's own status applies.
    duplicate = grpc_status.from_rpc_error(FakeRpcError(grpc.StatusCode.ALREADY_EXISTS, "dup"))
    assert type(duplicate) is errors.Conflict and duplicate.http_status == 409
    unknown = grpc_status.from_rpc_error(FakeRpcError(grpc.StatusCode.UNKNOWN, None))
    assert type(unknown) is errors.Internal and unknown.http_status == 500
    assert unknown.message  # never empty, even without details
    garbled = FakeRpcError(grpc.StatusCode.NOT_FOUND, "gone", (("x-http-status", "not-a-number"),))
    assert grpc_status.from_rpc_error(garbled).http_status == 404


def test_only_unavailable_is_retryable() -> None:
    assert grpc_status.RETRYABLE_CODES == {grpc.StatusCode.UNAVAILABLE}


class Servicer:
    def __init__(self) -> None:
        self.calls = 0

    @grpc_status.abort_on_error
    async def GetModel(self, request: str, context: FakeContext) -> str:  # noqa: N802
        self.calls += 1
        if request == "missing":
            raise errors.NotFound(f"model '{request}' not found")
        if request == "bug":
            raise KeyError(request)
        return f"model {request}"


async def test_a_handler_that_raises_ends_its_rpc_with_the_errors_status() -> None:
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await Servicer().GetModel("missing", context)
    assert context.aborted == (grpc.StatusCode.NOT_FOUND, "model 'missing' not found")
    assert tuple(context.trailers) == (("x-http-status", "404"),)


async def test_a_handler_that_answers_is_left_alone_and_a_bug_is_not_dressed_up() -> None:
    servicer, context = Servicer(), FakeContext()
    assert await servicer.GetModel("llama", context) == "model llama"
    with pytest.raises(KeyError):  # grpc answers UNKNOWN and logs the traceback
        await servicer.GetModel("bug", context)
    assert context.aborted is None and servicer.calls == 2


def test_a_streaming_handler_is_refused_at_definition() -> None:
    async def Predict(self: object, request: str, context: FakeContext):  # noqa: N802
        yield request

    with pytest.raises(TypeError, match="Predict is not one"):
        grpc_status.abort_on_error(Predict)


def _servicers() -> list[type]:
    from kingpost_builder.service import BuildServicer
    from kingpost_router.service import RouterServicer
    from kingpost_runner.server import RunnerServicer
    from kingpost_scheduler.handlers.internal import SchedulerServicer
    from kingpost_scheduler.handlers.management import ManagementServicer
    from kingpost_worker_agent.service import AgentServicer

    return [BuildServicer, ManagementServicer, SchedulerServicer, RouterServicer, RunnerServicer, AgentServicer]


@pytest.mark.parametrize("servicer", _servicers(), ids=lambda s: s.__name__)
def test_every_unary_rpc_of_every_servicer_ends_platform_errors_the_same_way(servicer: type) -> None:
    # Otherwise a NotFound raised in one would reach its caller as UNKNOWN, a 500.
    async def probe() -> None: ...

    one_way = grpc_status.abort_on_error(probe).__code__
    generated = next(base for base in servicer.__mro__ if base.__module__.endswith("_pb2_grpc"))
    rpcs = [name for name in vars(generated) if not name.startswith("_")]
    assert rpcs, f"no RPCs found on {generated.__name__}"
    unary = [name for name in rpcs if not inspect.isasyncgenfunction(getattr(servicer, name))]
    bare = [name for name in unary if getattr(servicer, name).__code__ is not one_way]
    assert not bare, f"{servicer.__name__}: {', '.join(bare)} need @grpc_status.abort_on_error"
