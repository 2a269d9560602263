"""`log_format = "json"`: one JSON object a line, with the service, the level and what went wrong."""

from __future__ import annotations

import json
import logging

import pytest

from kingpost.errors import InvalidArgument
from kingpost.log_format import JsonFormatter
from kingpost.settings import ServiceSettings


def test_a_record_becomes_one_json_line_with_its_request_id_and_traceback() -> None:
    formatter = JsonFormatter("router")
    record = logging.LogRecord("kingpost_router.service", logging.WARNING, __file__, 1, "slow: %d ms", (250,), None)
    record.created = 1765119001.5
    assert json.loads(formatter.format(record)) == {
        "time": "2025-12-07T14:50:01.500Z", "service": "router", "level": "WARNING",
        "logger": "kingpost_router.service", "message": "slow: 250 ms"}
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    record.request_id = "req-1"
    line = formatter.format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["request_id"] == "req-1" and "ValueError: boom" in parsed["exception"]


def test_an_unknown_log_format_is_refused_naming_the_key() -> None:
    assert ServiceSettings.load(log_format="json").log_format == "json"
    with pytest.raises(InvalidArgument, match="'log_format' = 'yaml'"):
        ServiceSettings.load(log_format="yaml")
