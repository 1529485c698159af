"""Documents the tests make themselves: PDFs (fpdf2), Word files (python-docx), web pages, and
the bad ones an admin might send (protected, scanned, truncated, zip bombs, liars).

Nothing here is a stored binary fixture: every file is generated, so what it contains is visible
in the test that uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import zipfile
from collections.abc import AsyncIterator, Sequence

import docx
from aiohttp import web
from fpdf import FPDF

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def make_pdf(
    heading: str,
    paragraphs: Sequence[str],
    *,
    title: str | None = None,
    user_password: str | None = None,
    owner_password: str | None = None,
) -> bytes:
    """A text PDF: a bold heading and paragraphs (Latin-1 text: the core fonts' range)."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    if user_password is not None or owner_password is not None:
        pdf.set_encryption(owner_password=owner_password or "owner", user_password=user_password)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.multi_cell(0, 10, heading)
    pdf.ln(4)
    pdf.set_font("helvetica", size=11)
    for paragraph in paragraphs:
        pdf.multi_cell(0, 6, paragraph)
        pdf.ln(5)
    return bytes(pdf.output())


def make_report_pdf(sections: Sequence[tuple[str, str]], running_header: str) -> bytes:
    """A report of one section per page, with a running header and "Page N" footer on every
    page, as word processors print them."""

    class Report(FPDF):
        def header(self) -> None:
            self.set_font("helvetica", "I", 8)
            self.cell(0, 8, running_header)
            self.ln(12)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("helvetica", "I", 8)
            self.cell(0, 10, f"Page {self.page_no()}", align="C")

    pdf = Report()
    for heading, text in sections:
        pdf.add_page()
        pdf.set_font("helvetica", "B", 14)
        pdf.multi_cell(0, 9, heading)
        pdf.ln(3)
        pdf.set_font("helvetica", size=11)
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def make_scanned_pdf(pages: int = 2) -> bytes:
    """Pages with only pictures on them, as a scanner makes: no text layer at all."""
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.set_fill_color(40, 40, 40)
        for row in range(20):
            pdf.rect(20, 20 + row * 12, 150 - (row % 4) * 20, 6, style="F")
    return bytes(pdf.output())


def make_docx(
    heading: str,
    paragraphs: Sequence[str],
    *,
    core_title: str | None = None,
    subheading: str | None = None,
    items: Sequence[str] = (),
) -> bytes:
    document = docx.Document()
    if core_title:
        document.core_properties.title = core_title
    document.add_heading(heading, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if subheading:
        document.add_heading(subheading, level=2)
    for item in items:
        document.add_paragraph(item, style="List Bullet")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_zip_bomb(uncompressed: int) -> bytes:
    """A .docx-shaped zip whose document.xml unpacks to `uncompressed` bytes of zeros (it
    compresses about 1000:1, so 150 MB fit in 150 KB)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            block = b"\0" * 2**20
            for _ in range(uncompressed // len(block)):
                part.write(block)
    return out.getvalue()


def make_encrypted_office() -> bytes:
    """The shape of a password-protected .docx: an OLE container with an EncryptedPackage
    stream (the real thing is produced by Word; its first bytes and stream name are what
    tell it apart, and what the check reads)."""
    name = "EncryptedPackage".encode("utf-16-le")
    return OLE_MAGIC + bytes(504) + name + bytes(4096)


def make_html(title: str, heading: str, paragraphs: Sequence[str], *, lang: str = "en") -> bytes:
    """A page as sites make them: navigation, a cookie banner, scripts and a footer around the
    article, which is the only part that belongs in the knowledge base."""
    body = "\n".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<script>window.dataLayer = [{{"event": "tracking-pixel-loaded"}}];</script></head>
<body>
<header><nav><a href="/">Home</a> | <a href="/news">News</a> | <a href="/contact">Contact us</a>
</nav></header>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience.
<button>Accept all cookies</button></div>
<main><article>
<h1>{heading}</h1>
{body}
</article></main>
<script>document.write("analytics-snippet-text");</script>
<footer>Copyright 2026 Example Municipality. Privacy policy. Accessibility statement.</footer>
</body></html>""".encode()


def make_script_only_html() -> bytes:
    return b"""<!DOCTYPE html><html><head><title></title>
<script src="/app.js"></script></head>
<body><div id="root"></div><script>window.__APP__ = {"route": "/"}; render();</script>
</body></html>"""


@contextlib.asynccontextmanager
async def serve(pages: dict[str, tuple[str, bytes]], *, delay: float = 0.0) -> AsyncIterator[str]:
    """A web server on 127.0.0.1 for the duration of a test: path → (content type, body). Other
    paths answer 404; `/slow` answers after `delay` seconds. Yields the base address."""

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/slow":
            await asyncio.sleep(delay)
        if request.path not in pages:
            raise web.HTTPNotFound()
        content_type, body = pages[request.path]
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
