"""The async queue's decisions: statuses, expiry, retry schedules, webhook bodies and signatures.

Pure: times are arguments (Unix seconds), nothing here reads a clock or opens a socket.

    expired(created_at=100.0, max_time_in_queue_seconds=600, now=701.0)  → True
    backoff(attempt=3, initial=1.0, most=5.0)                              → 4.0 (1, 2, 4, 5, 5, ...)
    signature_header(b'{"request_id": ...}', ["whsec_new", "whsec_old"])  → "v1=<hex>,v1=<hex>"

Each request reaches exactly one terminal status. A status record moves only forward:
QUEUED → IN_PROGRESS → SUCCEEDED | FAILED (and WEBHOOK_FAILED after either when its webhook could
not be delivered), or QUEUED → CANCELED | EXPIRED. A redelivered job whose record is already
terminal is settled without calling the model again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

QUEUED = "QUEUED"
IN_PROGRESS = "IN_PROGRESS"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
EXPIRED = "EXPIRED"
CANCELED = "CANCELED"
WEBHOOK_FAILED = "WEBHOOK_FAILED"
TERMINAL = frozenset({SUCCEEDED, FAILED, EXPIRED, CANCELED, WEBHOOK_FAILED})

# webhook_status
PENDING = "PENDING"
NO_WEBHOOK_PROVIDED = "NO_WEBHOOK_PROVIDED"

# errors[].code (Baseten's, and REQUEST_EXPIRED)
MODEL_PREDICT_ERROR = "MODEL_PREDICT_ERROR"
MODEL_PREDICT_TIMEOUT = "MODEL_PREDICT_TIMEOUT"
MODEL_NOT_READY = "MODEL_NOT_READY"
MODEL_DOES_NOT_EXIST = "MODEL_DOES_NOT_EXIST"
MODEL_INVALID_INPUT = "MODEL_INVALID_INPUT"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
REQUEST_EXPIRED = "REQUEST_EXPIRED"

WEBHOOK_TYPE = "async_request_completed"
SIGNATURE_HEADER = "X-BASETEN-SIGNATURE"
# Seconds before each webhook try after the first: about 2 minutes in all, then WEBHOOK_FAILED.
WEBHOOK_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


def expired(created_at: float, max_time_in_queue_seconds: float, now: float) -> bool:
    """True once the request has waited longer than it allowed; it must then not reach the model."""
    return now - created_at > max_time_in_queue_seconds


def backoff(attempt: int, *, initial: float, most: float) -> float:
    """Seconds before model call `attempt + 1` (attempt 1 failed → `initial`), doubling up to `most`."""
    return min(most, initial * (2 ** max(0, attempt - 1)))


def retryable(code: str) -> bool:
    """A model call that failed this way may succeed if tried again (inference_retry_config)."""
    return code in (MODEL_PREDICT_ERROR, MODEL_PREDICT_TIMEOUT, MODEL_NOT_READY, INTERNAL_SERVER_ERROR)


def error_code(http_status: int) -> str:
    """Baseten's async error code for the HTTP status a sync call to the model would have answered."""
    if http_status == 400:
        return MODEL_INVALID_INPUT
    if http_status == 404:
        return MODEL_DOES_NOT_EXIST
    if http_status == 504:
        return MODEL_PREDICT_TIMEOUT
    if http_status in (429, 503):
        return MODEL_NOT_READY
    if http_status >= 500 or http_status == 0:
        return MODEL_PREDICT_ERROR
    return INTERNAL_SERVER_ERROR


def iso(unix: float) -> str:
    """RFC 3339 in UTC with microseconds, as Baseten's timestamps."""
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def webhook_body(*, request_id: str, model_id: str, deployment_id: str, now: float, data: Any,
                 errors: Sequence[dict[str, str]]) -> bytes:
    """The POST body Baseten sends; `data` is the model's output (None after an error)."""
    return json.dumps({
        "request_id": request_id, "model_id": model_id, "deployment_id": deployment_id,
        "type": WEBHOOK_TYPE, "time": iso(now), "data": data, "errors": list(errors),
    }, separators=(",", ":")).encode()


def sign(body: bytes, secret: str) -> str:
    """The hex HMAC-SHA256 of the exact body bytes, keyed with the secret as written (`whsec_…`)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_header(body: bytes, secrets: Sequence[str]) -> str:
    """`v1=<sig>` per active secret, newest first, comma-separated; "" when there is none."""
    return ",".join(f"v1={sign(body, s)}" for s in secrets)


def verify(body: bytes, header: str, secret: str) -> bool:
    """What a receiver does: any `v1=` signature in the header matches this secret's."""
    want = sign(body, secret)
    return any(hmac.compare_digest(part.strip().removeprefix("v1="), want)
               for part in header.split(",") if part.strip().startswith("v1="))


REFUSED_ADDRESS = -1  # `send`'s status for a host that resolves to internal addresses only


def webhook_delivered(http_status: int) -> bool:
    return 200 <= http_status < 300


def webhook_retry(http_status: int) -> bool:
    """Worth trying again: no answer (0), a timeout, back-pressure or a server error. A 4xx other
    than 408/429 says the receiver refuses this body, and sending it again will not change that."""
    return http_status == 0 or http_status in (408, 429) or http_status >= 500
