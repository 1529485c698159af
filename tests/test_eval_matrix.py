"""`brobygger eval`'s matrix with the real model: the documents alone and the look-alike
documents are really indexed, and the report shows both columns, both halves and every tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.evaluation import (
    Variant,
    load_questions,
    render_matrix,
    run_matrix,
    variant_searcher,
)
from bot.knowledge import load_knowledge
from bot.retrieval.embedder import Embedder
from tests.conftest import KNOWLEDGE, REPO

pytestmark = pytest.mark.slow

QUESTIONS = REPO / "benchmarks" / "data" / "questions.yaml"
DISTRACTORS = REPO / "benchmarks" / "data" / "distractors"


def test_the_documents_only_index_holds_documents_alone(embedder: Embedder) -> None:
    searcher = variant_searcher(
        KNOWLEDGE, embedder, Variant(documents_only=True, distractors=False)
    )
    kinds = {chunk.kind for chunk in searcher.index.chunks}
    assert kinds == {"document"}
    documents = {chunk.document for chunk in searcher.index.chunks}
    assert documents == set(load_knowledge(KNOWLEDGE).documents)


def test_the_look_alikes_join_the_index_but_never_the_knowledge(embedder: Embedder) -> None:
    before = sorted(p.name for p in (KNOWLEDGE / "documents").iterdir())
    searcher = variant_searcher(
        KNOWLEDGE, embedder, Variant(False, True), distractors_dir=DISTRACTORS
    )
    look_alikes = {c.document for c in searcher.index.chunks if c.document.startswith("dx-")}
    assert len(look_alikes) >= 60
    assert sorted(p.name for p in (KNOWLEDGE / "documents").iterdir()) == before
    assert not any(p.name.startswith("dx-") for p in (KNOWLEDGE / "documents").iterdir())


def test_the_report_shows_both_knowledge_sets_both_halves_and_the_tags(
    embedder: Embedder, tmp_path: Path
) -> None:
    languages = {d.id: d.language for d in load_knowledge(KNOWLEDGE).documents.values()}
    everything = load_questions(QUESTIONS, languages)
    # a few of each half and kind keep this quick; `make eval` runs them all
    picked = []
    for split in ("report", "tuning"):
        for tag in ("informal", "paraphrase", "off-topic", "cross-lingual", "unanswerable"):
            picked += [q for q in everything if q.split == split and tag in q.tags][:2]
    questions = list({q.id: q for q in picked}.values())
    matrix = run_matrix(
        KNOWLEDGE,
        embedder,
        questions,
        languages,
        variants=[Variant(False, False), Variant(True, False)],
    )
    text = render_matrix(matrix, markdown=True)
    assert "| figure (document level unless named) | curated | documents only |" in text
    assert "curated (tuning half, upper bound)" in text
    for row in ("tag: informal", "tag: paraphrase", "tag: off-topic", "cross-lingual"):
        assert f"| {row} |" in text
    assert "Against the baselines, report half: documents only" in text
    assert "| dense |" in text
    assert "| bm25 |" in text
    assert "without dense feedback (PRF)" in text
    # failures are listed for the tuning half only: the report half is not for reading and fixing
    failing = text.split("Failing questions of the tuning half", 1)[1]
    report_ids = {q.id for q in questions if q.split == "report"}
    assert not any(f"\n{qid} (" in failing for qid in report_ids)
