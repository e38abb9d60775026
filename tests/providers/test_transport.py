"""The lean upstream transport (providers/transport.py) against real loopback servers.

Each case scripts the server side byte for byte with asyncio, so the edge cases a real panel
(or the proxy in front of it) produces are exact: keep-alive, chunked and close-delimited bodies,
gzip, an idle connection closed by the server, a hang, garbage, a disconnect, TLS.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from panelql.providers.errors import UnexpectedResponse
from panelql.providers.http import ClientFactory, Upstream
from panelql.providers.transport import LeanTransport, ResponseTooLarge
from panelql_sim.tls import self_signed_certificate
from tests.providers.helpers import clients

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answer(body: bytes = b'{"ok":true}', status: bytes = b"200 OK",
           headers: bytes = b"content-type: application/json\r\n") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\n" + headers
            + b"content-length: %d\r\n\r\n" % len(body) + body)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Head and (content-length) body of one request; b"" when the client hung up."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return b""
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


@asynccontextmanager
async def server(handler: Handler, tls: ssl.SSLContext | None = None
                 ) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback server; yields its base URL and a list that grows by one per connection."""
    connections: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    srv = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=tls)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", connections
    finally:
        srv.close()


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while request := await read_request(reader):
        path = request.split(b" ", 2)[1]
        writer.write(answer(b'{"path":"%s"}' % path))
        await writer.drain()


def client(base_url: str, **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, transport=LeanTransport(**kwargs),  # type: ignore[arg-type]
                             timeout=httpx.Timeout(2.0))


async def test_keeps_connections_alive_and_sends_bodies_and_query_strings() -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            received.append(request)
            writer.write(answer(b'{"n":%d}' % len(received)))

    async with server(handler) as (url, connections), client(url) as http:
        first = await http.get("/api/servers", params={"page": 2, "q": "a b"})
        second = await http.post("/api/servers/1/power", json={"signal": "start"})
    assert (first.json(), second.json()) == ({"n": 1}, {"n": 2})
    assert len(connections) == 1  # the second request reused the first connection
    assert received[0].startswith(b"GET /api/servers?page=2&q=a+b HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in received[0].lower()
    assert received[1].endswith(b'{"signal":"start"}')
    assert b"content-length: 18" in received[1].lower()


async def test_concurrent_requests_use_separate_connections_within_the_limit() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            await asyncio.sleep(0.05)
            writer.write(answer())

    async with server(slow) as (url, connections), client(url, max_connections=3) as http:
        responses = await asyncio.gather(*(http.get("/x") for _ in range(9)))
    assert all(r.status_code == 200 for r in responses)
    assert len(connections) == 3


async def test_chunked_body() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
                     b"content-type: application/json\r\n\r\n"
                     b"5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n")
        await read_request(reader)  # the connection stays usable

    async with server(chunked) as (url, _), client(url) as http:
        assert (await http.get("/")).json() == {"a": 1}


async def test_body_delimited_by_close() -> None:
    async def legacy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n[1,2,3]")
        await writer.drain()

    async with server(legacy) as (url, connections), client(url) as http:
        assert (await http.get("/")).json() == [1, 2, 3]
        assert (await http.get("/")).json() == [1, 2, 3]  # on a new connection
    assert len(connections) == 2


async def test_gzip_bodies_are_decoded_by_httpx() -> None:
    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(gzip.compress(b'{"zipped":true}'),
                            headers=b"content-encoding: gzip\r\n"))

    async with server(gzipped) as (url, _), client(url) as http:
        assert (await http.get("/")).json() == {"zipped": True}


async def test_status_reason_and_repeated_headers_survive() -> None:
    async def teapot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}", status=b"429 Slow Down Please",
                            headers=b"retry-after: 7\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n"))

    async with server(teapot) as (url, _), client(url) as http:
        response = await http.get("/")
    assert (response.status_code, response.reason_phrase) == (429, "Slow Down Please")
    assert response.headers["retry-after"] == "7"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]


async def test_idle_connection_closed_by_the_server_is_not_reused() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer())
        await writer.drain()
        # keep-alive promised, then closed while idle (as servers do after their timeout)

    async with server(once) as (url, connections), client(url) as http:
        await http.get("/")
        await asyncio.sleep(0.05)
        assert (await http.get("/")).status_code == 200
    assert len(connections) == 2


async def test_expired_idle_connection_is_replaced() -> None:
    async with server(keep_alive) as (url, connections), client(url, keepalive_expiry=0.05) as http:
        await http.get("/")
        await asyncio.sleep(0.1)
        await http.get("/")
    assert len(connections) == 2


async def test_refused_connection_is_a_connect_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with client(f"http://127.0.0.1:{port}") as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


async def test_hang_is_a_read_timeout_and_the_connection_is_dropped() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with server(hang) as (url, _):
        transport = LeanTransport()
        async with httpx.AsyncClient(base_url=url, transport=transport,
                                     timeout=httpx.Timeout(0.2)) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get("/")
        assert not any(transport._idle.values())


async def test_disconnect_without_answer_is_a_remote_protocol_error() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with server(rude) as (url, _), client(url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/api/servers", json={})


async def test_truncated_body_is_a_read_error() -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"half\":")
        await writer.drain()

    async with server(truncated) as (url, _), client(url) as http:
        with pytest.raises(httpx.ReadError):
            await http.get("/")


async def test_garbage_is_a_remote_protocol_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await asyncio.sleep(0.5)

    async with server(garbage) as (url, _), client(url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/")


async def test_cancelled_request_does_not_leave_its_connection_in_the_pool() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            await asyncio.sleep(0.3)
            writer.write(answer(b'{"path":"%s"}' % request.split(b" ", 2)[1]))

    async with server(slow) as (url, connections):
        transport = LeanTransport()
        async with httpx.AsyncClient(base_url=url, transport=transport) as http:
            task = asyncio.create_task(http.get("/first"))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # A reused connection would hand this request the first one's late answer.
            assert (await http.get("/second")).json() == {"path": "/second"}
    assert len(connections) == 2


async def test_head_goes_to_the_fallback_transport() -> None:
    async def head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n")
        await writer.drain()
        await read_request(reader)

    async with server(head) as (url, _), client(url) as http:
        response = await http.head("/")
    assert response.status_code == 200 and response.content == b""


async def test_tls_is_verified_against_the_given_ca(tmp_path: object) -> None:
    files = self_signed_certificate(str(tmp_path))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(files.certfile, files.keyfile)
    async with server(keep_alive, tls) as (url, _):
        trusted = ssl.create_default_context(cafile=files.ca_path)
        async with client(url, verify=trusted) as http:
            assert (await http.get("/secure")).json() == {"path": "/secure"}
        async with client(url) as http:  # system CAs only: the self-signed CA is unknown
            with pytest.raises(httpx.ConnectError):
                await http.get("/secure")


def test_the_production_transport_is_the_default_and_replays_keep_httpx() -> None:
    """ClientFactory() is what the app and the adapter suites build on; only respx replays
    (``.test`` hosts, which never resolve) and the escape-hatch run take httpx's transport."""
    assert ClientFactory().lean and not ClientFactory(lean=False).lean
    assert clients("http://127.0.0.1:8080").lean
    assert not clients("http://panel.test/api").lean
    assert not clients("http://127.0.0.1:8080", lean=False).lean


async def test_a_body_over_the_cap_is_refused_and_its_connection_dropped() -> None:
    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            size = 5000 if b"/big" in request.split(b"\r\n", 1)[0] else 10
            writer.write(answer(b"x" * size))
            await writer.drain()

    async with server(big) as (url, connections), client(url, max_response_bytes=1000) as http:
        assert (await http.get("/small")).content == b"x" * 10
        with pytest.raises(ResponseTooLarge, match="larger than 1000 bytes"):
            await http.get("/big")
        assert (await http.get("/small")).content == b"x" * 10
    assert len(connections) == 2  # the connection that carried the big answer is not reused


async def test_an_endless_chunked_body_is_cut_off_at_the_cap() -> None:
    sent: list[int] = []

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        try:
            while True:
                writer.write(b"400\r\n" + b"y" * 1024 + b"\r\n")
                await writer.drain()
                sent.append(1)
        except ConnectionError:
            return

    async with server(endless) as (url, _), client(url, max_response_bytes=64 * 1024) as http:
        with pytest.raises(ResponseTooLarge):
            await http.get("/")


async def test_the_error_boundary_reports_an_oversized_answer_as_provider_error() -> None:
    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"[" + b"1," * 4000 + b"1]"))
        await writer.drain()

    async with server(big) as (url, _), client(url, max_response_bytes=1000) as http:
        with pytest.raises(UnexpectedResponse) as caught:
            await Upstream(http, "panel", lambda body: None).json("GET", "/servers")
    assert caught.value.code == "PROVIDER_ERROR"
    assert "more data than the gateway accepts" in str(caught.value)
