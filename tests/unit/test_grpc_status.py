"""The error hierarchy survives the trip through a gRPC status: class, message and HTTP status."""

from __future__ import annotations

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

