"""Fetching a web page an admin wants in the knowledge base, without letting the bot be used to
reach what it should not (server-side request forgery).

Every hop of a redirect chain is checked: only http(s), a bounded number of redirects, and no
address that resolves to loopback, private, link-local, multicast or otherwise reserved ranges.
The name is resolved here and the connection goes to exactly the addresses that were checked
(aiohttp's resolver is replaced), so a name cannot resolve to a public address for the check and
to 127.0.0.1 for the connection. The body is read with a size limit, the whole exchange with a
time limit, and anything that is not HTML is refused.

`allow_private` exists for tests, which serve pages from 127.0.0.1; production never sets it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.knowledge.extract import ExtractError

MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = 20.0
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
USER_AGENT = "Brobygger/0.1 (knowledge-base import; +https://github.com/)"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(ExtractError):
    """Why a page could not be fetched; `reason` names a UI string (admin.refused_<reason>)."""


@dataclass(frozen=True)
class Fetched:
    url: str  # as asked
    final_url: str  # after redirects
    data: bytes
    content_type: str


def is_public(address: IPAddress) -> bool:
    """True for addresses on the public internet; everything else is refused. IPv4 mapped
    into IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_link_local
    )


def check_url(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL, or FetchError("url_invalid")."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise FetchError("url_invalid", url=url) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("url_invalid", url=url)
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """Resolves with the system resolver and refuses names that lead to non-public addresses.
    All addresses of a name must be public: a name with one public and one private address
    would otherwise let the connection pick the private one."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, family=socket.AF_UNSPEC
            )
        except (socket.gaierror, UnicodeError) as error:
            raise FetchError("url_unreachable", host=host) from error
        results: list[ResolveResult] = []
        for family_, _, proto, _, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if not self.allow_private and not is_public(address):
                raise FetchError("url_private", host=host)
            results.append(
                {
                    "hostname": host,
                    "host": str(address),
                    "port": int(sockaddr[1]),
                    "family": family_,
                    "proto": proto,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        if not results:
            raise FetchError("url_unreachable", host=host)
        return results

    async def close(self) -> None:
        return None


async def fetch_page(
    url: str,
    *,
    max_bytes: int,
    time_limit: float = DEFAULT_TIMEOUT,
    max_redirects: int = MAX_REDIRECTS,
    allow_private: bool = False,
) -> Fetched:
    """The HTML of `url`, following at most `max_redirects` redirects, each hop checked."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allow_private), use_dns_cache=False, limit=4
    )
    client_timeout = aiohttp.ClientTimeout(total=time_limit)
    current = url.strip()
    try:
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=client_timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml"},
            trust_env=False,  # a proxy from the environment would bypass the address checks
        ) as session:
            async with asyncio.timeout(time_limit):
                for _ in range(max_redirects + 1):
                    host, _port = check_url(current)
                    literal = _literal(host)
                    if literal is not None and not allow_private and not is_public(literal):
                        raise FetchError("url_private", host=host)
                    async with session.get(current, allow_redirects=False) as response:
                        if response.status in (301, 302, 303, 307, 308):
                            location = response.headers.get("Location")
                            if not location:
                                raise FetchError("url_status", status=response.status)
                            current = urljoin(current, location)
                            continue
                        return await _read(url, current, response, max_bytes)
                raise FetchError("url_redirects", limit=max_redirects)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError("url_timeout", seconds=round(time_limit)) from None
    except aiohttp.ClientConnectorError as error:
        if isinstance(error.__cause__, FetchError):
            raise error.__cause__ from None
        raise FetchError("url_unreachable", host=urlsplit(current).hostname or current) from None
    except aiohttp.ClientError as error:
        cause: Any = error.__cause__ or error.__context__
        if isinstance(cause, FetchError):
            raise cause from None
        raise FetchError("url_unreachable", host=urlsplit(current).hostname or current) from None


async def _read(
    url: str, current: str, response: aiohttp.ClientResponse, max_bytes: int
) -> Fetched:
    if response.status == 404 or response.status == 410:
        raise FetchError("url_not_found", status=response.status)
    if response.status >= 400:
        raise FetchError("url_status", status=response.status)
    content_type = response.content_type.lower()
    if content_type not in HTML_TYPES:
        raise FetchError("url_not_html", content_type=content_type or "-")
    if response.content_length is not None and response.content_length > max_bytes:
        raise FetchError(
            "too_big", size_kb=-(-response.content_length // 1024), limit_kb=max_bytes // 1024
        )
    body = bytearray()
    async for block in response.content.iter_chunked(64 * 1024):
        body.extend(block)
        if len(body) > max_bytes:
            raise FetchError("too_big", size_kb=-(-len(body) // 1024), limit_kb=max_bytes // 1024)
    return Fetched(url, current, bytes(body), content_type)
