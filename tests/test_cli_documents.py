"""`brobygger add FILE|URL`, `brobygger documents` and `brobygger remove ID`: the same checks and
refusals as in Telegram, one clear line and a non-zero exit on refusal, changes audited."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.storage import Storage
from tests.documents import make_docx, make_scanned_pdf
from tests.test_cli import env, run  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

DOCX = make_docx(
    "Lärlingar i hamnen",
    [
        "I Göteborgs hamn får unga som varken arbetar eller studerar gå en lärlingsutbildning "
        "till kranförare under nio månader.",
    ],
)
PAGE = """<!doctype html><html><head><title>Kranskolan</title></head><body>
<nav>Hem | Om oss</nav><article><h1>Kranskolan i Luleå</h1>
<p>Kranskolan i Luleå utbildar unga kranförare under sex månader med lön.</p></article>
<footer>Luleå kommun</footer></body></html>""".encode()


@pytest.fixture
def site() -> Iterator[str]:
    """A web server on 127.0.0.1 in a thread (the CLI runs its own event loop)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/kranskolan":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _audit(root: Path) -> list[tuple[int, str, str]]:
    async def read() -> list[tuple[int, str, str]]:
        async with await Storage.open(root / "data" / "brobygger.sqlite3") as storage:
            return [(e.admin_id, e.action, e.detail) for e in await storage.audit_entries()]

    return asyncio.run(read())


def test_add_list_ask_and_remove_a_word_file(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = env / "Lärlingar.docx"
    path.write_bytes(DOCX)
    code, out, err = run(capsys, "add", str(path), "--title", "Hamnlärlingar")
    assert code == 0, err
    assert "Title: Hamnlärlingar" in out
    assert "Language: sv (detected)" in out
    assert "Format: docx; passages: 1" in out
    assert "  | Lärlingar i hamnen" in out
    assert "Added knowledge/documents/larlingar.md" in out

    code, out, _ = run(capsys, "documents", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["id"] == "larlingar"
    assert rows[0]["source"] == "Lärlingar.docx"
    assert rows[0]["added"] is not None
    assert len(rows) == 6

    code, out, _ = run(
        capsys, "ask", "--json", "--top-k", "1", "Vem utbildas till kranförare i hamnen?"
    )
    assert json.loads(out)["results"][0]["document"] == "knowledge/documents/larlingar.md"

    code, out, err = run(capsys, "remove", "larlingar")
    assert code == 0, err
    assert "Removed 1 file(s) of larlingar" in out
    assert not (env / "knowledge" / "documents" / "larlingar.md").exists()
    code, out, _ = run(capsys, "documents")
    assert "larlingar" not in out
    actions = [(admin, action, detail.split(" ")[0]) for admin, action, detail in _audit(env)]
    assert actions == [(0, "remove", "removed"), (0, "upload", "added")]


def test_add_refuses_with_the_reason(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = env / "scan.pdf"
    path.write_bytes(make_scanned_pdf())
    code, _, err = run(capsys, "add", str(path))
    assert code == 1
    assert err.strip().splitlines() == [
        f"brobygger: error: {path} was not added: There is no text I can read in it (2 pages "
        "of pictures only, probably scanned) – run OCR first, then send it again."
    ]
    assert not list((env / "knowledge" / "documents").glob("scan*"))


def test_add_a_web_page(
    env: Path,  # noqa: F811
    site: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = run(capsys, "add", f"{site}/kranskolan")
    assert code == 1
    assert "127.0.0.1 points to a private or local network address" in err

    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    code, out, err = run(capsys, "add", f"{site}/kranskolan", "--lang", "sv")
    assert code == 0, err
    assert "Title: Kranskolan i Luleå" in out
    assert "Language: sv (given)" in out
    saved = (env / "knowledge" / "documents" / "kranskolan.md").read_text(encoding="utf-8")
    assert f"source: {site}/kranskolan" in saved
    assert "Hem | Om oss" not in saved

    code, _, err = run(capsys, "add", f"{site}/missing")
    assert code == 1
    assert "The page was not found (HTTP 404)." in err


def test_remove_refuses_what_catalogs_need(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "remove", "atwork4neets")
    assert code == 1
    assert "I cannot remove atwork4neets: catalog entries take their facts from it" in err
    code, _, err = run(capsys, "remove", "nothing-here")
    assert code == 1
    assert "nothing-here is not in the knowledge base" in err
