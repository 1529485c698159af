"""Fetching web pages: limits on size, time and redirects, HTML only, and no way to make the bot
reach loopback, private, link-local or reserved addresses – checked on every redirect hop.

Pages come from an aiohttp server on 127.0.0.1 that each test starts; the private-address guard
is switched off (allow_private=True) only where a test fetches from it on purpose. Nothing
here touches the network."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.knowledge import fetch
from bot.knowledge.fetch import FetchError, GuardedResolver, fetch_page, is_public

PAGE = b"<!doctype html><html><body><article><h1>Hello</h1><p>Text.</p></article></body></html>"
LIMIT = 50_000


class Site:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.base = ""


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    state = Site()

    async def page(request: web.Request) -> web.StreamResponse:
        state.hits.append(request.path)
        name = request.match_info["name"]
        if name == "ok":
            return web.Response(body=PAGE, content_type="text/html", charset="utf-8")
        if name == "pdf":
            return web.Response(body=b"%PDF-1.7", content_type="application/pdf")
        if name == "slow":
            await asyncio.sleep(5)
            return web.Response(body=PAGE, content_type="text/html")
        if name == "huge":
            return web.Response(body=b"<html>" + b"x" * (LIMIT * 2), content_type="text/html")
        if name == "stream":  # no Content-Length: the limit must hold while reading
            response = web.StreamResponse(headers={"Content-Type": "text/html"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for _ in range(20):
                await response.write(b"<p>" + b"y" * 10_000 + b"</p>")
            await response.write_eof()
            return response
        if name == "loop":
            raise web.HTTPFound("/p/loop")
        if name.startswith("hop"):
            left = int(name[3:])
            raise web.HTTPFound(f"/p/hop{left - 1}" if left > 1 else "/p/ok")
        if name == "to-private":
            raise web.HTTPFound(f"http://127.0.0.2:{request.url.port}/p/ok")
        if name == "to-file":
            raise web.HTTPFound("file:///etc/passwd")
        if name == "to-name":
            raise web.HTTPFound(f"http://intranet.example:{request.url.port}/p/ok")
        if name == "gone":
            raise web.HTTPGone()
        if name == "broken":
            raise web.HTTPInternalServerError()
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/p/{name}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    server = web.TCPSite(runner, "127.0.0.1", 0)
    await server.start()
    port = runner.addresses[0][1]
    state.base = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


async def get(url: str, **kwargs: Any) -> fetch.Fetched:
    options: dict[str, Any] = {"max_bytes": LIMIT, "time_limit": 5.0, "allow_private": True}
    options.update(kwargs)
    return await fetch_page(url, **options)


async def refused(url: str, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await get(url, **kwargs)
    return caught.value


async def test_a_page_is_fetched(site: Site) -> None:
    page = await get(f"{site.base}/p/ok")
    assert page.data == PAGE
    assert page.content_type == "text/html"


async def test_redirects_are_followed_up_to_the_limit(site: Site) -> None:
    page = await get(f"{site.base}/p/hop3")
    assert page.final_url.endswith("/p/ok")
    error = await refused(f"{site.base}/p/loop", max_redirects=3)
    assert error.reason == "url_redirects"
    assert site.hits.count("/p/loop") == 4  # the first request and three redirects


@pytest.mark.parametrize(
    ("path", "reason"),
    [("missing", "url_not_found"), ("gone", "url_not_found"), ("broken", "url_status")],
)
async def test_http_errors_are_named(site: Site, path: str, reason: str) -> None:
    assert (await refused(f"{site.base}/p/{path}")).reason == reason


async def test_not_html_is_refused(site: Site) -> None:
    error = await refused(f"{site.base}/p/pdf")
    assert error.reason == "url_not_html"
    assert error.values == {"content_type": "application/pdf"}


async def test_a_slow_page_times_out(site: Site) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await refused(f"{site.base}/p/slow", time_limit=0.5)
    assert error.reason == "url_timeout"
    assert loop.time() - started < 3


@pytest.mark.parametrize("path", ["huge", "stream"])
async def test_a_page_over_the_size_limit_is_refused(site: Site, path: str) -> None:
    assert (await refused(f"{site.base}/p/{path}")).reason == "too_big"


# --- private addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "localhost",
        "0.0.0.0",
        "169.254.169.254",
        "10.1.2.3",
        "[::ffff:127.0.0.1]",
    ],
)
async def test_private_and_local_addresses_are_refused_by_default(site: Site, host: str) -> None:
    port = site.base.rsplit(":", 1)[1]
    error = await refused(f"http://{host}:{port}/p/ok", allow_private=False)
    assert error.reason == "url_private"
    assert site.hits == []  # refused before any connection


async def test_every_redirect_hop_is_checked(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.1 stands in for a public server here; the redirect to 127.0.0.2 must be refused
    before it is followed."""
    monkeypatch.setattr(fetch, "is_public", lambda address: str(address) == "127.0.0.1")
    error = await refused(f"{site.base}/p/to-private", allow_private=False)
    assert error.reason == "url_private"
    assert site.hits == ["/p/to-private"]


async def test_a_redirect_to_a_name_that_resolves_privately_is_refused(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is resolved by the guard itself, and every address it gives must be public."""
    monkeypatch.setattr(fetch, "is_public", lambda address: str(address) == "127.0.0.1")
    real = asyncio.get_running_loop().getaddrinfo

    async def fake_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "intranet.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.3", 80))]
        return await real(host, *args, **kwargs)

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake_getaddrinfo)
    error = await refused(f"{site.base}/p/to-name", allow_private=False)
    assert error.reason == "url_private"
    assert site.hits == ["/p/to-name"]


async def test_a_name_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fake_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.1.10", 443)),
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(FetchError) as caught:
        await GuardedResolver(allow_private=False).resolve("mixed.example", 443)
    assert caught.value.reason == "url_private"


@pytest.mark.parametrize(
    "url", ["ftp://example.org/file", "file:///etc/passwd", "http://", "not a url", "http://[::1"]
)
async def test_only_http_and_https_are_fetched(url: str) -> None:
    assert (await refused(url)).reason == "url_invalid"


async def test_a_redirect_to_another_scheme_is_refused(site: Site) -> None:
    assert (await refused(f"{site.base}/p/to-file")).reason == "url_invalid"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.0.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # cloud metadata
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:93.184.216.34", True),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
