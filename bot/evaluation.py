"""`brobygger eval`: how well retrieval finds the right passage, against two baselines.

Three systems rank the same chunks of the loaded index in the same run:

* **hybrid** - the product: `Searcher.search` (stemmed multilingual BM25 fused with dense vectors,
  and its own "no good answer" rule).
* **dense** - dense vectors only, ranked by cosine (`Searcher.dense_scores`). It refuses when the
  best cosine is below `DENSE_REFUSAL_THRESHOLD` (0.35): the cut-off a typical embedding bot uses
  with all-MiniLM-style models, fixed here and not tuned on this set.
* **bm25** - plain BM25 (bm25s defaults) over title + text, tokenised with
  `bot.retrieval.text.words` (lowercase words, no stemming) minus bm25s' English stopwords. Only
  chunks with a score above 0 are retrieved, so it refuses when nothing matches.

Metrics, over the answerable questions of a row: Hit@1, Hit@3 and MRR@10 at document level (the
chunk comes from the expected document) and at passage level (it also contains one of the
question's phrases, case-insensitive and whitespace-normalised). Rankings are scored as ranked,
whether or not the system also refused; refusals are reported separately: the share of
unanswerable questions refused, and the share of answerable questions wrongly refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from bot.errors import BrobyggerError
from bot.knowledge.models import LANGUAGES
from bot.retrieval.chunks import Chunk
from bot.retrieval.text import normalise, words

if TYPE_CHECKING:
    import bm25s

    from bot.retrieval.embedder import Embedder, Vectors
    from bot.retrieval.search import Searcher

#: Dense-only baseline: refuse when the best cosine similarity is below this.
DENSE_REFUSAL_THRESHOLD = 0.35
#: The same for e5 models, whose cosines sit higher (unrelated text scores about 0.7).
E5_REFUSAL_THRESHOLD = 0.80
#: Rankings are cut here (MRR@10).
TOP_K = 10

TOPIC_TAGS: frozenset[str] = frozenset(
    (
        "date",
        "place",
        "budget",
        "partners",
        "contact",
        "programme",
        "success-factor",
        "takeaway",
        "meeting",
        "aims",
    )
)
STYLE_TAGS: frozenset[str] = frozenset(("keyword", "full", "typo", "paraphrase", "informal"))
LANGUAGE_TAGS: frozenset[str] = frozenset(("cross-lingual", "same-language"))
TAGS: frozenset[str] = TOPIC_TAGS | STYLE_TAGS | LANGUAGE_TAGS | {"unanswerable", "off-topic"}
#: Tags that get their own row in the report.
REPORTED_TAGS: tuple[str, ...] = ("paraphrase", "informal", "typo", "keyword", "off-topic")
SYSTEMS: tuple[str, ...] = ("hybrid", "dense", "bm25")
#: The tuning half may be fitted to; the report half is written before tuning and never tuned on.
SPLITS: tuple[str, ...] = ("tuning", "report")


class QuestionFileError(BrobyggerError):
    """The questions file is unusable; the message names the question."""


class SplitError(BrobyggerError):
    """Tuning code was handed a question of the report half."""


# --- questions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    id: str
    q: str
    lang: str
    document: str | None  # None: the knowledge base cannot answer it
    phrases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    split: str = "tuning"

    @property
    def answerable(self) -> bool:
        return self.document is not None


def tuning_only(questions: Iterable[Question]) -> list[Question]:
    """The gate every piece of tuning code passes its questions through: a report-half
    question here means a figure we publish would be a fit, so it is an error, not a filter."""
    chosen = list(questions)
    leaked = [q.id for q in chosen if q.split != "tuning"]
    if leaked:
        raise SplitError(
            f"report-half questions must never be tuned on: {', '.join(leaked[:10])}"
            + (" …" if len(leaked) > 10 else "")
        )
    return chosen


def _fail(where: str, message: str) -> QuestionFileError:
    return QuestionFileError(f"{where}: {message}")


def _string_list(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(where, f"'{key}' must be a list of non-empty strings")
    return tuple(value)


def parse_questions(
    data: Any, source: str = "questions", document_languages: Mapping[str, str] | None = None
) -> list[Question]:
    """Validate the parsed YAML. With `document_languages` (document id -> language) the
    documents must exist and the cross-lingual / same-language tags must match them."""
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise _fail(source, "expected a mapping with a 'questions' list")
    questions: list[Question] = []
    seen: set[str] = set()
    for n, entry in enumerate(data["questions"], start=1):
        where = f"{source}: question #{n}"
        if not isinstance(entry, dict):
            raise _fail(where, "must be a mapping")
        qid = entry.get("id")
        if not isinstance(qid, str) or not qid.strip():
            raise _fail(where, "'id' is missing")
        where = f"{source}: question {qid}"
        if qid in seen:
            raise _fail(where, "duplicate id")
        seen.add(qid)
        unknown = set(entry) - {"id", "q", "lang", "document", "phrases", "tags", "split"}
        if unknown:
            raise _fail(where, f"unknown key(s): {', '.join(sorted(unknown))}")
        text = entry.get("q")
        if not isinstance(text, str) or not text.strip():
            raise _fail(where, "'q' (the question) is missing or empty")
        lang = entry.get("lang")
        if lang not in LANGUAGES:
            raise _fail(where, f"'lang' must be one of {', '.join(LANGUAGES)}, not {lang!r}")
        document = entry.get("document")
        if document is not None and (not isinstance(document, str) or not document.strip()):
            raise _fail(where, "'document' must be a document id or null")
        phrases = _string_list(entry.get("phrases"), where, "phrases")
        tags = _string_list(entry.get("tags"), where, "tags")
        bad = sorted(set(tags) - TAGS)
        if bad:
            raise _fail(where, f"unknown tag(s): {', '.join(bad)}")
        split = entry.get("split", "tuning")
        if split not in SPLITS:
            raise _fail(where, f"'split' must be one of {', '.join(SPLITS)}, not {split!r}")
        if "off-topic" in tags and document is not None:
            raise _fail(where, "an off-topic question has no document")
        if document is None:
            if "unanswerable" not in tags:
                raise _fail(where, "'document' is null but the question is not tagged unanswerable")
            if phrases:
                raise _fail(where, "an unanswerable question has no phrases")
            if LANGUAGE_TAGS & set(tags):
                raise _fail(
                    where, "an unanswerable question is neither cross-lingual nor same-language"
                )
        else:
            if "unanswerable" in tags:
                raise _fail(where, "tagged unanswerable but names a document")
            if not phrases:
                raise _fail(where, "an answerable question needs at least one phrase")
            if len(LANGUAGE_TAGS & set(tags)) != 1:
                raise _fail(where, "tag it either cross-lingual or same-language")
            if document_languages is not None:
                if document not in document_languages:
                    raise _fail(where, f"unknown document {document!r}")
                expected = (
                    "same-language" if document_languages[document] == lang else "cross-lingual"
                )
                if expected not in tags:
                    raise _fail(
                        where,
                        f"should be tagged {expected} (question {lang}, document "
                        f"{document_languages[document]})",
                    )
        questions.append(Question(qid, text.strip(), lang, document, phrases, tags, split))
    if not questions:
        raise _fail(source, "no questions")
    return questions


def load_questions(
    path: Path, document_languages: Mapping[str, str] | None = None, split: str | None = None
) -> list[Question]:
    """Read and validate a questions file; errors name the file and the question id. With
    `split`, only that half (tuning code asks for "tuning" and passes it through
    `tuning_only`)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise QuestionFileError(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise QuestionFileError(f"{path}: not valid YAML: {error}") from None
    questions = parse_questions(data, str(path), document_languages)
    return [q for q in questions if split is None or q.split == split]


# --- matching ---------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return normalise(text).casefold().replace("’", "'")


def contains_phrase(text: str, phrases: Iterable[str]) -> bool:
    """True when the text contains one of the phrases (case-insensitive, whitespace-normalised,
    curly and straight apostrophes alike)."""
    folded = _fold(text)
    return any(_fold(p) in folded for p in phrases if p.strip())


def passage_relevant(chunk: Chunk, question: Question) -> bool:
    return (
        question.document is not None
        and chunk.document == question.document
        and contains_phrase(chunk.text, question.phrases)
    )


# --- metric functions (pure) ------------------------------------------------------------------


def hit_at(relevant: Sequence[bool], k: int) -> float:
    """1.0 when one of the first k ranked items is relevant."""
    return 1.0 if any(relevant[:k]) else 0.0


def reciprocal_rank(relevant: Sequence[bool], k: int = TOP_K) -> float:
    """1/rank of the first relevant item within the first k, else 0."""
    for rank, hit in enumerate(relevant[:k], start=1):
        if hit:
            return 1.0 / rank
    return 0.0


def first_relevant(relevant: Sequence[bool]) -> int | None:
    """The 1-based rank of the first relevant item, if any."""
    for rank, hit in enumerate(relevant, start=1):
        if hit:
            return rank
    return None


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def share(flags: Sequence[bool]) -> float | None:
    """The share of True flags; None for an empty sequence (nothing to measure)."""
    return sum(1 for f in flags if f) / len(flags) if flags else None


# --- per-question outcome and row metrics -----------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one system did with one question."""

    question: Question
    documents: tuple[bool, ...]  # per rank: from the expected document
    passages: tuple[bool, ...]  # per rank: expected document and contains a phrase
    refused: bool
    top: Chunk | None
    top_score: float = 0.0
    detail: str = ""  # system-specific numbers of the first hit, for tuning


@dataclass(frozen=True)
class Metrics:
    answerable: int
    unanswerable: int
    doc_hit1: float | None
    doc_hit3: float | None
    doc_mrr: float | None
    passage_hit1: float | None
    passage_hit3: float | None
    passage_mrr: float | None
    unanswerable_refused: float | None  # share of unanswerable questions refused (higher = better)
    answerable_refused: float | None  # share of answerable questions refused (lower = better)


def summarise(outcomes: Sequence[Outcome]) -> Metrics:
    answerable = [o for o in outcomes if o.question.answerable]
    unanswerable = [o for o in outcomes if not o.question.answerable]
    return Metrics(
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        doc_hit1=mean([hit_at(o.documents, 1) for o in answerable]),
        doc_hit3=mean([hit_at(o.documents, 3) for o in answerable]),
        doc_mrr=mean([reciprocal_rank(o.documents) for o in answerable]),
        passage_hit1=mean([hit_at(o.passages, 1) for o in answerable]),
        passage_hit3=mean([hit_at(o.passages, 3) for o in answerable]),
        passage_mrr=mean([reciprocal_rank(o.passages) for o in answerable]),
        unanswerable_refused=share([o.refused for o in unanswerable]),
        answerable_refused=share([o.refused for o in answerable]),
    )


def language_pair(question: Question, document_languages: Mapping[str, str]) -> str | None:
    """E.g. "da→en": question in Danish, answer in an English document; None if unanswerable."""
    if question.document is None:
        return None
    return f"{question.lang}→{document_languages.get(question.document, '?')}"


def row_groups(
    questions: Sequence[Question], document_languages: Mapping[str, str]
) -> dict[str, list[str]]:
    """Row label -> ids of the questions in it, in report order. Unanswerable questions count in
    the overall, question-language and tag rows, not in the document-language rows."""
    groups: dict[str, list[str]] = {"overall": [q.id for q in questions]}
    for lang in LANGUAGES:
        groups[f"questions in {lang}"] = [q.id for q in questions if q.lang == lang]
    for qlang in LANGUAGES:
        for dlang in LANGUAGES:
            label = f"{qlang}→{dlang}"
            groups[label] = [
                q.id for q in questions if language_pair(q, document_languages) == label
            ]
    groups["same-language"] = [
        q.id
        for q in questions
        if q.answerable and document_languages.get(q.document or "") == q.lang
    ]
    groups["cross-lingual"] = [
        q.id
        for q in questions
        if q.answerable and document_languages.get(q.document or "") != q.lang
    ]
    for tag in REPORTED_TAGS:
        groups[f"tag: {tag}"] = [q.id for q in questions if tag in q.tags]
    groups["unanswerable on topic"] = [
        q.id for q in questions if not q.answerable and "off-topic" not in q.tags
    ]
    return {label: ids for label, ids in groups.items() if ids}


@dataclass
class SystemReport:
    name: str
    description: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # by question id
    rows: dict[str, Metrics] = field(default_factory=dict)  # by row label

    def compute_rows(self, groups: Mapping[str, Sequence[str]]) -> None:
        self.rows = {
            label: summarise([self.outcomes[i] for i in ids]) for label, ids in groups.items()
        }


def failures(report: SystemReport) -> list[tuple[Outcome, str]]:
    """Questions the system got wrong and why: the right document not first, no correct passage
    in the top 3, an answerable question refused, or an unanswerable one answered."""
    found: list[tuple[Outcome, str]] = []
    for outcome in report.outcomes.values():
        reasons: list[str] = []
        if outcome.question.answerable:
            doc_rank = first_relevant(outcome.documents)
            if doc_rank != 1:
                reasons.append(
                    f"document at rank {doc_rank}" if doc_rank else f"document not in top {TOP_K}"
                )
            passage_rank = first_relevant(outcome.passages)
            if passage_rank is None or passage_rank > 3:
                reasons.append(
                    f"passage at rank {passage_rank}"
                    if passage_rank
                    else f"no passage in top {TOP_K}"
                )
            if outcome.refused:
                reasons.append("refused")
        elif not outcome.refused:
            reasons.append("answered an unanswerable question")
        if reasons:
            found.append((outcome, "; ".join(reasons)))
    return found


# --- the systems ------------------------------------------------------------------------------


def rank_unique(
    scores: np.ndarray,
    chunks: Sequence[Chunk],
    k: int = TOP_K,
    keep: Callable[[float], bool] | None = None,
) -> list[int]:
    """Indices of the k best chunks, skipping repeated texts as the product does."""
    order = np.argsort(-scores, kind="stable")
    picked: list[int] = []
    seen: set[str] = set()
    for idx in order:
        i = int(idx)
        if keep is not None and not keep(float(scores[i])):
            break
        if chunks[i].text in seen:
            continue
        seen.add(chunks[i].text)
        picked.append(i)
        if len(picked) >= k:
            break
    return picked


def _outcome(
    question: Question, ranked: Sequence[Chunk], refused: bool, top_score: float, detail: str = ""
) -> Outcome:
    return Outcome(
        question=question,
        documents=tuple(c.document == question.document for c in ranked),
        passages=tuple(passage_relevant(c, question) for c in ranked),
        refused=refused,
        top=ranked[0] if ranked else None,
        top_score=top_score,
        detail=detail,
    )


def bm25_tokens(text: str, stopwords: frozenset[str]) -> list[str]:
    return [w for w in words(text) if w not in stopwords]


class PlainBM25:
    """The lexical baseline: bm25s with default parameters, unstemmed words, English stopwords."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        import bm25s
        from bm25s.stopwords import STOPWORDS_EN

        self.stopwords = frozenset(STOPWORDS_EN)
        self.size = len(chunks)
        self.model: bm25s.BM25 = bm25s.BM25()
        self.model.index(
            [bm25_tokens(c.title + " " + c.text, self.stopwords) for c in chunks],
            show_progress=False,
        )
        self.vocab: set[str] = set(self.model.vocab_dict)

    def scores(self, query: str) -> np.ndarray:
        tokens = [t for t in bm25_tokens(query, self.stopwords) if t in self.vocab]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.model.get_scores(tokens), dtype=np.float32)


def _document_languages(chunks: Sequence[Chunk]) -> dict[str, str]:
    return {c.document: c.lang for c in chunks if c.kind == "document"}


def dense_refusal_threshold(embedder: Any) -> float:
    """The dense baseline's fixed cut-off: e5 models put unrelated text near 0.7 cosine, so
    their usual cut-off is higher than all-MiniLM's. Not tuned on this set."""
    return (
        E5_REFUSAL_THRESHOLD
        if "e5" in str(getattr(embedder, "name", ""))
        else (DENSE_REFUSAL_THRESHOLD)
    )


def _hybrid_outcomes(
    report: SystemReport,
    searcher: Searcher,
    questions: Sequence[Question],
    vectors: Sequence[Vectors] | Vectors,
    config: Any = None,
) -> None:
    for question, vector in zip(questions, vectors, strict=True):
        result = searcher.search(question.q, vector, top_k=TOP_K, config=config)
        top = result.hits[0] if result.hits else None
        detail = (
            f"score={top.score:.2f} lexical={top.lexical:.2f} dense={top.dense:.2f} "
            f"coverage={top.coverage:.2f}"
            if top
            else ""
        )
        report.outcomes[question.id] = _outcome(
            question,
            [h.chunk for h in result.hits],
            not result.answered,
            top.score if top else 0.0,
            detail,
        )


def hybrid_report(
    name: str,
    description: str,
    searcher: Searcher,
    embedder: Embedder,
    questions: Sequence[Question],
    config: Any = None,
) -> SystemReport:
    """One product-like system (Searcher.search with its own config and refusal rule)."""
    report = SystemReport(name, description)
    vectors = embedder.encode_queries([q.q for q in questions])
    _hybrid_outcomes(report, searcher, questions, list(vectors), config)
    return report


#: Each retrieval lever switched off in turn (report half): what it buys.
ABLATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("without dense feedback (PRF)", {"prf_weight": 0.0}),
    ("without dense rescaling (raw cosine)", {"dense_span": 0.0}),
    ("without language centring", {"language_centering": 0.0}),
    ("with v0.1 weights (BM25 0.75, dense 0.25)", {"lexical_weight": 0.75, "dense_weight": 0.25}),
    ("without document evidence", {"document_evidence": 0.0}),
    ("without typo repair", {"fuzzy": False}),
    ("names counted once in BM25", {"name_boost": 1}),
    ("without answer-type checks", {"answer_types": False}),
)


def evaluate(
    searcher: Searcher, embedder: Embedder, questions: Sequence[Question]
) -> dict[str, SystemReport]:
    """Run all three systems on the same chunks; reports keyed hybrid, dense, bm25."""
    chunks = searcher.index.chunks
    vectors = embedder.encode_queries([q.q for q in questions])
    bm25 = PlainBM25(chunks)
    reports = {
        "hybrid": SystemReport(
            "hybrid",
            "Searcher.search: stemmed multilingual BM25 + dense, the product's refusal rule",
        ),
        "dense": SystemReport(
            "dense",
            f"dense cosine only, same model; refuses below {dense_refusal_threshold(embedder):.2f}",
        ),
        "bm25": SystemReport(
            "bm25", "plain BM25, unstemmed words, English stopwords; refuses when nothing matches"
        ),
    }
    _hybrid_outcomes(reports["hybrid"], searcher, questions, list(vectors))
    threshold = dense_refusal_threshold(embedder)
    for question, vector in zip(questions, vectors, strict=True):
        dense = searcher.dense_scores(vector)
        picked = rank_unique(dense, chunks)
        best = float(dense[picked[0]]) if picked else 0.0
        reports["dense"].outcomes[question.id] = _outcome(
            question,
            [chunks[i] for i in picked],
            best < threshold,
            best,
            f"cosine={best:.2f}",
        )

        lexical = bm25.scores(question.q)
        picked = rank_unique(lexical, chunks, keep=lambda s: s > 0)
        best = float(lexical[picked[0]]) if picked else 0.0
        reports["bm25"].outcomes[question.id] = _outcome(
            question, [chunks[i] for i in picked], not picked, best, f"bm25={best:.2f}"
        )

    groups = row_groups(questions, _document_languages(chunks))
    for report in reports.values():
        report.compute_rows(groups)
    return reports


# --- the report -------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


Table = tuple[list[str], list[list[str]]]


def tables(reports: Mapping[str, SystemReport]) -> list[tuple[str, Table]]:
    """(title, (header, rows)) for the document, passage and refusal tables."""
    systems = list(reports.values())
    labels = list(systems[0].rows)
    out: list[tuple[str, Table]] = []
    for title, attrs in (
        ("Document level (right document)", ("doc_hit1", "doc_hit3", "doc_mrr")),
        (
            "Passage level (right document and a phrase)",
            ("passage_hit1", "passage_hit3", "passage_mrr"),
        ),
    ):
        header = ["row", "n"] + [f"{s.name} {m}" for s in systems for m in ("H@1", "H@3", "MRR")]
        rows = []
        for label in labels:
            first = systems[0].rows[label]
            if not first.answerable:
                continue
            rows.append(
                [label, str(first.answerable)]
                + [_fmt(getattr(s.rows[label], attr)) for s in systems for attr in attrs]
            )
        out.append((title, (header, rows)))
    header = ["row", "n unans", "n ans"] + [
        f"{s.name} {m}" for s in systems for m in ("refused↑", "wrongly↓")
    ]
    rows = []
    for label in labels:
        first = systems[0].rows[label]
        rows.append(
            [label, str(first.unanswerable), str(first.answerable)]
            + [
                _fmt(getattr(s.rows[label], attr))
                for s in systems
                for attr in ("unanswerable_refused", "answerable_refused")
            ]
        )
    out.append(("Refusal (unanswerable refused ↑ / answerable wrongly refused ↓)", (header, rows)))
    return out


def render_text(title: str, table: Table) -> str:
    header, rows = table
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-" * len(line(header))
    return "\n".join([title, rule, line(header), rule, *(line(r) for r in rows), ""])


def render_markdown(title: str, table: Table) -> str:
    header, rows = table
    lines = [
        f"### {title}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _describe(chunk: Chunk | None) -> str:
    if chunk is None:
        return "(nothing)"
    snippet = re.sub(r"\s+", " ", chunk.text)[:70]
    return f"{chunk.document} [{chunk.id}] “{snippet}…”"


def failure_lines(report: SystemReport) -> list[str]:
    lines = []
    for outcome, reason in failures(report):
        q = outcome.question
        lines.append(
            f"{q.id} ({q.lang}) {q.q}\n"
            f"    expected: {q.document or '(unanswerable)'}; {reason}\n"
            f"    first: {_describe(outcome.top)}\n"
            f"    {'refused' if outcome.refused else 'answered'}; {outcome.detail}"
        )
    return lines


def render_report(reports: Mapping[str, SystemReport], markdown: bool) -> str:
    n = len(next(iter(reports.values())).outcomes)
    parts: list[str] = []
    systems = "\n".join(f"- {r.name}: {r.description}" for r in reports.values())
    if markdown:
        parts += [
            "# Retrieval evaluation",
            "",
            f"{n} questions; document/passage metrics over answerable questions; "
            "rankings scored as ranked, refusals reported separately.",
            "",
            systems,
            "",
        ]
        parts += [render_markdown(t, tab) for t, tab in tables(reports)]
    else:
        parts += [f"Retrieval evaluation: {n} questions", systems, ""]
        parts += [render_text(t, tab) for t, tab in tables(reports)]
    failing = failure_lines(reports["hybrid"])
    parts += failure_block(f"Failing questions, hybrid ({len(failing)})", failing, markdown)
    return "\n".join(parts)


def failure_block(heading: str, failing: Sequence[str], markdown: bool) -> list[str]:
    if markdown:
        return [f"### {heading}", "", "```", *failing, "```", ""]
    return [heading, "-" * len(heading), *failing, ""]


# --- the evaluation matrix: curated or documents only, with or without distractors -----------


@dataclass(frozen=True)
class Variant:
    """One knowledge set to evaluate on: the curated knowledge (documents + summaries +
    catalog cards) or the documents alone (what an admin's upload looks like), optionally
    drowned in fictional look-alike documents (benchmarks/data/distractors/)."""

    documents_only: bool
    distractors: bool

    @property
    def label(self) -> str:
        base = "documents only" if self.documents_only else "curated"
        return base + (" + distractors" if self.distractors else "")


VARIANTS: tuple[Variant, ...] = (
    Variant(False, False),
    Variant(True, False),
    Variant(False, True),
    Variant(True, True),
)


def variant_searcher(
    knowledge_dir: Path,
    embedder: Embedder,
    variant: Variant,
    *,
    distractors_dir: Path | None = None,
    config: Any = None,
) -> Searcher:
    """A searcher over a freshly built index of the variant's knowledge (in a temporary
    directory that is gone when this returns: the loaded index lives in memory)."""
    import shutil
    import tempfile

    from bot.knowledge.loader import load_knowledge
    from bot.retrieval.chunks import chunk_knowledge
    from bot.retrieval.search import Searcher
    from bot.retrieval.store import build_index, load_index

    with tempfile.TemporaryDirectory(prefix="brobygger-eval-") as tmp:
        root = Path(tmp)
        source = knowledge_dir
        if variant.distractors:
            if distractors_dir is None or not distractors_dir.is_dir():
                raise QuestionFileError(f"no distractor documents in {distractors_dir}")
            source = root / "knowledge"
            shutil.copytree(knowledge_dir, source)
            for path in sorted(distractors_dir.glob("dx-*.md")):
                shutil.copy(path, source / "documents" / path.name)
        kb = load_knowledge(source)
        chunks = chunk_knowledge(kb)
        if variant.documents_only:
            chunks = [c for c in chunks if c.kind == "document"]
        build_index(kb, embedder, root / "index", chunks=chunks)
        return Searcher(load_index(root / "index", embedder.name), config)


def split_reports(
    reports: Mapping[str, SystemReport],
    questions: Sequence[Question],
    document_languages: Mapping[str, str],
) -> dict[str, SystemReport]:
    """The same outcomes, with rows computed over `questions` only (one half of the set)."""
    ids = {q.id for q in questions}
    groups = row_groups(questions, document_languages)
    out: dict[str, SystemReport] = {}
    for name, report in reports.items():
        part = SystemReport(
            report.name,
            report.description,
            {i: o for i, o in report.outcomes.items() if i in ids},
        )
        part.compute_rows(groups)
        out[name] = part
    return out


#: (label, row, attribute) of the figures the goals are stated in.
GOAL_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("Hit@1", "overall", "doc_hit1"),
    ("Hit@3", "overall", "doc_hit3"),
    ("cross-lingual Hit@3", "cross-lingual", "doc_hit3"),
    ("paraphrase Hit@3", "tag: paraphrase", "doc_hit3"),
    ("young people's Hit@3", "tag: informal", "doc_hit3"),
    ("passage Hit@1", "overall", "passage_hit1"),
    ("passage Hit@3", "overall", "passage_hit3"),
    ("unanswerable + off-topic refused ↑", "overall", "unanswerable_refused"),
    ("answerable wrongly refused ↓", "overall", "answerable_refused"),
)


def _figure(report: SystemReport, row: str, attr: str) -> str:
    metrics = report.rows.get(row)
    return _fmt(getattr(metrics, attr)) if metrics else "–"


def goals_table(columns: Sequence[tuple[str, SystemReport]]) -> Table:
    header = ["figure (document level unless named)"] + [label for label, _ in columns]
    rows = [
        [label] + [_figure(report, row, attr) for _, report in columns]
        for label, row, attr in GOAL_FIGURES
    ]
    return header, rows


def systems_table(reports: Mapping[str, SystemReport]) -> Table:
    header = ["system"] + [label for label, _, _ in GOAL_FIGURES]
    rows = [
        [name] + [_figure(report, row, attr) for _, row, attr in GOAL_FIGURES]
        for name, report in reports.items()
    ]
    return header, rows


def tag_table(columns: Sequence[tuple[str, SystemReport]]) -> Table:
    """Every row group of the hybrid system: Hit@1 / Hit@3 / refusals per variant."""
    labels = list(columns[0][1].rows)
    header = ["row", "n"] + [
        f"{label} {m}" for label, _ in columns for m in ("H@1", "H@3", "refused↑", "wrongly↓")
    ]
    rows = []
    for row in labels:
        first = columns[0][1].rows[row]
        rows.append(
            [row, f"{first.answerable}+{first.unanswerable}"]
            + [
                _fmt(getattr(report.rows[row], attr))
                for _, report in columns
                for attr in ("doc_hit1", "doc_hit3", "unanswerable_refused", "answerable_refused")
            ]
        )
    return header, rows


@dataclass
class Matrix:
    """Outcomes of every system on every variant, over all questions."""

    questions: list[Question]
    document_languages: dict[str, str]
    runs: dict[str, dict[str, SystemReport]] = field(default_factory=dict)  # variant label ->

    def half(self, split: str) -> dict[str, dict[str, SystemReport]]:
        chosen = [q for q in self.questions if q.split == split]
        return {
            label: split_reports(reports, chosen, self.document_languages)
            for label, reports in self.runs.items()
        }


def run_matrix(
    knowledge_dir: Path,
    embedder: Embedder,
    questions: Sequence[Question],
    document_languages: Mapping[str, str],
    *,
    variants: Sequence[Variant] = VARIANTS,
    distractors_dir: Path | None = None,
    previous: Embedder | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> Matrix:
    """Evaluate every variant; with `previous`, also the previous default (that model with
    the v0.1 retrieval settings) on the variants without distractors."""
    from bot.retrieval.search import PREVIOUS_CONFIG

    matrix = Matrix(list(questions), dict(document_languages))
    for variant in variants:
        progress(f"building and evaluating: {variant.label}")
        searcher = variant_searcher(
            knowledge_dir, embedder, variant, distractors_dir=distractors_dir
        )
        reports = evaluate(searcher, embedder, questions)
        if not variant.distractors:
            for name, changes in ABLATIONS:
                config = searcher.config.with_changes(**changes)
                if config == searcher.config:
                    continue  # the lever is off by default: nothing to switch off
                report = hybrid_report(
                    name, f"the product with {changes}", searcher, embedder, questions, config
                )
                report.compute_rows(row_groups(questions, document_languages))
                reports[name] = report
        if previous is not None and not variant.distractors:
            progress(f"building and evaluating: {variant.label}, previous default")
            old = variant_searcher(
                knowledge_dir,
                previous,
                variant,
                distractors_dir=distractors_dir,
                config=PREVIOUS_CONFIG,
            )
            name = f"v0.1 ({previous.name.removeprefix('bundled:')})"
            report = hybrid_report(
                name,
                "the previous default: its model, v0.1 retrieval settings",
                old,
                previous,
                questions,
            )
            report.compute_rows(row_groups(questions, document_languages))
            reports[name] = report
        matrix.runs[variant.label] = reports
    return matrix


def render_matrix(matrix: Matrix, markdown: bool) -> str:
    report_half = matrix.half("report")
    tuning_half = matrix.half("tuning")
    n_report = sum(q.split == "report" for q in matrix.questions)
    n_tuning = len(matrix.questions) - n_report
    render = render_markdown if markdown else render_text
    parts: list[str] = []
    intro = (
        f"{len(matrix.questions)} questions: a report half of {n_report}, written before "
        f"any tuning and never tuned on, and a tuning half of {n_tuning} (figures on it are "
        "an upper bound: the rules were fitted to it). Document level unless named; passage "
        "level = the passage shown contains the answer."
    )
    parts += ["# Retrieval evaluation", "", intro, ""] if markdown else [intro, ""]
    columns = [(label, reports["hybrid"]) for label, reports in report_half.items()]
    columns += [
        (f"{label} (tuning half, upper bound)", reports["hybrid"])
        for label, reports in tuning_half.items()
        if "distractors" not in label
    ]
    parts.append(render("The product (hybrid), report half", goals_table(columns)))
    for label in ("curated", "documents only"):
        if label in report_half:
            parts.append(
                render(
                    f"Against the baselines, report half: {label}",
                    systems_table(report_half[label]),
                )
            )
    detail = [(label, reports["hybrid"]) for label, reports in report_half.items()]
    parts.append(render("Per row and tag, hybrid, report half", tag_table(detail)))
    systems = next(iter(matrix.runs.values()))
    parts.append(
        "\n".join(["Systems:", *(f"- {r.name}: {r.description}" for r in systems.values())]) + "\n"
    )
    for label, reports in tuning_half.items():
        if "distractors" in label:
            continue
        failing = failure_lines(reports["hybrid"])
        heading = f"Failing questions of the tuning half, hybrid, {label} ({len(failing)})"
        parts += failure_block(heading, failing, markdown)
    return "\n".join(parts)


#: The goals of the release (issue 8), curated / documents only, per GOAL_FIGURES row.
GOALS: dict[str, str] = {
    "Hit@1": "≥ 0.85 / ≥ 0.65",
    "Hit@3": "≥ 0.95 / ≥ 0.85",
    "cross-lingual Hit@3": "≥ 0.92 / ≥ 0.80",
    "paraphrase Hit@3": "≥ 0.85 / ≥ 0.70",
    "young people's Hit@3": "≥ 0.85 / ≥ 0.70",
    "unanswerable + off-topic refused ↑": "≥ 0.85 / ≥ 0.85",
    "answerable wrongly refused ↓": "≤ 0.05 / ≤ 0.10",
}
QUALITY_START, QUALITY_END = "<!-- quality:start -->", "<!-- quality:end -->"


def quality_section(matrix: Matrix, when: str) -> str:
    """The retrieval part of docs/benchmarks.md: the goals, both knowledge sets, the
    baselines and what each lever buys, all on the report half."""
    report_half = matrix.half("report")
    n_report = sum(q.split == "report" for q in matrix.questions)
    columns = [(label, reports["hybrid"]) for label, reports in report_half.items()]
    header, rows = goals_table(columns)
    header = [*header, "goal (curated / documents only)"]
    rows = [[*row, GOALS.get(row[0], "–")] for row in rows]
    parts = [
        "## Retrieval quality",
        "",
        f"Written by `make eval` on {when}; do not edit by hand (the whole report, with every "
        "row and tag and the tuning half, is [docs/eval.md](eval.md)). All figures are on the "
        f"**report half** of `benchmarks/data/questions.yaml` ({n_report} questions written "
        "before any tuning and never tuned on); the product's settings were chosen on the "
        "tuning half (`python -m benchmarks.tune`). *Curated* = documents + hand-written "
        "summaries + catalog cards; *documents only* = what an admin's upload looks like; "
        "*+ distractors* = with 66 fictional look-alike documents (evaluation fixtures only).",
        "",
        render_markdown("The product against the goals", (header, rows)),
    ]
    for label in ("curated", "documents only"):
        if label in report_half:
            parts.append(
                render_markdown(f"Baselines and levers, {label}", systems_table(report_half[label]))
            )
    return "\n".join(parts)


def replace_between(path: Path, start: str, end: str, section: str) -> None:
    """Put `section` between two marker lines of `path` (appended when they are missing)."""
    import os

    block = f"{start}\n{section.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    at, until = text.find(start), text.find(end)
    if at == -1 or until == -1 or until < at:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    else:
        text = text[:at] + block + text[until + len(end) :]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_evaluation(
    service: Any,
    questions_file: Path,
    output: str | None,
    *,
    variants: Sequence[Variant] = VARIANTS,
    distractors_dir: Path | None = None,
    previous: Embedder | None = None,
    benchmarks: Path | None = None,
) -> int:
    """`brobygger eval`: evaluate the variants, print the report, optionally save it."""
    import sys

    languages = {doc.id: doc.language for doc in service.knowledge.documents.values()}
    questions = load_questions(questions_file, languages)
    matrix = run_matrix(
        service.settings.knowledge_dir,
        service.embedder,
        questions,
        languages,
        variants=variants,
        distractors_dir=distractors_dir,
        previous=previous,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print(render_matrix(matrix, markdown=False))
    if output:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_matrix(matrix, markdown=True), encoding="utf-8")
        print(f"Wrote {path}")
    if benchmarks:
        from datetime import date

        section = quality_section(matrix, date.today().isoformat())
        replace_between(benchmarks, QUALITY_START, QUALITY_END, section)
        print(f"Wrote the retrieval section of {benchmarks}")
    return 0
