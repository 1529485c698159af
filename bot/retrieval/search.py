"""Hybrid retrieval over one loaded index: stemmed multilingual BM25 and dense vectors, fused with
weights chosen by measurement (`brobygger eval`), and a "no good answer" decision."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from bot.retrieval.answer_types import answers_kinds, asked_types
from bot.retrieval.chunks import Chunk
from bot.retrieval.embedder import Vectors
from bot.retrieval.language import detect_language as detect_language  # re-exported
from bot.retrieval.query import AnalysedQuery, QueryAnalyser, Vocabulary, corpus_vocabulary
from bot.retrieval.store import LoadedIndex
from bot.retrieval.text import passage_term_set, passage_terms, sentences, stems, terms


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores (all of them when there are fewer), in index order."""
    if k >= len(scores):
        return np.arange(len(scores))
    return np.sort(np.argpartition(-scores, k)[:k])


#: Words that ask about a name itself ("what does BAGS4YOUTH stand for?"), not something else.
_ABOUT_THE_NAME = frozenset(
    "stand stands står mean means meaning betyder betyr acronym akronym abbreviation "
    "förkortning forkortelse called heter hedder name namn navn".split()
)


@dataclass(frozen=True)
class SearchConfig:
    """The retrieval levers, each measured on the evaluation set (docs/benchmarks.md): the
    defaults are what measured best; switching one off shows what it buys."""

    lexical_weight: float = 0.35
    dense_weight: float = 0.65
    # Dense cosines of a multilingual e5 model sit in a narrow band (unrelated text ~0.75), so
    # the dense leg is rescaled per query: the best passage counts 1, one `dense_span` below it
    # 0. 0 keeps the raw cosine (all-MiniLM's spread is wide enough).
    dense_span: float = 0.18
    # Share of its language's mean vector taken out of every passage and question before the
    # dense leg ranks them: a multilingual model rates a Danish question closer to any Danish
    # passage than to the English one that answers it; without the language's common direction
    # the topic decides. Refusal still reads the plain cosine.
    language_centering: float = 0.5
    # Pseudo-relevance feedback from the dense leg: the telling words of the `prf_passages`
    # best dense passages join the BM25 query with weight `prf_weight`, so a Danish question
    # also matches the Swedish words of the passage the model found.
    prf_passages: int = 3
    prf_terms: int = 12
    prf_weight: float = 0.3
    fuzzy: bool = True  # typo repair against the corpus vocabulary
    join: bool = True  # "bags 4 youth" -> bags4youth
    decompound: bool = True  # höstkonferenserna -> höst + konferenserna
    kinds: frozenset[str] = frozenset(
        {"document", "summary", "project", "meeting", "takeaway", "factor"}
    )
    document_evidence: float = 0.0  # weight of the best document's total evidence
    # third result from another document: "fused" (best remaining), "dense" (the semantic
    # leg's best), or "" (plain order)
    diversify: str = "dense"
    name_boost: int = 2  # names (NEO, BAGS4YOUTH, Gävle) count this many times in BM25
    unknown_weight: float = 0.0  # how much words the corpus never uses count against coverage
    # refusal ("no good answer") rule
    max_unknown_share: float = 0.6  # "DROP TABLE users": mostly words the corpus never uses
    min_coverage: float = 0.1  # idf-weighted, over the top three passages together
    strong_dense: float = 0.82
    # a question whose only known words are names is answered only above this cosine (a
    # multilingual model rates "the weather in Gävle" close to the Gävle meeting)
    name_only_dense: float = 0.86
    answer_types: bool = True

    def with_changes(self, **changes: object) -> SearchConfig:
        return replace(self, **changes)  # type: ignore[arg-type]


#: The v0.1 settings, kept so `brobygger eval --previous` measures the previous default as it
#: shipped (all-MiniLM-L6-v2 weighted low beside BM25).
PREVIOUS_CONFIG = SearchConfig(
    lexical_weight=0.75,
    dense_weight=0.25,
    dense_span=0.0,
    language_centering=0.0,
    prf_weight=0.0,
    fuzzy=True,
    join=True,
    decompound=True,
    document_evidence=0.3,
    diversify="dense",
    name_boost=1,
    unknown_weight=0.0,
    max_unknown_share=0.6,
    min_coverage=0.4,
    strong_dense=0.62,
    name_only_dense=0.62,
    answer_types=True,
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
    unknown: tuple[str, ...] = ()


def coverage(
    wanted: tuple[str, ...],
    text: str,
    vocabulary: Vocabulary | None = None,
    *,
    unknown: tuple[str, ...] = (),
    unknown_weight: float = 0.0,
) -> float:
    """Share of the question's (repaired) content words whose stems occur in the passage,
    weighted by how telling each word is when a vocabulary is given; words the corpus never
    uses can count against it with `unknown_weight` (times the weight of the rarest word)."""
    if not wanted:
        return 0.0
    have = passage_term_set(text)
    weights = [vocabulary.weight(w) if vocabulary else 1.0 for w in wanted]
    found = sum(
        weight
        for word, weight in zip(wanted, weights, strict=True)
        if any(s in have for s in stems(word))
    )
    total = sum(weights) + unknown_weight * max(weights) * len(unknown)
    return found / total if total else 0.0


class LanguageCentroids:
    """Each language's mean passage vector, and what is needed to score passages and a question
    with a share of their language's mean taken out, from the plain cosines, without a second
    copy of the vectors (the approximate index at scale keeps none in memory)."""

    def __init__(self, index: LoadedIndex) -> None:
        vectors = index.vectors
        if vectors is None:
            vectors = index.dense.reconstruct_n(0, index.dense.ntotal)
        languages = [c.lang for c in index.chunks]
        self.languages = sorted(set(languages))
        position = {lang: i for i, lang in enumerate(self.languages)}
        self.of_passage = np.array([position[lang] for lang in languages], dtype=np.int64)
        if not len(vectors):
            self.means = np.zeros((0, 0), dtype=np.float32)
            return
        self.means = np.stack(
            [vectors[self.of_passage == i].mean(axis=0) for i in range(len(self.languages))]
        ).astype(np.float32)
        self.passage_dot_mean = (vectors @ self.means.T).astype(np.float32)  # n x languages
        own = self.passage_dot_mean[np.arange(len(vectors)), self.of_passage]
        own_norm = np.einsum("ij,ij->i", self.means, self.means)[self.of_passage]
        self._own = own
        self._own_norm = own_norm
        self._norms: dict[float, np.ndarray] = {}

    def centred(self, cosine: np.ndarray, vector: Vectors, lang: str, share: float) -> np.ndarray:
        """cos(p - share·mean(lang of p), q - share·mean(lang of q)) for every passage, from
        cos(p, q). A question in a language no passage has uses the mean of the means."""
        if not len(self.means):
            return cosine
        if lang in self.languages:
            mine = self.means[self.languages.index(lang)]
            passage_dot_mine = self.passage_dot_mean[:, self.languages.index(lang)]
        else:
            mine = self.means.mean(axis=0)
            passage_dot_mine = self.passage_dot_mean.mean(axis=1)
        means_dot_q = (self.means @ vector)[self.of_passage]
        means_dot_mine = (self.means @ mine)[self.of_passage]
        numerator = (
            cosine - share * passage_dot_mine - share * means_dot_q + share * share * means_dot_mine
        )
        if share not in self._norms:
            self._norms[share] = np.sqrt(
                np.maximum(1 - 2 * share * self._own + share * share * self._own_norm, 1e-9)
            )
        question = vector - share * mine
        scores = numerator / (self._norms[share] * max(float(np.linalg.norm(question)), 1e-9))
        # the approximate index scores only its nearest passages; the rest stay 0
        return np.where(cosine != 0, scores, 0).astype(np.float32)


class Searcher:
    """Scores every chunk of one index for a query (vector already encoded)."""

    def __init__(
        self, index: LoadedIndex, config: SearchConfig | None = None, candidates: int = 200
    ) -> None:
        self.index = index
        self.config = config or SearchConfig()
        self.candidates = candidates
        # saved with the build (bot/retrieval/store.py); counted afresh only for an index
        # handed over without one
        self.vocabulary = index.vocabulary or corpus_vocabulary(index.chunks)
        self._analysers: dict[tuple[bool, bool, bool], QueryAnalyser] = {}
        self._kind_masks: dict[frozenset[str], np.ndarray] = {}
        self.centroids = LanguageCentroids(index)

    def analyser(self, config: SearchConfig) -> QueryAnalyser:
        key = (config.fuzzy, config.join, config.decompound)
        if key not in self._analysers:
            self._analysers[key] = QueryAnalyser(
                self.vocabulary, fuzzy=config.fuzzy, join=config.join, decompound=config.decompound
            )
        return self._analysers[key]

    def _mask(self, kinds: frozenset[str]) -> np.ndarray:
        if kinds not in self._kind_masks:
            self._kind_masks[kinds] = np.array(
                [c.kind in kinds for c in self.index.chunks], dtype=bool
            )
        return self._kind_masks[kinds]

    def dense_scores(self, vector: Vectors) -> np.ndarray:
        n = len(self.index.chunks)
        if self.index.vectors is not None:
            return self.index.vectors @ vector
        scores = np.zeros(n, dtype=np.float32)
        found, ids = self.index.dense.search(vector.reshape(1, -1), min(self.candidates, n))
        valid = ids[0] >= 0
        scores[ids[0][valid]] = found[0][valid]
        return scores

    def lexical_scores(self, words_: tuple[str, ...] | str) -> np.ndarray:
        text = words_ if isinstance(words_, str) else " ".join(words_)
        return self._bm25(terms(text))

    def _bm25(self, query_terms: list[str]) -> np.ndarray:
        query_terms = [t for t in query_terms if t in self.index.lexical.vocab_dict]
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
        config: SearchConfig | None = None,
    ) -> SearchResult:
        config = config or self.config
        written_in = detect_language(query)  # the reply language may be the reader's instead
        lang = lang or written_in
        analysed = self.analyser(config).analyse(query)
        names = self.vocabulary.names_in(analysed.words)
        lexical = self.lexical_scores(analysed.words + tuple(names) * (config.name_boost - 1))
        cosine = self.dense_scores(vector)
        dense = cosine
        if config.language_centering:
            dense = self.centroids.centred(cosine, vector, written_in, config.language_centering)
        if config.prf_passages and config.prf_weight:
            lexical = lexical + config.prf_weight * self._bm25(
                self._feedback_terms(dense, analysed.words, config)
            )
        top_lexical = float(lexical.max()) if len(lexical) else 0.0
        normalised = lexical / top_lexical if top_lexical > 0 else lexical
        fused = config.lexical_weight * normalised + config.dense_weight * self._rescaled(
            dense, config.dense_span
        )
        fused = np.where(self._mask(config.kinds), fused, -np.inf)
        # Only the best few hundred chunks can reach the answer: ranking work stays small
        # however large the corpus (100 000 chunks in benchmarks/).
        candidates = _top(fused, max(self.candidates, top_k * 10))
        if config.document_evidence:
            fused[candidates] += config.document_evidence * self._document_evidence(
                candidates, fused
            )
        order = candidates[np.argsort(-fused[candidates], kind="stable")]

        def collect(ranking: np.ndarray, limit: int) -> list[Hit]:
            hits: list[Hit] = []
            seen_texts: set[str] = set()
            for idx in ranking:
                if not np.isfinite(fused[idx]):
                    break
                chunk = self.index.chunks[int(idx)]
                if chunk.text in seen_texts:
                    continue
                seen_texts.add(chunk.text)
                text = chunk.title + " " + chunk.text
                hits.append(
                    Hit(
                        len(hits) + 1,
                        float(fused[idx]),
                        chunk,
                        float(lexical[idx]),
                        float(cosine[idx]),
                        coverage(analysed.words, text, self.vocabulary),
                    )
                )
                if len(hits) >= limit:
                    break
            return hits

        plain = collect(order, max(top_k, 3))
        # whether there is an answer is judged on the plain ranking; diversity only changes
        # which candidates are shown
        answered = self.answered(query, analysed, plain, config)
        hits = plain[:top_k]
        if config.diversify:
            hits = collect(self._diversified(order, fused, dense, config.diversify), top_k)
        return SearchResult(query, lang, answered, hits, analysed.unknown)

    @staticmethod
    def _rescaled(dense: np.ndarray, span: float) -> np.ndarray:
        top = float(dense.max()) if len(dense) else 0.0
        rescaled: np.ndarray = (
            np.clip((dense - (top - span)) / span, 0, 1) if span else np.clip(dense, 0, 1)
        )
        return rescaled

    def _feedback_terms(
        self, dense: np.ndarray, asked: tuple[str, ...], config: SearchConfig
    ) -> list[str]:
        """The most telling stems of the best dense passages (idf-ranked, the question's own
        words left out): the words the answer is written with, in whatever language."""
        best = _top(dense, config.prf_passages)
        best = best[np.argsort(-dense[best])]
        own = {t for w in asked for t in terms(w)}
        picked: dict[str, float] = {}
        for idx in best:
            chunk = self.index.chunks[int(idx)]
            for term in passage_terms(chunk.title + " " + chunk.text):
                if term not in own and term not in picked:
                    picked[term] = self.vocabulary.term_weight(term)
        return sorted(picked, key=lambda t: -picked[t])[: config.prf_terms]

    def _diversified(
        self, order: np.ndarray, fused: np.ndarray, dense: np.ndarray, how: str
    ) -> np.ndarray:
        """Move the best passage of a third document into third place, so a question whose
        top two passages share a document still shows another candidate before "more"."""
        chunks = self.index.chunks
        first: list[int] = []
        for idx in order:
            if chunks[int(idx)].text not in {chunks[i].text for i in first}:
                first.append(int(idx))
            if len(first) == 2:
                break
        taken = {chunks[i].document for i in first}
        if how == "fused":
            ranking = order
        else:
            semantic = np.where(np.isfinite(fused), dense, -np.inf)
            best = _top(semantic, 64)
            ranking = best[np.argsort(-semantic[best], kind="stable")]
        third = next(
            (
                int(i)
                for i in ranking
                if chunks[int(i)].document not in taken and np.isfinite(fused[int(i)])
            ),
            None,
        )
        if third is None:
            return order
        rest = [int(i) for i in order if int(i) not in first and int(i) != third]
        return np.array([*first, third, *rest])

    @staticmethod
    def _about(chunk: Chunk, names: tuple[str, ...]) -> list[str]:
        """The parts of a passage that are about `names`: all of it when its title names them
        (a project card, a document's passage), else only the sentences that mention them."""
        text = chunk.title + " " + chunk.text
        if not names or coverage(names, chunk.title) == 1.0:
            return [text]
        return [s for s in sentences(chunk.text) if coverage(names, s) == 1.0]

    def _document_evidence(self, candidates: np.ndarray, fused: np.ndarray) -> np.ndarray:
        """Per candidate: the summed score of its document's three best candidates, scaled to
        0..1, so several weak matches in one document can outrank one lucky passage elsewhere."""
        documents = [self.index.chunks[int(i)].document for i in candidates]
        best: dict[str, list[float]] = {}
        for document, score in zip(documents, fused[candidates], strict=True):
            if np.isfinite(score):
                best.setdefault(document, []).append(float(score))
        totals = {d: sum(sorted(scores, reverse=True)[:3]) for d, scores in best.items()}
        top = max(totals.values(), default=1.0) or 1.0
        return np.array([totals.get(d, 0.0) / top for d in documents], dtype=np.float32)

    def answered(
        self, query: str, analysed: AnalysedQuery, hits: list[Hit], config: SearchConfig
    ) -> bool:
        """The calibrated "is this an answer" rule: several signals, because none alone
        separates answerable questions from near misses (see docs/benchmarks.md)."""
        if not hits or not analysed.content:
            return False
        names = self.vocabulary.names_in(analysed.words)
        if (
            analysed.unknown_share >= config.max_unknown_share
            and not names
            and hits[0].dense < config.strong_dense
        ):
            return False  # mostly about things the corpus never mentions, naming none it does
        other = [w for w in analysed.unknown if w not in _ABOUT_THE_NAME]
        if other and len(names) == len(analysed.words) and hits[0].dense < config.name_only_dense:
            return False  # only a name is understood: "the weather in Gävle"
        top = hits[:3]
        texts = [h.chunk.title + " " + h.chunk.text for h in top]
        kinds = asked_types(query) if config.answer_types else set()
        if kinds:
            # The fact must be about what was named: "budget of BAGS4YOUTH" is not answered by
            # atWork4NEETs' budget, nor "pizza prices in København" by a partner list that
            # mentions København next to a project budget.
            on_topic = [t for h in top for t in self._about(h.chunk, tuple(names))]
            if not answers_kinds(kinds, on_topic):
                return False
            if names:
                return True  # the asked kind of fact, in a passage about the named thing
        together = coverage(
            analysed.words,
            " ".join(texts),
            self.vocabulary,
            unknown=analysed.unknown,
            unknown_weight=config.unknown_weight,
        )
        return together >= config.min_coverage or hits[0].dense >= config.strong_dense
