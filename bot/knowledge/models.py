"""Typed knowledge: what the loader hands to the index and the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

LANGUAGES: tuple[str, ...] = ("en", "sv", "da")
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "sv": "Svenska", "da": "Dansk"}

#: A text given in several languages: {"en": ..., "sv": ..., "da": ...}.
Text = dict[str, str]


def pick(text: Text, lang: str) -> str:
    """The text in `lang`, else English, else whatever language there is."""
    for candidate in (lang, "en", *text):
        if text.get(candidate):
            return text[candidate]
    return ""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the knowledge base, pinned to a file and line a person can open."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    language: str
    kind: str
    body: str
    path: str  # relative to the knowledge directory's parent, e.g. knowledge/documents/neo.md
    project: str | None = None
    provenance: str = ""
    source: str = ""  # where an added document came from: the file name or web address
    added: date | None = None  # the day an admin added it (seed documents have none)


@dataclass(frozen=True)
class Summary:
    document_id: str
    language: str
    title: str
    text: str
    path: str


@dataclass(frozen=True)
class Partner:
    name: str
    country: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Contact:
    name: str | None = None
    phone: str | None = None
    organisation: str | None = None


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    kind: str
    source: str
    aims: Text
    parent: str | None = None
    themes: tuple[str, ...] = ()
    partners: tuple[Partner, ...] = ()
    countries: tuple[str, ...] = ()
    period_start: date | None = None
    period_end: date | None = None
    budget: str | None = None
    funding: Text = field(default_factory=dict)
    website: str | None = None
    contact: Contact | None = None


@dataclass(frozen=True)
class FuzzyDate:
    """A date as precise as the source: the year (or the whole date) may be unknown."""

    year: int | None
    month: int | None
    day: int | None

    @property
    def is_complete(self) -> bool:
        return self.year is not None and self.month is not None and self.day is not None

    def as_date(self) -> date | None:
        if self.year is None or self.month is None or self.day is None:
            return None
        return date(self.year, self.month, self.day)

    def sort_key(self) -> tuple[int, int, int]:
        return (self.year or 0, self.month or 0, self.day or 0)


@dataclass(frozen=True)
class Meeting:
    id: str
    title: Text
    date: FuzzyDate
    status: Literal["planned", "held"]
    description: Text
    source: str
    time: str | None = None
    place: str | None = None
    country: str | None = None
    project: str | None = None
    organiser: str | None = None


@dataclass(frozen=True)
class Takeaway:
    id: str
    meetings: tuple[str, ...]
    quote: str
    text: Text
    source: str


@dataclass(frozen=True)
class SuccessFactor:
    id: str
    title: Text
    text: Text
    quote: str
    source: str
    projects: tuple[str, ...] = ()


@dataclass(frozen=True)
class KnowledgeBase:
    """Everything that loaded cleanly, plus every problem found on the way."""

    documents: dict[str, Document]
    summaries: tuple[Summary, ...]
    projects: dict[str, Project]
    meetings: dict[str, Meeting]
    takeaways: tuple[Takeaway, ...]
    factors: tuple[SuccessFactor, ...]
    problems: tuple[Problem, ...]
    checksum: str

    def summary(self, document_id: str, lang: str) -> Summary | None:
        for summary in self.summaries:
            if summary.document_id == document_id and summary.language == lang:
                return summary
        return None
