"""Text out of the files admins actually have: PDF reports, Word documents, HTML pages, Markdown
and plain text.

The format is judged from the bytes (magic numbers, the parts inside a zip), never from the file
name, because names lie: a `.pdf` that is really a Word file, a `.docx` that is a zip bomb. The
name only serves to notice such a lie and say so. The text keeps its paragraphs (blank lines)
and headings (`#` lines), so passages stay readable and the chunker can cut at sentence ends.

Plain Python with no Telegram or asyncio: the caller runs `extract` in a worker thread, since a
large PDF keeps the CPU busy for seconds. Every refusal is an `ExtractError` whose `reason` names
a UI string (admin.refused_<reason>) and whose `values` fill its placeholders.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import Any

from bot.errors import BrobyggerError

log = logging.getLogger(__name__)

#: A Word file unpacks to about 3-10× its size; 100 MB of XML is far past any real report and
#: far below what would exhaust memory. Checked from the zip directory before anything is read.
MAX_UNCOMPRESSED_BYTES = 100 * 2**20
#: Parts a zip may hold before it is a bomb of many small files rather than a document.
MAX_ZIP_MEMBERS = 5_000
#: Share of control characters above which decoded "text" is really binary data.
MAX_CONTROL_SHARE = 0.01
MAX_TITLE_CHARS = 150
#: A PDF whose pages yield fewer letters than this per page on average has no text layer.
MIN_LETTERS_PER_PAGE = 20

FORMATS = ("pdf", "docx", "html", "markdown", "text")
#: What each file name ending promises; names not listed here promise nothing.
SUFFIX_FORMATS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
}

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
_HTML_START_RE = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
    rb"<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])",
    re.I | re.S,
)
_SCRIPT_RE = re.compile(rb"<script\b", re.I)
_HEADING_STYLE_RE = re.compile(r"^heading\s*(\d)$", re.I)
_SENTENCE_END = (".", "!", "?", ":", ";", "…", '"', "”", "»", ")")


class ExtractError(BrobyggerError):
    """Why a file yields no usable text. `reason` names a UI string; `values` fill it."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


@dataclass(frozen=True)
class Extracted:
    """The readable text of a document and what it says about itself."""

    format: str  # one of FORMATS
    text: str  # paragraphs separated by blank lines; headings as Markdown `#` lines
    title: str | None  # from the metadata or the first heading; None when it has neither


def suffix_of(file_name: str) -> str:
    base = re.split(r"[\\/]", file_name)[-1]
    _, dot, ext = base.rpartition(".")
    return f".{ext.lower()}" if dot and ext else ""


# --- what the bytes are -----------------------------------------------------------------------


def sniff(data: bytes) -> str:
    """The format of `data` from its content: pdf, docx, html, text, or a name for what it is
    that no text can be taken from (png, zip, doc, encrypted-office, binary).

    Plain text and Markdown look alike; both come back as "text" and the name decides."""
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return "corrupt-zip"
        if "word/document.xml" in names:
            return "docx"
        return "zip"
    if data.startswith(_OLE_MAGIC):
        # An Office file with a password is an OLE container holding an EncryptedPackage.
        if "EncryptedPackage".encode("utf-16-le") in data:
            return "encrypted-office"
        return "doc"
    for magic, name in _IMAGE_MAGIC:
        if data.startswith(magic):
            return name
    if data.startswith(_UTF16_BOMS) or b"\x00" in head:
        return "binary"
    if _HTML_START_RE.match(data[:4096]):
        return "html"
    return "text"


_DESCRIPTIONS = {
    "pdf": "PDF",
    "docx": "Word (.docx)",
    "html": "HTML",
    "text": "text",
    "markdown": "text",
    "png": "PNG",
    "jpeg": "JPEG",
    "gif": "GIF",
    "tiff": "TIFF",
    "zip": "zip",
    "corrupt-zip": "zip",
    "doc": "Word 97-2003 (.doc)",
    "encrypted-office": "Office",
    "binary": "binary",
}


def describe(kind: str) -> str:
    """A short name of a sniffed kind for messages (`zip`, `PNG`, `Word (.docx)`)."""
    return _DESCRIPTIONS.get(kind, kind)


def judge_format(file_name: str, data: bytes) -> str:
    """The format to extract `data` as, or an ExtractError that says why it cannot be read.

    The content decides; a name ending that promises something else is reported as a lie
    rather than guessed around (a mislabelled file is usually the wrong file)."""
    kind = sniff(data)
    suffix = suffix_of(file_name)
    promised = SUFFIX_FORMATS.get(suffix)
    if kind == "encrypted-office":
        raise ExtractError("protected")
    if kind == "binary":
        raise (
            ExtractError("not_utf8", line=1)
            if data.startswith(_UTF16_BOMS)
            else ExtractError("binary")
        )
    if kind == "text" and promised == "markdown":
        kind = "markdown"
    textual = {"text", "markdown"}
    if promised is not None and promised != kind and not (promised in textual and kind in textual):
        if kind == "corrupt-zip" and promised == "docx":
            raise ExtractError("corrupt", format=describe("docx"))
        raise ExtractError("mismatch", suffix=suffix, actual=describe(kind))
    if kind in FORMATS:
        return kind
    if kind == "corrupt-zip":
        raise ExtractError("corrupt", format=describe("zip"))
    if kind == "doc":
        raise ExtractError("old_word")
    if kind in {"png", "jpeg", "gif", "tiff"}:
        raise ExtractError("image", actual=describe(kind))
    raise ExtractError("wrong_type", suffix=suffix or "-", actual=describe(kind))


# --- text -------------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """Bytes to text the way the knowledge loader reads files, refusing what is not UTF-8."""
    if data.startswith(_UTF16_BOMS):
        raise ExtractError("not_utf8", line=1)
    if b"\x00" in data:
        raise ExtractError("binary")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ExtractError("not_utf8", line=data[: error.start].count(b"\n") + 1) from None
    controls = sum(
        1 for char in text if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS
    )
    if text and controls / len(text) > MAX_CONTROL_SHARE:
        raise ExtractError("binary")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ExtractError("empty")
    return text


def tidy(text: str) -> str:
    """Trailing spaces off, at most one blank line in a row, no blank start or end."""
    lines = [line.rstrip() for line in text.strip().split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def clip_title(title: str) -> str:
    title = " ".join(title.split()).lstrip("#").strip()
    if len(title) <= MAX_TITLE_CHARS:
        return title
    return title[: MAX_TITLE_CHARS - 1].rstrip() + "…"


def first_heading(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            if heading:
                return heading
    return None


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _letters(text: str) -> int:
    return sum(1 for char in text if char.isalpha())


# --- PDF --------------------------------------------------------------------------------------


def _pdf_paragraphs(page_text: str) -> list[str]:
    """Layout-mode page text to paragraphs: blank lines (vertical gaps) separate paragraphs,
    lines inside one are joined, words hyphenated across a line break are mended, and a short
    line without a sentence end standing alone becomes a heading."""
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", page_text):
        lines = [" ".join(line.split()) for line in block.splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            continue
        joined = lines[0]
        for line in lines[1:]:
            if re.search(r"\w-$", joined) and line[:1].islower():
                joined = joined[:-1] + line
            else:
                joined += " " + line
        if (
            len(lines) == 1
            and len(joined) <= 80
            and not joined.endswith(_SENTENCE_END)
            and joined[:1].isupper()
            and _letters(joined) >= 3
        ):
            joined = f"## {joined}"
        paragraphs.append(joined)
    return paragraphs


def _without_running_lines(per_page: list[list[str]]) -> list[str]:
    """All pages' paragraphs without page numbers and the running headers and footers a report
    repeats on most pages (they would otherwise become passages of their own, many times)."""

    def shape(paragraph: str) -> str:
        return re.sub(r"\d+", "#", paragraph.lstrip("# ").casefold())

    seen: dict[str, int] = {}
    for paragraphs in per_page:
        for key in {shape(p) for p in paragraphs if len(p) <= 120}:
            seen[key] = seen.get(key, 0) + 1
    running = {
        key for key, pages in seen.items() if len(per_page) >= 3 and pages > len(per_page) / 2
    }
    kept: list[str] = []
    for paragraphs in per_page:
        for paragraph in paragraphs:
            if _letters(paragraph) == 0 and len(paragraph) <= 12:
                continue  # a page number
            if len(paragraph) <= 120 and shape(paragraph) in running:
                continue
            kept.append(paragraph)
    return kept


def extract_pdf(data: bytes) -> Extracted:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # An owner password alone (printing or copying restricted) opens with "".
            try:
                opened = bool(reader.decrypt(""))
            except (DependencyError, NotImplementedError, PdfReadError):
                opened = False
            if not opened:
                raise ExtractError("protected")
        pages = list(reader.pages)
        per_page: list[list[str]] = []
        for page in pages:
            try:
                page_text = page.extract_text(extraction_mode="layout")
            except (ValueError, KeyError, TypeError, ZeroDivisionError):
                page_text = page.extract_text()
            per_page.append(_pdf_paragraphs(page_text))
        metadata = reader.metadata
        meta_title = str(metadata.title) if metadata is not None and metadata.title else None
    except ExtractError:
        raise
    except FileNotDecryptedError:
        raise ExtractError("protected") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        log.info("unreadable PDF: %s", error)
        raise ExtractError("corrupt", format="PDF") from None
    except RecursionError:
        raise ExtractError("corrupt", format="PDF") from None
    if not pages:
        raise ExtractError("empty")
    paragraphs = _without_running_lines(per_page)
    if sum(_letters(p) for p in paragraphs) < MIN_LETTERS_PER_PAGE * len(pages):
        raise ExtractError("no_text_layer", pages=len(pages))
    text = tidy("\n\n".join(paragraphs))
    title = meta_title.strip() if meta_title and meta_title.strip() else first_heading(text)
    return Extracted("pdf", text, title)


# --- DOCX -------------------------------------------------------------------------------------


def _check_zip(data: bytes, max_uncompressed: int) -> None:
    """Refuse a zip whose parts would unpack to more than `max_uncompressed` bytes, judged from
    the directory before anything is unpacked. zipfile stops reading a part at its declared
    size (and fails the CRC if there is more), so declared sizes do bound what gets read."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ExtractError("corrupt", format=describe("docx")) from None
    total = sum(member.file_size for member in members)
    if len(members) > MAX_ZIP_MEMBERS or total > max_uncompressed:
        raise ExtractError(
            "zip_bomb", size_mb=-(-total // 2**20), limit_mb=max_uncompressed // 2**20
        )


def _docx_table(table: Any) -> list[str]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            value = " ".join(cell.text.split())
            if value and (not cells or cells[-1] != value):  # merged cells repeat their text
                cells.append(value)
        if cells:
            rows.append(" | ".join(cells))
    return rows


def extract_docx(data: bytes, max_uncompressed: int = MAX_UNCOMPRESSED_BYTES) -> Extracted:
    _check_zip(data, max_uncompressed)
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.oxml.ns import qn
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        style_title: str | None = None
        for child in document.element.body.iterchildren():
            if child.tag == qn("w:p"):
                paragraph = Paragraph(child, document)
                text = " ".join(paragraph.text.split())
                if not text:
                    continue
                style = (paragraph.style.name if paragraph.style is not None else "") or ""
                heading = _HEADING_STYLE_RE.match(style)
                if style.lower() == "title":
                    style_title = style_title or text
                    blocks.append(f"# {text}")
                elif heading:
                    blocks.append(f"{'#' * min(int(heading.group(1)) + 1, 6)} {text}")
                elif style.lower().startswith("list"):
                    blocks.append(f"- {text}")
                else:
                    blocks.append(text)
            elif child.tag == qn("w:tbl"):
                rows = _docx_table(Table(child, document))
                if rows:
                    blocks.append("\n".join(rows))
        core_title = document.core_properties.title
    except ExtractError:
        raise
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile, OSError) as error:
        log.info("unreadable DOCX: %s", error)
        raise ExtractError("corrupt", format=describe("docx")) from None
    except Exception as error:  # lxml's XMLSyntaxError and friends: a broken part inside
        if type(error).__module__.startswith(("lxml", "docx")):
            raise ExtractError("corrupt", format=describe("docx")) from None
        raise
    # list items one per line, other blocks a paragraph each
    text = ""
    for previous, block in zip(["", *blocks], blocks, strict=False):
        if text:
            both_items = previous.startswith("- ") and block.startswith("- ")
            text += "\n" if both_items else "\n\n"
        text += block
    text = tidy(text)
    if not text:
        raise ExtractError("empty")
    title = (core_title or "").strip() or style_title or first_heading(text)
    return Extracted("docx", text, title)


# --- HTML -------------------------------------------------------------------------------------


def _html_text(data: bytes) -> str:
    """HTML bytes to str: the declared charset, else UTF-8, else Latin-1 (never fails)."""
    match = re.search(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_-]+)", data[:4096], re.I)
    for encoding in ([match.group(1).decode("ascii")] if match else []) + ["utf-8-sig"]:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def extract_html(data: bytes) -> Extracted:
    """The main content of a page: trafilatura leaves out navigation, scripts, cookie banners,
    footers and the like, and keeps headings and paragraphs as Markdown."""
    import trafilatura

    html = _html_text(data)
    try:
        text = trafilatura.extract(
            _without_boilerplate(html),
            output_format="markdown",
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            include_formatting=True,
            deduplicate=True,
        )
        metadata = trafilatura.extract_metadata(html)
    except (ValueError, TypeError, RecursionError) as error:
        log.info("unreadable HTML: %s", error)
        text, metadata = None, None
    text = tidy(_unformat(text or ""))
    if _letters(text) == 0:
        if _SCRIPT_RE.search(data):
            raise ExtractError("script_only")
        raise ExtractError("empty")
    meta_title = metadata.title if metadata is not None else None
    title = (meta_title or "").strip() or first_heading(text)
    return Extracted("html", text, title)


_ALWAYS_OUT = ("nav", "aside", "form", "script", "style", "noscript", "template", "iframe")
_BANNER_RE = re.compile(r"cookie|consent|gdpr|newsletter", re.I)


def _without_boilerplate(html: str) -> Any:
    """The page with navigation, forms, scripts, cookie banners and the page's own header and
    footer removed, before trafilatura judges what is the main text. On a short page its
    heuristics fall back to taking nearly everything; this keeps the menu out even then.
    Headers and footers inside an article (an article's own title block) stay."""
    import lxml.html
    from lxml import etree

    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return html
    doomed = [element for tag in _ALWAYS_OUT for element in tree.iter(tag)]
    for tag in ("header", "footer"):
        doomed += [
            element
            for element in tree.iter(tag)
            if not any(a.tag in ("article", "main") for a in element.iterancestors())
        ]
    for element in tree.iter():
        if not isinstance(element.tag, str) or element.tag in ("html", "body", "main", "article"):
            continue
        marks = f"{element.get('id', '')} {element.get('class', '')} {element.get('role', '')}"
        if _BANNER_RE.search(marks) or element.get("role") in ("navigation", "banner"):
            doomed.append(element)
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()
    return tree


def _unformat(markdown: str) -> str:
    """Keep headings and paragraphs, drop inline emphasis marks (they would end up in passages
    people read as literal asterisks)."""
    return re.sub(r"(\*\*|__)(.+?)\1", r"\2", markdown)


# --- Markdown and text ------------------------------------------------------------------------


def extract_text(data: bytes, format: str = "text") -> Extracted:
    text = decode_text(data)
    if format == "markdown":
        return Extracted("markdown", text, None)  # the front matter carries the title
    body = tidy(text)
    return Extracted("text", body, first_line(body))


# --- all together -----------------------------------------------------------------------------


def extract(
    file_name: str, data: bytes, *, max_uncompressed: int = MAX_UNCOMPRESSED_BYTES
) -> Extracted:
    """Judge the format from the bytes and take the text out; ExtractError says why not."""
    if not data.strip():
        raise ExtractError("empty")
    kind = judge_format(file_name, data)
    if kind == "pdf":
        extracted = extract_pdf(data)
    elif kind == "docx":
        extracted = extract_docx(data, max_uncompressed)
    elif kind == "html":
        extracted = extract_html(data)
    else:
        extracted = extract_text(data, kind)
    if not extracted.text.strip():
        raise ExtractError("empty")
    title = clip_title(extracted.title) if extracted.title else None
    return Extracted(extracted.format, extracted.text, title or None)
