"""The one seam where exceptions from the model's own code become platform errors.

- An exception that carries an int `status_code` and a `detail` (fastapi's / starlette's
  HTTPException, detected by shape because fastapi is not installed here) → that status, with the
  detail as the message (JSON text when the detail is not a string).
- Anything else → 500 "Internal Server Error (in model/chainlet)."; the traceback goes to the
  runner's log (stderr), never to the caller.
"""

from __future__ import annotations

import json
import logging

from kingpost import errors

log = logging.getLogger("kingpost_runner.model")

MODEL_ERROR_MESSAGE = "Internal Server Error (in model/chainlet)."
NOT_READY_MESSAGE = "Model with name model is not ready."

# The gRPC code follows the HTTP status through kingpost.errors' own classes.
_BY_STATUS: dict[int, type[errors.KingpostError]] = {
    400: errors.InvalidArgument,
    401: errors.Unauthenticated,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    429: errors.TooManyRequests,
    503: errors.Unavailable,
    504: errors.DeadlineExceeded,
}


def error_for_status(status: int, message: str) -> errors.KingpostError:
    """An error that ends the RPC with `status` exactly (in x-http-status) and the closest gRPC code."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = errors.InvalidArgument if 400 <= status < 500 else errors.ModelError
    return cls(message, http_status=status)


def missing_route(method_name: str | None, http_method: str, path: str) -> errors.KingpostError:
    """truss-server's 404 (error code 700) for an OpenAI-style route whose method the model lacks;
    a plain 404 for a path it does not serve at all."""
    if method_name is not None and http_method in ("POST", ""):
        return errors.NotFound(f"`{method_name}` must only be called if model has it.")
    return errors.NotFound(f"{http_method or 'POST'} {path} is not served by a Truss model: its /sync/ "
                           "routes are POST /v1/chat/completions, /v1/completions, /v1/embeddings, "
                           "/v1/messages and /v1/responses")


def _http_exception_status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and hasattr(exc, "detail"):
        return status
    return None


def from_user_exception(exc: BaseException, where: str) -> errors.KingpostError:
    """Translate an exception raised by the model's `where` method (logging what the caller cannot see)."""
    status = _http_exception_status(exc)
    if status is not None:
        detail = exc.detail  # type: ignore[attr-defined]
        message = detail if isinstance(detail, str) else json.dumps(detail, default=str)
        log.info("%s raised an HTTP error %d: %s", where, status, message)
        return error_for_status(status, message)
    log.error("Exception in model `%s`:", where, exc_info=exc)
    return errors.ModelError(MODEL_ERROR_MESSAGE)


def missing_module_hint(exc: BaseException) -> str | None:
    """When loading failed because the model imports a module its environment lacks, what to do."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModuleNotFoundError) and current.name:
            top = current.name.split(".", 1)[0]
            return (f"the model imports '{current.name}', which is not installed in its environment: a Truss "
                    f"runs with only its own requirements (and the runner's packages), so add the package "
                    f"that provides '{top}' to `requirements` in config.yaml and push again")
        current = current.__cause__ or current.__context__
    return None
