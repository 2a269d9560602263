"""Log lines as JSON, one object a line, for a log pipeline (`log_format = "json"`, KINGPOST_LOG_FORMAT):

    {"time": "2026-12-07T14:50:01.123Z", "service": "router", "level": "WARNING",
     "logger": "kingpost_router.service", "message": "...", "request_id": "...", "exception": "..."}

`request_id` and `exception` appear when the record has them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "service": self.service,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "")
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
