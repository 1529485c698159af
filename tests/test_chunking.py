"""Chunking: sentence-aware passages that lose nothing, and catalog cards in every language that
say only what the catalog says."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path

import pytest

from bot.knowledge import load_knowledge
from bot.knowledge.models import LANGUAGES, KnowledgeBase
from bot.retrieval.chunks import (
    MAX_CHARS,
    OVERLAP_SENTENCES,
    Chunk,
    chunk_knowledge,
    split_passages,
)
from bot.retrieval.text import sentences

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge(KNOWLEDGE)


@pytest.fixture(scope="module")
def chunks(kb: KnowledgeBase) -> list[Chunk]:
    return chunk_knowledge(kb)


def _sentence(n: int, words: int) -> str:
    return "Sentence number " + str(n) + " " + " ".join(f"word{n}x{i}" for i in range(words)) + "."


def _check_passages(text: str, passages: list[str], max_chars: int = MAX_CHARS) -> None:
    units = sentences(text)
    for passage in passages:
        if len(passage) > max_chars:
            assert len(sentences(passage)) == 1, f"passage of {len(passage)} chars: {passage!r}"
    for unit in units:
        assert any(unit in passage for passage in passages), f"lost: {unit!r}"
    for before, after in itertools.pairwise(passages):
        previous = sentences(before)
        if len(previous) > OVERLAP_SENTENCES:  # a lone (long) sentence is not repeated
            overlap = previous[-OVERLAP_SENTENCES:]
            assert sentences(after)[:OVERLAP_SENTENCES] == overlap, "no sentence of overlap"


def test_passages_respect_the_limit_overlap_and_lose_nothing() -> None:
    text = " ".join(_sentence(n, words=3 + (n * 7) % 25) for n in range(60))
    passages = split_passages(text)
    assert len(passages) > 3
    _check_passages(text, passages)
    assert all(len(p) <= MAX_CHARS for p in passages)


def test_a_sentence_longer_than_the_limit_stays_whole() -> None:
    long = _sentence(1, words=120)
    assert len(long) > MAX_CHARS
    text = f"Short one. {long} Short two."
    passages = split_passages(text)
    assert long in passages
    _check_passages(text, passages)


def test_short_text_is_one_passage() -> None:
    assert split_passages("Just one. And another!") == ["Just one. And another!"]
    assert split_passages("") == []


def test_list_lines_count_as_sentences_and_keep_their_line_breaks() -> None:
    lines = [f"Partner {n} ({code})" for n, code in enumerate(["MT", "IT", "HR", "RO", "SI"])]
    text = "Partners:\n" + "\n".join(lines)
    assert split_passages(text) == [text]
    passages = split_passages(text, max_chars=40)
    assert len(passages) > 2
    source_lines = text.splitlines()
    for passage in passages:
        own = passage.splitlines()
        start = source_lines.index(own[0])
        assert own == source_lines[start : start + len(own)], passage
    _check_passages(text, passages, max_chars=40)


def test_repository_documents_are_split_without_loss(
    kb: KnowledgeBase, chunks: list[Chunk]
) -> None:
    for doc in kb.documents.values():
        passages = [c.text for c in chunks if c.kind == "document" and c.document == doc.id]
        assert passages, doc.id
        _check_passages(doc.body, passages)
        positions = [c.position for c in chunks if c.kind == "document" and c.document == doc.id]
        assert positions == list(range(len(passages)))


def test_chunk_ids_are_unique(chunks: list[Chunk]) -> None:
    duplicates = [ident for ident, n in Counter(c.id for c in chunks).items() if n > 1]
    assert duplicates == []


def test_chunking_is_deterministic(kb: KnowledgeBase, chunks: list[Chunk]) -> None:
    assert chunk_knowledge(kb) == chunks


def test_every_chunk_points_at_a_real_document(kb: KnowledgeBase, chunks: list[Chunk]) -> None:
    assert {c.document for c in chunks} == set(kb.documents)
    assert {c.lang for c in chunks} == set(LANGUAGES)
    assert all(c.text.strip() and c.title.strip() for c in chunks)


def test_summaries_are_chunks_in_all_three_languages(
    kb: KnowledgeBase, chunks: list[Chunk]
) -> None:
    by_id = {c.id: c for c in chunks}
    for doc_id in kb.documents:
        for lang in LANGUAGES:
            chunk = by_id[f"{doc_id}@{lang}"]
            summary = kb.summary(doc_id, lang)
            assert summary is not None
            assert (chunk.kind, chunk.lang, chunk.text) == ("summary", lang, summary.text)


CARD_WORDS = {"en": "Aims", "sv": "Mål", "da": "Formål"}


def test_catalog_cards_exist_in_all_three_languages(kb: KnowledgeBase, chunks: list[Chunk]) -> None:
    by_id = {c.id: c for c in chunks}
    entries = (
        [("project", ident) for ident in kb.projects]
        + [("meeting", ident) for ident in kb.meetings]
        + [("takeaway", t.id) for t in kb.takeaways]
        + [("factor", f.id) for f in kb.factors]
    )
    for kind, ident in entries:
        for lang in LANGUAGES:
            card = by_id.get(f"{kind}:{ident}@{lang}")
            assert card is not None, f"no {lang} card for {kind} {ident}"
            assert (card.kind, card.lang, card.ref) == (kind, lang, ident)
    for project in kb.projects.values():
        for lang in LANGUAGES:
            card = by_id[f"project:{project.id}@{lang}"]
            assert f"{CARD_WORDS[lang]}: {project.aims[lang]}" in card.text
            assert card.document == project.source
    for takeaway in kb.takeaways:
        for lang in LANGUAGES:
            assert by_id[f"takeaway:{takeaway.id}@{lang}"].text == takeaway.text[lang]


LABELS = {
    "en": {
        "partners": "Partners",
        "countries": "Countries",
        "period": "Period",
        "budget": "Budget",
        "funding": "Funding",
        "website": "Website",
        "contact": "Contact",
    },
    "sv": {
        "partners": "Partner",
        "countries": "Länder",
        "period": "Period",
        "budget": "Budget",
        "funding": "Finansiering",
        "website": "Webbplats",
        "contact": "Kontakt",
    },
    "da": {
        "partners": "Partnere",
        "countries": "Lande",
        "period": "Periode",
        "budget": "Budget",
        "funding": "Finansiering",
        "website": "Hjemmeside",
        "contact": "Kontakt",
    },
}


def test_project_cards_show_only_fields_the_catalog_has(
    kb: KnowledgeBase, chunks: list[Chunk]
) -> None:
    by_id = {c.id: c for c in chunks}
    for project in kb.projects.values():
        given = {
            "partners": bool(project.partners),
            "countries": bool(project.countries),
            "period": bool(project.period_start or project.period_end),
            "budget": project.budget is not None,
            "funding": bool(project.funding),
            "website": project.website is not None,
            "contact": project.contact is not None,
        }
        for lang in LANGUAGES:
            lines = by_id[f"project:{project.id}@{lang}"].text.splitlines()
            for name, present in given.items():
                shown = any(line.startswith(LABELS[lang][name] + ":") for line in lines[1:])
                assert shown == present, f"{project.id} ({lang}): {name} shown={shown}"


def test_bags4youth_card_has_no_budget_and_atwork4neets_card_has_its_own(
    chunks: list[Chunk],
) -> None:
    by_id = {c.id: c for c in chunks}
    for lang in LANGUAGES:
        bags = by_id[f"project:bags4youth@{lang}"].text
        assert "Budget" not in bags
        assert not re.search(r"€|EUR|\d{3}[ ,.]\d{3}", bags)
        atwork = by_id[f"project:atwork4neets@{lang}"].text
        assert "Budget: €1,427,499.00" in atwork.splitlines()


def test_meeting_cards_say_when_the_year_is_not_given(chunks: list[Chunk]) -> None:
    by_id = {c.id: c for c in chunks}
    expected = {
        "en": "Date: 10/6 (year not given)",
        "sv": "Datum: 10/6 (år anges inte)",
        "da": "Dato: 10/6 (år ikke oplyst)",
    }
    for lang, phrase in expected.items():
        card = by_id[f"meeting:thematic-groups-follow-up@{lang}"].text
        assert phrase in card
        assert not re.search(r"\b20\d{2}\b", card)
    assert "Date: not given" in by_id["meeting:hamburg-resource-centres@en"].text


def test_chunk_json_round_trip(chunks: list[Chunk]) -> None:
    for chunk in chunks[:5] + chunks[-5:]:
        assert Chunk.from_json(chunk.to_json()) == chunk
