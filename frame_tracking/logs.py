"""Log lines that name their frame and trace: every record that reaches detektr's handlers
carries `trace_id`, `span_id` (the current span's) and `frame_id` (the frame being handled).

A handler filter rather than opentelemetry-instrumentation-logging: that library adds the
trace half through a process-wide LogRecord factory (as otelTraceID/otelSpanID) and by
default also installs an OpenTelemetry logs handler; the frame id would still need this
filter, so one filter does all three for the records our handlers write.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextvars import ContextVar, Token

from opentelemetry import trace

# The format every detektr process logs with (settings.LOGGING).
FORMAT = (
    "%(asctime)s %(levelname)s %(processName)s %(name)s "
    "trace_id=%(trace_id)s span_id=%(span_id)s frame_id=%(frame_id)s %(message)s"
)
NONE = "-"  # a line outside any trace or frame

_frame_id: ContextVar[str] = ContextVar("detektr_frame_id", default=NONE)


def bind_frame(frame_id: str) -> Token[str]:
    """Log lines from here on (in this thread/task) name this frame, until unbind_frame."""
    return _frame_id.set(str(frame_id))


def unbind_frame(token: Token[str]) -> None:
    _frame_id.reset(token)


class DropMessages(logging.Filter):
    """Drops the records logged with one of `messages` as their (unformatted) message."""

    def __init__(self, messages: Iterable[str]) -> None:
        super().__init__()
        self.messages = frozenset(messages)

    def filter(self, record: logging.LogRecord) -> bool:
        # A message may be any object (logger.info(some_dict)): only strings are looked up.
        return not (isinstance(record.msg, str) and record.msg in self.messages)


class WithoutTraceback(logging.Filter):
    """Keeps a record's message, drops its traceback: for loggers whose message says it all
    (a request with a Host header not in ALLOWED_HOSTS is one line, not thirty)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


class TraceContextFilter(logging.Filter):
    """Adds trace_id, span_id and frame_id to each record; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        else:
            record.trace_id = record.span_id = NONE
        record.frame_id = _frame_id.get()
        return True
