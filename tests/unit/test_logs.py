"""Structured logs are one JSON object per line."""

import json
import logging

from mailer.logs import JSONFormatter


def test_json_formatter_keeps_extra_fields_and_exceptions() -> None:
    record = logging.makeLogRecord({"name": "mailer.engine", "levelname": "INFO", "msg": "tick %s", "args": ("done",), "sent": 3})
    entry = json.loads(JSONFormatter().format(record))
    assert entry["message"] == "tick done" and entry["sent"] == 3 and entry["level"] == "info"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(JSONFormatter().format(record))["exception"]
