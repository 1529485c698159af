"""What-if measurements behind the product changes the speed benchmarks suggest. Nothing here
changes the product: each variant is a subclass or an instance patch that lives only in this
process, measured interleaved with the unchanged code. Not part of `make bench`.

    .venv/bin/python -m benchmarks.whatif concurrency [--rounds 4]
    .venv/bin/python -m benchmarks.whatif search [--sizes 0,20000,100000]  # 0: the repository
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bot.app import build_application
from bot.knowledge import load_knowledge
from bot.retrieval import search as search_module
from bot.retrieval.embedder import Embedder, Vectors
from bot.retrieval.search import Searcher, SearchResult
from bot.retrieval.store import build_index, load_index
from bot.services.container import Services
from bot.services.search import SearchService
from bot.settings import BUNDLED_MODEL
from bot.storage import Storage

from .common import KNOWLEDGE, bench_settings, load_bench_questions, median, ms, percentile
from .corpus import synthetic_chunks, tile_vectors
from .scale import PrecomputedEmbedder
from .speed import _ticker, clear_query_cache
from .telegram import RecordingRequest, text_update

Ask = Callable[..., Awaitable[SearchResult]]


# --- concurrency: where retrieval runs ---------------------------------------------------------


class BatchWorker:
    """Variant: encode a batch and search all of its questions in one call in the worker
    thread, so the event loop only does Telegram, rendering and SQLite."""

    def __init__(self, service: SearchService, max_batch: int = 64) -> None:
        self.service = service
        self.max_batch = max_batch
        self.queue: asyncio.Queue[tuple[str, asyncio.Future[SearchResult]]] | None = None
        self.worker: asyncio.Task[None] | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode-search")

    async def ask(self, question: str, *, top_k: int = 5, lang: str | None = None) -> SearchResult:
        loop = asyncio.get_running_loop()
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.worker = loop.create_task(self._run(self.queue))
        future: asyncio.Future[SearchResult] = loop.create_future()
        await self.queue.put((question, future))
        return await future

    def _work(self, questions: list[str]) -> list[SearchResult]:
        searcher = self.service.searcher
        vectors = self.service.embedder.encode_queries(questions)
        return [searcher.search(q, v) for q, v in zip(questions, vectors, strict=True)]

    async def _run(self, queue: asyncio.Queue[tuple[str, asyncio.Future[SearchResult]]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            results = await loop.run_in_executor(self.executor, self._work, [q for q, _ in batch])
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)


def _off_loop(service: SearchService) -> Ask:
    """Variant: the same micro-batched encode, then Searcher.search in a worker thread."""

    async def ask(question: str, *, top_k: int = 5, lang: str | None = None) -> SearchResult:
        searcher = service.searcher
        vector = await service.encoder.encode(question)
        return await asyncio.to_thread(searcher.search, question, vector, top_k=top_k, lang=lang)

    return ask


async def _concurrency(rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="brobygger-whatif-"))
    try:
        settings = bench_settings(root)
        embedder = Embedder(BUNDLED_MODEL)
        build_index(load_knowledge(KNOWLEDGE), embedder, settings.index_dir)
        service = SearchService(settings, embedder=embedder)
        service.load(build_if_missing=False)
        questions = load_bench_questions(100)
        texts = [q.q for q in questions]
        storage = await Storage.open(settings.database_path)
        services = Services(settings=settings, search=service, storage=storage, owns_search=False)
        request = RecordingRequest()
        app = build_application(settings, services, rate_limiter=False, request=request)
        await app.initialize()
        await app.start()
        current = service.ask
        variants: dict[str, Ask] = {
            "current": current,
            "search off the loop (to_thread)": _off_loop(service),
            "encode + search in the worker": BatchWorker(service).ask,
            "encoder max_batch 128": current,
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        user = 10_000
        request.reset_answers()
        await app.process_update(text_update(app.bot, 1, 1, texts[0], "en"))
        await request.wait_for_chats(1, within=120)
        for round_ in range(rounds):
            names = list(variants) if round_ % 2 == 0 else list(reversed(variants))
            for name in names:
                service.ask = variants[name]  # type: ignore[method-assign]
                service.encoder.max_batch = 128 if "128" in name else 64
                started = time.perf_counter()
                embedder.encode_queries(texts)
                ceiling = time.perf_counter() - started
                clear_query_cache(service.searcher)
                request.reset_answers()
                updates = []
                for question in questions:
                    user += 1
                    updates.append(text_update(app.bot, user, user, question.q, question.lang))
                stop = asyncio.Event()
                ticker = asyncio.create_task(_ticker(stop))
                await asyncio.sleep(0.01)
                started = time.perf_counter()
                await asyncio.gather(*(app.process_update(u) for u in updates))
                await request.wait_for_chats(len(updates), within=900)
                elapsed = time.perf_counter() - started
                stop.set()
                lags = await ticker
                results[name].append((ceiling / elapsed, max(lags, default=0.0)))
                await asyncio.sleep(0.2)
        print(f"{'variant':34} {'ratio to ceiling (median)':>26} {'rounds':>24} {'max lag':>9}")
        for name, values in results.items():
            rounds_text = " ".join(f"{r:.2f}" for r, _ in values)
            print(
                f"{name:34} {median(r for r, _ in values):>25.2f}× {rounds_text:>24} "
                f"{ms(max(lag for _, lag in values)):>9}"
            )
        service.ask = current  # type: ignore[method-assign]
        await app.stop()
        await app.shutdown()
        await storage.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- retrieval at scale: O(n) Python loops ---------------------------------------------------


class VectorisedSearcher(Searcher):
    """Variant: the same ranking, with the two per-query loops over every chunk done in numpy."""

    _doc_ids: np.ndarray

    @classmethod
    def from_searcher(cls, searcher: Searcher) -> VectorisedSearcher:
        fast = cls.__new__(cls)
        fast.__dict__.update(searcher.__dict__)
        fast._analysers = {}
        names = {
            doc: n for n, doc in enumerate(sorted({c.document for c in searcher.index.chunks}))
        }
        fast._doc_ids = np.array([names[c.document] for c in searcher.index.chunks], dtype=np.int64)
        return fast

    def _document_evidence(self, fused: np.ndarray) -> np.ndarray:
        ids = np.flatnonzero(np.isfinite(fused))
        docs, scores = self._doc_ids[ids], fused[ids].astype(np.float64)
        order = np.lexsort((-scores, docs))  # by document, best score first
        docs, scores = docs[order], scores[order]
        starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
        rank = np.arange(len(docs)) - np.repeat(starts, np.diff(np.r_[starts, len(docs)]))
        keep = rank < 3
        n_docs = int(self._doc_ids.max()) + 1 if len(self._doc_ids) else 0
        totals = np.bincount(docs[keep], weights=scores[keep], minlength=n_docs)
        present = np.zeros(n_docs, dtype=bool)
        present[docs] = True
        top = float(totals[present].max()) if present.any() else 1.0
        top = top or 1.0
        return (totals / top)[self._doc_ids].astype(np.float32)

    def _diversified(
        self, order: np.ndarray, fused: np.ndarray, dense: np.ndarray, how: str
    ) -> np.ndarray:
        chunks = self.index.chunks
        first: list[int] = []
        for idx in order:
            if chunks[int(idx)].text not in {chunks[i].text for i in first}:
                first.append(int(idx))
            if len(first) == 2:
                break
        taken = {chunks[i].document for i in first}
        ranking = (
            order
            if how == "fused"
            else np.argsort(-np.where(np.isfinite(fused), dense, -np.inf), kind="stable")
        )
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
        head = np.array([*first, third], dtype=order.dtype)
        return np.concatenate([head, order[~np.isin(order, head)]])


def _signature(result: SearchResult) -> tuple[Any, ...]:
    return (result.answered, tuple((h.chunk.id, round(h.score, 5)) for h in result.hits))


@contextlib.contextmanager
def _cached_passage_terms() -> Iterator[None]:
    """Variant: remember each passage's terms instead of re-tokenising it on every query
    (coverage() is called for every shown and judged passage)."""
    original = search_module.terms
    search_module.terms = functools.lru_cache(maxsize=100_000)(original)  # type: ignore[assignment]
    try:
        yield
    finally:
        search_module.terms = original  # type: ignore[assignment]


def _search(sizes: Sequence[int], unique: int) -> None:
    """Size 0 is the repository's knowledge with real vectors."""
    embedder = Embedder(BUNDLED_MODEL)
    questions = load_bench_questions()
    queries = embedder.encode_queries([q.q for q in questions])
    kb = load_knowledge(KNOWLEDGE)
    for size in sizes:
        root = Path(tempfile.mkdtemp(prefix="brobygger-whatif-"))
        try:
            if size == 0:
                build_index(kb, embedder, root)
            else:
                chunks = synthetic_chunks(size)
                base = embedder.encode_passages([c.text for c in chunks[: min(unique, size)]])
                vectors: Vectors = tile_vectors(base, size)
                build_index(kb, PrecomputedEmbedder(BUNDLED_MODEL, vectors), root, chunks=chunks)
            started = time.perf_counter()
            searcher = Searcher(load_index(root, BUNDLED_MODEL))
            setup = time.perf_counter() - started
            fast = VectorisedSearcher.from_searcher(searcher)
            variants: list[tuple[str, Searcher, bool]] = [
                ("current", searcher, False),
                ("vectorised loops", fast, False),
                ("+ cached passage terms", fast, True),
            ]
            times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
            same = {name: 0 for name, _, _ in variants}
            for n, (question, vector) in enumerate(zip(questions, queries, strict=True)):
                order = variants if n % 2 == 0 else list(reversed(variants))
                found = {}
                for name, variant, cached in order:
                    clear_query_cache(variant)
                    with _cached_passage_terms() if cached else contextlib.nullcontext():
                        started = time.perf_counter()
                        found[name] = variant.search(question.q, vector)
                        times[name].append(time.perf_counter() - started)
                for name in same:
                    same[name] += _signature(found[name]) == _signature(found["current"])
            label = "repository knowledge" if size == 0 else f"{size:,} synthetic chunks"
            print(f"{label} ({len(searcher.index.chunks):,} chunks; Searcher() {setup:.1f} s):")
            for name, values in times.items():
                print(
                    f"  {name:24} p50 {ms(percentile(values, 50)):>9}  "
                    f"p95 {ms(percentile(values, 95)):>9}  "
                    f"identical results {same[name]}/{len(questions)}"
                )
        finally:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.whatif", description=__doc__)
    parser.add_argument("what", choices=["concurrency", "search"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--sizes", default="0,20000,100000", help="0: the repository")
    parser.add_argument("--unique", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.what == "concurrency":
        asyncio.run(_concurrency(args.rounds))
    else:
        _search([int(s) for s in args.sizes.split(",")], args.unique)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
