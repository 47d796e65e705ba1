"""One log line per request, as text or JSON, on the ``scim2_core.request`` logger.

A line holds the time, request id, method, route template (``/Users/{id}``: never the path's
ids, never the query string, whose filters hold personal data), status, ``scimType``,
principal name, tenant and duration; and the client's address when a server adds it
(``scim2-core serve``). Never a header, a token, a body or an attribute value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

from .._errors import ConfigurationError

__all__ = ["LOG_FORMATS", "LineHandler", "RequestLog"]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
request_logger = logging.getLogger("scim2_core.request")

#: The named fields of a text line, after the request and its status (the time is the
#: handler's to add).
_TEXT_FIELDS = ("scimType", "requestId", "principal", "tenant")


def _text_value(value: Any) -> str:
    if value is None:
        return "-"
    text = value if type(value) is str else str(value)
    if text and text.isprintable() and " " not in text and '"' not in text and "=" not in text:
        return text
    return json.dumps(text)


class RequestLog:
    """Writes each request's fields as one line in ``format`` (``"text"`` or ``"json"``)."""

    def __init__(self, format: str = "text", logger: logging.Logger | None = None) -> None:
        if format not in LOG_FORMATS:
            raise ConfigurationError(f"log format must be one of {LOG_FORMATS}, got {format!r}")
        self.format = format
        self.logger = logger or request_logger

    def line(self, fields: Mapping[str, Any]) -> str:
        """The line of one request's ``fields``."""
        if self.format == "json":
            return json.dumps(dict(fields), separators=(",", ":"), ensure_ascii=True)
        get = fields.get
        head = f'"{fields["method"]} {fields["path"]}"'
        client = get("client")
        if client:
            head = f"{client} {head}"
        # The named fields of _TEXT_FIELDS, in their order.
        return (
            f"{head} {fields['status']} scimType={_text_value(get('scimType'))} "
            f"requestId={_text_value(get('requestId'))} "
            f"principal={_text_value(get('principal'))} tenant={_text_value(get('tenant'))} "
            f"{fields['durationMs']:.1f}ms"
        )

    def write(self, fields: Mapping[str, Any]) -> None:
        """Log ``fields`` at INFO (nothing is formatted when INFO is off).

        The record is what ``logger.info`` makes, naming this method as its origin, without
        the walk up the stack ``logger.info`` takes to find it (a tenth of a request's cost
        on a fast server). Where the logger's one handler is a :class:`LineHandler` (as
        ``scim2-core serve`` sets it up) with no filter anywhere, the line is written to its
        stream as that handler would write it, without a record (see :meth:`LineHandler.direct`).
        """
        logger = self.logger
        if logger.isEnabledFor(logging.INFO):
            handlers = logger.handlers
            if len(handlers) == 1 and not logger.filters and not logger.propagate:
                handler = handlers[0]
                if type(handler) is LineHandler and handler.direct(self.line(fields)):
                    return
            record = logger.makeRecord(
                logger.name,
                logging.INFO,
                _WHERE[0],
                _WHERE[1],
                "%s",
                (self.line(fields),),
                None,
                _WHERE[2],
            )
            logger.handle(record)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A :class:`logging.StreamHandler` writing each record as ``prefix`` and its message on
    a line, flushed at once; the request log writes its lines to it directly when nothing
    else (a filter, another handler, a formatter set later) could change them.

    ``prefix`` is ``"INFO:     "`` for text lines, as uvicorn prints its own, and ``""`` for
    JSON lines (one JSON document a line).
    """

    def __init__(self, stream: Any, prefix: str) -> None:
        super().__init__(stream)
        self.prefix = prefix
        # The record path writes what the direct one does: the prefix, then the message.
        self._formatter = logging.Formatter(prefix.replace("%", "%%") + "%(message)s")
        self.setFormatter(self._formatter)

    def direct(self, line: str) -> bool:
        """Write ``line`` (an INFO message) as :meth:`emit` would; False, with nothing
        written, where a record must go the usual way: a filter, a level above INFO or
        another formatter set on this handler, or a write that failed (the usual way then
        reports it through :meth:`handleError`)."""
        if self.filters or self.level > logging.INFO or self.formatter is not self._formatter:
            return False
        text = f"{self.prefix}{line}\n"
        lock = self.lock
        if lock is not None:
            lock.acquire()
        try:
            stream = self.stream
            stream.write(text)
            stream.flush()
        except Exception:
            return False
        finally:
            if lock is not None:
                lock.release()
        return True


#: Where a request's record says it was made: :meth:`RequestLog.write`.
_WHERE = (
    RequestLog.write.__code__.co_filename,
    RequestLog.write.__code__.co_firstlineno,
    RequestLog.write.__name__,
)
