"""Documents that admins send to the bot: checked, turned into knowledge files and installed
without ever leaving `knowledge/documents/` or leaving the knowledge base broken.

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

import yaml

from bot.errors import BrobyggerError
from bot.knowledge.loader import check_document, load_knowledge
from bot.knowledge.models import LANGUAGES, Document, Problem
from bot.retrieval.chunks import Chunk
from bot.retrieval.language import detect_language

ALLOWED_SUFFIXES = (".md", ".txt")
MAX_ID_CHARS = 64
MAX_TITLE_CHARS = 150
#: Share of control characters above which decoded "text" is really binary data.
MAX_CONTROL_SHARE = 0.01

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*$", re.S | re.M)
_ID_LINE_RE = re.compile(r"^id:[ \t]*[\"']?([^\"'\s#]+)", re.M)
_CAPTION_LANG_RE = re.compile(r"\b(?:lang|language)\s*[=:]\s*([A-Za-z_-]+)", re.I)
_TRANSLITERATE = str.maketrans(
    {"æ": "ae", "ø": "o", "œ": "oe", "ß": "ss", "đ": "d", "ð": "d", "ł": "l", "þ": "th"}
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")


class UploadError(BrobyggerError):
    """Why an upload cannot be accepted. `reason` names a UI string (admin.refused_<reason>);
    `values` fill its placeholders; `problems` are loader findings as path:line: message."""

    def __init__(self, reason: str, problems: Iterable[Problem] = (), **values: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problems = tuple(problems)
        self.values = values


@dataclass(frozen=True)
class PreparedDocument:
    """A checked upload, ready to be written as knowledge/documents/<id>.md."""

    id: str
    title: str
    language: str
    kind: str
    source_name: str  # the file name as uploaded, for messages and the audit log
    content: str  # the whole Markdown file, front matter included
    converted: bool  # made from a .txt file
    language_given: bool  # the admin chose the language in the caption


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
    folded = unicodedata.normalize("NFKD", stem.lower().translate(_TRANSLITERATE))
    ascii_only = folded.encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-")
    return slug[:MAX_ID_CHARS].rstrip("-")


def suffix_of(file_name: str) -> str:
    base = re.split(r"[\\/]", file_name)[-1]
    _, dot, ext = base.rpartition(".")
    return f".{ext.lower()}" if dot else ""


def check_announced(file_name: str, size: int | None, max_bytes: int) -> None:
    """What can be refused before downloading anything: the type and the announced size."""
    suffix = suffix_of(file_name)
    if suffix not in ALLOWED_SUFFIXES:
        raise UploadError("wrong_type", name=file_name, suffix=suffix or "-")
    if size is not None and size > max_bytes:
        # Rounded so that the size shown is always above the limit shown.
        raise UploadError("too_big", size_kb=-(-size // 1024), limit_kb=max_bytes // 1024)


def caption_language(caption: str | None) -> str | None:
    """`lang=sv` (or `language: da`) in the caption overrides the detected language."""
    match = _CAPTION_LANG_RE.search(caption or "")
    if match is None:
        return None
    value = match.group(1).lower()
    if value not in LANGUAGES:
        raise UploadError("bad_language", value=value, allowed=", ".join(LANGUAGES))
    return value


def decode_text(data: bytes) -> str:
    """Bytes to text the way the loader reads files, refusing what is not plain UTF-8 text."""
    if data.startswith(_UTF16_BOMS):
        raise UploadError("not_utf8", line=1)
    if b"\x00" in data:
        raise UploadError("binary")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UploadError("not_utf8", line=data[: error.start].count(b"\n") + 1) from None
    controls = sum(
        1 for char in text if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS
    )
    if text and controls / len(text) > MAX_CONTROL_SHARE:
        raise UploadError("binary")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UploadError("empty")
    return text


def _title(text: str) -> str:
    line = next(line.strip() for line in text.splitlines() if line.strip())
    return line if len(line) <= MAX_TITLE_CHARS else line[: MAX_TITLE_CHARS - 1].rstrip() + "…"


def text_to_markdown(doc_id: str, text: str, language: str, today: date) -> tuple[str, str]:
    """A plain text file as a knowledge document (kind news); returns (markdown, title).
    The body stays verbatim, as for every source document; YAML dumping quotes the title."""
    title = _title(text)
    meta = {
        "id": doc_id,
        "title": title,
        "language": language,
        "kind": "news",
        "provenance": f"Uploaded by an admin on {today.isoformat()}",
    }
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


def prepare_upload(
    file_name: str, data: bytes, *, max_bytes: int, today: date, caption: str | None = None
) -> PreparedDocument:
    """Check a downloaded file and turn it into the knowledge file it will become. The caption
    can choose the language of a .txt file; a .md file states its own in the front matter."""
    check_announced(file_name, len(data), max_bytes)
    text = decode_text(data)
    slug = safe_slug(file_name)
    if suffix_of(file_name) == ".txt":
        override = caption_language(caption)
        if not slug:
            raise UploadError("bad_name", name=file_name)
        language = override or detect_language(text)
        content, _ = text_to_markdown(slug, text, language, today)
        document = _check(slug, content, file_name)
        return PreparedDocument(
            document.id,
            document.title,
            document.language,
            document.kind,
            file_name,
            content,
            converted=True,
            language_given=override is not None,
        )
    doc_id = _front_matter_id(text) or slug or "document"
    document = _check(doc_id, text, file_name)
    return PreparedDocument(
        document.id,
        document.title,
        document.language,
        document.kind,
        file_name,
        text,
        converted=False,
        language_given=False,
    )


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
    duplicates). If the new file brings any problem, the previous state is restored."""
    documents = knowledge_dir / "documents"
    documents.mkdir(parents=True, exist_ok=True)
    target = documents / f"{prepared.id}.md"
    if not _ID_RE.match(prepared.id) or target.resolve().parent != documents.resolve():
        raise UploadError("bad_name", name=prepared.source_name)
    previous = target.read_bytes() if target.exists() else None

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
