"""The documents in the knowledge base as admins manage them: listed with title, language, source
and the day they were added, and removed together with their summaries.

Removing is refused while a catalog entry (a project, meeting, takeaway or success factor) names
the document as its source: deleting it would silently drop those entries from /projects and the
other browse commands. The removed files are kept in memory until the rebuild succeeded, so a
failed rebuild can put them back and the knowledge base always matches the index being served.

Plain Python (no Telegram): the bot and `brobygger documents` / `brobygger remove` share it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bot.errors import BrobyggerError
from bot.knowledge.loader import load_knowledge
from bot.knowledge.models import Document, KnowledgeBase


class DocumentError(BrobyggerError):
    """Why a document cannot be removed; `reason` names a UI string (admin.remove_<reason>)."""

    def __init__(self, reason: str, **values: object) -> None:
        super().__init__(f"{reason}: {values}" if values else reason)
        self.reason = reason
        self.values = values


@dataclass(frozen=True)
class DocumentInfo:
    id: str
    title: str
    language: str
    source: str  # the file name or address it came from, else its provenance
    added: date | None  # None for the seed documents, which have no such date
    path: str


@dataclass(frozen=True)
class Removed:
    document: DocumentInfo
    files: dict[Path, bytes]  # what was deleted, to restore if the rebuild fails


def describe(document: Document) -> DocumentInfo:
    return DocumentInfo(
        id=document.id,
        title=document.title,
        language=document.language,
        source=document.source or document.provenance,
        added=document.added,
        path=document.path,
    )


def list_documents(kb: KnowledgeBase) -> list[DocumentInfo]:
    """Newest additions first (the ones an admin is most likely to look for), then by id."""
    infos = [describe(document) for document in kb.documents.values()]
    infos.sort(key=lambda info: info.id)
    infos.sort(key=lambda info: info.added or date.min, reverse=True)
    return infos


def users_of(kb: KnowledgeBase, document_id: str) -> list[str]:
    """Catalog entries that name the document as their source, as `kind:id`."""
    found = [f"project:{p.id}" for p in kb.projects.values() if p.source == document_id]
    found += [f"meeting:{m.id}" for m in kb.meetings.values() if m.source == document_id]
    found += [f"takeaway:{t.id}" for t in kb.takeaways if t.source == document_id]
    found += [f"factor:{f.id}" for f in kb.factors if f.source == document_id]
    return found


def file_names(kb: KnowledgeBase, document_id: str) -> list[str]:
    """What removing the document deletes, relative to the knowledge directory."""
    return [f"documents/{document_id}.md"] + [
        f"summaries/{summary.document_id}.{summary.language}.md"
        for summary in kb.summaries
        if summary.document_id == document_id
    ]


def _files_of(knowledge_dir: Path, kb: KnowledgeBase, document: Document) -> list[Path]:
    root = knowledge_dir.resolve()
    files = [knowledge_dir / name for name in file_names(kb, document.id)]
    # ids are [a-z0-9-] only, but a path is never trusted to stay inside the knowledge base
    return [path for path in files if path.resolve().is_relative_to(root) and path.is_file()]


def remove_document(knowledge_dir: Path, document_id: str) -> Removed:
    """Delete a document and its summaries; DocumentError if unknown or still in use."""
    kb = load_knowledge(knowledge_dir)
    document = kb.documents.get(document_id)
    if document is None:
        raise DocumentError("unknown", id=document_id)
    users = users_of(kb, document_id)
    if users:
        raise DocumentError("in_use", id=document_id, users=", ".join(users))
    files = {path: path.read_bytes() for path in _files_of(knowledge_dir, kb, document)}
    for path in files:
        path.unlink()
    return Removed(describe(document), files)


def restore(removed: Removed) -> None:
    """Put removed files back (the rebuild after a removal failed)."""
    for path, data in removed.files.items():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
