"""What goes wrong in production, on purpose: Telegram failing (flood control, 5xx, timeouts,
blocked users), odd and hostile input, forged buttons, a rebuild under load, a rebuild killed
halfway or out of disk space, and a shutdown while an answer is on its way."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import faiss
import pytest
from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.app import build_application
from bot.handlers import questions
from bot.i18n import translate
from bot.request import BACKOFF, JITTER, RetryingRequest
from bot.retrieval.chunks import Chunk
from bot.retrieval.embedder import Embedder
from bot.retrieval.search import SearchResult
from bot.retrieval.store import BUILDS, current_build, load_index
from bot.services import answering
from bot.services.answers import build_answer
from bot.services.search import SearchService
from bot.storage import Storage
from tests.conftest import (
    ADMIN_ID,
    KNOWLEDGE,
    TOKEN,
    BotFactory,
    Harness,
    copy_index,
    make_settings,
)
from tests.telegram_stub import Sent, TelegramStub
from tests.test_webhook import bot_services, pointed_at

BUDGET_QUESTION = "What is the budget of atWork4NEETs?"
BUDGET_FACT = "1,427,499"
INTRO = translate("en", "questions.answer_intro")
LEAD = "💡"  # an answer opens with its answering sentence; the passages follow under INTRO
NO_ANSWER = translate("en", "questions.no_answer")
EMPTY = translate("en", "questions.empty")
OUTDATED = translate("en", "common.outdated")
ERROR = translate("en", "common.error")
UNSUPPORTED = translate("en", "start.unsupported")
REINDEX_DONE = translate("en", "admin.reindex_done", seconds="").split("(")[0]
UNIQUE_WORD = "Zyxquorbel"
UNIQUE_DOCUMENT = f"""---
id: zyxquorbel-pilot
title: "The {UNIQUE_WORD} pilot"
language: en
kind: news
provenance: "Test document written for the hardening tests"
---
The {UNIQUE_WORD} pilot offers weekly walk-in hours in Quorbelby for young people who are
neither working nor studying. Youth workers from the {UNIQUE_WORD} pilot help with applications.
"""
REBUILD_TIMEOUT = 300.0


def text_of(replies: list[Sent]) -> str:
    return "\n".join(r.text or "" for r in replies)


def answered(text: str) -> bool:
    """An answer: its answering sentence first, or passages under the intro."""
    return text.startswith(LEAD) or INTRO in text


def add_unique_document(knowledge_dir: Path) -> None:
    (knowledge_dir / "documents" / "zyxquorbel-pilot.md").write_text(
        UNIQUE_DOCUMENT, encoding="utf-8"
    )


@pytest.fixture
def tiny_knowledge(tmp_path: Path) -> Path:
    """One document with its summaries: rebuilds take seconds instead of a minute."""
    root = tmp_path / "tiny-knowledge"
    (root / "documents").mkdir(parents=True)
    (root / "summaries").mkdir()
    shutil.copy(KNOWLEDGE / "documents" / "neo.md", root / "documents")
    for summary in (KNOWLEDGE / "summaries").glob("neo.*.md"):
        shutil.copy(summary, root / "summaries")
    return root


@pytest.fixture
async def tiny_bot(bot_factory: BotFactory, tiny_knowledge: Path) -> AsyncIterator[Harness]:
    async with bot_factory(knowledge=tiny_knowledge) as harness:
        yield harness


# --- the retrying request, against the stand-in (no model) --------------------------------------


class Sleeps:
    """Records the backoff instead of waiting it out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def stub() -> AsyncIterator[TelegramStub]:
    async with TelegramStub() as telegram:
        telegram.register_user(501)
        yield telegram


@contextlib.asynccontextmanager
async def retrying_bot(stub: TelegramStub, sleeps: Sleeps, **kwargs: Any) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, base_url=stub.base_url, request=RetryingRequest(sleep=sleeps, **kwargs))
    async with bot:
        yield bot


def _sends(stub: TelegramStub) -> int:
    return len(stub.calls("sendMessage"))


def _assert_backoff(delays: list[float]) -> None:
    assert len(delays) <= len(BACKOFF)
    for delay, base in zip(delays, BACKOFF, strict=False):
        assert base <= delay <= base * (1 + JITTER)


async def test_5xx_is_retried_with_backoff_and_delivered_once(stub: TelegramStub) -> None:
    sleeps = Sleeps()
    stub.fail_next("sendMessage", status=500, times=1)
    stub.fail_next("sendMessage", status=502, times=1)
    async with retrying_bot(stub, sleeps) as bot:
        message = await bot.send_message(501, "hello")
    assert message.text == "hello"
    assert _sends(stub) == 3
    assert [s.text for s in stub.sent] == ["hello"]
    assert len(sleeps.delays) == 2
    _assert_backoff(sleeps.delays)


async def test_5xx_gives_up_after_three_retries(stub: TelegramStub) -> None:
    sleeps = Sleeps()
    stub.fail_next("sendMessage", status=500, times=10)
    async with retrying_bot(stub, sleeps) as bot:
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(501, "hello")
    assert _sends(stub) == 4
    assert len(sleeps.delays) == 3
    _assert_backoff(sleeps.delays)


@pytest.mark.parametrize(
    ("status", "error"), [(400, BadRequest), (403, Forbidden), (429, RetryAfter)]
)
async def test_4xx_is_never_retried(
    stub: TelegramStub, status: int, error: type[Exception]
) -> None:
    sleeps = Sleeps()
    stub.fail_next("sendMessage", status=status, retry_after=3 if status == 429 else None)
    async with retrying_bot(stub, sleeps) as bot:
        with pytest.raises(error):
            await bot.send_message(501, "hello")
    assert _sends(stub) == 1
    assert sleeps.delays == []


async def test_a_timeout_is_retried(stub: TelegramStub) -> None:
    """The stand-in still handles the timed-out call after its delay: the duplicate-send trade-off
    documented in bot/request.py, made visible."""
    sleeps = Sleeps()
    stub.fail_next("sendMessage", status=0, delay=1.0)
    async with retrying_bot(stub, sleeps, read_timeout=0.3) as bot:
        message = await bot.send_message(501, "hello")
        assert message.text == "hello"
        assert _sends(stub) == 2
        assert len(sleeps.delays) == 1
        await asyncio.sleep(1.0)
    assert [s.text for s in stub.sent] == ["hello", "hello"]


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port nothing listens on (bound, never listening, so no one else takes it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_connection_errors_are_retried_then_raised() -> None:
    with closed_port() as port:
        sleeps = Sleeps()
        request = RetryingRequest(sleep=sleeps, connect_timeout=1.0)
        await request.initialize()
        try:
            with pytest.raises(NetworkError):
                await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
        finally:
            await request.shutdown()
    assert len(sleeps.delays) == 3


# --- Telegram faults through the running bot ----------------------------------------------------


@pytest.mark.slow
async def test_flood_wait_is_respected_and_the_answer_still_arrives(bot: Harness) -> None:
    bot.stub.fail_next("sendMessage", status=429, retry_after=1)
    started = time.time()
    replies = await bot.say(601, BUDGET_QUESTION)
    assert BUDGET_FACT in text_of(replies)
    assert replies[0].timestamp - started >= 1.0
    assert [e.status for e in bot.stub.api_errors(include_injected=True)] == [429]
    assert ERROR not in text_of(replies)


@pytest.mark.slow
async def test_server_errors_are_retried_and_the_answer_arrives_once(bot: Harness) -> None:
    bot.stub.fail_next("sendMessage", status=500, times=2)
    replies = await bot.say(602, BUDGET_QUESTION, quiet=1.0)
    assert sum(BUDGET_FACT in (r.text or "") for r in replies) == 1
    assert sum(LEAD in (r.text or "") for r in replies) == 1
    assert ERROR not in text_of(replies)
    assert [e.status for e in bot.stub.api_errors(include_injected=True)] == [500, 500]


@pytest.mark.slow
async def test_double_tap_on_a_button_is_not_an_error(bot: Harness) -> None:
    """Both taps reach the bot before its first edit; the second edit changes nothing and
    Telegram answers "message is not modified", which the bot ignores."""
    [listing] = await bot.say(603, "/projects")
    card = next(data for _, data in listing.buttons if data and data.startswith("proj:c:"))
    answers = len(bot.stub.callback_answers)
    await bot.stub.press_button(603, listing, card)
    await bot.stub.press_button(603, listing, card)
    for _ in range(500):
        if len(bot.stub.callback_answers) >= answers + 2:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    assert len(bot.stub.callback_answers) == answers + 2
    [not_modified] = bot.stub.api_errors()  # the second edit, and nothing else
    assert not_modified.method == "editMessageText"
    assert "message is not modified" in not_modified.description
    assert ERROR not in [s.text for s in bot.stub.sent]


@pytest.mark.slow
async def test_a_user_who_blocked_the_bot_breaks_nothing(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    bot.stub.block_user(604)
    await bot.stub.send_text(604, BUDGET_QUESTION, language_code="en")
    for _ in range(1500):
        if any(e.method == "sendMessage" for e in bot.stub.api_errors()):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    assert [s for s in bot.stub.sent if s.chat_id == 604] == []
    # The answer is refused, once (an answer ready within a second needs no typing indicator).
    assert [(e.method, e.status) for e in bot.stub.api_errors()] == [("sendMessage", 403)]
    handled = [r for r in caplog.records if r.name == "bot.handlers.errors"]
    assert handled
    assert all(r.levelno >= logging.WARNING for r in handled)
    assert "blocked" in (handled[0].exc_text or handled[0].getMessage())
    assert not [r for r in caplog.records if r.name.startswith("telegram")]  # nothing uncaught
    assert TOKEN not in caplog.text
    replies = await bot.say(605, BUDGET_QUESTION)  # and everyone else is still answered
    assert BUDGET_FACT in text_of(replies)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.slow
async def test_nothing_to_ask_gets_a_hint(bot: Harness) -> None:
    for text in ("   \n\t  ", "\u200b\u200c\u200d\u2060", "😀🎉🙈", "?!…", "\u202e\u202c"):
        [reply] = await bot.say(610, text)
        assert reply.text == EMPTY, text
    assert not bot.stub.api_errors()


@pytest.mark.slow
async def test_a_very_long_message_asks_for_one_question(bot: Harness) -> None:
    [reply] = await bot.say(611, "NEO budget " * 400)
    limit = questions.MAX_QUESTION_CHARS
    assert reply.text == translate("en", "questions.too_long", limit=limit)
    assert not bot.stub.api_errors()


@pytest.mark.slow
async def test_invisible_and_direction_characters_inside_a_question(bot: Harness) -> None:
    question = "\u202bWhat is the bud\u200bget of atWork4\u200dNEETs?\u202c\u2066\u2069"
    replies = await bot.say(612, question)
    assert BUDGET_FACT in text_of(replies)
    assert not bot.stub.api_errors()


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    [
        "<b>NEO</b> budget & <script>alert(1)</script> &amp; &lt;",
        "*NEO* _budget_ [link](http://x.y) `code` ~~x~~ ||spoiler||",
        "NEO budget </b></i><a href='javascript:alert(1)'>",
    ],
)
async def test_markup_in_a_question_is_only_text(bot: Harness, text: str) -> None:
    replies = await bot.say(613, text)
    assert answered(text_of(replies)) or NO_ANSWER in text_of(replies)
    assert not bot.stub.api_errors()


@pytest.mark.slow
async def test_sql_looking_text_is_stored_as_text_and_storage_keeps_working(bot: Harness) -> None:
    injection = "'; DROP TABLE users; -- what about Robert'); DROP TABLE questions;--"
    [reply] = await bot.say(614, injection)
    assert NO_ANSWER in (reply.text or "")
    gaps = await bot.services.storage.gaps(since=bot.now.date())
    assert any("drop table users" in gap.text.casefold() for gap in gaps)
    replies = await bot.say(614, BUDGET_QUESTION)
    assert BUDGET_FACT in text_of(replies)
    assert await bot.services.storage.get_user(614) is not None
    stats = await bot.services.storage.stats(since=bot.now.date())
    assert (stats.questions, stats.answered, stats.active_users) == (2, 1, 1)
    assert not bot.stub.api_errors()


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    ["/frobnicate", "/x_y_z now please", "/help@some_other_bot", "/HELP_ME <b>&"],
)
async def test_unknown_commands_are_named_back_safely(bot: Harness, command: str) -> None:
    [reply] = await bot.say(615, command)
    word = command.split()[0]
    assert reply.text == translate("en", "start.unknown_command", command=word)
    assert not bot.stub.api_errors()


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        "/meetings ;;;<x>",
        "/projects " + "ö<&>" * 75,
        "/takeaways ' OR 1=1 --",
        "/factors \u202e\u200b",
        "/start " + "x" * 300,
        "/start project_../../etc/passwd",
        "/language <b>",
    ],
)
async def test_commands_with_junk_arguments_still_reply(bot: Harness, command: str) -> None:
    replies = await bot.say(616, command)
    assert replies
    assert ERROR not in text_of(replies)
    assert not bot.stub.api_errors()


@pytest.mark.slow
async def test_an_edited_question_is_answered_again(bot: Harness) -> None:
    [refusal] = await bot.say(617, "What is the weather like in Madrid tomorrow?")
    assert NO_ANSWER in (refusal.text or "")
    [asked] = bot.stub.messages_in(617, from_bot=False)[-1:]
    mark = bot.stub.mark()
    await bot.stub.edit_message(617, asked.message_id, BUDGET_QUESTION)
    replies = await bot._collect(617, mark, 1, 0.3, 30.0)
    assert BUDGET_FACT in text_of(replies)
    assert all(r.method == "sendMessage" for r in replies)  # a new answer, the old one stays
    assert not bot.stub.api_errors()


GROUP = -1001234567890
MENTION = "@brobygger_test_bot"


def _mention(text: str, name: str) -> list[dict[str, Any]]:
    return [{"type": "mention", "offset": text.index(name), "length": len(name)}]


async def _silence(bot: Harness, update_id: int, chat_id: int) -> None:
    await bot.stub.wait_consumed(update_id, timeout=30)
    await bot.stub.expect_no_reply(chat_id, within=1.5)


@pytest.mark.slow
async def test_group_messages_are_answered_only_when_the_bot_is_addressed(bot: Harness) -> None:
    group: dict[str, Any] = {"chat_type": "supergroup", "chat_id": GROUP}
    update = await bot.stub.send_text(620, "NEO budget", **group)
    await _silence(bot, update, GROUP)
    text = "@someone_else NEO budget"
    update = await bot.stub.send_text(620, text, entities=_mention(text, "@someone_else"), **group)
    await _silence(bot, update, GROUP)

    text = f"{MENTION} {BUDGET_QUESTION}"
    replies = await bot.say(620, text, entities=_mention(text, MENTION), **group)
    assert BUDGET_FACT in text_of(replies)
    assert all(r.chat_id == GROUP for r in replies)

    answer = replies[-1]
    follow_up = "And what about the NEO budget?"
    again = await bot.say(621, follow_up, reply_to_message_id=answer.message_id, **group)
    assert answered(text_of(again)) or NO_ANSWER in text_of(again)

    [someone] = [m for m in bot.stub.messages_in(GROUP, from_bot=False) if m.text == "NEO budget"]
    update = await bot.stub.send_text(
        622, "Me too: NEO budget?", reply_to_message_id=someone.message_id, **group
    )
    await _silence(bot, update, GROUP)
    update = await bot.stub.send_sticker(622, chat_type="supergroup", chat_id=GROUP)
    await _silence(bot, update, GROUP)
    assert not bot.stub.api_errors()


@pytest.mark.slow
async def test_stickers_photos_and_voice_get_told_what_the_bot_reads(bot: Harness) -> None:
    for send in (
        bot.stub.send_sticker(623, language_code="en"),
        bot.stub.send_photo(623, caption="NEO budget?", language_code="en"),
        bot.stub.send_voice(623, language_code="en"),
    ):
        await send
        reply = await bot.stub.next_reply(623, timeout=30)
        assert reply.text == UNSUPPORTED
    assert not bot.stub.api_errors()


FORGED = [
    "fb:doesnotexist:+",
    "fb:doesnotexist:x",
    "fb:",
    "fb:::::",
    "more:x",
    "more:",
    "proj:c:" + "x" * 57,  # the longest data Telegram delivers (64 bytes)
    "proj:c:" + "x" * 60,  # longer than Telegram allows: still handled
    "proj:l:-1:",
    "meet:sub:no-such-meeting",
    "meet:ics:",
    "meet:\u202e\u200b",
    "tk:9999",
    "lang:xx",
    "role:admin",
    "\x01\x7f\u00ff:::",
    "%00%ff",
    "::::",
    "\ufffd\ufffd",
]


@pytest.mark.slow
async def test_forged_and_stale_buttons_are_answered_as_outdated(bot: Harness) -> None:
    [menu] = await bot.say(624, "/help")
    stored: Any = bot.stub.message(624, int(menu.message_id or 0))
    for data in FORGED:
        stored.reply_markup = {"inline_keyboard": [[{"text": "old", "callback_data": data}]]}
        outputs = await bot.press(624, menu, data)
        assert outputs == [], data
        assert bot.last_callback_text() == OUTDATED, data
    assert not bot.stub.api_errors()


@pytest.mark.slow
async def test_buttons_under_someone_elses_answer_are_outdated(bot: Harness) -> None:
    group: dict[str, Any] = {"chat_type": "group", "chat_id": GROUP}
    text = f"{MENTION} What did the conferences in Sweden conclude?"
    replies = await bot.say(625, text, entities=_mention(text, MENTION), **group)
    answer = replies[-1]
    assert answer.buttons
    for _, data in answer.buttons:
        outputs = await bot.press(626, answer, data or "")
        assert outputs == []
        assert bot.last_callback_text() == OUTDATED
    await bot.press(625, answer, answer.buttons[0][1] or "")  # the asker's own vote counts
    assert bot.last_callback_text() == translate("en", "questions.thanks")
    assert not bot.stub.api_errors()


# --- rebuilding while people ask ---------------------------------------------------------------


LOAD_QUESTIONS = (
    BUDGET_QUESTION,
    "NEO budget",
    "What did the conferences in Sweden conclude?",
    "Hvad er budgettet for atWork4NEETs?",
    "What is the weather like in Madrid tomorrow?",
    f"What is the {UNIQUE_WORD} pilot?",
)


def watch_for_mixed_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """White-box: every answer must be built from the same build its hits came from. A hit's
    chunk object belongs to exactly one loaded build; the chunk map handed to build_answer must
    hold that very object."""
    mixed: list[str] = []

    def checked(
        result: SearchResult,
        user_id: int,
        lang: str,
        kb: Any,
        chunks: dict[str, Chunk],
        **options: Any,
    ) -> Any:
        for hit in result.hits:
            if chunks.get(hit.chunk.id) is not hit.chunk:
                mixed.append(f"{result.query!r}: {hit.chunk.id} from another build")
        return build_answer(result, user_id, lang, kb, chunks, **options)

    monkeypatch.setattr(answering, "build_answer", checked)
    return mixed


@pytest.mark.slow
async def test_fifty_people_keep_getting_answers_while_the_index_is_rebuilt(
    bot_factory: BotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    mixed = watch_for_mixed_builds(monkeypatch)
    async with bot_factory(questions_per_minute=1000) as bot:
        old_build = bot.services.search.searcher.index.path
        add_unique_document(bot.settings.knowledge_dir)
        # without cached embeddings the rebuild encodes everything again: long enough to be
        # asked through
        shutil.rmtree(bot.settings.index_dir / "cache", ignore_errors=True)
        rebuild_started, rebuilt = asyncio.Event(), asyncio.Event()
        during: list[str] = []
        failures: list[str] = []

        async def person(user_id: int) -> int:
            rounds = 0
            while rounds < 3 or (not rebuilt.is_set() and rounds < 12):
                question = LOAD_QUESTIONS[(user_id + rounds) % len(LOAD_QUESTIONS)]
                running = not rebuilt.is_set() and rebuild_started.is_set()
                replies = await bot.say(user_id, question, timeout=REBUILD_TIMEOUT, quiet=0.2)
                text = text_of(replies)
                if not (answered(text) or NO_ANSWER in text) or ERROR in text:
                    failures.append(f"{user_id} {question!r}: {text[:200]!r}")
                if running and not rebuilt.is_set():
                    during.append(question)
                rounds += 1
            return rounds

        async def admin() -> None:
            await asyncio.sleep(2.0)  # everybody is asking by now
            await bot.stub.send_text(ADMIN_ID, "/reindex", language_code="en")
            rebuild_started.set()
            await bot.stub.wait_for(
                lambda s: s.chat_id == ADMIN_ID and REINDEX_DONE in (s.text or ""),
                timeout=REBUILD_TIMEOUT,
            )
            rebuilt.set()

        rebuild = asyncio.create_task(admin())
        rounds = await asyncio.gather(*(person(7100 + n) for n in range(50)))
        await rebuild

        assert failures == []
        assert min(rounds) >= 3
        assert during, "no question was answered while the rebuild ran"
        assert not bot.stub.api_errors()
        assert bot.services.search.searcher.index.path != old_build
        replies = await bot.say(7099, f"What is the {UNIQUE_WORD} pilot?")
        assert "Quorbelby" in text_of(replies)
    assert mixed == [], f"answers mixed two builds: {mixed[:3]}"


@pytest.mark.slow
async def test_an_answer_never_mixes_two_builds_when_the_swap_lands_mid_question(
    tiny_bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = tiny_bot
    mixed = watch_for_mixed_builds(monkeypatch)
    search = bot.services.search
    encode = search.embedder.encode_queries
    add_unique_document(bot.settings.knowledge_dir)

    def encode_then_swap(texts: Any) -> Any:
        vectors = encode(texts)
        search.rebuild()  # in the encoder's thread: the new build is served from this moment
        return vectors

    monkeypatch.setattr(search.embedder, "encode_queries", encode_then_swap)
    replies = await bot.say(630, "NEO budget", timeout=REBUILD_TIMEOUT)
    assert answered(text_of(replies))
    assert search.searcher.index.meta.documents == 2  # the swap did land
    assert mixed == []


# --- a build killed halfway, a full disk --------------------------------------------------------


@pytest.mark.slow
def test_a_build_killed_halfway_leaves_the_old_index_serving(
    tmp_path: Path, embedder: Embedder, session_index: Path
) -> None:
    settings = make_settings(tmp_path)
    shutil.copytree(KNOWLEDGE, settings.knowledge_dir)
    copy_index(session_index, settings.index_dir)
    old = current_build(settings.index_dir)
    env = {
        **os.environ,
        "KNOWLEDGE_DIR": str(settings.knowledge_dir),
        "INDEX_DIR": str(settings.index_dir),
        "DATA_DIR": str(settings.data_dir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    builds = settings.index_dir / BUILDS
    log = tmp_path / "reindex.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "reindex"],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + REBUILD_TIMEOUT
            while not list(builds.glob(".tmp-*")):
                assert process.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, "the build never started"
                time.sleep(0.01)
        finally:
            process.send_signal(signal.SIGKILL)  # halfway: embedding, before anything is swapped
            process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert list(builds.glob(".tmp-*")), "the leftover of the killed build"
    assert current_build(settings.index_dir) == old

    assert load_index(settings.index_dir, embedder.name).meta.chunks > 0
    service = SearchService(settings, embedder=embedder)
    service.load(build_if_missing=False)
    [result] = service.ask_many([BUDGET_QUESTION])
    assert result.answered
    assert any(BUDGET_FACT in hit.chunk.text for hit in result.hits)

    service.rebuild()
    assert not list(builds.glob(".tmp-*"))
    assert current_build(settings.index_dir) != old
    new = current_build(settings.index_dir)
    assert new is not None
    assert [p.name for p in builds.iterdir()] == [new.name]


def _no_space(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fill_disk_at_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faiss, "write_index", _no_space)


def _fill_disk_at_meta(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.write_text

    def write_text(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.name == "meta.json":
            _no_space()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)


@pytest.mark.slow
@pytest.mark.parametrize("fill_disk", [_fill_disk_at_faiss, _fill_disk_at_meta])
async def test_a_full_disk_during_reindex_is_told_and_the_old_index_serves(
    tiny_bot: Harness,
    monkeypatch: pytest.MonkeyPatch,
    fill_disk: Callable[[pytest.MonkeyPatch], None],
) -> None:
    bot = tiny_bot
    served = bot.services.search.searcher
    build = current_build(bot.settings.index_dir)
    fill_disk(monkeypatch)
    await bot.stub.send_text(ADMIN_ID, "/reindex", language_code="en")
    started = await bot.stub.next_reply(ADMIN_ID, timeout=30)
    failed = await bot.stub.wait_for(
        lambda s: s.message_id == started.message_id and "failed" in (s.text or ""),
        timeout=REBUILD_TIMEOUT,
    )
    assert os.strerror(errno.ENOSPC) in (failed.text or "")
    assert translate("en", "admin.old_index_serving") in (failed.text or "")
    assert bot.services.search.searcher is served
    assert current_build(bot.settings.index_dir) == build
    assert not list((bot.settings.index_dir / BUILDS).glob(".tmp-*"))
    monkeypatch.undo()
    replies = await bot.say(631, "NEO budget")
    assert answered(text_of(replies))
    assert not bot.stub.api_errors()


# --- shutting down while an answer is on its way -----------------------------------------------


@pytest.mark.slow
async def test_stopping_waits_for_answers_in_flight_and_reminders_stay(
    tmp_path: Path, embedder: Embedder, session_index: Path
) -> None:
    """What `run_polling` does on SIGTERM: stop fetching, let running handlers finish, close."""
    async with (
        bot_services(tmp_path, embedder, session_index) as (settings, services),
        TelegramStub() as stub,
    ):
        app = build_application(pointed_at(settings, stub), services)
        await app.initialize()
        if app.post_init:
            await app.post_init(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        await services.storage.subscribe(
            user_id=640,
            chat_id=640,
            meeting_id="eusbsr-annual-forum",
            remind_at=services.clock().replace(year=2099),
        )
        stub.fail_next("sendMessage", status=0, delay=2.0, chat_id=640)
        await stub.send_text(640, BUDGET_QUESTION, language_code="en")
        for _ in range(3000):  # the answer is on its way to Telegram
            sends = [r for r in stub.requests if r.method == "sendMessage"]
            if any(r.params.get("chat_id") == 640 for r in sends):
                break
            await asyncio.sleep(0.01)
        stopping = time.monotonic()
        await app.updater.stop()
        await app.stop()
        if app.post_shutdown:
            await app.post_shutdown(app)
        await app.shutdown()
        assert time.monotonic() - stopping >= 1.0  # it waited for the handler
        assert BUDGET_FACT in text_of([s for s in stub.sent if s.chat_id == 640])

    async with await Storage.open(settings.database_path) as storage:
        [reminder] = await storage.pending_reminders()
        assert (reminder.user_id, reminder.meeting_id) == (640, "eusbsr-annual-forum")
