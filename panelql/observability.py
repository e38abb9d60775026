"""Logs with request ids, the request-id middleware, optional tracing, and the one metric
recorded below the web layer (dataloader batch sizes, billing automation).

Every HTTP request and WebSocket connection gets a request id: the client's ``x-request-id``
when it is sane, else a fresh one. It is echoed in the response header and set in a contextvar
that a logging filter copies onto every record, so one grep finds everything a request did,
including the ``errorId`` of a masked INTERNAL error. ``PANELQL_LOG_FORMAT=json`` writes one
JSON object per line for log shippers; ``text`` is for humans.

This module imports nothing from panelql, so any layer may use it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: ContextVar[str | None] = ContextVar("panelql_request_id", default=None)

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Attributes every LogRecord has; anything else was passed in ``extra=`` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

LOADER_BATCH = Histogram(
    "panelql_dataloader_batch_size", "Keys per dataloader batch (one batch = one upstream "
    "batch read per connection)", ["loader"], buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)


def observe_batch(loader: str, size: int) -> None:
    LOADER_BATCH.labels(loader).observe(size)


# Billing automation (application/automation): runs started and finished, steps by outcome,
# and failures (every failed attempt, including those retried later).
AUTOMATION_RUNS = Counter(
    "panelql_automation_runs_total", "Automation runs by action and outcome (created, "
    "planned, succeeded, failed)", ["action", "outcome"])
AUTOMATION_STEPS = Counter(
    "panelql_automation_steps_total", "Automation steps (one per service) by action and "
    "outcome (done, skipped, retrying, failed)", ["action", "outcome"])
AUTOMATION_FAILURES = Counter(
    "panelql_automation_step_failures_total", "Failed attempts of automation steps, by "
    "connection and error code", ["connection", "code"])


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


# uvicorn passes an ANSI-coloured copy of its message as an extra; it is not a field.
_NOT_FIELDS = {"request_id", "color_message"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items()
            if key not in _STANDARD and key not in _NOT_FIELDS}


class TextFormatter(logging.Formatter):
    """For humans: the line, then what was passed in ``extra=`` as ``key=value`` pairs, so
    ``upstream retry`` says which provider, path and reason without switching to JSON."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{key}={value}" for key, value in _extras(record).items())
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{head} {fields}{newline}{rest}"


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Route the root logger (and uvicorn's, which propagate to it) through one handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
        uv.disabled = False  # an earlier dictConfig (uvicorn's own) may have switched it off
        uv.setLevel(logging.NOTSET)


def incoming_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate = str(value.decode("latin-1"))
            if _SANE_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets the request id for the request (or WebSocket connection) and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = incoming_request_id(scope)
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


def tracing_extension() -> Any:
    """Strawberry's OpenTelemetry extension with an SDK tracer provider, or None when the
    ``otel`` extra is not installed (the caller logs that tracing stays off)."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
        from strawberry.extensions.tracing import OpenTelemetryExtension
    except ImportError:
        return None
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": "panelql"}))
        provider.add_span_processor(BatchSpanProcessor(_span_exporter(ConsoleSpanExporter)))
        trace.set_tracer_provider(provider)
    return OpenTelemetryExtension


def _span_exporter(fallback: Any) -> Any:
    # OTLP when its exporter package is installed (it reads OTEL_EXPORTER_OTLP_ENDPOINT),
    # else spans go to stdout, which is enough to see them in development.
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
            OTLPSpanExporter,
        )
    except ImportError:
        return fallback()
    return OTLPSpanExporter()
