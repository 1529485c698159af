"""End to end under load (6): the whole bot over HTTP, as it runs in production.

The bot runs in a child process exactly as `brobygger run` starts it (benchmarks/loadbot.py:
settings from the environment, bot.app's factory with the shipped rate limiter, long polling,
the real HTTP client), against the Telegram stand-in (tests/telegram_stub.py: the Bot API over
HTTP on 127.0.0.1, HTML checked by TDLib) in this process. A round queues one question from
each of N new users before the bot's next getUpdates, so all N arrive in one batch, and ends when
every chat has its reply. Each user must get exactly one message, and the same one (text and
buttons) that the same question gets when asked alone.

The same rounds run with the rate limiter off (a diagnostic, never how the bot ships), which
separates what bounds the shipped bot: the model (compute), the bot's own work and HTTP, or
Telegram's 30 calls a second.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.evaluation import Question
from bot.retrieval.embedder import Embedder

from .common import REPO, TOKEN, Check, Section, Table, median, ms, percentile, secs

#: 0.9 × Telegram's 30 calls a second, with one call per answer.
TELEGRAM_RATE_GOAL = 27.0
THROUGHPUT_GOAL = 0.7
LAG_P99_GOAL = 0.020
LAG_MAX_GOAL = 0.100


def _stub_class() -> Any:
    """The stand-in lives with the tests (it needs the dev extras: aiohttp, tdjson)."""
    sys.path.insert(0, str(REPO))
    from tests.telegram_stub import TelegramStub

    return TelegramStub


def seen(sent: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What a person sees of a message: text and buttons (answer ids in callback data differ
    from answer to answer, so they are left out)."""
    buttons = tuple(
        (label, re.sub(r"^(\w+):[^:]*", r"\1:…", data or "")) for label, data in sent.buttons
    )
    return sent.text or "", buttons


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class LoadRound:
    limiter: bool
    ceiling: float  # seconds of one encode_queries call for all the questions (this process)
    started: float  # wall clock (time.time) when the updates were queued
    elapsed: float  # until the last chat got its reply
    latencies: list[float]
    messages: Counter[int]  # sendMessage calls per chat
    different: list[str]  # questions whose reply differs from the one asked alone
    chat_actions: int
    bot_cpu: float
    lags: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed


class _Bot:
    """The child process and what it leaves behind."""

    def __init__(self, stub: Any, index_dir: Path, model: str, limiter: bool, root: Path) -> None:
        self.root = root
        self.ready = root / "ready"
        self.lag_file = root / "lags.json"
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": stub.base_url,
            "TELEGRAM_API_BASE_FILE_URL": stub.base_file_url,
            "KNOWLEDGE_DIR": str(REPO / "knowledge"),
            "INDEX_DIR": str(index_dir),
            "DATA_DIR": str(root / "data"),
            "EMBEDDING_MODEL": model,
            "BENCH_RATE_LIMITER": "1" if limiter else "0",
            "BENCH_READY_FILE": str(self.ready),
            "BENCH_LAG_FILE": str(self.lag_file),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        self.log = (root / "bot.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.loadbot"],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        sys.path.insert(0, str(REPO))

    async def wait_ready(self, within: float = 300) -> None:
        deadline = time.monotonic() + within
        while not self.ready.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"the bot died:\n{self._tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not start:\n{self._tail()}")
            await asyncio.sleep(0.05)

    def _tail(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.root / "bot.log").read_text(errors="replace")[-3000:]

    def cpu(self) -> float:
        return _cpu_seconds(self.process.pid)

    async def stop(self) -> list[tuple[float, float]]:
        self.process.send_signal(signal.SIGINT)
        for _ in range(600):
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            self.process.kill()
        self.log.close()
        if not self.lag_file.exists():
            raise RuntimeError(f"the bot left no lag record:\n{self._tail()}")
        return [(float(a), float(b)) for a, b in json.loads(self.lag_file.read_text())]


async def _replies(stub: Any, chats: Sequence[int], mark: int, quiet: float) -> list[Any]:
    """The stand-in's sendMessage records since `mark` once every chat has one and nothing new
    came for `quiet` seconds (so a second message to anyone would be counted)."""
    wanted = set(chats)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 900
    count, changed = -1, loop.time()
    while True:
        sent = [s for s in stub.sent[mark:] if s.method == "sendMessage" and s.chat_id in wanted]
        if len(sent) != count:
            count, changed = len(sent), loop.time()
        if len({s.chat_id for s in sent}) == len(wanted) and loop.time() - changed >= quiet:
            return sent
        if loop.time() > deadline:
            raise RuntimeError(f"{len(wanted) - len({s.chat_id for s in sent})} chats unanswered")
        await asyncio.sleep(0.01)


async def _ask_alone(stub: Any, questions: Sequence[Question], first_user: int) -> list[Any]:
    """Each question from a new user, one after the other: the reply a person asking alone
    gets."""
    replies = []
    for n, question in enumerate(questions):
        mark = stub.mark()
        user = first_user + n
        await stub.send_text(user, question.q, language_code=question.lang)
        [reply] = await _replies(stub, [user], mark, quiet=0.3)
        replies.append(seen(reply))
    return replies


async def _round(
    stub: Any,
    bot: _Bot,
    embedder: Embedder,
    questions: Sequence[Question],
    alone: Sequence[tuple[str, Any]],
    first_user: int,
    limiter: bool,
) -> LoadRound:
    texts = [q.q for q in questions]
    started = time.perf_counter()
    embedder.encode_queries(texts)  # the model's ceiling, just before (the bot is idle)
    ceiling = time.perf_counter() - started
    await asyncio.sleep(0.5)
    users = [first_user + n for n in range(len(questions))]
    mark = stub.mark()
    actions = len(stub.chat_actions)
    cpu = bot.cpu()
    wall = time.time()
    started = time.perf_counter()
    for user, question in zip(users, questions, strict=True):
        # no await yields here: all of them are queued before the bot's poll returns
        await stub.send_text(user, question.q, language_code=question.lang)
    sent = await _replies(stub, users, mark, quiet=1.0)
    first: dict[int, Any] = {}
    for message in sent:
        first.setdefault(message.chat_id, message)
    elapsed = max(m.timestamp for m in first.values()) - wall
    return LoadRound(
        limiter,
        ceiling,
        wall,
        elapsed,
        [first[u].timestamp - wall for u in users],
        Counter(m.chat_id for m in sent),
        [q.id for u, q, a in zip(users, questions, alone, strict=True) if seen(first[u]) != a],
        len(stub.chat_actions) - actions,
        bot.cpu() - cpu,  # includes the quiet second at the end (the idle bot: ticker only)
    )


async def _session(
    embedder: Embedder,
    index_dir: Path,
    questions: Sequence[Question],
    rounds: int,
    limiter: bool,
    alone: list[tuple[str, Any]] | None,
) -> tuple[list[LoadRound], list[tuple[str, Any]], list[str]]:
    telegram = _stub_class()(strict_chats=True)
    await telegram.start()
    root = Path(tempfile.mkdtemp(prefix="brobygger-load-"))
    bot = _Bot(telegram, index_dir, embedder.name, limiter, root)
    results: list[LoadRound] = []
    try:
        await bot.wait_ready()
        # warm-up: templates, SQLite, the encoder thread
        await _ask_alone(telegram, questions[:2], 9_000_000)
        if alone is None:
            alone = await _ask_alone(telegram, questions, 8_000_000)
        for round_ in range(rounds):
            results.append(
                await _round(
                    telegram, bot, embedder, questions, alone, 1_000_000 * (round_ + 1), limiter
                )
            )
    finally:
        lags = await bot.stop()
        errors = [f"{e.method}: {e.description}" for e in telegram.api_errors()]
        await telegram.close()
        shutil.rmtree(root, ignore_errors=True)
    for result in results:
        end = result.started + result.elapsed
        result.lags = [lag for at, lag in lags if result.started <= at <= end]
    return results, alone, errors


def measure_load(
    embedder: Embedder, index_dir: Path, questions: Sequence[Question], rounds: int, label: str
) -> Section:
    """Section 6 for one model: rounds with the shipped limiter, then with it off."""
    users = len(questions)
    section = Section(f"load-{label}", f"6. End to end over HTTP, {users} users at once ({label})")
    shipped, alone, errors = asyncio.run(
        _session(embedder, index_dir, questions, rounds, True, None)
    )
    unlimited, _, errors_off = asyncio.run(
        _session(embedder, index_dir, questions, rounds, False, alone)
    )
    ceiling_rate = median(users / r.ceiling for r in shipped + unlimited)
    goal = min(TELEGRAM_RATE_GOAL, THROUGHPUT_GOAL * ceiling_rate)
    rate = median(r.rate for r in shipped)
    wrong = sum(len(r.different) for r in shipped + unlimited)
    extra = sum(sum(n - 1 for n in r.messages.values()) for r in shipped + unlimited)
    correct = wrong == 0 and extra == 0 and not errors and not errors_off
    rate_off = median(r.rate for r in unlimited)
    why = ""
    if rate < goal:
        why = (
            f"with the limiter off the same rounds reach {rate_off:.1f} answers/s (the model "
            f"alone {ceiling_rate:.1f} q/s): "
            + (
                "the limiter bounds it"
                if rate_off >= goal
                else "the bot's own work and HTTP bound it before the limiter does"
            )
            + "."
        )
    section.checks.append(
        Check(
            f"End to end, shipped limiter ({label})",
            f"{rate:.1f} answers/s",
            f"batched encode {ceiling_rate:.1f} q/s",
            rate,
            f"≥ {goal:.1f} answers/s (min of 27 and 0.7× ceiling)",
            rate >= goal and correct,
            why,
            value_text=f"{rate:.1f}/s",
        )
    )
    section.checks.append(
        Check(
            f"Every user answered once, as alone ({label})",
            f"{wrong} different, {extra} extra",
            f"{users} users × {len(shipped) + len(unlimited)} rounds",
            float(wrong + extra),
            "0 different, 0 extra, no API errors",
            correct,
            "; ".join(sorted(set(errors + errors_off))[:3]),
            value_text=f"{wrong + extra}",
        )
    )
    table = Table(
        [
            "Round",
            "Limiter",
            "Ceiling: encode all (s)",
            "All answered after (s)",
            "Answers/s",
            "Latency p50 / p95",
            "First answer after",
            "Typing actions",
            "Bot CPU-s (cores busy)",
            "Bot loop lag max / p99",
        ]
    )
    for n, r in enumerate(shipped + unlimited, 1):
        table.rows.append(
            [
                str(n),
                "shipped (30/s)" if r.limiter else "off (diagnostic)",
                f"{r.ceiling:.2f}",
                f"{r.elapsed:.2f}",
                f"{r.rate:.1f}",
                f"{secs(percentile(r.latencies, 50))} / {secs(percentile(r.latencies, 95))}",
                secs(min(r.latencies)),
                str(r.chat_actions),
                f"{r.bot_cpu:.2f} ({r.bot_cpu / r.elapsed:.2f})",
                f"{ms(max(r.lags, default=0.0))} / {ms(percentile(r.lags, 99) if r.lags else 0.0)}",
            ]
        )
    bound = (
        "Telegram's limit (the limiter)"
        if rate_off > 1.2 * rate and rate >= 0.8 * 30
        else "the model (compute)"
        if rate_off >= 0.7 * ceiling_rate
        else "the bot's own work and HTTP"
    )
    section.add(
        table.markdown(),
        f"**What bounds it:** with the shipped limiter {rate:.1f} answers/s; with the limiter "
        f"off {rate_off:.1f} answers/s, against {ceiling_rate:.1f} q/s for the model alone "
        f"(one `encode_queries` call for all {users} questions, in this process just before "
        f"each round). So the shipped bot is bound by {bound}. Typing actions: "
        f"{sum(r.chat_actions for r in shipped)} in the shipped rounds (one Bot API call per "
        f"answer; the limiter drops them while less than half its budget is free), "
        f"{sum(r.chat_actions for r in unlimited)} without the limiter (for answers not ready "
        f"within a second).",
        f"Method: `python -m benchmarks.loadbot` (the bot exactly as `brobygger run` builds "
        f"and starts it, plus a 2 ms lag ticker) against tests/telegram_stub.py over HTTP on "
        f"127.0.0.1, in this process (its TDLib HTML checks share the 2 cores with the bot). "
        f"First every question is asked alone by a new user, one after another; then per "
        f"round {users} new users' questions are queued at once, so the bot's next "
        f"`getUpdates` returns all of them; the round ends when every chat has a reply and "
        f"nothing more came for a second. Answers/s = users / (last reply − queueing). Rounds "
        f"1–{len(shipped)} with the shipped `AnswersFirstRateLimiter`, the rest with "
        f"`rate_limiter=False` (never shipped: Telegram would answer 429). Bot CPU-s = the "
        f"child's utime + stime over the round.",
    )
    return section
