"""Documents that admins add – sent to the bot, or given to `brobygger add` as a file or a web
address – checked, turned into knowledge files and installed without ever leaving
`knowledge/documents/` or leaving the knowledge base broken.

PDF, Word, HTML, Markdown and plain text are read by bot/knowledge/extract.py, which judges the
format from the bytes; web pages are fetched by bot/knowledge/fetch.py. This module turns the
text into a knowledge file (front matter with title, language, source and the day it was added),
reports what the admin is about to add (title, language, passages, a two-line preview), refuses a
document whose text is already in the knowledge base, and installs it.

Plain Python (no Telegram), so the checks are unit-tested directly and the handler stays thin.
Every refusal is an `UploadError` with a reason key that the edge translates for the admin.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from bot.errors import BrobyggerError
from bot.knowledge.extract import (
    MAX_UNCOMPRESSED_BYTES,
    Extracted,
    ExtractError,
    clip_title,
    extract,
    first_line,
)
from bot.knowledge.loader import check_document, load_knowledge
from bot.knowledge.models import LANGUAGES, Document, KnowledgeBase, Problem
from bot.retrieval.chunks import Chunk, split_passages
from bot.retrieval.language import detect_language

#: The loader accepts ids of up to 48 characters (callback data "doc:del:<id>" stays < 64 bytes).
MAX_ID_CHARS = 48
MAX_TITLE_CHARS = 150
PREVIEW_LINES = 2
PREVIEW_CHARS = 120

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*$", re.S | re.M)
_ID_LINE_RE = re.compile(r"^id:[ \t]*[\"']?([^\"'\s#]+)", re.M)
_CAPTION_LANG_RE = re.compile(r"\b(?:lang|language)\s*[=:]\s*([A-Za-z_-]+)", re.I)
_TRANSLITERATE = str.maketrans(
    {"æ": "ae", "ø": "o", "œ": "oe", "ß": "ss", "đ": "d", "ð": "d", "ł": "l", "þ": "th"}
)


class UploadError(BrobyggerError):
    """Why a document cannot be added. `reason` names a UI string (admin.refused_<reason>);
    `values` fill its placeholders; `problems` are loader findings as path:line: message."""

    def __init__(self, reason: str, problems: Iterable[Problem] = (), **values: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problems = tuple(problems)
        self.values = values

    @classmethod
    def from_extract(cls, error: ExtractError) -> UploadError:
        return cls(error.reason, (), **error.values)


@dataclass(frozen=True)
class PreparedDocument:
    """A checked document, ready to be written as knowledge/documents/<id>.md."""

    id: str
    title: str
    language: str
    kind: str
    source_name: str  # the file name or address as given, for messages and the audit log
    content: str  # the whole Markdown file, front matter included
    converted: bool  # made from something else than a knowledge Markdown file
    language_given: bool  # the admin chose the language (caption or --lang)
    format: str = "markdown"  # pdf | docx | html | markdown | text
    body: str = ""  # the text as the index will read it
    passages: int = 0  # passages of the body in the index (summaries not counted)
    preview: tuple[str, ...] = ()  # the first lines, for the admin to recognise it


@dataclass(frozen=True)
class Installed:
    document: Document
    replaced: bool


def safe_slug(file_name: str) -> str:
    """A document id from a file name: only a-z, 0-9 and '-', never a path. Directories (with
    either separator), dots and everything else outside the id alphabet are dropped, letters
    with accents keep their base letter (Å → a), so `../../etc/passwd.md` becomes `passwd`."""
    base = re.split(r"[\\/]", file_name)[-1]
    stem = base.rpartition(".")[0] if "." in base else base
    return slugify(stem)


def slugify(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower().translate(_TRANSLITERATE))
    ascii_only = folded.encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-")
    return slug[:MAX_ID_CHARS].rstrip("-")


def name_from_url(url: str) -> str:
    """A file name for a fetched web page: its last path segment (without an ending, which may
    name what the server generates it from, `.php`, or even `.pdf`) plus `.html`, since the
    fetch checked that it is HTML. Generic names (`/`, `index.html`) take the host instead."""
    parts = urlsplit(url)
    segment = unquote(parts.path.rstrip("/").rpartition("/")[2])
    stem = segment.rpartition(".")[0] if "." in segment else segment
    if stem.lower() in ("", "index", "default", "home", "start"):
        stem = (parts.hostname or "page").removeprefix("www.")
    return f"{stem}.html"


def check_announced(file_name: str, size: int | None, max_bytes: int) -> None:
    """What can be refused before downloading anything: the announced size. The type is judged
    from the bytes after the download, since a name can lie."""
    if size is not None and size > max_bytes:
        # Rounded so that the size shown is always above the limit shown.
        raise UploadError("too_big", size_kb=-(-size // 1024), limit_kb=max_bytes // 1024)


def check_language(value: str | None) -> str | None:
    """A language the admin chose (caption or --lang), checked against the supported ones."""
    if value is None:
        return None
    value = value.strip().lower()
    if value not in LANGUAGES:
        raise UploadError("bad_language", value=value, allowed=", ".join(LANGUAGES))
    return value


def caption_language(caption: str | None) -> str | None:
    """`lang=sv` (or `language: da`) in the caption overrides the detected language."""
    match = _CAPTION_LANG_RE.search(caption or "")
    return None if match is None else check_language(match.group(1))


def decode_text(data: bytes) -> str:
    """Bytes to text the way the loader reads files, refusing what is not plain UTF-8 text."""
    from bot.knowledge.extract import decode_text as decode

    try:
        return decode(data)
    except ExtractError as error:
        raise UploadError.from_extract(error) from None


def _title(text: str) -> str:
    return clip_title(first_line(text))


def text_to_markdown(
    doc_id: str,
    text: str,
    language: str,
    today: date,
    *,
    title: str | None = None,
    source: str | None = None,
) -> tuple[str, str]:
    """Extracted text as a knowledge document (kind news); returns (markdown, title).
    The body stays as extracted, as for every source document; YAML dumping quotes the title.
    `source` and `added` let /documents say where a document came from and when."""
    title = clip_title(title) if title else _title(text)
    meta: dict[str, object] = {
        "id": doc_id,
        "title": title,
        "language": language,
        "kind": "news",
        "provenance": f"Uploaded by an admin on {today.isoformat()}",
    }
    if source:
        meta["source"] = source
        meta["added"] = today
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=10_000)
    return f"---\n{front}---\n{text.strip()}\n", title


def _front_matter_id(text: str) -> str | None:
    """The id the front matter declares, to name the file after it (the loader requires that)."""
    block = _FRONT_MATTER_RE.match(text)
    match = _ID_LINE_RE.search(block.group(1)) if block else None
    if match is None or not _ID_RE.match(match.group(1)):
        return None
    return match.group(1)


def _check(doc_id: str, content: str, source_name: str) -> Document:
    """The loader's own rules, applied in a scratch directory; problems name the upload."""
    with tempfile.TemporaryDirectory(prefix="brobygger-upload-") as scratch:
        root = Path(scratch) / "knowledge"
        path = root / "documents" / f"{doc_id}.md"
        path.parent.mkdir(parents=True)
        path.write_text(content, encoding="utf-8")
        document, problems = check_document(path, root)
    if document is None or problems:
        raise UploadError(
            "invalid", [Problem(source_name, p.line, p.message) for p in problems], name=source_name
        )
    return document


def preview_of(body: str) -> tuple[str, ...]:
    """The first lines of text (headings without their marks), clipped: enough for the admin to
    recognise the document, short enough for one glance."""
    lines: list[str] = []
    for raw in body.splitlines():
        line = " ".join(raw.lstrip("#").split())
        if not line:
            continue
        lines.append(line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1] + "…")
        if len(lines) == PREVIEW_LINES:
            break
    return tuple(lines)


def _prepared(
    document: Document,
    source_name: str,
    content: str,
    *,
    converted: bool,
    language_given: bool,
    format: str,
) -> PreparedDocument:
    return PreparedDocument(
        document.id,
        document.title,
        document.language,
        document.kind,
        source_name,
        content,
        converted=converted,
        language_given=language_given,
        format=format,
        body=document.body,
        passages=len(split_passages(document.body)),
        preview=preview_of(document.body),
    )


def prepare_upload(
    file_name: str,
    data: bytes,
    *,
    max_bytes: int,
    today: date,
    caption: str | None = None,
    language: str | None = None,
    title: str | None = None,
    source: str | None = None,
    max_uncompressed: int = MAX_UNCOMPRESSED_BYTES,
) -> PreparedDocument:
    """Check a file and turn it into the knowledge file it will become. Blocking (PDF parsing
    takes seconds): the bot runs it in a worker thread.

    A knowledge Markdown file (front matter) is taken as it is. Everything else becomes a news
    document: the title from the document's metadata or first heading (or `title`), the
    language detected from the text unless the caption or `language` names one."""
    check_announced(file_name, len(data), max_bytes)
    override = check_language(language) or caption_language(caption)
    try:
        extracted: Extracted = extract(file_name, data, max_uncompressed=max_uncompressed)
    except ExtractError as error:
        raise UploadError.from_extract(error) from None
    slug = safe_slug(file_name)
    if extracted.format == "markdown" and _FRONT_MATTER_RE.match(extracted.text):
        doc_id = _front_matter_id(extracted.text) or slug or "document"
        document = _check(doc_id, extracted.text, file_name)
        return _prepared(
            document,
            file_name,
            extracted.text,
            converted=False,
            language_given=False,
            format="markdown",
        )
    if extracted.format == "markdown":
        # Markdown without front matter is refused with the loader's own words (line 1).
        _check(slug or "document", extracted.text, file_name)
    chosen_title = title or extracted.title
    slug = slug or slugify(chosen_title or "")
    if not slug:
        raise UploadError("bad_name", name=file_name)
    detected = override or detect_language(extracted.text)
    content, _ = text_to_markdown(
        slug,
        extracted.text,
        detected,
        today,
        title=chosen_title,
        source=source or file_name,
    )
    document = _check(slug, content, file_name)
    return _prepared(
        document,
        file_name,
        content,
        converted=True,
        language_given=override is not None,
        format=extracted.format,
    )


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"^#+\s*", "", text, flags=re.M).split()).casefold()


def find_duplicate(prepared: PreparedDocument, kb: KnowledgeBase) -> Document | None:
    """Another document in `kb` with the same text (ignoring layout and case): adding it again
    would only make every answer from it appear twice. The document it would replace does not
    count: sending a file again with a corrected title or language replaces it."""
    wanted = _normalised(prepared.body)
    for document in kb.documents.values():
        if document.id != prepared.id and _normalised(document.body) == wanted:
            return document
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    """Readers (the loader, a concurrent rebuild) see the old file or the new, never half.
    The temporary name starts with a dot and does not end in .md, so the loader skips it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install_document(prepared: PreparedDocument, knowledge_dir: Path) -> Installed:
    """Write the document, then judge the whole knowledge base with it (links to projects,
    duplicate ids). If the new file brings any problem, the previous state is restored. A
    document whose text is already there (under any id) is refused before anything is written."""
    documents = knowledge_dir / "documents"
    documents.mkdir(parents=True, exist_ok=True)
    target = documents / f"{prepared.id}.md"
    if not _ID_RE.match(prepared.id) or target.resolve().parent != documents.resolve():
        raise UploadError("bad_name", name=prepared.source_name)
    duplicate = find_duplicate(prepared, load_knowledge(knowledge_dir))
    if duplicate is not None:
        raise UploadError("duplicate", id=duplicate.id, title=duplicate.title)
    previous = target.read_bytes() if target.exists() else None
    if previous is not None and previous == prepared.content.encode("utf-8"):
        raise UploadError("duplicate", id=prepared.id, title=prepared.title)

    def restore() -> None:
        if previous is None:
            target.unlink(missing_ok=True)
        else:
            _write_atomic(target, previous)

    _write_atomic(target, prepared.content.encode("utf-8"))
    try:
        kb = load_knowledge(knowledge_dir)
    except BaseException:
        restore()
        raise
    problems = [
        Problem(prepared.source_name, p.line, p.message)
        for p in kb.problems
        if Path(p.path).parts[-2:] == ("documents", target.name)
    ]
    document = kb.documents.get(prepared.id)
    if problems or document is None:
        restore()
        raise UploadError("invalid", problems, name=prepared.source_name)
    return Installed(document, replaced=previous is not None)


def document_chunks(chunks: Iterable[Chunk], document_id: str) -> int:
    """How many passages of the document's own text the index holds (summaries not counted)."""
    return sum(1 for chunk in chunks if chunk.kind == "document" and chunk.document == document_id)
