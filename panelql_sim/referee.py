"""The vendors' published OpenAPI documents as the simulators' referee (tests only).

A simulator that declares ``documents`` (file names in the shared specs folder, e.g.
``cloudflare-v4.openapi.json``) has every request it receives and every answer it sends checked
against them with openapi-core, once :func:`enable` has been called (the test suite does, in
``tests/conftest.py``; ``panelql demo`` and the benchmarks never do, so they pay nothing). A
mismatch is recorded in :data:`VIOLATIONS`; the suite fails the test during which it happened.
The documents are read where they lie (never copied into the repository); where the folder is
absent nothing is checked and :func:`enable` says why.

The documents have known defects (shared/specs/README.md), which the referee lives with instead
of reporting them, each in :class:`Quirks`:

- Cloudflare lists only ``X-Auth-Email``/``X-Auth-Key`` as security for ``dns_records`` though
  API tokens (``Authorization: Bearer``) work: a Bearer request is checked as if it carried them.
- Cloudflare's request schemas list read-only fields (``id``, ``created_on``, ``modified_on``,
  ``proxiable``, and ``content`` of the types written as ``data``) as required: a request is
  not faulted for leaving them out.
- Cloudflare marks a JSON body required on ``DELETE /dns_records/{id}`` (and other DELETEs),
  which the API does not need: a bodiless DELETE is checked as if it sent ``{}``.
- Cloudflare's 4XX schemas combine the success and the failure envelope (allOf), which no body
  satisfies: a 4XX answer is checked against the failure envelope alone.
- Cloudflare writes response ranges as ``4xx`` (OpenAPI spells them ``4XX``): read as ``4XX``.
- Cloudflare's ``/dns_records/batch`` is newer than the document: paths listed in
  ``undocumented`` are not checked.
- PowerDNS's ``RRSet`` requires ``ttl`` and ``records`` while a ``DELETE`` changetype carries
  neither (the server accepts that): such an rrset is checked with them filled in.
- PayPal's ``/v1/oauth2/token`` is in none of the files: not checked.
- PayPal's ``verify-webhook-signature`` takes the received event back as ``webhook_event``,
  whose schema marks its fields read-only: writing them there is not a fault.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_lock = threading.Lock()
# Checks run on one worker thread after the answer has gone out, so a simulator answers as fast
# as without a referee and the other simulators on its loop are not held up; settle() waits.
_worker: ThreadPoolExecutor | None = None
_pending: set[Future[None]] = set()
SAMPLE = 20  # items of a long list that are checked (a page of 2,000 records checks ≤ 20)
_specs_dir: Path | None = None
# file name -> (openapi_core.OpenAPI, host of its first server URL), loaded once per process
_loaded: dict[str, tuple[Any, str]] = {}


@dataclass(frozen=True)
class Violation:
    panel: str
    method: str
    path: str
    what: str  # "request" or "response 200"
    problem: str

    def __str__(self) -> str:
        return f"{self.panel}: {self.method} {self.path}: {self.what}: {self.problem}"


VIOLATIONS: list[Violation] = []


@dataclass(frozen=True)
class Quirks:
    # Regular expressions of request paths that the documents do not hold: not checked.
    undocumented: tuple[str, ...] = ()
    # Check a Bearer-token request as if it carried these headers (Cloudflare's security list).
    bearer_as: dict[str, str] = field(default_factory=dict)
    # Rewrites of a request body before it is checked (PowerDNS DELETE rrsets).
    request_body: Callable[[Any], Any] | None = None
    # Read-only fields that request schemas nevertheless list as required (Cloudflare).
    read_only_required: tuple[str, ...] = ()
    # Request members that carry a whole server-made object back, read-only fields included
    # (PayPal's verify-webhook-signature takes the event as it was received).
    read_only_echoed: tuple[str, ...] = ()
    # Methods whose request body the document marks required though the API takes none
    # (Cloudflare's record DELETE): a bodiless request is checked as if it sent "{}".
    optional_body: tuple[str, ...] = ()


def enable(specs_dir: Path) -> str | None:
    """Check simulators against the documents in ``specs_dir``; returns why not, or None."""
    global _specs_dir
    if not specs_dir.is_dir():
        return f"{specs_dir} is absent: the simulators are not checked against the vendors' " \
               "OpenAPI documents"
    try:
        import openapi_core  # noqa: F401  (a dev dependency)
    except ImportError:
        return "openapi-core is not installed: the simulators are not checked"
    _specs_dir = specs_dir
    return None


def settle(timeout: float = 120.0) -> None:
    """Wait for the checks of every answer sent so far."""
    with _lock:
        pending = list(_pending)
    for future in pending:
        future.result(timeout=timeout)


def _submit(check: Callable[[], None]) -> None:
    global _worker
    with _lock:
        if _worker is None:
            _worker = ThreadPoolExecutor(1, thread_name_prefix="referee")
        future = _worker.submit(check)
        _pending.add(future)
    future.add_done_callback(_done)


def _done(future: Future[None]) -> None:
    with _lock:
        _pending.discard(future)


def _sample(value: Any) -> Any:
    """Long lists cut to SAMPLE items, one of each distinct shape (type and keys) first."""
    if isinstance(value, dict):
        return {k: _sample(v) for k, v in value.items()}
    if not isinstance(value, list) or len(value) <= SAMPLE:
        return [_sample(v) for v in value] if isinstance(value, list) else value
    chosen: dict[Any, Any] = {}
    for item in value:
        key = (item.get("type"), tuple(sorted(item))) if isinstance(item, dict) else type(item)
        chosen.setdefault(key, item)
        if len(chosen) >= SAMPLE:
            break
    rest = [v for v in value if all(v is not c for c in chosen.values())]
    return [_sample(v) for v in [*chosen.values(), *rest][:SAMPLE]]


def disable() -> None:
    global _specs_dir
    _specs_dir = None


def enabled() -> bool:
    return _specs_dir is not None


def _document(name: str) -> tuple[Any, str]:
    """Load one document once (the Cloudflare file is ~40 MB: parsed with json, not yaml)."""
    from openapi_core import OpenAPI
    from openapi_core.configurations import Config

    with _lock:
        if name not in _loaded:
            assert _specs_dir is not None
            path = _specs_dir / name
            if path.suffix == ".json":
                data = json.loads(path.read_text())
            else:
                import yaml  # type: ignore[import-untyped]
                data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader",
                                                                   yaml.SafeLoader))
            _ranges_upper(data)
            _failures_alone(data)
            # Requests are matched against the document's first server URL.
            server = urlparse(str(((data.get("servers") or [{}])[0]).get("url", "/")))
            host = f"{server.scheme or 'http'}://{server.netloc or 'localhost'}"
            # The documents are the vendors' own: checking them is not our job here.
            _loaded[name] = (OpenAPI.from_dict(data, config=Config(spec_validator_cls=None)),
                             host)
        return _loaded[name]


def _ranges_upper(data: dict[str, Any]) -> None:
    """Cloudflare quirk: response ranges written "4xx" are OpenAPI's "4XX"."""
    for item in (data.get("paths") or {}).values():
        for operation in item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if isinstance(responses, dict):
                for key in [k for k in responses if k.lower().endswith("xx") and k != k.upper()]:
                    responses[key.upper()] = responses.pop(key)


def _failures_alone(data: dict[str, Any]) -> None:
    """Cloudflare quirk: its 4XX schemas are allOf(success envelope, failure envelope), which no
    body can satisfy ("success" must be both true and false): the failure envelope alone is
    what a 4XX answer is checked against."""
    for item in (data.get("paths") or {}).values():
        for operation in item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            for status, answer in (responses or {}).items():
                if not str(status).startswith("4") or not isinstance(answer, dict):
                    continue
                for media in (answer.get("content") or {}).values():
                    parts = (media.get("schema") or {}).get("allOf")
                    failure = [p for p in parts or [] if isinstance(p, dict)
                               and str(p.get("$ref", "")).endswith("-common-failure")]
                    if failure:
                        media["schema"] = failure[0]


@contextlib.contextmanager
def tolerated() -> Iterator[list[Violation]]:
    """Takes back the violations recorded inside the block (a test that sends bad input to a
    simulator on purpose); yields them so the test can check they were the expected ones."""
    seen = len(VIOLATIONS)
    found: list[Violation] = []
    try:
        yield found
    finally:
        settle()
        with _lock:
            found.extend(VIOLATIONS[seen:])
            del VIOLATIONS[seen:]


class Referee:
    def __init__(self, panel: str, documents: Iterable[str], quirks: Quirks) -> None:
        self.panel = panel
        self.documents = tuple(documents)
        self.quirks = quirks
        for name in self.documents:  # now, not on the serving loop's first request
            _document(name)

    def _record(self, method: str, path: str, what: str, problem: str) -> None:
        with _lock:
            VIOLATIONS.append(Violation(self.panel, method, path, what, problem))

    def check(self, method: str, path: str, query: str, headers: dict[str, str],
              body: bytes, status: int, response_headers: dict[str, str],
              response_body: bytes) -> None:
        from openapi_core.templating.paths.exceptions import PathError
        from openapi_core.testing import MockRequest, MockResponse

        if any(re.fullmatch(pattern, path) for pattern in self.quirks.undocumented):
            return
        req_headers = dict(headers)
        if req_headers.get("authorization", "").startswith("Bearer ") and self.quirks.bearer_as:
            req_headers.update(self.quirks.bearer_as)
        content_type = headers.get("content-type", "application/json").split(";")[0]
        checked_body = body
        if not body and method.upper() in self.quirks.optional_body:
            checked_body, content_type = b"{}", "application/json"
        if body and self.quirks.request_body is not None and content_type == "application/json":
            with contextlib.suppress(ValueError):
                checked_body = json.dumps(self.quirks.request_body(
                    copy.deepcopy(json.loads(body)))).encode()
        for name in self.documents:  # the first document that has this operation judges
            spec, host = _document(name)
            request = MockRequest(host, method, path, args=dict(parse_qsl(query)),
                                  headers=req_headers, data=checked_body,
                                  content_type=content_type if checked_body else "")
            result = spec.unmarshal_request(request)
            if any(isinstance(e, PathError) for e in result.errors):
                continue
            problems = _problems(result.errors, self.quirks.read_only_required,
                                 self.quirks.read_only_echoed)
            if problems:
                self._record(method, path, "request", " | ".join(problems[:5]))
            response = MockResponse(_sampled(response_body), status_code=status,
                                    headers=response_headers,
                                    content_type=response_headers.get(
                                        "content-type", "").split(";")[0])
            answer = spec.unmarshal_response(request, response)
            problems = _problems(answer.errors)
            if problems:
                self._record(method, path, f"response {status}", " | ".join(problems[:5]))
            return
        self._record(method, path, "request", "no operation for this method and path in "
                     f"{', '.join(self.documents)}")


def _sampled(body: bytes) -> bytes:
    try:
        return json.dumps(_sample(json.loads(body))).encode()
    except ValueError:
        return body


def _closest(error: Any) -> list[Any]:
    """For a oneOf/anyOf failure, the errors of the branch meant (the one whose ``type`` enum
    matched, e.g. the CAA branch for a CAA record), else jsonschema's best match."""
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

    if not error.context:
        return [error]
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0] if sub.relative_schema_path else 0,
                            []).append(sub)
    meant = [errs for errs in branches.values()
             if not any(e.validator in ("enum", "const") and list(e.path)[-1:] == ["type"]
                        for e in errs)]
    if len(meant) == 1:
        return [e for sub in meant[0] for e in _closest(sub)]
    return [best_match(error.context)]


def _problems(errors: Iterable[BaseException], allowed_missing: Iterable[str] = (),
              echoed: Iterable[str] = ()) -> list[str]:
    """The failing rules and where, not the whole value (a page of records would drown it);
    ``required`` failures for ``allowed_missing`` names, and read-only fields written inside an
    ``echoed`` member, are left out (documented quirks)."""
    allowed, echoes = set(allowed_missing), set(echoed)
    out = []
    for error in errors:
        schema_errors = getattr(error.__cause__, "schema_errors", None) or []
        if not schema_errors:
            out.append(f"{type(error).__name__}: {str(error)[:500]}")
        for schema_error in schema_errors:
            for leaf in _closest(schema_error):
                missing = re.fullmatch(r"'(.+)' is a required property", str(leaf.message))
                if leaf.validator == "required" and missing and missing.group(1) in allowed:
                    continue
                if (str(leaf.message).startswith("Tried to write read-only property")
                        and list(leaf.absolute_path)[:1] and leaf.absolute_path[0] in echoes):
                    continue
                where = "/".join(str(p) for p in leaf.absolute_path)
                out.append(f"{type(error).__name__}: at /{where}: {str(leaf.message)[:300]}")
    return out


class RefereeMiddleware:
    """Buffers each request and answer of the wrapped simulator app and has them checked."""

    def __init__(self, app: ASGIApp, referee: Referee, skip_prefix: str) -> None:
        self.app = app
        self.referee = referee
        self.skip_prefix = skip_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefix):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        start: Message = {}
        parts: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body"):
                    answer = b"".join(parts)
                    # Registered before the client can have the answer: a test that settles
                    # right after its call returns must find this check pending (submitted
                    # after the send, a loaded machine let settle() run first and miss it).
                    _submit(lambda: self._check(scope, body, start, answer))
                    await send(start)
                    await send({"type": "http.response.body", "body": answer})
            else:
                await send(message)

        await self.app(scope, replay, capture)

    def _check(self, scope: Scope, body: bytes, start: Message, answer: bytes) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        response_headers = {k.decode().lower(): v.decode()
                            for k, v in start.get("headers", [])}
        try:
            self.referee.check(scope["method"], scope["path"],
                               scope.get("query_string", b"").decode(), headers, body,
                               int(start.get("status", 500)), response_headers, answer)
        except Exception as exc:  # a referee that cannot judge is a failure too
            self.referee._record(scope["method"], scope["path"], "referee",
                                 f"{type(exc).__name__}: {exc}")
