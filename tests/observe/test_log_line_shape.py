"""The request log's text line and record, built without ``logger.info``'s stack walk, are
what they were: the same text for any fields, and a record naming ``RequestLog.write``."""

from __future__ import annotations

import json
import logging
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from scim2_core.observe import RequestLog


def _reference_line(fields: dict[str, Any]) -> str:
    """The text line as first written: the specification of its shape."""

    def value(v: Any) -> str:
        if v is None:
            return "-"
        text = str(v)
        if text and text.isprintable() and not any(c in text for c in ' "='):
            return text
        return json.dumps(text)

    head = f'"{fields["method"]} {fields["path"]}"'
    if fields.get("client"):
        head = f"{fields['client']} {head}"
    rest = " ".join(
        f"{k}={value(fields.get(k))}" for k in ("scimType", "requestId", "principal", "tenant")
    )
    return f"{head} {fields['status']} {rest} {fields['durationMs']:.1f}ms"


_VALUE = st.one_of(st.none(), st.text(max_size=12), st.integers(), st.sampled_from(['a"b', "a=b"]))


@given(
    st.fixed_dictionaries(
        {
            "method": st.sampled_from(["GET", "POST", "OTHER"]),
            "path": st.sampled_from(["/Users/{id}", "-", "/scim/v2/Groups"]),
            "status": st.integers(100, 599),
            "durationMs": st.floats(0, 1e6, allow_nan=False),
            "scimType": _VALUE,
            "requestId": _VALUE,
            "principal": _VALUE,
            "tenant": _VALUE,
        },
        optional={"client": st.one_of(st.none(), st.just(""), st.just("[::1]:5"))},
    )
)
def test_a_text_line_is_the_same_for_any_fields(fields: dict[str, Any]) -> None:
    assert RequestLog("text").line(fields) == _reference_line(fields)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_record_names_the_request_log_and_honours_levels_and_filters() -> None:
    logger = logging.getLogger("scim2_core.request.test_shape")
    handler = _Records()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fields = {"method": "GET", "path": "/Users", "status": 200, "durationMs": 1.25}
    try:
        log = RequestLog("text", logger)
        log.write(fields)
        [record] = handler.records
        assert record.getMessage() == log.line(fields)
        assert (record.levelno, record.name) == (logging.INFO, logger.name)
        assert record.filename == "_log.py" and record.funcName == "write"
        assert record.module == "_log"
        logger.addFilter(lambda r: False)  # a filter on the logger still drops the line
        log.write(fields)
        assert len(handler.records) == 1
        logger.filters.clear()
        logger.setLevel(logging.WARNING)  # and so does the level
        log.write(fields)
        assert len(handler.records) == 1
    finally:
        logger.removeHandler(handler)
        logger.filters.clear()


class _Stream:
    """A text stream that keeps what it is given and counts its flushes."""

    def __init__(self) -> None:
        self.text = ""
        self.flushes = 0

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        self.flushes += 1


def test_serve_s_handler_gets_the_line_a_record_would_give_and_honours_what_may_change_it() -> None:
    """``scim2-core serve``'s handler (:class:`LineHandler`) is written to directly: each
    line flushed at once and equal to what the record path writes, in both formats; a
    filter on the logger or the handler, a level above INFO, another formatter or a second
    handler make the line go through ``logging`` again, which honours them."""
    from scim2_core.observe._log import LineHandler

    logger = logging.getLogger("scim2_core.request.test_direct")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fields = {
        "time": "2026-12-01T00:00:00.000001Z",
        "method": "GET",
        "path": "/Users/{id}",
        "status": 200,
        "durationMs": 0.25,
        "principal": "token a",
        "client": "127.0.0.1:5",
    }
    try:
        for fmt, prefix in (("text", "INFO:     "), ("json", ""), ("text", "scim 100% ")):
            log = RequestLog(fmt, logger)
            direct, through = _Stream(), _Stream()
            logger.handlers = [LineHandler(direct, prefix)]
            log.write(fields)
            assert direct.text == f"{prefix}{log.line(fields)}\n"
            assert direct.flushes == 1
            # The same line through logging's own path (a filter that keeps every record):
            handler = LineHandler(through, prefix)
            handler.addFilter(lambda r: True)
            logger.handlers = [handler]
            log.write(fields)
            assert through.text == direct.text

        log = RequestLog("text", logger)
        stream = _Stream()
        handler = LineHandler(stream, "INFO:     ")
        logger.handlers = [handler]
        logger.addFilter(lambda r: False)
        log.write(fields)
        assert stream.text == ""
        logger.filters.clear()
        handler.setLevel(logging.WARNING)
        log.write(fields)
        assert stream.text == ""
        handler.setLevel(logging.NOTSET)
        handler.setFormatter(logging.Formatter("custom %(message)s"))
        log.write(fields)
        assert stream.text == f"custom {log.line(fields)}\n"
        records = _Records()
        logger.handlers = [handler, records]
        log.write(fields)
        assert len(records.records) == 1
    finally:
        logger.handlers = []
        logger.filters.clear()
