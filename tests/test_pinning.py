"""Outbound webhooks' client (hub.web.pinning): one lookup, checked, and the connection made
to the address it gave, with the original host for TLS and `Host`. Receivers on loopback,
over plain HTTP and over TLS with a certificate made here for the name "localhost" only."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.web.pinning import PinnedBackend, Refused, addresses_of, pinned_client
from tests.receiver import Receiver, running_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as made:
        yield made


def post(url: str, *, allow_private: bool, verify: ssl.SSLContext | bool = True) -> httpx.Response:
    async def send() -> httpx.Response:
        async with pinned_client(allow_private=allow_private, verify=verify) as client:
            return await client.post(url, content=b"{}", timeout=5)

    return asyncio.run(send())


def test_a_name_that_resolves_to_loopback_is_refused_before_connecting(
    receiver: Receiver,
) -> None:
    found = asyncio.run(addresses_of("localhost", receiver.port))
    assert found and all(ipaddress.ip_address(a).is_loopback for a in found)
    for host in ("localhost", "127.0.0.1", "2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]"):
        with pytest.raises(httpx.ConnectError) as refused:
            post(f"http://{host}:{receiver.port}/hook", allow_private=False)
        assert isinstance(refused.value.__cause__, Refused), host
        assert "private address" in str(refused.value), host
    assert receiver.requests == []  # not one connection reached it


def test_the_connection_goes_to_the_checked_address_with_the_original_host(
    receiver: Receiver,
) -> None:
    answer = post(f"http://localhost:{receiver.port}/hook", allow_private=True)
    assert answer.status_code == 200
    [request] = receiver.requests
    assert request["headers"]["host"] == f"localhost:{receiver.port}"


class Rebinding:
    """A resolver of a name that rebinds: its first answer is 127.0.0.1, every later one
    127.0.0.2 (where another receiver listens). It counts the lookups."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return ["127.0.0.1"] if len(self.calls) == 1 else ["127.0.0.2"]


@pytest.fixture
def elsewhere(receiver: Receiver) -> Iterator[Receiver]:
    """A second receiver on the same port of 127.0.0.2: where a second lookup would lead."""
    with running_receiver(receiver.port, host="127.0.0.2") as made:
        yield made


def test_the_backend_connects_to_the_address_it_looked_up(
    receiver: Receiver, elsewhere: Receiver
) -> None:
    """The name is looked up once, and that answer is where the connection goes: a second
    lookup (to check, then to connect) would reach 127.0.0.2, and a client that let the
    system resolve the name would not find it at all. Private addresses are allowed here
    (HUB_HOOKS_ALLOW_PRIVATE) so that loopback is reachable."""
    resolver = Rebinding()

    async def peer() -> object:
        backend = PinnedBackend(allow_private=True, resolve=resolver)
        stream = await backend.connect_tcp("rebind.example", receiver.port, timeout=5)
        try:
            return stream.get_extra_info("server_addr")
        finally:
            await stream.aclose()

    assert asyncio.run(peer()) == ("127.0.0.1", receiver.port)
    assert resolver.calls == [("rebind.example", receiver.port)]

    resolver = Rebinding()

    async def send() -> httpx.Response:
        async with pinned_client(allow_private=True, resolve=resolver) as client:
            url = f"http://rebind.example:{receiver.port}/hook"
            return await client.post(url, content=b"{}", timeout=5)

    assert asyncio.run(send()).status_code == 200
    assert resolver.calls == [("rebind.example", receiver.port)]
    [request] = receiver.requests
    assert request["headers"]["host"] == f"rebind.example:{receiver.port}"
    assert elsewhere.requests == []

    refusing = Rebinding()  # its one answer, loopback, is refused: no second lookup either
    with pytest.raises(Refused):
        asyncio.run(
            PinnedBackend(allow_private=False, resolve=refusing).connect_tcp(
                "rebind.example", receiver.port
            )
        )
    assert len(refusing.calls) == 1 and len(receiver.requests) == 1


def certificate_for(name: str, folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        # The name only, no IP address: verification passes only against the host name.
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_checks_the_certificate_against_the_original_host_name(tmp_path: Path) -> None:
    cert, key = certificate_for("localhost", tmp_path)
    trusted = ssl.create_default_context(cafile=str(cert))
    tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    with running_receiver(**tls) as receiver:
        answer = post(f"https://localhost:{receiver.port}/hook", allow_private=True, verify=trusted)
        assert answer.status_code == 200
        assert receiver.requests[0]["headers"]["host"] == f"localhost:{receiver.port}"
        # The same server by its address: the certificate does not name it, so the handshake
        # fails; the name, not the pinned address, is what TLS was checked against above.
        with pytest.raises(httpx.ConnectError, match="certificate"):
            post(f"https://127.0.0.1:{receiver.port}/hook", allow_private=True, verify=trusted)


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.otherwise, receiver.location = 307, "http://169.254.169.254/latest/meta-data/"
    answer = post(f"http://localhost:{receiver.port}/hook", allow_private=True)
    assert answer.status_code == 307 and answer.is_redirect
    assert len(receiver.requests) == 1
