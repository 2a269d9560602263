"""The async queue's decisions without I/O: the body a client sends, expiry, retry schedules, webhook
bodies and their signatures, as a Baseten receiver verifies them."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from kingpost.errors import InvalidArgument, PayloadTooLarge
from kingpost_router import async_policy as policy
from kingpost_router.async_input import AsyncInput, is_internal_host, parse_async_body


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_a_minimal_body_gets_baseten_defaults_and_the_input_as_compact_json() -> None:
    assert parse_async_body(body(model_input={"prompt": "hi"})) == AsyncInput(model_input=b'{"prompt":"hi"}')


def test_every_field_is_read() -> None:
    parsed = parse_async_body(body(
        model_input=[1], webhook_endpoint="https://example.com/hook", priority=2,
        max_time_in_queue_seconds=3600, store_result=True,
        inference_retry_config={"max_attempts": 3, "initial_delay_ms": 100, "max_delay_ms": 2000}))
    assert parsed == AsyncInput(model_input=b"[1]", webhook_endpoint="https://example.com/hook", priority=2,
                                max_time_in_queue_seconds=3600.0, max_attempts=3, initial_delay_seconds=0.1,
                                max_delay_seconds=2.0, store_result=True)


@pytest.mark.parametrize(("fields", "named"), [
    ({}, "model_input is required"),
    ({"model_input": 1, "priority": 3}, "priority must be 0, 1 or 2"),
    ({"model_input": 1, "priority": "high"}, "priority must be an integer"),
    ({"model_input": 1, "max_time_in_queue_seconds": 9}, "max_time_in_queue_seconds must be between 10"),
    ({"model_input": 1, "max_time_in_queue_seconds": 259_201}, "and 259200, not 259201"),
    ({"model_input": 1, "webhook_endpoint": "example.com/hook"}, "webhook_endpoint 'example.com/hook'"),
    ({"model_input": 1, "webhook_endpoint": 5}, "webhook_endpoint must be a URL"),
    ({"model_input": 1, "webhook_endpoint": "https://h:port/"}, "port that is not a number"),
    ({"model_input": 1, "store_result": "yes"}, "store_result must be true or false"),
    ({"model_input": 1, "inference_retry_config": {"max_attempts": 0}},
     "inference_retry_config.max_attempts must be 1 to 10"),
    ({"model_input": 1, "inference_retry_config": {"tries": 2}}, "unknown field(s) tries"),
    ({"model_input": 1, "modelinput": 1}, "unknown field(s) modelinput"),
])
def test_a_bad_field_is_refused_by_name(fields: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidArgument, match=None) as e:
        parse_async_body(body(**fields))
    assert named in e.value.message


def test_a_body_that_is_not_a_json_object_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="not JSON"):
        parse_async_body(b"{")
    with pytest.raises(InvalidArgument, match="JSON object"):
        parse_async_body(b"[1]")


def test_a_body_over_the_limit_is_413_before_it_is_parsed() -> None:
    with pytest.raises(PayloadTooLarge, match="limit is 100"):
        parse_async_body(b"x" * 101, max_bytes=100)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x",
                                 "http://[::1]:80/x", "http://169.254.169.254/latest", "http://api.localhost/"])
def test_webhooks_to_the_platforms_own_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(InvalidArgument, match="internal address"):
        parse_async_body(body(model_input=1, webhook_endpoint=url))
    assert parse_async_body(body(model_input=1, webhook_endpoint=url),
                            allow_internal_webhooks=True).webhook_endpoint == url


def test_public_hosts_are_not_internal() -> None:
    assert not is_internal_host("example.com") and not is_internal_host("8.8.8.8")


def test_a_request_expires_only_after_its_time_in_queue() -> None:
    assert not policy.expired(created_at=100.0, max_time_in_queue_seconds=600, now=700.0)
    assert policy.expired(created_at=100.0, max_time_in_queue_seconds=600, now=700.001)


def test_model_retries_back_off_exponentially_up_to_the_cap() -> None:
    assert [policy.backoff(a, initial=1.0, most=5.0) for a in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.retryable(policy.MODEL_PREDICT_ERROR) and not policy.retryable(policy.MODEL_INVALID_INPUT)


def test_webhook_tries_span_about_two_minutes_and_only_retry_what_may_change() -> None:
    assert policy.WEBHOOK_DELAYS[0] < 1 and 100 < sum(policy.WEBHOOK_DELAYS) < 200
    assert [policy.webhook_retry(s) for s in (0, 408, 429, 500, 503)] == [True] * 5
    assert [policy.webhook_retry(s) for s in (400, 401, 404, 410)] == [False] * 4
    assert policy.webhook_delivered(204) and not policy.webhook_delivered(301)


def test_errors_map_to_basetens_codes() -> None:
    assert [policy.error_code(s) for s in (400, 404, 429, 500, 503, 504)] == [
        "MODEL_INVALID_INPUT", "MODEL_DOES_NOT_EXIST", "MODEL_NOT_READY", "MODEL_PREDICT_ERROR",
        "MODEL_NOT_READY", "MODEL_PREDICT_TIMEOUT"]


def test_the_webhook_body_is_basetens_and_its_signature_a_receiver_can_check() -> None:
    sent = policy.webhook_body(request_id="r1", model_id="mdl_a", deployment_id="dep_b", now=0.0,
                               data={"out": 1}, errors=[])
    assert json.loads(sent) == {"request_id": "r1", "model_id": "mdl_a", "deployment_id": "dep_b",
                                "type": "async_request_completed", "time": "1970-01-01T00:00:00Z",
                                "data": {"out": 1}, "errors": []}
    new, old = "whsec_" + "n" * 32, "whsec_" + "o" * 32
    header = policy.signature_header(sent, [new, old])
    # What Baseten's guide has a receiver do: HMAC-SHA256 of the raw body with the secret, hex.
    expected = hmac.new(new.encode(), sent, hashlib.sha256).hexdigest()
    assert header.split(",")[0] == f"v1={expected}"
    assert policy.verify(sent, header, new) and policy.verify(sent, header, old)
    assert not policy.verify(sent + b" ", header, new)
    assert not policy.verify(sent, header, "whsec_" + "x" * 32)
    assert policy.signature_header(sent, []) == ""


def test_a_deployments_async_calls_run_at_twice_its_ready_capacity_and_one_at_zero() -> None:
    from kingpost_router.async_worker import concurrency_limit
    from kingpost_router.routes import Deployment, Replica

    def deployment(replicas: int, per_replica: int) -> Deployment:
        return Deployment("dep_a", "mdl_a", "a", True, "ACTIVE", "", per_replica,
                          tuple(Replica(f"rep_{i}", f"127.0.0.1:{i + 1}") for i in range(replicas)))

    assert concurrency_limit(deployment(0, 4), cap=64) == 1  # at zero: one call, which wakes it
    assert concurrency_limit(deployment(3, 4), cap=64) == 24
    assert concurrency_limit(deployment(3, 0), cap=64) == 64  # no per-replica limit: the router's cap
    assert concurrency_limit(deployment(40, 4), cap=64) == 64


def test_a_nats_client_is_wedged_only_when_long_down_and_the_server_is_there() -> None:
    from kingpost_router.nats_watchdog import wedged

    assert not wedged(None, now=100.0, server_accepts=True, limit=30)  # connected
    assert not wedged(80.0, now=100.0, server_accepts=True, limit=30)  # reconnecting, give it time
    assert not wedged(50.0, now=100.0, server_accepts=False, limit=30)  # NATS is down: sync goes on
    assert wedged(50.0, now=100.0, server_accepts=True, limit=30)
