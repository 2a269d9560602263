"""Model exceptions → the status a caller sees."""

from __future__ import annotations

import grpc
import pytest

from kingpost import errors
from kingpost.grpc_status import status_code
from kingpost_runner.user_errors import (
    MODEL_ERROR_MESSAGE, error_for_status, from_user_exception, missing_module_hint,
)


class HTTPException(Exception):
    def __init__(self, status_code: int, detail: object) -> None:
        self.status_code, self.detail = status_code, detail


@pytest.mark.parametrize(("status", "code"), [
    (400, grpc.StatusCode.INVALID_ARGUMENT), (404, grpc.StatusCode.NOT_FOUND),
    (418, grpc.StatusCode.INVALID_ARGUMENT), (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (500, grpc.StatusCode.INTERNAL), (502, grpc.StatusCode.INTERNAL),
    (503, grpc.StatusCode.UNAVAILABLE),
])
def test_status_keeps_exact_http_status_and_nearest_grpc_code(status: int, code: grpc.StatusCode) -> None:
    err = error_for_status(status, "m")
    assert err.http_status == status and status_code(err) is code and err.message == "m"


def test_http_exception_shape_passes_status_and_detail() -> None:
    err = from_user_exception(HTTPException(422, {"field": "x"}), "predict")
    assert err.http_status == 422 and err.message == '{"field": "x"}'


def test_other_exceptions_hide_their_message(caplog: pytest.LogCaptureFixture) -> None:
    err = from_user_exception(RuntimeError("secret internals"), "predict")
    assert isinstance(err, errors.ModelError) and err.message == MODEL_ERROR_MESSAGE
    assert "secret internals" in caplog.text  # the traceback goes to the log only


def test_a_missing_module_gets_a_hint_that_names_it_and_the_fix() -> None:
    try:
        try:
            import kingpost_no_such_module.sub  # noqa: F401
        except ImportError as e:
            raise RuntimeError("load failed") from e
    except RuntimeError as e:
        hint = missing_module_hint(e)
    assert hint is not None and "'kingpost_no_such_module'" in hint
    assert "`requirements` in config.yaml" in hint
    assert missing_module_hint(ValueError("bad weights")) is None
