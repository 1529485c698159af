"""Browsing the catalogs: projects (list, search, cards), conference takeaways and success factors.

Plain functions over a `KnowledgeBase`, so the bot, the console chat and the tests share them.
They return small view objects holding only what the sources give; the templates decide the words.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar

from bot.knowledge.models import (
    LANGUAGES,
    FuzzyDate,
    KnowledgeBase,
    Partner,
    Project,
    SuccessFactor,
    Takeaway,
    pick,
)
from bot.render import REGION_COUNTRIES, country_name
from bot.retrieval.text import STOPWORDS, normalise, sentences, stems, words

PROJECTS_PER_PAGE = 5
TAKEAWAYS_PER_PAGE = 3
FACTORS_PER_PAGE = 5
AIM_LINE_CHARS = 110
PREFIX_MIN_CHARS = 3
#: Every entry is a project, so these words narrow nothing; "projects in Denmark" means Denmark.
GENERIC_WORDS = frozenset(
    {
        "project",
        "projects",
        "projekt",
        "projekten",
        "projektet",
        "projekter",
        "projekterne",
        "projektets",
        "projektens",
    }
)
#: Letters that Unicode does not decompose but people still type without the accent.
_LETTER_FOLDS = str.maketrans({"ø": "o", "æ": "ae", "ß": "ss", "đ": "d", "ł": "l", "œ": "oe"})
COUNTRY_CODES = REGION_COUNTRIES

T = TypeVar("T")


# --- paging ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    number: int  # 0-based
    pages: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.number > 0

    @property
    def has_next(self) -> bool:
        return self.number < self.pages - 1


def paginate(items: Sequence[T], number: int, size: int) -> Page[T]:
    """One page of `items`. A page past the end (an old button after the catalog shrank) shows
    the last page rather than nothing."""
    if size < 1:
        raise ValueError("page size must be at least 1")
    pages = max(1, -(-len(items) // size))
    number = min(max(number, 0), pages - 1)
    start = number * size
    return Page(tuple(items[start : start + size]), number, pages, len(items))


# --- sources --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceInfo:
    """The document an entry was drawn from, and whether the reader needs telling that it is in
    another language than theirs."""

    title: str
    language: str
    other_language: bool


def source_info(kb: KnowledgeBase, document_id: str, lang: str) -> SourceInfo | None:
    document = kb.documents.get(document_id)
    if document is None:
        return None
    return SourceInfo(document.title, document.language, document.language != lang)


# --- project search -------------------------------------------------------------------------


def fold(word: str) -> str:
    """Lowercase without accents, so "Goteborg", "Göteborg" and "GÖTEBORG" are the same word."""
    decomposed = unicodedata.normalize("NFKD", word.casefold().translate(_LETTER_FOLDS))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _word_terms(word: str) -> set[str]:
    folded = fold(word)
    return {folded, *stems(folded)}


def normalise_query(query: str) -> str:
    """The words of a search that can narrow it, folded and space-joined (empty: no search).

    Stable for the same intent, so it doubles as the key that keeps a search across pages."""
    kept: list[str] = []
    for word in words(query):
        if word.upper() in COUNTRY_CODES and len(word) == 2:
            kept.append(word)
            continue
        if word in STOPWORDS or len(word) < 2 or fold(word) in GENERIC_WORDS:
            continue
        kept.append(fold(word))
    return " ".join(dict.fromkeys(kept))


def query_key(normalised: str) -> str:
    """A short, stable handle for a search, small enough for callback data."""
    return hashlib.sha1(normalised.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class _Searchable:
    terms: frozenset[str]
    words: frozenset[str]
    countries: frozenset[str]


def _country_words(code: str) -> Iterable[str]:
    yield code
    for lang in LANGUAGES:
        yield country_name(code, lang)


def _searchable(project: Project, kb: KnowledgeBase) -> _Searchable:
    countries = {*project.countries, *(p.country for p in project.partners if p.country)}
    texts: list[str] = [project.name, project.id.replace("-", " ")]
    texts += [theme.replace("-", " ") for theme in project.themes]
    texts += [p.name for p in project.partners]
    texts += list(project.aims.values()) + list(project.funding.values())
    for code in countries:
        texts += _country_words(code)
    parent = kb.projects.get(project.parent) if project.parent else None
    if parent is not None:
        texts.append(parent.name)
    found_words = {fold(w) for text in texts for w in words(text)}
    found_terms = {term for w in found_words for term in _word_terms(w)}
    return _Searchable(frozenset(found_terms), frozenset(found_words), frozenset(countries))


def _matches(word: str, entry: _Searchable) -> bool:
    if len(word) == 2 and word.upper() in COUNTRY_CODES:
        return word.upper() in entry.countries
    if _word_terms(word) & entry.terms:
        return True
    # A beginning of a word finds the rest: "bags" -> BAGS4YOUTH, "trelle" -> Trelleborgs.
    return len(word) >= PREFIX_MIN_CHARS and any(w.startswith(word) for w in entry.words)


def search_projects(kb: KnowledgeBase, query: str) -> list[Project]:
    """Projects matching a search in any of the three languages.

    Projects matching every word come first and alone; when no project matches them all, those
    matching the most words are shown, so one unusual word does not hide everything else."""
    query_words = normalise_query(query).split()
    if not query_words:
        return list(kb.projects.values())
    scored: list[tuple[int, Project]] = []
    for project in kb.projects.values():
        entry = _searchable(project, kb)
        score = sum(_matches(word, entry) for word in query_words)
        if score:
            scored.append((score, project))
    complete = [project for score, project in scored if score == len(query_words)]
    if complete:
        return complete
    return [project for _, project in sorted(scored, key=lambda pair: -pair[0])]


# --- project list ---------------------------------------------------------------------------


def one_line(text: str, limit: int = AIM_LINE_CHARS) -> str:
    """The first sentence, cut at a word boundary: enough to tell projects apart in a list."""
    found = sentences(text)
    first = found[0] if found else text.strip()
    if len(first) <= limit:
        return first
    cut = first.rfind(" ", 0, limit)
    return first[: cut if cut > 0 else limit].rstrip(" ,;:(–-") + "…"


@dataclass(frozen=True)
class ProjectLine:
    id: str
    name: str
    kind: str
    countries: tuple[str, ...]
    aim: str


@dataclass(frozen=True)
class ProjectListing:
    """One page of projects. `words` is the search as typed and `query` its normalised form
    (both "" for the full list); when nothing matched, `found` is False and the page is of the
    full list instead."""

    words: str
    query: str
    found: bool
    page: Page[ProjectLine]


def _line(project: Project, lang: str) -> ProjectLine:
    return ProjectLine(
        project.id,
        project.name,
        project.kind,
        project.countries,
        one_line(pick(project.aims, lang)),
    )


def browse_projects(
    kb: KnowledgeBase, lang: str, query: str = "", page: int = 0, size: int = PROJECTS_PER_PAGE
) -> ProjectListing:
    normalised = normalise_query(query)
    matches = search_projects(kb, normalised) if normalised else list(kb.projects.values())
    found = bool(matches) or not normalised
    if not found:
        matches = list(kb.projects.values())
    lines = [_line(project, lang) for project in matches]
    return ProjectListing(normalise(query), normalised, found, paginate(lines, page, size))


# --- project card ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectCard:
    """A project with its texts in the reader's language; empty fields are absent in the source
    and must not be shown."""

    id: str
    name: str
    kind: str
    parent: ProjectLine | None
    aims: str
    partners: tuple[Partner, ...]
    countries: tuple[str, ...]
    period_start: date | None
    period_end: date | None
    budget: str | None
    funding: str | None
    website: str | None
    website_url: str | None
    contact_name: str | None
    contact_phone: str | None
    contact_organisation: str | None
    working_groups: tuple[ProjectLine, ...]
    source: SourceInfo | None


def project_card(kb: KnowledgeBase, lang: str, project_id: str) -> ProjectCard | None:
    """The card for one project, or None when the id is unknown (old button, wrong deep link)."""
    project = kb.projects.get(project_id)
    if project is None:
        return None
    parent = kb.projects.get(project.parent) if project.parent else None
    groups = tuple(_line(p, lang) for p in kb.projects.values() if p.parent == project.id)
    website_url = None
    if project.website:
        has_scheme = project.website.startswith(("http://", "https://"))
        # Telegram needs a scheme; http is what a browser assumes for a bare address.
        website_url = project.website if has_scheme else f"http://{project.website}"
    contact = project.contact
    return ProjectCard(
        id=project.id,
        name=project.name,
        kind=project.kind,
        parent=_line(parent, lang) if parent else None,
        aims=pick(project.aims, lang),
        partners=project.partners,
        countries=project.countries,
        period_start=project.period_start,
        period_end=project.period_end,
        budget=project.budget,
        funding=pick(project.funding, lang) or None,
        website=project.website,
        website_url=website_url,
        contact_name=contact.name if contact else None,
        contact_phone=contact.phone if contact else None,
        contact_organisation=contact.organisation if contact else None,
        working_groups=groups,
        source=source_info(kb, project.source, lang),
    )


# --- conference takeaways -------------------------------------------------------------------


@dataclass(frozen=True)
class Conference:
    title: str
    place: str | None  # None when the title already names the place
    date: FuzzyDate


@dataclass(frozen=True)
class TakeawayView:
    id: str
    text: str
    quote: str
    quote_language: str
    show_quote: bool  # the reader's language is not the quote's: show the original wording


@dataclass(frozen=True)
class TakeawaySection:
    """Takeaways from one set of conferences (on this page); `continued` when the set began on
    an earlier page."""

    conferences: tuple[Conference, ...]
    takeaways: tuple[TakeawayView, ...]
    sources: tuple[SourceInfo, ...]
    continued: bool


@dataclass(frozen=True)
class TakeawaysPage:
    sections: tuple[TakeawaySection, ...]
    page: Page[Takeaway]


def _conference(kb: KnowledgeBase, meeting_id: str, lang: str) -> Conference | None:
    meeting = kb.meetings.get(meeting_id)
    if meeting is None:
        return None
    title = pick(meeting.title, lang)
    place = meeting.place if meeting.place and meeting.place not in title else None
    return Conference(title, place, meeting.date)


def _takeaway_view(kb: KnowledgeBase, takeaway: Takeaway, lang: str) -> TakeawayView:
    document = kb.documents.get(takeaway.source)
    quote_language = document.language if document else ""
    return TakeawayView(
        takeaway.id,
        pick(takeaway.text, lang),
        takeaway.quote,
        quote_language,
        bool(quote_language) and quote_language != lang,
    )


def browse_takeaways(
    kb: KnowledgeBase, lang: str, page: int = 0, size: int = TAKEAWAYS_PER_PAGE
) -> TakeawaysPage:
    """Takeaways grouped by the conferences they come from, in catalog order of first mention."""
    groups: dict[tuple[str, ...], list[Takeaway]] = {}
    for takeaway in kb.takeaways:
        groups.setdefault(takeaway.meetings, []).append(takeaway)
    ordered = [takeaway for members in groups.values() for takeaway in members]
    current = paginate(ordered, page, size)
    sections: list[TakeawaySection] = []
    shown: dict[tuple[str, ...], list[Takeaway]] = {}
    for takeaway in current.items:
        shown.setdefault(takeaway.meetings, []).append(takeaway)
    for meetings, members in shown.items():
        conferences = tuple(c for c in (_conference(kb, m, lang) for m in meetings) if c)
        sources = tuple(
            dict.fromkeys(
                info for info in (source_info(kb, t.source, lang) for t in members) if info
            )
        )
        continued = members[0] is not groups[meetings][0]
        sections.append(
            TakeawaySection(
                conferences,
                tuple(_takeaway_view(kb, t, lang) for t in members),
                sources,
                continued,
            )
        )
    return TakeawaysPage(tuple(sections), current)


# --- success factors ------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorView:
    id: str
    title: str
    text: str
    source: SourceInfo | None
    projects: tuple[str, ...]  # names of the related projects


def _factor_view(kb: KnowledgeBase, factor: SuccessFactor, lang: str) -> FactorView:
    names = tuple(kb.projects[p].name for p in factor.projects if p in kb.projects)
    return FactorView(
        factor.id,
        pick(factor.title, lang),
        pick(factor.text, lang),
        source_info(kb, factor.source, lang),
        names,
    )


def browse_factors(
    kb: KnowledgeBase, lang: str, page: int = 0, size: int = FACTORS_PER_PAGE
) -> Page[FactorView]:
    current = paginate(kb.factors, page, size)
    return Page(
        tuple(_factor_view(kb, f, lang) for f in current.items),
        current.number,
        current.pages,
        current.total,
    )
