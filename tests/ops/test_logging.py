"""Structured logs: JSON lines carry the request id of the request that logged them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from panelql.observability import (
    JsonFormatter,
    RequestIdFilter,
    RequestIdMiddleware,
    configure_logging,
    request_id,
)

log = logging.getLogger("panelql.test")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield stream
    log.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_fields(json_lines: io.StringIO) -> None:
    token = request_id.set("req-123")
    try:
        log.warning("upstream error %s", "x", extra={"provider": "ptero-eu", "status": 503})
    finally:
        request_id.reset(token)
    (entry,) = _lines(json_lines)
    assert entry["message"] == "upstream error x"
    assert entry["level"] == "warning" and entry["logger"] == "panelql.test"
    assert entry["request_id"] == "req-123"
    assert entry["provider"] == "ptero-eu" and entry["status"] == 503
    assert str(entry["time"]).endswith("+00:00")


def test_exceptions_are_one_line(json_lines: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("unexpected error abc")
    (entry,) = _lines(json_lines)
    assert "RuntimeError: boom" in str(entry["exception"]) and entry["request_id"] is None


async def test_every_log_line_of_a_request_has_its_id(json_lines: io.StringIO) -> None:
    async def handler(request: Request) -> PlainTextResponse:
        log.info("handling")
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", handler)], middleware=[])
    app.add_middleware(RequestIdMiddleware)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        given = await client.get("/", headers={"x-request-id": "from-billing-7"})
        generated = await client.get("/")
    entries = _lines(json_lines)
    assert [e["request_id"] for e in entries] == ["from-billing-7",
                                                  generated.headers["x-request-id"]]
    assert given.headers["x-request-id"] == "from-billing-7"
    assert request_id.get() is None  # reset after the request


def test_configure_logging_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("info", "json")
        logging.getLogger("uvicorn.access").info("GET / 200")
        entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert entry["logger"] == "uvicorn.access" and entry["message"] == "GET / 200"
        configure_logging("info", "text")
        logging.getLogger("panelql.x").info("hello")
        assert capsys.readouterr().err.strip().endswith("INFO panelql.x [None] hello")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
