"""The search service: owns the model and the served index, answers questions, and rebuilds the
index without ever stopping answers."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bot.errors import IndexMismatchError, IndexNotReadyError
from bot.knowledge.loader import knowledge_checksum, load_knowledge
from bot.knowledge.models import KnowledgeBase, Problem
from bot.retrieval.embedder import BatchingEncoder, Embedder, Vectors, load_embedder
from bot.retrieval.search import Searcher, SearchResult
from bot.retrieval.store import (
    IndexMeta,
    LoadedIndex,
    Progress,
    build_index,
    current_build,
    load_index,
)
from bot.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


def settle() -> None:
    """Collect what is garbage now, then take everything still alive out of the garbage
    collector's full passes (gc.freeze). The served index, the model and the knowledge live as
    long as the process (or the build), and a full collection that walks 100 000 chunks'
    objects holds the GIL and stalls the event loop for tens to hundreds of milliseconds.
    Unfrozen first, so what a reindex replaced (a searcher holds reference cycles) is collected
    rather than kept for good; that one collection is the only pause, at start-up or right
    after a reindex."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class ReindexReport:
    meta: IndexMeta
    problems: tuple[Problem, ...]
    seconds: float


class SearchService:
    """One per process. The served `Searcher` is replaced by a single assignment after a new
    build has loaded, so a query runs entirely against the old index or entirely the new."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or load_embedder(settings.embedding_model)
        self.encoder = BatchingEncoder(self.embedder)
        self._searcher: Searcher | None = None
        self._knowledge: KnowledgeBase | None = None
        self._reindex_lock = asyncio.Lock()

    # --- the index --------------------------------------------------------------------------

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            raise IndexNotReadyError("the index is not loaded yet")
        return self._searcher

    @property
    def knowledge(self) -> KnowledgeBase:
        """The knowledge the served index was built from (catalogs for the browse commands)."""
        if self._knowledge is None:
            self._knowledge = load_knowledge(self.settings.knowledge_dir)
        return self._knowledge

    def is_stale(self) -> bool:
        """True when the knowledge files changed after the served index was built."""
        checksum = knowledge_checksum(self.settings.knowledge_dir)
        return self.searcher.index.meta.knowledge_checksum != checksum

    def load(self, *, build_if_missing: bool = True) -> bool:
        """Load the current build; build one first when there is none. True if it built."""
        if current_build(self.settings.index_dir) is None:
            if not build_if_missing:
                raise IndexNotReadyError(
                    f"there is no index in {self.settings.index_dir}: run `brobygger reindex`"
                )
            self.rebuild()  # also loads what it built: no second load of index and knowledge
            return True
        try:
            self._searcher = Searcher(self._load_index())
        except IndexMismatchError as error:
            if not build_if_missing:
                raise
            _ = self.embedder.dimension  # a model that cannot load is the error to report
            log.info("%s; rebuilding it now", error)
            self.rebuild()
            return True
        self._knowledge = load_knowledge(self.settings.knowledge_dir)
        return False

    def _load_index(self) -> LoadedIndex:
        return load_index(self.settings.index_dir, self.embedder.name, self.embedder.backend)

    def rebuild(self, progress: Progress | None = None) -> ReindexReport:
        """Build from the knowledge directory and serve the new build (blocking)."""
        started = time.perf_counter()
        kb = load_knowledge(self.settings.knowledge_dir)
        meta = build_index(
            kb,
            self.embedder,
            self.settings.index_dir,
            approximate_above=self.settings.approximate_index_above,
            progress=progress,
        )
        self._searcher = Searcher(self._load_index())
        self._knowledge = kb
        return ReindexReport(meta, kb.problems, time.perf_counter() - started)

    async def reindex(self, progress: Progress | None = None) -> ReindexReport:
        """Rebuild in a worker thread; answers keep coming from the old index meanwhile.
        Concurrent requests queue behind the lock instead of building twice at once."""
        async with self._reindex_lock:
            report = await asyncio.to_thread(self.rebuild, progress)
        settle()
        return report

    # --- questions --------------------------------------------------------------------------

    def ask_many(
        self, questions: Sequence[str], *, top_k: int = 5, lang: str | None = None
    ) -> list[SearchResult]:
        """Blocking batch search (CLI, evaluation): one encode call for all questions."""
        searcher = self.searcher
        vectors = self.embedder.encode_queries(list(questions))
        return [
            searcher.search(q, v, top_k=top_k, lang=lang)
            for q, v in zip(questions, vectors, strict=True)
        ]

    async def ask(self, question: str, *, top_k: int = 5, lang: str | None = None) -> SearchResult:
        """Async search for the bot: encoding is micro-batched off the event loop."""
        result, _ = await self.ask_pinned(question, top_k=top_k, lang=lang)
        return result

    async def ask_pinned(
        self, question: str, *, top_k: int = 5, lang: str | None = None
    ) -> tuple[SearchResult, LoadedIndex]:
        """The result with the build it came from: a rebuild may swap the served index while
        the question is encoded, and the answer must be built from the hits' own build."""
        return await self.ask_then(question, lambda result, searcher: (result, searcher.index))

    async def ask_then(
        self,
        question: str,
        then: Callable[[SearchResult, Searcher], T],
        *,
        top_k: int = 5,
        lang: str | None = None,
    ) -> T:
        """Search `question` and return `then(result, searcher)`. Encoding is micro-batched
        with other users' questions; the search and `then` run in the encoder's worker thread
        right after the batch's encode, so the event loop only waits. The searcher is pinned
        here: a reindex that swaps the served index meanwhile does not mix two builds."""
        searcher = self.searcher

        def finish(vector: Vectors) -> T:
            return then(searcher.search(question, vector, top_k=top_k, lang=lang), searcher)

        return await self.encoder.run(question, finish)

    async def close(self) -> None:
        await self.encoder.close()
