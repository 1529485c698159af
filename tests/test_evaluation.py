"""Tests for bot.evaluation: the metric functions, the question loader and the question set itself.
Fast: no embedding model (the systems run on a toy searcher)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bot.evaluation import (
    TAGS,
    Outcome,
    Question,
    QuestionFileError,
    SplitError,
    contains_phrase,
    evaluate,
    failures,
    first_relevant,
    hit_at,
    load_questions,
    mean,
    parse_questions,
    passage_relevant,
    rank_unique,
    reciprocal_rank,
    render_report,
    row_groups,
    share,
    summarise,
    tuning_only,
)
from bot.knowledge import load_knowledge
from bot.retrieval.chunks import Chunk, chunk_knowledge
from bot.retrieval.search import Hit, SearchConfig, SearchResult
from bot.retrieval.text import words

REPO_ROOT = Path(__file__).resolve().parents[1]
QUESTIONS_FILE = REPO_ROOT / "benchmarks" / "data" / "questions.yaml"
KNOWLEDGE_DIR = REPO_ROOT / "knowledge"


# --- metric functions -------------------------------------------------------------------------


def test_hit_at_k() -> None:
    ranking = [False, False, True, False]
    assert hit_at(ranking, 1) == 0.0
    assert hit_at(ranking, 2) == 0.0
    assert hit_at(ranking, 3) == 1.0
    assert hit_at(ranking, 10) == 1.0
    assert hit_at([], 3) == 0.0
    assert hit_at([True], 1) == 1.0


def test_reciprocal_rank() -> None:
    assert reciprocal_rank([True, True]) == 1.0
    assert reciprocal_rank([False, True, True]) == 0.5
    assert reciprocal_rank([False, False, False, True]) == 0.25
    assert reciprocal_rank([False] * 10 + [True]) == 0.0  # beyond @10
    assert reciprocal_rank([False, False, True], k=2) == 0.0
    assert reciprocal_rank([]) == 0.0


def test_first_relevant_mean_and_share() -> None:
    assert first_relevant([False, True]) == 2
    assert first_relevant([False, False]) is None
    assert mean([1.0, 0.0, 0.5]) == pytest.approx(0.5)
    assert mean([]) is None
    assert share([True, False, False, True]) == 0.5
    assert share([]) is None


def _q(qid: str, document: str | None, lang: str = "en", tags: tuple[str, ...] = ()) -> Question:
    return Question(qid, f"question {qid}", lang, document, ("x",) if document else (), tags)


def _o(question: Question, documents: list[bool], passages: list[bool], refused: bool) -> Outcome:
    return Outcome(question, tuple(documents), tuple(passages), refused, None)


def test_summarise_on_hand_made_rankings() -> None:
    a, b, c = _q("a", "doc"), _q("b", "doc"), _q("c", "doc")
    u1, u2 = _q("u1", None), _q("u2", None)
    metrics = summarise(
        [
            _o(a, [True, False], [True, False], refused=False),  # rank 1, passage rank 1
            _o(b, [False, False, True], [False, False, False, True], refused=True),  # doc 3, psg 4
            _o(c, [False] * 10, [False] * 10, refused=False),  # missed
            _o(u1, [], [], refused=True),
            _o(u2, [False], [False], refused=False),
        ]
    )
    assert (metrics.answerable, metrics.unanswerable) == (3, 2)
    assert metrics.doc_hit1 == pytest.approx(1 / 3)
    assert metrics.doc_hit3 == pytest.approx(2 / 3)
    assert metrics.doc_mrr == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert metrics.passage_hit1 == pytest.approx(1 / 3)
    assert metrics.passage_hit3 == pytest.approx(1 / 3)
    assert metrics.passage_mrr == pytest.approx((1 + 1 / 4) / 3)
    assert metrics.unanswerable_refused == 0.5
    assert metrics.answerable_refused == pytest.approx(1 / 3)


def test_summarise_without_answerable_or_unanswerable_questions() -> None:
    only_unanswerable = summarise([_o(_q("u", None), [], [], refused=True)])
    assert only_unanswerable.doc_hit1 is None
    assert only_unanswerable.answerable_refused is None
    assert only_unanswerable.unanswerable_refused == 1.0
    only_answerable = summarise([_o(_q("a", "d"), [True], [True], refused=False)])
    assert only_answerable.unanswerable_refused is None
    assert only_answerable.answerable_refused == 0.0


def test_failures_name_the_reason() -> None:
    good = _o(_q("good", "d"), [True], [False, False, True], refused=False)
    late = _o(_q("late", "d"), [False, True], [False, False, False, True], refused=False)
    refused = _o(_q("refused", "d"), [True], [True], refused=True)
    answered = _o(_q("answered", None), [False], [False], refused=False)
    declined = _o(_q("declined", None), [False], [False], refused=True)

    @dataclass
    class _Report:
        outcomes: dict[str, Outcome]

    report: Any = _Report({o.question.id: o for o in (good, late, refused, answered, declined)})
    found = {o.question.id: reason for o, reason in failures(report)}
    assert set(found) == {"late", "refused", "answered"}
    assert "document at rank 2" in found["late"]
    assert "passage at rank 4" in found["late"]
    assert found["refused"] == "refused"
    assert "unanswerable" in found["answered"]


def test_contains_phrase_normalises_case_whitespace_and_apostrophes() -> None:
    assert contains_phrase("Budget:  €1,427,499.00", ["1,427,499"])
    assert contains_phrase("total budget of 868\u00a0744 EUR", ["868 744"])
    assert contains_phrase("the ANNUAL Forum\nof the EUSBSR", ["annual forum of the eusbsr"])
    assert contains_phrase("the user’s, the employee’s", ["employee's"])
    assert not contains_phrase("Gävle", ["Gavle"])
    assert not contains_phrase("anything", [])


def test_passage_relevance_needs_the_expected_document() -> None:
    chunk = Chunk("neo#5", "document", "neo", "da", "NEO", "Kontakt: Annika Svensson")
    question = Question("q", "neo kontakt", "da", "neo", ("annika svensson",))
    assert passage_relevant(chunk, question)
    assert not passage_relevant(chunk, Question("q", "x", "da", "bags4youth", ("annika svensson",)))
    assert not passage_relevant(chunk, Question("q", "x", "da", None))


def test_rank_unique_skips_repeated_texts_and_stops_at_keep() -> None:
    chunks = [
        Chunk(str(i), "document", "d", "en", "t", text)
        for i, text in enumerate(["a", "b", "a", "c", "d"])
    ]
    scores = np.array([0.9, 0.1, 0.8, 0.5, 0.0], dtype=np.float32)
    assert rank_unique(scores, chunks) == [0, 3, 1, 4]
    assert rank_unique(scores, chunks, k=2) == [0, 3]
    assert rank_unique(scores, chunks, keep=lambda s: s > 0) == [0, 3, 1]
    assert rank_unique(np.zeros(5, dtype=np.float32), chunks, keep=lambda s: s > 0) == []


def test_row_groups() -> None:
    languages = {"en-doc": "en", "sv-doc": "sv"}
    questions = [
        Question("1", "x", "en", "en-doc", ("p",), ("same-language", "keyword")),
        Question("2", "x", "da", "en-doc", ("p",), ("cross-lingual", "typo")),
        Question("3", "x", "sv", "en-doc", ("p",), ("cross-lingual",)),
        Question("4", "x", "sv", None, (), ("unanswerable", "keyword")),
    ]
    groups = row_groups(questions, languages)
    assert groups["overall"] == ["1", "2", "3", "4"]
    assert groups["en→en"] == ["1"]
    assert groups["da→en"] == ["2"]
    assert groups["sv→en"] == ["3"]
    assert "sv→sv" not in groups  # empty rows are left out
    assert groups["same-language"] == ["1"]
    assert groups["cross-lingual"] == ["2", "3"]
    assert groups["questions in sv"] == ["3", "4"]
    assert groups["tag: keyword"] == ["1", "4"]
    assert groups["tag: typo"] == ["2"]


# --- the loader -------------------------------------------------------------------------------


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "q900",
        "q": "neo budget",
        "lang": "en",
        "document": "neo",
        "phrases": ["868 744"],
        "tags": ["cross-lingual", "keyword"],
    }
    entry.update(changes)
    return {key: value for key, value in entry.items() if value != "<drop>"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lang": "de"}, "'lang'"),
        ({"q": "  "}, "'q'"),
        ({"phrases": []}, "at least one phrase"),
        ({"tags": ["keyword", "cross-lingual", "weird"]}, "unknown tag"),
        ({"tags": ["keyword"]}, "cross-lingual or same-language"),
        ({"tags": ["same-language", "keyword"]}, "should be tagged cross-lingual"),
        ({"document": "nope"}, "unknown document"),
        ({"document": None}, "not tagged unanswerable"),
        (
            {"document": None, "phrases": [], "tags": ["unanswerable", "cross-lingual"]},
            "neither cross-lingual",
        ),
        ({"tags": ["unanswerable", "cross-lingual"]}, "tagged unanswerable"),
        ({"extra": 1}, "unknown key"),
    ],
)
def test_loader_names_the_question(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(QuestionFileError, match=message) as info:
        parse_questions({"questions": [_entry(**changes)]}, "file.yaml", {"neo": "da"})
    assert "question q900" in str(info.value)


def test_loader_rejects_duplicates_and_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(QuestionFileError, match="q900: duplicate id"):
        parse_questions({"questions": [_entry(), _entry()]})
    with pytest.raises(QuestionFileError, match="'questions' list"):
        parse_questions({"items": []})
    with pytest.raises(QuestionFileError, match="question #1: 'id'"):
        parse_questions({"questions": [_entry(id="<drop>")]})
    broken = tmp_path / "broken.yaml"
    broken.write_text("questions: [\n", encoding="utf-8")
    with pytest.raises(QuestionFileError, match="not valid YAML"):
        load_questions(broken)
    with pytest.raises(QuestionFileError, match="cannot read"):
        load_questions(tmp_path / "missing.yaml")


def test_loader_accepts_a_good_entry() -> None:
    [question] = parse_questions({"questions": [_entry()]}, document_languages={"neo": "da"})
    assert question == Question(
        "q900", "neo budget", "en", "neo", ("868 744",), ("cross-lingual", "keyword")
    )
    assert question.answerable


# --- the question set -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def knowledge() -> tuple[dict[str, str], list[Chunk], dict[str, str]]:
    """(document id -> language, all chunks, document id -> body)."""
    kb = load_knowledge(KNOWLEDGE_DIR)
    languages = {doc.id: doc.language for doc in kb.documents.values()}
    bodies = {doc.id: doc.body for doc in kb.documents.values()}
    return languages, chunk_knowledge(kb), bodies


@pytest.fixture(scope="module")
def questions(knowledge: tuple[dict[str, str], list[Chunk], dict[str, str]]) -> list[Question]:
    return load_questions(QUESTIONS_FILE, knowledge[0])


def test_question_set_size_and_balance(questions: list[Question]) -> None:
    assert len(questions) >= 250
    per_language = Counter(q.lang for q in questions)
    assert set(per_language) == {"en", "sv", "da"}
    assert max(per_language.values()) - min(per_language.values()) <= 2, per_language


def test_the_report_half_is_large_and_has_every_kind_of_question(
    questions: list[Question],
) -> None:
    report = [q for q in questions if q.split == "report"]
    tuning = [q for q in questions if q.split == "tuning"]
    assert len(report) >= 125
    assert len(tuning) >= 125
    fresh = [q for q in questions if q.id.startswith("f")]  # written for v0.2, before tuning
    assert sum("informal" in q.tags for q in fresh) >= 40
    assert sum("paraphrase" in q.tags for q in fresh) >= 40
    assert sum(not q.answerable and "off-topic" not in q.tags for q in fresh) >= 30
    assert sum("off-topic" in q.tags for q in fresh) >= 10
    for tag in ("informal", "paraphrase", "off-topic", "unanswerable", "cross-lingual"):
        assert sum(tag in q.tags for q in report) >= 8, tag
    assert all(q.split == "tuning" for q in questions if q.id.startswith("q"))  # tuned in v0.1


def test_tuning_code_is_refused_report_half_questions(questions: list[Question]) -> None:
    from benchmarks import tune

    report = [q for q in questions if q.split == "report"]
    with pytest.raises(SplitError, match="never be tuned on"):
        tuning_only(questions)
    with pytest.raises(SplitError):
        tune.score(None, report[:1], [np.zeros(3)], SearchConfig())  # type: ignore[arg-type]
    chosen = tune.tuning_questions(QUESTIONS_FILE)
    assert chosen
    assert {q.split for q in chosen} == {"tuning"}
    assert not {q.id for q in chosen} & {q.id for q in report}


def test_question_set_coverage(
    questions: list[Question], knowledge: tuple[dict[str, str], list[Chunk], dict[str, str]]
) -> None:
    languages = knowledge[0]
    cross = [q for q in questions if q.document and languages[q.document] != q.lang]
    assert len(cross) * 2 >= len(questions)
    assert sum(not q.answerable for q in questions) >= 15
    assert sum("paraphrase" in q.tags for q in questions) >= 20
    assert sum("typo" in q.tags for q in questions) >= 10
    assert sum("keyword" in q.tags for q in questions) >= 10
    assert {q.document for q in questions if q.document} == set(languages)
    for lang in ("en", "sv", "da"):
        assert any(not q.answerable and q.lang == lang for q in questions)
    used = {tag for q in questions for tag in q.tags}
    assert used == TAGS
    texts = Counter(q.q.casefold() for q in questions)
    assert [t for t, n in texts.items() if n > 1] == ["neo budget"]  # asked in en and da


def test_every_answerable_question_has_a_phrase_in_its_document(
    questions: list[Question], knowledge: tuple[dict[str, str], list[Chunk], dict[str, str]]
) -> None:
    _, chunks, bodies = knowledge
    missing = []
    for q in questions:
        if q.document is None:
            continue
        texts = [bodies[q.document]] + [c.text for c in chunks if c.document == q.document]
        if not any(contains_phrase(text, q.phrases) for text in texts):
            missing.append(q.id)
    assert not missing, f"no phrase found in the expected document: {missing}"


def test_no_question_copies_a_run_of_document_text(
    questions: list[Question], knowledge: tuple[dict[str, str], list[Chunk], dict[str, str]]
) -> None:
    _, chunks, bodies = knowledge
    run = 8
    grams: set[tuple[str, ...]] = set()
    for text in [*bodies.values(), *(c.text for c in chunks)]:
        tokens = words(text)
        grams.update(tuple(tokens[i : i + run]) for i in range(len(tokens) - run + 1))
    copied = [
        q.id
        for q in questions
        if any(tuple(words(q.q)[i : i + run]) in grams for i in range(len(words(q.q)) - run + 1))
    ]
    assert not copied, f"questions copying {run}+ words of the knowledge base: {copied}"


def test_questions_file_is_plain_yaml_with_ids_in_order() -> None:
    data = yaml.safe_load(QUESTIONS_FILE.read_text(encoding="utf-8"))
    ids = [entry["id"] for entry in data["questions"]]
    old = [i for i in ids if i.startswith("q")]
    fresh = [i for i in ids if i.startswith("f")]
    assert old == [f"q{n:03d}" for n in range(1, len(old) + 1)]
    assert fresh == [f"f{n:03d}" for n in range(1, len(fresh) + 1)]
    assert ids == old + fresh


# --- the pipeline on a toy searcher (no model) ------------------------------------------------


class _ToyIndex:
    def __init__(self, chunks: list[Chunk]) -> None:
        self.chunks = chunks


class _ToySearcher:
    """Dense = the query vector picks a chunk; hybrid = word overlap."""

    def __init__(self, chunks: list[Chunk]) -> None:
        self.index = _ToyIndex(chunks)

    def dense_scores(self, vector: np.ndarray) -> np.ndarray:
        return np.asarray(vector, dtype=np.float32)

    def search(
        self,
        query: str,
        vector: np.ndarray,
        *,
        top_k: int = 5,
        lang: str | None = None,
        config: object = None,
    ) -> SearchResult:
        wanted = set(words(query))
        scored = sorted(self.index.chunks, key=lambda c: -len(wanted & set(words(c.text))))
        hits = [Hit(n, 1.0, c, 0.0, 0.0, 0.0) for n, c in enumerate(scored[:top_k], start=1)]
        overlap = len(wanted & set(words(scored[0].text)))
        return SearchResult(query, lang or "en", overlap > 0, hits)


class _ToyEmbedder:
    def __init__(self, vectors: list[list[float]]) -> None:
        self.vectors = vectors
        self.calls = 0

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        assert len(texts) == len(self.vectors)
        return np.asarray(self.vectors, dtype=np.float32)


def test_evaluate_runs_all_systems_on_the_same_chunks() -> None:
    chunks = [
        Chunk("neo#0", "document", "neo", "da", "NEO", "Projektets samlede budget: 868 744 EUR"),
        Chunk("neo@en", "summary", "neo", "en", "NEO", "NEO had a total budget of 868 744 EUR"),
        Chunk("b#0", "document", "bags4youth", "sv", "BAGS4YOUTH", "Kontakt: SERN Sekretariat"),
    ]
    questions = [
        Question("q1", "neo budget", "en", "neo", ("868 744",), ("cross-lingual", "keyword")),
        Question("q2", "sern kontakt", "da", "bags4youth", ("SERN",), ("cross-lingual",)),
        Question("q3", "weather tomorrow", "en", None, (), ("unanswerable",)),
    ]
    embedder = _ToyEmbedder([[0.9, 0.2, 0.1], [0.8, 0.1, 0.3], [0.1, 0.2, 0.3]])
    searcher: Any = _ToySearcher(chunks)
    reports = evaluate(searcher, embedder, questions)  # type: ignore[arg-type]
    assert embedder.calls == 1
    assert list(reports) == ["hybrid", "dense", "bm25"]
    hybrid, dense, bm25 = reports["hybrid"], reports["dense"], reports["bm25"]
    assert hybrid.rows["overall"].doc_hit1 == 1.0
    assert hybrid.rows["overall"].unanswerable_refused == 1.0
    assert dense.outcomes["q2"].documents == (False, True, False)  # the vector prefers neo
    assert dense.rows["overall"].doc_hit1 == 0.5
    assert dense.outcomes["q3"].refused  # best cosine 0.3 < 0.35
    assert bm25.outcomes["q1"].documents == (True, True)  # only matching chunks are retrieved
    assert bm25.outcomes["q3"].refused
    assert bm25.outcomes["q3"].documents == ()
    assert bm25.rows["overall"].passage_hit1 == 1.0
    assert set(hybrid.rows) >= {"overall", "en→da", "da→sv", "cross-lingual", "tag: keyword"}
    text = render_report(reports, markdown=False)
    assert "Document level" in text
    assert "Failing questions, hybrid (0)" in text
    markdown = render_report(reports, markdown=True)
    assert "| overall | 2 |" in markdown
    assert "### Refusal" in markdown
