"""/privacy and /forget through the real application: what is stored, said plainly in each
language; deleting it all (database rows and memory) after a confirmation; a double tap or an
old prompt that cannot break anything; and the retention job for unanswered question texts."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta

import pytest

from bot.storage import Storage
from tests.conftest import BotFactory, Harness

pytestmark = pytest.mark.slow

USER = 501
OUTDATED = "This button is outdated. Please ask again or use the menu."


def rows_of(bot: Harness, user_id: int) -> dict[str, int]:
    """The user's rows in every table that can hold them, read straight from the file."""
    uri = f"file:{bot.settings.database_path}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        return {
            table: db.execute(
                f"SELECT count(*) FROM {table} WHERE user_id = ?", (user_id,)
            ).fetchone()[0]
            for table in Storage.FORGET_TABLES
        }


async def leave_traces(bot: Harness, user_id: int) -> str:
    """Preferences, a vote and a reminder, as a person using the bot leaves them; returns the
    vote button's data, which refers to an answer remembered in memory."""
    [welcome] = await bot.say(user_id, "/start")
    await bot.press(user_id, welcome, "role:young", expect=1)
    answer = (await bot.say(user_id, "What is the budget of atWork4NEETs?"))[-1]
    vote = dict(answer.buttons)["👍"] or ""
    await bot.press(user_id, answer, vote)
    await bot.services.storage.subscribe(
        user_id=user_id,
        chat_id=user_id,
        meeting_id="some-meeting",
        remind_at=bot.now + timedelta(days=3),
    )
    assert rows_of(bot, user_id) == {"feedback": 1, "subscriptions": 1, "users": 1}
    return vote


@pytest.mark.parametrize(
    ("code", "title", "retention", "delete"),
    [
        ("en", "What I store about you", "deleted after 30 days", "send /forget"),
        ("sv", "Det här sparar jag om dig", "raderas efter 30 dagar", "Skicka /forget"),
        ("da", "Det gemmer jeg om dig", "slettes efter 30 dage", "Send /forget"),
    ],
)
async def test_privacy_says_what_is_stored_in_the_users_language(
    bot: Harness, code: str, title: str, retention: str, delete: str
) -> None:
    [reply] = await bot.say(USER, "/privacy", language_code=code)
    text = reply.text or ""
    assert text.startswith(title)
    assert retention in text
    assert delete in text
    assert "/forget" in text
    assert "👍" in text


async def test_privacy_follows_the_retention_setting(bot_factory: BotFactory) -> None:
    async with bot_factory(unanswered_retention_days=14) as bot:
        [reply] = await bot.say(USER, "/privacy")
        assert "deleted after 14 days" in (reply.text or "")


async def test_forget_deletes_everything_after_confirmation(bot: Harness) -> None:
    vote = await leave_traces(bot, USER)
    [prompt] = await bot.say(USER, "/forget")
    assert "delete everything" in (prompt.text or "")
    assert prompt.buttons == [("Yes, delete it", "forget:yes"), ("No, keep it", "forget:no")]
    [done] = await bot.press(USER, prompt, "forget:yes", expect=1)
    assert done.method == "editMessageText"
    assert done.message_id == prompt.message_id
    text = done.text or ""
    assert "Done. I have deleted what I stored about you:" in text
    assert "your language and role settings" in text
    assert "👍/👎 on answers: 1" in text
    assert "meeting reminders: 1" in text
    assert done.buttons == []
    assert rows_of(bot, USER) == {"feedback": 0, "subscriptions": 0, "users": 0}
    assert await bot.services.storage.get_user(USER) is None
    # The answer kept in memory for the buttons is gone too.
    answer_id = vote.split(":")[1]
    assert bot.services.answers.get(answer_id, USER) is None
    # Someone else's data is untouched.
    await leave_traces(bot, USER + 1)
    assert rows_of(bot, USER + 1)["users"] == 1


async def test_forget_in_the_users_language(bot: Harness) -> None:
    await leave_traces(bot, USER)
    [language_menu] = await bot.say(USER, "/language")
    await bot.press(USER, language_menu, "lang:da", expect=1)
    [prompt] = await bot.say(USER, "/forget")
    assert [label for label, _ in prompt.buttons] == ["Ja, slet det", "Nej, behold det"]
    [done] = await bot.press(USER, prompt, "forget:yes", expect=1)
    assert "Færdig. Jeg har slettet det, jeg havde gemt om dig:" in (done.text or "")


async def test_no_keeps_everything(bot: Harness) -> None:
    await leave_traces(bot, USER)
    [prompt] = await bot.say(USER, "/forget")
    [kept] = await bot.press(USER, prompt, "forget:no", expect=1)
    assert kept.message_id == prompt.message_id
    assert "Okay, nothing was deleted." in (kept.text or "")
    assert rows_of(bot, USER) == {"feedback": 1, "subscriptions": 1, "users": 1}


async def test_double_tap_acts_once_and_the_stale_press_is_answered(bot: Harness) -> None:
    await leave_traces(bot, USER)
    [prompt] = await bot.say(USER, "/forget")
    mark = bot.stub.mark()
    answers_before = len(bot.stub.callback_answers)
    # Both presses are queued before the bot sees either, as with a double tap on a phone.
    await bot.stub.press_button(USER, prompt, "forget:yes")
    await bot.stub.press_button(USER, prompt, "forget:yes")
    await bot.stub.wait_for(lambda s: s.message_id == prompt.message_id, timeout=10)
    await bot._collect(USER, mark, 1, 0.5, 10.0)
    answers = bot.stub.callback_answers[answers_before:]
    assert len(answers) == 2
    assert sorted(a.text or "" for a in answers) == ["", OUTDATED]
    edits = [s for s in bot.stub.sent[mark:] if s.message_id == prompt.message_id]
    assert len(edits) == 1
    assert "👍/👎 on answers: 1" in (edits[0].text or "")
    assert not bot.stub.api_errors()


async def test_an_older_prompt_after_forgetting_says_nothing_is_stored(bot: Harness) -> None:
    await leave_traces(bot, USER)
    [first] = await bot.say(USER, "/forget")
    [second] = await bot.say(USER, "/forget")
    await bot.press(USER, second, "forget:yes", expect=1)
    [late] = await bot.press(USER, first, "forget:yes", expect=1)
    assert "I had nothing stored about you" in (late.text or "")


async def test_forget_in_a_group_points_to_a_private_chat(bot: Harness) -> None:
    [reply] = await bot.say(USER, "/forget", chat_type="group", chat_id=-1001, chat_title="Team")
    assert "direct chat" in (reply.text or "")
    assert reply.buttons == []


async def test_retention_job_deletes_old_unanswered_texts(bot: Harness) -> None:
    storage = bot.services.storage
    today = bot.now.astimezone(bot.settings.tz).date()
    await storage.record_question(
        language="en", answered=False, text="very old question", day=today - timedelta(days=31)
    )
    await storage.record_question(
        language="en", answered=False, text="last day kept", day=today - timedelta(days=30)
    )
    await storage.record_question(
        language="en", answered=False, text="recent question", day=today - timedelta(days=2)
    )
    await bot.run_job("retention")
    texts = {gap.text for gap in await storage.gaps(since=today - timedelta(days=400))}
    assert texts == {"last day kept", "recent question"}
    stats = await storage.stats(since=today - timedelta(days=400))
    assert stats.questions == 3  # the anonymous counts stay
