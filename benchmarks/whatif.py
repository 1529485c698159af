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
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bot.app import build_application
from bot.knowledge import load_knowledge
from bot.retrieval import query as query_module
from bot.retrieval import search as search_module
from bot.retrieval.embedder import BatchingEncoder, Embedder, Vectors, load_embedder
from bot.retrieval.query import Vocabulary
from bot.retrieval.search import Searcher, SearchResult
from bot.retrieval.store import LoadedIndex, build_index, load_index
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
Pinned = Callable[..., Awaitable[tuple[SearchResult, LoadedIndex]]]


def _pinned(service: SearchService, ask: Ask) -> Pinned:
    """The handler calls SearchService.ask_pinned: wrap a variant's ask to that shape."""

    async def ask_pinned(
        question: str, *, top_k: int = 5, lang: str | None = None
    ) -> tuple[SearchResult, LoadedIndex]:
        index = service.searcher.index
        return await ask(question, top_k=top_k, lang=lang), index

    return ask_pinned


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


_CHILD: Embedder | None = None


def _child_init(name: str) -> None:
    global _CHILD
    _CHILD = load_embedder(name)
    _CHILD.encode_queries(["warm-up"])


class _ChildEmbedder:
    """Stands in for the Embedder in a BatchingEncoder whose executor is a process pool."""

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        assert _CHILD is not None
        return _CHILD.encode_queries(texts)


def _in_subprocess(service: SearchService) -> tuple[Ask, BatchingEncoder]:
    """Variant: the same micro-batching, but the model runs in a child process, so the event
    loop's Python work never waits for the GIL behind the model (costs a second model's RAM)."""
    encoder = BatchingEncoder(_ChildEmbedder())  # type: ignore[arg-type]
    encoder._executor.shutdown()
    encoder._executor = ProcessPoolExecutor(  # type: ignore[assignment]
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_child_init,
        initargs=(service.embedder.name,),
    )
    encoder._executor.submit(len, "").result()  # start the child and load its model now

    async def ask(question: str, *, top_k: int = 5, lang: str | None = None) -> SearchResult:
        searcher = service.searcher
        vector = await encoder.encode(question)
        return searcher.search(question, vector, top_k=top_k, lang=lang)

    return ask, encoder


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
        embedder = load_embedder(BUNDLED_MODEL)
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
        current = service.ask_pinned
        worker = _pinned(service, BatchWorker(service).ask)
        off_loop = _pinned(service, _off_loop(service))
        child_ask, child_encoder = _in_subprocess(service)
        child = _pinned(service, child_ask)
        # name: (ask, encoder max_batch, sys.setswitchinterval seconds, cached passage terms)
        variants: dict[str, tuple[Pinned, int, float, bool]] = {
            "current": (current, 64, 0.005, False),
            "encoder max_batch 128": (current, 128, 0.005, False),
            "GIL switch interval 0.5 ms": (current, 64, 0.0005, False),
            "cached passage terms": (current, 64, 0.005, True),
            "search off the loop (to_thread)": (off_loop, 64, 0.005, False),
            "encode + search in the worker": (worker, 64, 0.005, False),
            "worker + cached terms": (worker, 64, 0.005, True),
            "model in a child process": (child, 64, 0.005, False),
            "child process + cached terms": (child, 64, 0.005, True),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        user = 10_000
        request.reset_answers()
        await app.process_update(text_update(app.bot, 1, 1, texts[0], "en"))
        await request.wait_for_chats(1, within=120)
        default_interval = sys.getswitchinterval()
        for round_ in range(rounds):
            names = list(variants) if round_ % 2 == 0 else list(reversed(variants))
            for name in names:
                ask, max_batch, interval, cached = variants[name]
                service.ask_pinned = ask  # type: ignore[method-assign]
                service.encoder.max_batch = max_batch
                sys.setswitchinterval(interval)
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
                with _cached_passage_terms() if cached else contextlib.nullcontext():
                    started = time.perf_counter()
                    await asyncio.gather(*(app.process_update(u) for u in updates))
                    await request.wait_for_chats(len(updates), within=900)
                    elapsed = time.perf_counter() - started
                stop.set()
                lags = await ticker
                results[name].append((ceiling / elapsed, max(lags, default=0.0)))
                sys.setswitchinterval(default_interval)
                await asyncio.sleep(0.2)
        print(f"{'variant':34} {'ratio to ceiling (median)':>26} {'rounds':>24} {'max lag':>9}")
        for name, values in results.items():
            rounds_text = " ".join(f"{r:.2f}" for r, _ in values)
            print(
                f"{name:34} {median(r for r, _ in values):>25.2f}× {rounds_text:>24} "
                f"{ms(max(lag for _, lag in values)):>9}"
            )
        del service.ask_pinned
        await child_encoder.close()
        await app.stop()
        await app.shutdown()
        await storage.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- retrieval: per-query work ---------------------------------------------------------------


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


def _prefiltered_correct(vocabulary: Vocabulary) -> Callable[[str], str | None]:
    """Variant of Vocabulary.correct with the same answer: a word within k edits of another
    has a letter-count (bag) distance of at most 2k, so one numpy pass over the letter counts
    of the words sharing the initial leaves a handful of candidates, and the product's own
    correct() then runs on those only (filtered for the largest limit, 2 edits, so nothing
    it could choose is dropped)."""
    fold = getattr(query_module, "fold", lambda word: word)
    original = vocabulary.correct
    buckets: dict[str, list[Any]] = dict(vocabulary._by_initial)

    def compared(entry: Any) -> str:
        return str(entry[0] if isinstance(entry, tuple) else entry)

    alphabet = {
        ch: n
        for n, ch in enumerate(
            sorted({ch for es in buckets.values() for e in es for ch in compared(e)})
        )
    }
    other = len(alphabet)
    prepared: dict[str, tuple[list[Any], np.ndarray, np.ndarray]] = {}
    for initial, entries in buckets.items():
        counts = np.zeros((len(entries), other + 1), dtype=np.int16)
        for row, entry in enumerate(entries):
            for ch in compared(entry):
                counts[row, alphabet[ch]] += 1
        lengths = np.array([len(compared(e)) for e in entries], dtype=np.int16)
        prepared[initial] = (entries, counts, lengths)

    def correct(word: str) -> str | None:
        target = fold(word)
        if not target or target[0] not in prepared:
            return original(word)
        entries, counts, lengths = prepared[target[0]]
        wanted = np.zeros(other + 1, dtype=np.int16)
        for ch in target:
            wanted[alphabet.get(ch, other)] += 1
        keep = (np.abs(lengths - len(target)) <= 2) & (np.abs(counts - wanted).sum(axis=1) <= 4)
        saved = vocabulary._by_initial
        vocabulary._by_initial = {target[0]: [entries[int(n)] for n in np.flatnonzero(keep)]}  # type: ignore[assignment]
        try:
            return original(word)
        finally:
            vocabulary._by_initial = saved

    return correct


def _search(sizes: Sequence[int], unique: int) -> None:
    """Size 0 is the repository's knowledge with real vectors."""
    embedder = load_embedder(BUNDLED_MODEL)
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
                precomputed = PrecomputedEmbedder(BUNDLED_MODEL, vectors, [c.text for c in chunks])
                build_index(kb, precomputed, root, chunks=chunks)
            started = time.perf_counter()
            searcher = Searcher(load_index(root, BUNDLED_MODEL))
            setup = time.perf_counter() - started
            original_correct = searcher.vocabulary.correct
            started = time.perf_counter()
            fast_correct = _prefiltered_correct(searcher.vocabulary)
            prepare = time.perf_counter() - started
            # name: (cached passage terms, prefiltered typo repair)
            variants: dict[str, tuple[bool, bool]] = {
                "current": (False, False),
                "cached passage terms": (True, False),
                "prefiltered typo repair": (False, True),
                "both": (True, True),
            }
            times: dict[str, list[float]] = {name: [] for name in variants}
            same = dict.fromkeys(variants, 0)
            for n, (question, vector) in enumerate(zip(questions, queries, strict=True)):
                names = list(variants) if n % 2 == 0 else list(reversed(variants))
                found = {}
                for name in names:
                    cached, prefiltered = variants[name]
                    searcher.vocabulary.correct = (  # type: ignore[method-assign]
                        fast_correct if prefiltered else original_correct
                    )
                    clear_query_cache(searcher)
                    with _cached_passage_terms() if cached else contextlib.nullcontext():
                        started = time.perf_counter()
                        found[name] = searcher.search(question.q, vector)
                        times[name].append(time.perf_counter() - started)
                for name in same:
                    same[name] += _signature(found[name]) == _signature(found["current"])
            del searcher.vocabulary.correct
            label = "repository knowledge" if size == 0 else f"{size:,} synthetic chunks"
            print(
                f"{label} ({len(searcher.index.chunks):,} chunks, "
                f"{len(searcher.vocabulary.words):,} words; Searcher() {setup:.1f} s, "
                f"letter counts {prepare:.1f} s):"
            )
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
