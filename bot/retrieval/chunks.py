"""Cut the knowledge base into retrieval units: sentence-aware passages of each document, each
curated summary whole, and one card per catalog entry and language."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bot.knowledge.models import LANGUAGES, KnowledgeBase, Project, pick
from bot.retrieval.text import sentence_units

MAX_CHARS = 520
OVERLAP_SENTENCES = 1


@dataclass(frozen=True)
class Chunk:
    """One passage as stored in the index and shown to people."""

    id: str
    kind: str  # document | summary | project | meeting | takeaway | factor
    document: str  # source document id
    lang: str
    title: str
    text: str
    position: int = 0
    ref: str = ""  # catalog entry id, for cards

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


def split_passages(
    text: str, max_chars: int = MAX_CHARS, overlap: int = OVERLAP_SENTENCES
) -> list[str]:
    """Greedy sentence packing with a sentence of overlap, so an answer that spans a boundary
    still appears whole in one passage. A sentence longer than the limit stays whole."""
    units = sentence_units(text)
    passages: list[str] = []
    start = 0
    while start < len(units):
        end, size = start, 0
        while end < len(units) and (end == start or size + len(units[end][0]) + 1 <= max_chars):
            size += len(units[end][0]) + 1
            end += 1
        passages.append("".join(s + sep for s, sep in units[start:end]).strip())
        if end >= len(units):
            break
        start = max(end - overlap, start + 1)
    return passages


_LABELS = {
    "en": {
        "aims": "Aims",
        "partners": "Partners",
        "countries": "Countries",
        "period": "Period",
        "budget": "Budget",
        "funding": "Funding",
        "website": "Website",
        "contact": "Contact",
        "date": "Date",
        "place": "Place",
        "year_unknown": "year not given",
        "unknown": "not given",
        "takeaway": "Conference takeaway",
        "factor": "Success factor",
        "organiser": "Organiser",
    },
    "sv": {
        "aims": "Mål",
        "partners": "Partner",
        "countries": "Länder",
        "period": "Period",
        "budget": "Budget",
        "funding": "Finansiering",
        "website": "Webbplats",
        "contact": "Kontakt",
        "date": "Datum",
        "place": "Plats",
        "year_unknown": "år anges inte",
        "unknown": "anges inte",
        "takeaway": "Lärdom från konferensen",
        "factor": "Framgångsfaktor",
        "organiser": "Arrangör",
    },
    "da": {
        "aims": "Formål",
        "partners": "Partnere",
        "countries": "Lande",
        "period": "Periode",
        "budget": "Budget",
        "funding": "Finansiering",
        "website": "Hjemmeside",
        "contact": "Kontakt",
        "date": "Dato",
        "place": "Sted",
        "year_unknown": "år ikke oplyst",
        "unknown": "ikke oplyst",
        "takeaway": "Pointe fra konferencen",
        "factor": "Succesfaktor",
        "organiser": "Arrangør",
    },
}


def _project_card(project: Project, lang: str) -> str:
    label = _LABELS[lang]
    lines = [f"{project.name}. {label['aims']}: {pick(project.aims, lang)}"]
    if project.partners:
        partners = "; ".join(
            p.name + (f" ({p.country})" if p.country else "") + (f" – {p.role}" if p.role else "")
            for p in project.partners
        )
        lines.append(f"{label['partners']}: {partners}")
    if project.countries:
        lines.append(f"{label['countries']}: {', '.join(project.countries)}")
    if project.period_start or project.period_end:
        start = project.period_start.isoformat() if project.period_start else "?"
        end = project.period_end.isoformat() if project.period_end else "?"
        lines.append(f"{label['period']}: {start} – {end}")
    if project.budget:
        lines.append(f"{label['budget']}: {project.budget}")
    if project.funding:
        lines.append(f"{label['funding']}: {pick(project.funding, lang)}")
    if project.website:
        lines.append(f"{label['website']}: {project.website}")
    if project.contact:
        parts = [
            p
            for p in (project.contact.name, project.contact.organisation, project.contact.phone)
            if p
        ]
        lines.append(f"{label['contact']}: {', '.join(parts)}")
    return "\n".join(lines)


def chunk_knowledge(kb: KnowledgeBase) -> list[Chunk]:
    """All retrieval units of a knowledge base, in a stable order."""
    chunks: list[Chunk] = []
    for doc in sorted(kb.documents.values(), key=lambda d: d.id):
        for n, passage in enumerate(split_passages(doc.body)):
            chunks.append(
                Chunk(f"{doc.id}#{n}", "document", doc.id, doc.language, doc.title, passage, n)
            )
    for summary in sorted(kb.summaries, key=lambda s: (s.document_id, s.language)):
        chunks.append(
            Chunk(
                f"{summary.document_id}@{summary.language}",
                "summary",
                summary.document_id,
                summary.language,
                summary.title,
                summary.text,
            )
        )
    for lang in LANGUAGES:
        label = _LABELS[lang]
        for project in kb.projects.values():
            chunks.append(
                Chunk(
                    f"project:{project.id}@{lang}",
                    "project",
                    project.source,
                    lang,
                    project.name,
                    _project_card(project, lang),
                    ref=project.id,
                )
            )
        for meeting in kb.meetings.values():
            when = meeting.date
            if when.is_complete:
                date_text = when.as_date().isoformat()  # type: ignore[union-attr]
            elif when.month and when.day:
                date_text = f"{when.day}/{when.month} ({label['year_unknown']})"
            else:
                date_text = label["unknown"]
            place = f" {label['place']}: {meeting.place}." if meeting.place else ""
            if meeting.organiser:
                place += f" {label['organiser']}: {meeting.organiser}."
            text = (
                f"{pick(meeting.title, lang)}. {label['date']}: {date_text}.{place} "
                f"{pick(meeting.description, lang)}"
            )
            chunks.append(
                Chunk(
                    f"meeting:{meeting.id}@{lang}",
                    "meeting",
                    meeting.source,
                    lang,
                    pick(meeting.title, lang),
                    text,
                    ref=meeting.id,
                )
            )
        for takeaway in kb.takeaways:
            chunks.append(
                Chunk(
                    f"takeaway:{takeaway.id}@{lang}",
                    "takeaway",
                    takeaway.source,
                    lang,
                    label["takeaway"],
                    pick(takeaway.text, lang),
                    ref=takeaway.id,
                )
            )
        for factor in kb.factors:
            chunks.append(
                Chunk(
                    f"factor:{factor.id}@{lang}",
                    "factor",
                    factor.source,
                    lang,
                    f"{label['factor']}: {pick(factor.title, lang)}",
                    f"{pick(factor.title, lang)}. {pick(factor.text, lang)}",
                    ref=factor.id,
                )
            )
    return chunks
