"""An HTTP client that connects to the address it checked (outbound webhooks).

Checking a host's addresses and then letting the HTTP library look the host up again to
connect leaves a gap: a name that answers a public address to the check and a private one
to the connection (DNS rebinding) reaches the operator's own network. Here the lookup is
made once, in the connection itself: httpcore asks its network backend to connect to
(host, port); `PinnedBackend` resolves the host once (`lookup`, the event loop's
`getaddrinfo`, or the resolver it was given), refuses the connection if any address it got
is private (`hub.web.addresses.public_ip`; one private answer is enough to refuse: a name
that mixes them is not trusted), and connects to those very addresses, in the resolver's
order. The URL keeps its host name, so
TLS sends it as SNI and checks the certificate against it (httpcore's `start_tls` takes
`server_hostname` from the URL), and the `Host` header is the original one.

With `allow_private` (HUB_HOOKS_ALLOW_PRIVATE: a receiver inside the operator's network)
every address is allowed, and the connection is still made to the address looked up.
Proxies from the environment are not used: the connection would go to the proxy, which
would look the name up again.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

from hub.web.addresses import literal_ip, public_ip


class Refused(httpcore.ConnectError):
    """The host resolves to an address outbound webhooks may not reach (or to none)."""


Resolver = Callable[[str, int], Awaitable[list[str]]]
"""A name's addresses for a port, in the order to try them (`lookup`; a test passes its own)."""


async def lookup(host: str, port: int) -> list[str]:
    """The event loop's `getaddrinfo`: every address the name resolves to, in its order."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except OSError as exc:
        raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def addresses_of(host: str, port: int, resolve: Resolver = lookup) -> list[str]:
    """Every address the host resolves to, asked once; a literal address answers itself."""
    literal = literal_ip(host)
    if literal is not None:
        return [str(literal)]
    return await resolve(host, port)


def checked(host: str, found: list[str], allow_private: bool) -> list[str]:
    if not found:
        raise Refused(f"{host} resolves to no address")
    private = [address for address in found if not public_ip(address)]
    if private and not allow_private:
        raise Refused(f"refused: {host} leads to a private address ({private[0]})")
    return found


class PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allow_private: bool, resolve: Resolver = lookup) -> None:
        self.allow_private = allow_private
        self.resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:  # the lookup counts against the connect timeout, as httpcore's own would
            found = await asyncio.wait_for(addresses_of(host, port, self.resolve), timeout)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"{host} did not resolve in time") from exc
        found = checked(host, found, self.allow_private)
        failure: Exception | None = None
        for address in found:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("outbound requests do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its connection pool given the `PinnedBackend`."""

    def __init__(
        self,
        *,
        allow_private: bool,
        verify: ssl.SSLContext | bool = True,
        resolve: Resolver = lookup,
    ) -> None:
        super().__init__(verify=verify, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=PinnedBackend(allow_private, resolve),
        )


def pinned_client(
    *, allow_private: bool, verify: ssl.SSLContext | bool = True, resolve: Resolver = lookup
) -> httpx.AsyncClient:
    """A client whose every connection goes to an address checked in the same lookup; it
    follows no redirects (a receiver's 3xx is its answer). `resolve` is the one lookup
    (`lookup`, the event loop's resolver; a test gives its own)."""
    return httpx.AsyncClient(
        transport=PinnedTransport(allow_private=allow_private, verify=verify, resolve=resolve),
        follow_redirects=False,
        trust_env=False,
    )
