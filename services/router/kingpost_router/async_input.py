"""An async_predict body, read and checked: Baseten's fields, each refused by name when it is wrong.

    parse_async_body(b'{"model_input": {"x": 1}, "priority": 1}', max_bytes=256 * 1024)
        → AsyncInput(model_input=b'{"x": 1}', priority=1, max_time_in_queue_seconds=600.0, ...)

Pure: no I/O. The webhook URL is checked as written (scheme, host, and a host that is the platform's
own — loopback, private, link-local — refused unless `allow_internal_webhooks`); a name is not
resolved here but at each delivery (`webhooks.PublicOnly`), where one that resolves inside is refused.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kingpost.errors import InvalidArgument, PayloadTooLarge

# Baseten's limits (reference/truss-compat.md §4.1).
MAX_BODY_BYTES = 256 * 1024
DEFAULT_TIME_IN_QUEUE_SECONDS = 600.0
MIN_TIME_IN_QUEUE_SECONDS = 10.0
MAX_TIME_IN_QUEUE_SECONDS = 259_200.0
PRIORITIES = (0, 1, 2)
MAX_ATTEMPTS = 10
DEFAULT_INITIAL_DELAY_SECONDS = 1.0
DEFAULT_MAX_DELAY_SECONDS = 5.0
FIELDS = frozenset({"model_input", "webhook_endpoint", "priority", "max_time_in_queue_seconds",
                    "inference_retry_config", "store_result"})
RETRY_FIELDS = frozenset({"max_attempts", "initial_delay_ms", "max_delay_ms"})
_INTERNAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class AsyncInput:
    model_input: bytes  # JSON, as the model gets it
    webhook_endpoint: str = ""
    priority: int = 0
    max_time_in_queue_seconds: float = DEFAULT_TIME_IN_QUEUE_SECONDS
    max_attempts: int = 1
    initial_delay_seconds: float = DEFAULT_INITIAL_DELAY_SECONDS
    max_delay_seconds: float = DEFAULT_MAX_DELAY_SECONDS
    store_result: bool = False


def parse_async_body(data: bytes, *, max_bytes: int = MAX_BODY_BYTES,
                     allow_internal_webhooks: bool = False) -> AsyncInput:
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"async request body is {len(data)} bytes; the limit is {max_bytes}")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"async request body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise InvalidArgument("async request body must be a JSON object with `model_input`")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown field(s) {', '.join(unknown)}; expected some of "
                              f"{', '.join(sorted(FIELDS))}")
    if "model_input" not in body:
        raise InvalidArgument("model_input is required: the input the model's predict receives")
    webhook = body.get("webhook_endpoint") or ""
    if not isinstance(webhook, str):
        raise InvalidArgument("webhook_endpoint must be a URL string")
    if webhook:
        check_webhook_url(webhook, allow_internal=allow_internal_webhooks)
    priority = _integer(body, "priority", 0)
    if priority not in PRIORITIES:
        raise InvalidArgument(f"priority must be 0, 1 or 2 (lower runs sooner), not {priority}")
    ttl = _number(body, "max_time_in_queue_seconds", DEFAULT_TIME_IN_QUEUE_SECONDS)
    if not MIN_TIME_IN_QUEUE_SECONDS <= ttl <= MAX_TIME_IN_QUEUE_SECONDS:
        raise InvalidArgument(f"max_time_in_queue_seconds must be between {MIN_TIME_IN_QUEUE_SECONDS:g} "
                              f"and {MAX_TIME_IN_QUEUE_SECONDS:g}, not {ttl:g}")
    store = body.get("store_result", False)
    if not isinstance(store, bool):
        raise InvalidArgument(f"store_result must be true or false, not {store!r}")
    retry = body.get("inference_retry_config") or {}
    if not isinstance(retry, dict):
        raise InvalidArgument("inference_retry_config must be an object with max_attempts, "
                              "initial_delay_ms, max_delay_ms")
    unknown = sorted(set(retry) - RETRY_FIELDS)
    if unknown:
        raise InvalidArgument(f"inference_retry_config has unknown field(s) {', '.join(unknown)}")
    attempts = _integer(retry, "max_attempts", 1, "inference_retry_config.")
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise InvalidArgument(f"inference_retry_config.max_attempts must be 1 to {MAX_ATTEMPTS}, not {attempts}")
    initial = _number(retry, "initial_delay_ms", DEFAULT_INITIAL_DELAY_SECONDS * 1000, "inference_retry_config.")
    most = _number(retry, "max_delay_ms", DEFAULT_MAX_DELAY_SECONDS * 1000, "inference_retry_config.")
    if not 0 <= initial <= most <= 60_000:
        raise InvalidArgument("inference_retry_config: need 0 <= initial_delay_ms <= max_delay_ms <= 60000, "
                              f"not {initial:g} and {most:g}")
    return AsyncInput(
        model_input=json.dumps(body["model_input"], separators=(",", ":")).encode(),
        webhook_endpoint=webhook, priority=priority, max_time_in_queue_seconds=ttl, max_attempts=attempts,
        initial_delay_seconds=initial / 1000, max_delay_seconds=most / 1000, store_result=store)


def check_webhook_url(url: str, *, allow_internal: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"webhook_endpoint {url!r} is not an http(s) URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidArgument(f"webhook_endpoint {url!r} has a port that is not a number") from None
    if not allow_internal and is_internal_host(parts.hostname):
        raise InvalidArgument(f"webhook_endpoint {url!r} points at an internal address ({parts.hostname}); "
                              "this platform's configuration refuses those (router "
                              "allow_internal_webhooks)")
    return url


def is_internal_host(host: str) -> bool:
    if host.lower().rstrip(".") in _INTERNAL_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not ip.is_global


def _integer(body: dict[str, Any], field: str, default: int, prefix: str = "") -> int:
    value = body.get(field, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{prefix}{field} must be an integer, not {value!r}")
    return value


def _number(body: dict[str, Any], field: str, default: float, prefix: str = "") -> float:
    value = body.get(field, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{prefix}{field} must be a number, not {value!r}")
    return float(value)
