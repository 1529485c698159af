"""The query vocabulary saved with the index: a bot that loads it answers exactly as one that
counts it afresh, typo repair (rapidfuzz) finds what the old Python scan found, and a build
without the file is a clear "run reindex", never a silently worse search."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.errors import IndexNotReadyError
from bot.retrieval.embedder import Embedder
from bot.retrieval.query import QueryAnalyser, Vocabulary, corpus_vocabulary
from bot.retrieval.search import Searcher
from bot.retrieval.store import VOCABULARY, current_build, load_index
from bot.settings import BUNDLED_MODEL
from tests.conftest import REPO

pytestmark = pytest.mark.slow

QUESTIONS = REPO / "benchmarks" / "data" / "questions.yaml"


def test_saved_vocabulary_searches_exactly_like_a_fresh_one(
    session_index: Path, embedder: Embedder
) -> None:
    """Every evaluation question (en/sv/da, typos, paraphrases, unanswerable) over the real
    knowledge/: the same hits, scores, refusals and unknown words."""
    from bot.evaluation import load_questions

    index = load_index(session_index, BUNDLED_MODEL)
    assert index.vocabulary is not None
    fresh = corpus_vocabulary(index.chunks)
    assert index.vocabulary.words == fresh.words
    assert index.vocabulary.document_frequency == fresh.document_frequency
    assert index.vocabulary.name_stems == fresh.name_stems
    saved = Searcher(index)
    rebuilt = Searcher(index)
    rebuilt.vocabulary = fresh
    questions = [q.q for q in load_questions(QUESTIONS)]
    vectors = embedder.encode_queries(questions)
    for question, vector in zip(questions, vectors, strict=True):
        a, b = saved.search(question, vector), rebuilt.search(question, vector)
        assert (a.answered, a.unknown) == (b.answered, b.unknown), question
        assert [(h.chunk.id, h.score, h.coverage) for h in a.hits] == [
            (h.chunk.id, h.score, h.coverage) for h in b.hits
        ], question


def test_typos_in_names_and_words_are_repaired() -> None:
    vocabulary = Vocabulary(
        ["Integrate NEETs koordinator Östersund konferensen", "BAGS4YOUTH apprenticeship"]
    )
    analyser = QueryAnalyser(vocabulary)
    assert analyser.analyse("vem är kordinator i östersnd").words == (
        "koordinator",
        "östersund",
    )
    assert analyser.analyse("apprentiseship").words == ("apprenticeship",)
    assert analyser.analyse("ostersund").words == ("östersund",)  # typed without ö
    # too far from any corpus word: left unknown, not forced onto a wrong one
    assert analyser.analyse("weatherforecast").unknown == ("weatherforecast",)


def test_ties_go_to_the_same_word_in_every_process() -> None:
    """Two corpus words one edit away: the alphabetically first wins, whatever the hash seed."""
    vocabulary = Vocabulary(["partners partnern"])
    assert vocabulary.correct("partnerx") == "partnern"
    assert Vocabulary.from_json(vocabulary.to_json()).correct("partnerx") == "partnern"


def test_an_index_without_its_vocabulary_asks_for_a_reindex(
    session_index: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "index"
    shutil.copytree(session_index, copy, symlinks=True)
    build = current_build(copy)
    assert build is not None
    (build / VOCABULARY).unlink()
    with pytest.raises(IndexNotReadyError, match="reindex"):
        load_index(copy, BUNDLED_MODEL)
