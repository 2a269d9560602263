"""The error hierarchy survives the trip through a gRPC status: class, message and HTTP status."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from kingpost import errors


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


ROUND_TRIPPING = [
    errors.InvalidArgument, errors.Unauthenticated, errors.PermissionDenied, errors.NotFound,
    errors.Conflict, errors.PayloadTooLarge, errors.TooManyRequests, errors.DeadlineExceeded,
    errors.Unavailable, errors.Internal,
]


async def wire(err: errors.KingpostError) -> FakeRpcError:
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await errors.grpc_abort(context, err)  # type: ignore[arg-type]
    assert context.aborted is not None
    return FakeRpcError(context.aborted[0], context.aborted[1], tuple(context.trailers))


@pytest.mark.parametrize("cls", ROUND_TRIPPING, ids=lambda c: c.__name__)
async def test_each_error_comes_back_as_itself(cls: type[errors.KingpostError]) -> None:
    back = errors.from_rpc_error(await wire(cls("model 'llama' says no")))
    assert type(back) is cls
    assert back.message == "model 'llama' says no"
    assert back.http_status == cls.http_status


async def test_a_model_error_keeps_the_models_own_status() -> None:
    back = errors.from_rpc_error(await wire(errors.ModelError("I'm a teapot", http_status=418)))
    assert back.http_status == 418
    assert back.grpc_code == grpc.StatusCode.INTERNAL
    assert str(back) == "I'm a teapot"


def test_payload_too_large_is_413_even_though_grpc_has_no_such_code() -> None:
    err = errors.PayloadTooLarge("upload over 1 GiB")
    assert err.http_status == 413
    assert errors.trailing_metadata(err) == (("x-http-status", "413"),)


def test_statuses_from_elsewhere_map_to_the_nearest_class() -> None:
    # No x-http-status trailer (a peer that is not kingpost): the class's own status applies.
    assert isinstance(errors.from_rpc_error(FakeRpcError(grpc.StatusCode.ALREADY_EXISTS, "dup")), errors.Conflict)
    unknown = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.UNKNOWN, None))
    assert type(unknown) is errors.Internal and unknown.http_status == 500
    assert unknown.message  # never empty, even without details
    garbled = FakeRpcError(grpc.StatusCode.NOT_FOUND, "gone", (("x-http-status", "not-a-number"),))
    assert errors.from_rpc_error(garbled).http_status == 404


def test_only_unavailable_is_retryable() -> None:
    assert errors.RETRYABLE_CODES == {grpc.StatusCode.UNAVAILABLE}
