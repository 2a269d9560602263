"""Which requests a deployment's request logging samples, and what its line shows of their bodies."""

from __future__ import annotations

import base64
import itertools
import json
import logging

import pytest

from kingpost_runner import observe, request_log
from kingpost_runner.request_log import Capture, Policy, from_env, sampled, shown


def test_off_unless_a_rate_above_zero_is_set() -> None:
    assert from_env({}) is None
    assert from_env({request_log.SAMPLE_RATE_ENV: "0"}) is None
    assert from_env({request_log.SAMPLE_RATE_ENV: "0.25"}) == Policy(0.25, request_log.DEFAULT_MAX_BYTES)
    assert from_env({request_log.SAMPLE_RATE_ENV: "1", request_log.MAX_BYTES_ENV: "64"}) == Policy(1.0, 64)


@pytest.mark.parametrize(("env", "named"), [
    ({request_log.SAMPLE_RATE_ENV: "1.5"}, "KINGPOST_REQUEST_LOG_SAMPLE_RATE = '1.5': must be a number from 0 to 1"),
    ({request_log.SAMPLE_RATE_ENV: "half"}, "KINGPOST_REQUEST_LOG_SAMPLE_RATE = 'half'"),
    ({request_log.SAMPLE_RATE_ENV: "1", request_log.MAX_BYTES_ENV: "0"}, "KINGPOST_REQUEST_LOG_MAX_BYTES = '0'"),
])
def test_a_bad_setting_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        from_env(env)


def test_the_sample_rate_is_the_share_of_requests_logged() -> None:
    draws = [i / 100 for i in range(100)]  # uniform over [0, 1)
    policy = Policy(0.3)
    assert sum(sampled(policy, iter([d]).__next__) for d in draws) == 30
    assert all(sampled(Policy(1.0), lambda d=d: d) for d in draws)
    assert not sampled(None, lambda: 0.0)


def test_a_text_body_shows_as_text_cut_at_the_cap_never_inside_a_character() -> None:
    assert shown(b'{"a": 1}', "application/json", 100) == {
        "bytes": 8, "content_type": "application/json", "text": '{"a": 1}'}
    cut = shown("héllo".encode(), "text/plain; charset=utf-8", 2)  # the cap falls inside é
    assert cut == {"bytes": 6, "content_type": "text/plain; charset=utf-8", "text": "h", "cut": True}


def test_a_binary_body_shows_as_base64_of_its_start() -> None:
    body = bytes(range(256))
    out = shown(body, "application/octet-stream", 16)
    assert base64.b64decode(out["base64"]) == body[:16]
    assert (out["bytes"], out["cut"]) == (256, True)
    # "text" that is not UTF-8 (a mislabelled body) is shown as base64 too.
    assert "base64" in shown(b"\xff\xfe", "application/json", 10)


def test_a_stream_keeps_its_start_and_counts_its_whole_size() -> None:
    capture = Capture(5)
    for chunk in (b"abc", b"def", b"ghi"):
        capture.add(chunk)
    assert capture.shown("text/event-stream") == {
        "bytes": 9, "content_type": "text/event-stream", "text": "abcde", "cut": True}


class _Context:
    def __init__(self, request_id: str, trailing: tuple[tuple[str, str], ...] = (), details: str = "") -> None:
        self._metadata = (("x-baseten-request-id", request_id),)
        self._trailing, self._details = trailing, details

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailing

    def details(self) -> str:
        return self._details


class _Reply:
    def __init__(self, data: bytes, content_type: str = "") -> None:
        self.data, self.content_type = data, content_type


async def _replies(*chunks: _Reply, fail: Exception | None = None):  # type: ignore[no-untyped-def]
    for chunk in chunks:
        yield chunk
    if fail is not None:
        raise fail


async def test_a_sampled_request_logs_one_line_with_its_id_and_bodies(caplog: pytest.LogCaptureFixture) -> None:
    draws = itertools.cycle([0.1, 0.9])  # sampled, then not
    lines = observe.RequestLog(Policy(0.5, max_bytes=4), rand=draws.__next__)
    caplog.set_level(logging.INFO, logger=observe.REQUEST_LINES.name)
    out = [r async for r in lines.wrap("predict", "application/json", b'{"x": 1}', _Context("req-1"),
                                       _replies(_Reply(b"[1, ", "application/json"), _Reply(b"2]")))]
    assert [r.data for r in out] == [b"[1, ", b"2]"]  # passed through as they were
    skipped = lines.wrap("predict", "application/json", b"{}", _Context("req-2"), _replies(_Reply(b"{}")))
    assert [r.data async for r in skipped] == [b"{}"]
    records = [r for r in caplog.records if r.name == observe.REQUEST_LINES.name]
    assert len(records) == 1
    line = json.loads(records[0].getMessage())
    assert (line["request_id"], line["path"], line["status"]) == ("req-1", "predict", 200)
    assert line["input"] == {"bytes": 8, "content_type": "application/json", "text": '{"x"', "cut": True}
    assert line["output"] == {"bytes": 6, "content_type": "application/json", "text": "[1, ", "cut": True}


async def test_a_failed_request_logs_its_status_and_message(caplog: pytest.LogCaptureFixture) -> None:
    lines = observe.RequestLog(Policy(1.0))
    caplog.set_level(logging.INFO, logger=observe.REQUEST_LINES.name)
    context = _Context("req-3", trailing=(("x-http-status", "400"),), details="bad input")
    with pytest.raises(RuntimeError):
        [r async for r in lines.wrap("predict", "application/json", b"{", context,
                                     _replies(fail=RuntimeError("aborted")))]
    line = json.loads(caplog.records[-1].getMessage())
    assert (line["status"], line["error"], "output" in line) == (400, "bad input", False)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_kingpost_logs_finds_a_requests_lines_in_either_format(log_format: str) -> None:
    """What `kingpost logs --request-id` keeps: the runner's lines written during the request, text or JSON."""
    import io

    from kingpost.cli.inspect_commands import of_request

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(observe.RequestIdFilter())
    handler.setFormatter(logging.Formatter(observe.LOG_FORMAT) if log_format == "text"
                         else observe.JsonFormatter("runner"))
    model_log = logging.getLogger("my_model_" + log_format)
    model_log.addHandler(handler)
    model_log.propagate = False
    token = observe.REQUEST_ID.set("req-42")
    model_log.warning("inside")
    observe.REQUEST_ID.reset(token)
    model_log.warning("outside")
    inside, outside = stream.getvalue().splitlines()
    assert of_request(inside, "req-42") and not of_request(outside, "req-42")
    assert not of_request(inside, "req-4")  # a prefix of the id is another request
