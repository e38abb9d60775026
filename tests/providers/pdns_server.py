"""A real PowerDNS Authoritative server on loopback, for the tests that must not trust a simulator.

Debian's ``pdns-server`` with ``pdns-backend-sqlite3`` (``.ci/run`` installs both): a fresh
directory per run holding the config, the sqlite database (created from the schema the package
ships) and the control socket; free ports for DNS and for the HTTP API. Readiness is polled on
the API; shutdown is SIGTERM, then SIGKILL if it lingers. Where the binary or the schema is
absent the caller skips with the reason :func:`missing` gives.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

BINARY_CANDIDATES = ("/usr/sbin/pdns_server", "pdns_server")
SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
BACKEND = Path("/usr/lib/x86_64-linux-gnu/pdns/libgsqlite3backend.so")


def binary() -> str | None:
    for candidate in BINARY_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def missing() -> str | None:
    """Why a real PowerDNS cannot run here, or None when it can."""
    if binary() is None:
        return "pdns_server is not installed (Debian package pdns-server)"
    if not SCHEMA.exists():
        return f"{SCHEMA} is absent (Debian package pdns-backend-sqlite3)"
    return None


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_dns_port() -> int:
    """A port free for both UDP and TCP (PowerDNS listens on both)."""
    for _ in range(50):
        port = _free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free DNS port")


@dataclass(frozen=True)
class RealPowerDNS:
    url: str  # http://127.0.0.1:<port>, the API's base
    api_key: str
    dns_port: int
    version: str


@contextlib.contextmanager
def running(workdir: Path) -> Iterator[RealPowerDNS]:
    exe = binary()
    assert exe is not None and SCHEMA.exists(), missing()
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "pdns.sqlite3"
    with sqlite3.connect(database) as db:
        db.executescript(SCHEMA.read_text())
    api_key = secrets.token_hex(16)
    dns_port, api_port = _free_dns_port(), _free_port(socket.SOCK_STREAM)
    settings = {
        "launch": "gsqlite3",
        "gsqlite3-database": str(database),
        "local-address": "127.0.0.1",
        "local-port": str(dns_port),
        "api": "yes",
        "api-key": api_key,
        "webserver": "yes",
        "webserver-address": "127.0.0.1",
        "webserver-port": str(api_port),
        "webserver-allow-from": "127.0.0.0/8",
        "socket-dir": str(workdir),
        "guardian": "no",
        "daemon": "no",
        "disable-syslog": "yes",
        "log-timestamp": "no",
        "loglevel": "4",
        # Answers come straight from the database, so a test sees its write at once.
        "cache-ttl": "0",
        "negquery-cache-ttl": "0",
        "query-cache-ttl": "0",
        "zone-cache-refresh-interval": "0",
        "distributor-threads": "1",
        "receiver-threads": "1",
    }
    if BACKEND.exists():
        settings["module-dir"] = str(BACKEND.parent)
    (workdir / "pdns.conf").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    log = (workdir / "pdns.log").open("wb")
    process = subprocess.Popen([exe, f"--config-dir={workdir}"], stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{api_port}"
    try:
        version = _wait_ready(url, api_key, process, workdir / "pdns.log")
        yield RealPowerDNS(url=url, api_key=api_key, dns_port=dns_port, version=version)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
        log.close()


def _wait_ready(url: str, api_key: str, process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 60  # a safety net: readiness is polled, not slept for
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pdns_server exited ({process.returncode}): "
                                 f"{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"{url}/api/v1/servers/localhost",
                               headers={"X-API-Key": api_key}, timeout=2)
            if answer.status_code == 200:
                return str(answer.json().get("version", ""))
        time.sleep(0.1)
    raise AssertionError(f"pdns_server never answered on {url}: "
                         f"{log.read_text(errors='replace')[-3000:]}")
