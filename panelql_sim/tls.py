"""Wire details for simulators that must look like a real appliance: TLS and reason phrases.

Proxmox VE only speaks HTTPS (proxmoxer hard-codes the scheme) and puts its human error message
in the HTTP *reason phrase* (``HTTP/1.1 500 VM 100 not running``). Neither comes for free:

- :func:`self_signed_certificate` writes a throw-away CA and a server certificate for
  ``127.0.0.1``/``localhost`` into a temporary directory, so clients can verify the simulator
  with the CA instead of switching verification off.
- uvicorn always writes the standard phrase for a status code, and ASGI has no field for a
  custom one. :class:`ReasonPhraseProtocol` is uvicorn's h11 protocol with one change: when a
  response carries the private header :data:`REASON_HEADER`, that header is removed and its value
  becomes the reason phrase. Pass it as ``http=ReasonPhraseProtocol`` to uvicorn (or to
  ``BackgroundServers.serve``).
"""

from __future__ import annotations

import datetime
import ipaddress
import tempfile
from pathlib import Path
from typing import NamedTuple

import h11
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from uvicorn.protocols.http.h11_impl import H11Protocol

REASON_HEADER = "x-sim-reason"
_REASON_HEADER_BYTES = REASON_HEADER.encode()


class TlsFiles(NamedTuple):
    certfile: str
    keyfile: str
    ca_path: str


def self_signed_certificate(directory: str | Path | None = None) -> TlsFiles:
    """Write a CA plus a server certificate signed by it; return their paths.

    A separate CA (rather than one self-signed leaf) is what OpenSSL verifies without special
    flags, so ``verify=ca_path`` works in requests and httpx alike.
    """
    folder = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="panelql-tls-"))
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PanelQL simulator CA")])
    ca_cert = (
        _base(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = x509.SubjectAlternativeName([
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        _base(subject, ca_name, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(names, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(str(folder / "server.pem"), str(folder / "server.key"),
                     str(folder / "ca.pem"))
    pem = serialization.Encoding.PEM
    Path(files.certfile).write_bytes(cert.public_bytes(pem))
    Path(files.ca_path).write_bytes(ca_cert.public_bytes(pem))
    Path(files.keyfile).write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return files


def _base(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
          now: datetime.datetime) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )


class _ReasonConnection(h11.Connection):
    """An h11 connection that takes the reason phrase from the private header."""

    def send_with_data_passthrough(self, event: h11.Event) -> list[bytes] | None:
        # `send` delegates here, so one override covers every path that writes a response.
        if isinstance(event, h11.Response):
            event = _with_reason(event)
        return super().send_with_data_passthrough(event)


def _with_reason(event: h11.Response) -> h11.Response:
    reason: bytes | None = None
    headers: list[tuple[bytes, bytes]] = []
    for name, value in event.headers:
        if name.lower() == _REASON_HEADER_BYTES:
            reason = value
        else:
            headers.append((name, value))
    if reason is None:
        return event
    return h11.Response(status_code=event.status_code, headers=headers, reason=reason,
                        http_version=event.http_version)


class ReasonPhraseProtocol(H11Protocol):
    """uvicorn's h11 protocol, honouring :data:`REASON_HEADER` as the reason phrase."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        limit = self.config.h11_max_incomplete_event_size
        self.conn = _ReasonConnection(h11.SERVER, limit or 16 * 1024)
