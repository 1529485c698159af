"""Admin commands through the real application: /reindex with live progress in one message,
one rebuild at a time, documents sent to the bot (added, found, or refused with the reason),
/stats and /gaps, the audit log, and nothing of it for people who are not admins.

Rebuilds run over a one-document knowledge base so they take seconds, not minutes."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from telegram.ext import CallbackContext

from bot.handlers import admin
from bot.handlers.common import Who
from tests.conftest import ADMIN_ID, KNOWLEDGE, BotFactory, Harness
from tests.telegram_stub import Sent

pytestmark = pytest.mark.slow

USER = 301
REBUILD_TIMEOUT = 180.0
VISBY_MD = """---
id: visby-winter-camp
title: Winter camp in Visby
language: en
kind: news
provenance: "Test document written for the end-to-end tests"
---
The Visby winter camp gathers forty young jobseekers on Gotland for a week of carpentry,
cooking and boat repair. Mentors from local boatyards teach the carpentry workshops.
"""
LULEA_TXT = """Sommarläger för unga i Luleå

Kommunen ordnar ett sommarläger i Luleå för unga som varken arbetar eller studerar.
Under lägret får deltagarna prova på skogsarbete och träffa arbetsgivare från orten.
"""


@pytest.fixture
def tiny_knowledge(tmp_path: Path) -> Path:
    """One document (neo) with its summaries and no catalogs: a rebuild takes seconds, and the
    document's link to the missing project catalog gives the loader one problem to report."""
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


def edits_of(bot: Harness, message: Sent, since: int) -> list[Sent]:
    return [
        s
        for s in bot.stub.sent[since:]
        if s.method == "editMessageText" and s.message_id == message.message_id
    ]


async def until(bot: Harness, predicate: Callable[[Sent], bool]) -> Sent:
    return await bot.stub.wait_for(predicate, timeout=REBUILD_TIMEOUT)


async def upload(
    bot: Harness, name: str, data: bytes, caption: str | None = None, final: str = ""
) -> tuple[Sent, Sent]:
    """Send a document as the admin; returns the status message and its final state."""
    mark = bot.stub.mark()
    await bot.stub.send_document(ADMIN_ID, name, data, caption=caption, language_code="en")
    status = await bot.stub.next_reply(ADMIN_ID, timeout=30)
    if final in (status.text or ""):
        return status, status
    done = await until(
        bot,
        lambda s: (
            s.message_id == status.message_id
            and s.method == "editMessageText"
            and final in (s.text or "")
        ),
    )
    assert all(
        s.message_id == status.message_id for s in bot.stub.sent[mark:] if s.chat_id == ADMIN_ID
    ), "the whole upload is reported in one message"
    return status, done


# --- /reindex ----------------------------------------------------------------------------------


async def test_reindex_shows_progress_and_counts_in_one_message(tiny_bot: Harness) -> None:
    bot = tiny_bot
    mark = bot.stub.mark()
    await bot.stub.send_text(ADMIN_ID, "/reindex", language_code="en")
    started = await bot.stub.next_reply(ADMIN_ID)
    assert "Rebuilding the search index" in (started.text or "")
    done = await until(
        bot, lambda s: s.message_id == started.message_id and "rebuilt" in (s.text or "")
    )
    outputs = [s for s in bot.stub.sent[mark:] if s.chat_id == ADMIN_ID]
    assert [s.method for s in outputs if s.method == "sendMessage"] == ["sendMessage"]
    edits = edits_of(bot, started, mark)
    assert edits[-1] is done
    progress = [e for e in edits[:-1] if " of " in (e.text or "")]
    assert progress, "at least one progress edit before the result"
    assert "Reading passages" in (progress[0].text or "")
    meta = bot.services.search.searcher.index.meta
    text = done.text or ""
    assert "Documents: 1" in text
    assert f"Passages: {meta.chunks}" in text
    assert " s)" in text  # the duration
    assert "knowledge/documents/neo.md:2: unknown project 'neo'" in text
    [entry] = await bot.services.storage.audit_entries()
    assert (entry.admin_id, entry.action) == (ADMIN_ID, "reindex")
    assert entry.detail.startswith("documents=1 ")
    assert not bot.stub.api_errors()


async def test_second_reindex_while_one_runs_is_told_so(tiny_bot: Harness) -> None:
    bot = tiny_bot
    mark = bot.stub.mark()
    await bot.stub.send_text(ADMIN_ID, "/reindex", language_code="en")
    await bot.stub.send_text(ADMIN_ID, "/reindex", language_code="en")
    busy = await until(bot, lambda s: "already running" in (s.text or ""))
    assert busy.method == "sendMessage"
    await until(bot, lambda s: "rebuilt" in (s.text or ""))
    started = [
        s
        for s in bot.stub.sent[mark:]
        if s.method == "sendMessage" and "Rebuilding" in (s.text or "")
    ]
    assert len(started) == 1
    details = sorted(e.detail for e in await bot.services.storage.audit_entries())
    assert details[0].startswith("documents=1")
    assert details[1] == "refused: a rebuild is already running"


async def test_reindex_in_swedish_for_a_swedish_admin(tiny_bot: Harness) -> None:
    bot = tiny_bot
    await bot.stub.send_text(ADMIN_ID, "/reindex", language_code="sv")
    started = await bot.stub.next_reply(ADMIN_ID)
    assert "Bygger om sökindexet" in (started.text or "")
    done = await until(
        bot, lambda s: s.message_id == started.message_id and "ombyggt" in (s.text or "")
    )
    assert "Dokument: 1" in (done.text or "")


async def test_failed_reindex_keeps_the_old_index_serving(tiny_bot: Harness) -> None:
    bot = tiny_bot
    served = bot.services.search.searcher
    for path in (bot.settings.knowledge_dir / "documents").iterdir():
        path.unlink()
    await bot.stub.send_text(ADMIN_ID, "/reindex", language_code="en")
    started = await bot.stub.next_reply(ADMIN_ID)
    failed = await until(
        bot, lambda s: s.message_id == started.message_id and "failed" in (s.text or "")
    )
    assert "nothing to index" in (failed.text or "")
    assert "The old index is still serving answers." in (failed.text or "")
    assert bot.services.search.searcher is served
    [entry] = await bot.services.storage.audit_entries()
    assert entry.detail.startswith("failed: nothing to index")


async def test_progress_from_the_build_thread_is_throttled_and_ordered(bot: Harness) -> None:
    """The build calls progress from its worker thread, faster than Telegram allows edits."""
    await bot.say(ADMIN_ID, "/privacy")  # opens the chat
    message = await bot.app.bot.send_message(ADMIN_ID, "Rebuilding…")
    me = Who(ADMIN_ID, ADMIN_ID, "en", None, is_admin=True, known=True)
    ticks = iter([0.0, 0.5, 1.0, 1.6, 1.7, 3.2, 9.0])
    progress = admin._Progress(
        CallbackContext(bot.app), me, message, None, monotonic=lambda: next(ticks)
    )
    mark = bot.stub.mark()

    def build() -> None:
        for done in range(6):
            progress("embedding", done, 5)

    await asyncio.to_thread(build)
    await progress.settle()
    progress("indexing", 1, 2)  # after the result: must not overwrite it
    shown = [s.text for s in bot.stub.sent[mark:] if s.message_id == message.message_id]
    assert [text.splitlines()[1] for text in shown if text] == [
        "Reading passages: 0 of 5",
        "Reading passages: 3 of 5",
        "Reading passages: 5 of 5",
    ]


@pytest.mark.parametrize("command", ["/reindex", "/stats", "/gaps"])
async def test_admin_commands_do_not_exist_for_others(bot: Harness, command: str) -> None:
    [reply] = await bot.say(USER, command)
    assert f"I don't know the command {command}" in (reply.text or "")
    assert await bot.services.storage.audit_entries() == []


# --- uploads -----------------------------------------------------------------------------------


async def test_markdown_upload_is_added_found_and_can_be_replaced(tiny_bot: Harness) -> None:
    bot = tiny_bot
    _, done = await upload(bot, "visby.md", VISBY_MD.encode(), final="Added")
    text = done.text or ""
    assert "Added the document visby-winter-camp." in text
    assert "Title: Winter camp in Visby" in text
    assert "Language: English" in text
    chunks = sum(
        1
        for c in bot.services.search.searcher.index.chunks
        if c.document == "visby-winter-camp" and c.kind == "document"
    )
    assert chunks >= 1
    assert f"Passages of this document in the index: {chunks}" in text
    assert "summaries in Swedish, Danish" in text
    assert (bot.settings.knowledge_dir / "documents" / "visby-winter-camp.md").is_file()

    replies = await bot.say(USER, "Who teaches carpentry at the Visby winter camp?")
    assert "boatyards" in "\n".join(r.text or "" for r in replies)

    changed = VISBY_MD.replace("forty", "fifty")
    _, again = await upload(bot, "visby.md", changed.encode(), final="Replaced")
    assert "Replaced the existing document visby-winter-camp." in (again.text or "")
    entries = await bot.services.storage.audit_entries()
    assert [e.detail.split(" ")[0] for e in entries if e.action == "upload"] == [
        "replaced",
        "added",
    ]


async def test_text_upload_becomes_a_swedish_document(tiny_bot: Harness) -> None:
    bot = tiny_bot
    _, done = await upload(bot, "Sommarläger Luleå.txt", LULEA_TXT.encode(), final="Added")
    text = done.text or ""
    assert "Added the document sommarlager-lulea." in text
    assert "Title: Sommarläger för unga i Luleå" in text
    assert "Language: Swedish (detected" in text
    assert "first line became the title" in text
    saved = (bot.settings.knowledge_dir / "documents" / "sommarlager-lulea.md").read_text("utf-8")
    assert "kind: news" in saved
    assert "provenance: Uploaded by an admin on" in saved
    replies = await bot.say(
        USER, "Vad får deltagarna prova på under sommarläger i Luleå?", language_code="sv"
    )
    assert "skogsarbete" in "\n".join(r.text or "" for r in replies)


async def test_caption_chooses_the_language(tiny_bot: Harness) -> None:
    bot = tiny_bot
    _, done = await upload(
        bot,
        "note.txt",
        b"Jobs fair\nA jobs fair for young people.",
        caption="lang=da",
        final="Added",
    )
    assert "Language: Danish (as given in the caption)" in (done.text or "")
    assert bot.services.kb.documents["note"].language == "da"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("report.pdf", b"%PDF-1.7 ...", "The PDF file is damaged or cut off"),
        ("big.txt", b"word " * 1000, "The file is too big: 5 KB, the limit is 2 KB."),
        (
            "latin1.txt",
            "Rad ett\nHälsningar".encode("latin-1"),
            "The file is not UTF-8 text (the first bad character is on line 2).",
        ),
        (
            "photo.txt",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "The name ends in .txt, but the file is really PNG.",
        ),
        (
            "bad.md",
            VISBY_MD.replace("kind: news", "kind: rumour").encode(),
            "bad.md:5: unknown kind 'rumour' (expected project, news or conference)",
        ),
        (
            "plain.md",
            b"# Title\n\nNo front matter.",
            "plain.md:1: missing front matter: the file must start with a '---' YAML block",
        ),
        (
            "linked.md",
            VISBY_MD.replace("kind: news", "kind: news\nproject: nowhere").encode(),
            "linked.md:2: unknown project 'nowhere'",
        ),
        ("../../etc/passwd.txt", b"\x00\x01", "The file is binary, not text."),
    ],
)
async def test_refused_uploads_say_why_and_change_nothing(
    bot_factory: BotFactory, name: str, data: bytes, reason: str
) -> None:
    async with bot_factory(max_upload_bytes=2048) as bot:
        before = sorted(p.name for p in (bot.settings.knowledge_dir / "documents").iterdir())
        status, _ = await upload(bot, name, data, final="I did not add")
        final = bot.stub.message(ADMIN_ID, int(status.message_id or 0))
        assert f"I did not add {name}." in (final.text or "")
        assert reason in (final.text or "")
        after = sorted(p.name for p in (bot.settings.knowledge_dir / "documents").iterdir())
        assert after == before
        [entry] = await bot.services.storage.audit_entries()
        assert entry.action == "upload"
        assert entry.detail.startswith(f"refused {name!r}")
        assert not bot.stub.api_errors()


async def test_documents_from_other_people_are_not_added(bot: Harness) -> None:
    before = sorted((bot.settings.knowledge_dir / "documents").iterdir())
    mark = bot.stub.mark()
    await bot.stub.send_document(USER, "visby.md", VISBY_MD.encode())
    [reply] = await bot._collect(USER, mark, 1, 0.3, 10.0)
    assert "Only the people who look after my knowledge base can add documents" in (
        reply.text or ""
    )
    assert sorted((bot.settings.knowledge_dir / "documents").iterdir()) == before
    assert await bot.services.storage.audit_entries() == []


# --- /stats and /gaps --------------------------------------------------------------------------


async def test_stats_and_gaps_after_answered_and_unanswered_questions(bot: Harness) -> None:
    [reply] = await bot.say(ADMIN_ID, "/gaps")
    assert "No unanswered questions in the last 30 days." in (reply.text or "")

    answer = (await bot.say(USER, "What is the budget of atWork4NEETs?"))[-1]
    await bot.press(USER, answer, dict(answer.buttons)["👍"])
    await bot.say(USER + 1, "Hur blir vädret i Madrid <imorgon>?", language_code="sv")
    await bot.say(USER + 2, "What is the weather like in Madrid tomorrow?")
    await bot.say(USER + 3, "what is the weather like in  Madrid tomorrow?")

    report, chart = await bot.say(ADMIN_ID, "/stats", expect=2)
    assert chart.method == "sendPhoto"
    text = report.text or ""
    assert "Last 7 days" in text
    assert "Last 30 days" in text
    assert "Active users: 4" in text
    assert "Questions: 4, answered: 1 (25%)" in text
    assert "Feedback: 👍 1 · 👎 0" in text
    assert "English – questions: 3, answered: 33%" in text
    assert "Swedish – questions: 1, answered: 0%" in text
    assert "Danish – questions: 0, answered: –" in text

    [gaps] = await bot.say(ADMIN_ID, "/gaps")
    lines = (gaps.text or "").splitlines()
    first = lines.index("1. what is the weather like in madrid tomorrow?")
    assert lines[first + 1].startswith("2×, last on ")
    assert "2. hur blir vädret i madrid <imorgon>?" in lines  # escaped, shown as typed
    assert not bot.stub.api_errors()
    actions = [e.action for e in await bot.services.storage.audit_entries()]
    assert actions == ["gaps", "stats", "gaps"]
