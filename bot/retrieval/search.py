"""Hybrid retrieval over one loaded index: stemmed multilingual BM25 and dense vectors, fused with
weights chosen by measurement (`brobygger eval`), and a "no good answer" decision."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from bot.retrieval.chunks import Chunk
from bot.retrieval.embedder import Vectors
from bot.retrieval.store import LoadedIndex
from bot.retrieval.text import content_words, stems, terms, words

_LANG_MARKERS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "the",
            "what",
            "when",
            "where",
            "who",
            "which",
            "how",
            "is",
            "are",
            "does",
            "do",
            "was",
            "of",
            "and",
            "for",
            "about",
            "project",
            "projects",
            "meeting",
            "budget",
            "there",
            "any",
        ]
    ),
    "sv": frozenset(
        [
            "och",
            "vad",
            "när",
            "var",
            "vem",
            "vilka",
            "vilken",
            "hur",
            "är",
            "finns",
            "det",
            "om",
            "för",
            "att",
            "som",
            "med",
            "projektet",
            "mötet",
            "konferensen",
            "unga",
            "jag",
            "inte",
            "kan",
        ]
    ),
    "da": frozenset(
        [
            "og",
            "hvad",
            "hvornår",
            "hvor",
            "hvem",
            "hvilke",
            "hvilken",
            "hvordan",
            "er",
            "findes",
            "det",
            "om",
            "for",
            "at",
            "som",
            "med",
            "projektet",
            "mødet",
            "konferencen",
            "unge",
            "jeg",
            "ikke",
            "kan",
            "budgettet",
        ]
    ),
}


def detect_language(text: str, default: str = "en") -> str:
    """A cheap guess good enough to pick reply language and summaries: letters first (æ/ø are
    Danish, ä/ö Swedish), then function words."""
    lowered = text.casefold()
    if re.search(r"[æø]", lowered):
        return "da"
    if re.search(r"[äö]", lowered):
        return "sv"
    tokens = words(text)
    scores = {lang: sum(t in markers for t in tokens) for lang, markers in _LANG_MARKERS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    if scores[best] == 0:
        return default
    ranked = sorted(scores.values(), reverse=True)
    if ranked[0] == ranked[1]:  # sv/da share many words; å alone does not decide either
        return default if scores.get(default) == ranked[0] else best
    return best


@dataclass(frozen=True)
class FusionWeights:
    """How much each leg counts; measured on the evaluation set, see docs/benchmarks.md."""

    lexical: float = 0.75
    dense: float = 0.25


@dataclass(frozen=True)
class RefusalRule:
    """When the best passage is not an answer. Uses the dense similarity and how much of the
    question the best passage covers, because neither alone separates answerable from not."""

    min_coverage: float = 0.5
    min_dense: float = 0.5
    strong_dense: float = 0.62

    def answered(self, coverage: float, dense: float) -> bool:
        return (coverage >= self.min_coverage and dense >= self.min_dense - 0.25) or (
            dense >= self.strong_dense
        )


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    chunk: Chunk
    lexical: float
    dense: float
    coverage: float


@dataclass(frozen=True)
class SearchResult:
    query: str
    lang: str
    answered: bool
    hits: list[Hit] = field(default_factory=list)


def coverage(query: str, text: str) -> float:
    """Share of the question's content words whose stems occur in the passage."""
    wanted = content_words(query)
    if not wanted:
        return 0.0
    have = set(terms(text))
    found = sum(1 for word in wanted if any(s in have for s in stems(word)))
    return found / len(wanted)


class Searcher:
    """Scores every chunk of one index for a query (vector already encoded)."""

    def __init__(
        self,
        index: LoadedIndex,
        weights: FusionWeights | None = None,
        refusal: RefusalRule | None = None,
        candidates: int = 200,
    ) -> None:
        self.index = index
        self.weights = weights or FusionWeights()
        self.refusal = refusal or RefusalRule()
        self.candidates = candidates

    def dense_scores(self, vector: Vectors) -> np.ndarray:
        n = len(self.index.chunks)
        if self.index.vectors is not None:
            return self.index.vectors @ vector
        scores = np.zeros(n, dtype=np.float32)
        found, ids = self.index.dense.search(vector.reshape(1, -1), min(self.candidates, n))
        valid = ids[0] >= 0
        scores[ids[0][valid]] = found[0][valid]
        return scores

    def lexical_scores(self, query: str) -> np.ndarray:
        query_terms = [t for t in terms(query) if t in self.index.lexical.vocab_dict]
        if not query_terms:
            return np.zeros(len(self.index.chunks), dtype=np.float32)
        return np.asarray(self.index.lexical.get_scores(query_terms), dtype=np.float32)

    def search(
        self,
        query: str,
        vector: Vectors,
        *,
        top_k: int = 5,
        lang: str | None = None,
        weights: FusionWeights | None = None,
    ) -> SearchResult:
        weights = weights or self.weights
        lang = lang or detect_language(query)
        lexical = self.lexical_scores(query)
        dense = self.dense_scores(vector)
        top_lexical = float(lexical.max()) if len(lexical) else 0.0
        normalised = lexical / top_lexical if top_lexical > 0 else lexical
        fused = weights.lexical * normalised + weights.dense * np.clip(dense, 0.0, 1.0)
        order = np.argsort(-fused, kind="stable")
        hits: list[Hit] = []
        seen_texts: set[str] = set()
        for idx in order:
            chunk = self.index.chunks[int(idx)]
            if chunk.text in seen_texts:
                continue
            seen_texts.add(chunk.text)
            hits.append(
                Hit(
                    len(hits) + 1,
                    float(fused[idx]),
                    chunk,
                    float(lexical[idx]),
                    float(dense[idx]),
                    coverage(query, chunk.title + " " + chunk.text),
                )
            )
            if len(hits) >= top_k:
                break
        answered = (
            bool(hits)
            and bool(content_words(query))
            and self.refusal.answered(max(h.coverage for h in hits[:3]), hits[0].dense)
        )
        return SearchResult(query, lang, answered, hits)
