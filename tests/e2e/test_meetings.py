"""/meetings through the real application: the honest "nothing upcoming" view of the real
knowledge in English, Swedish and Danish; upcoming meetings (from clearly fictional test entries,
since no source gives a full date), calendar files, reminders that are sent once, survive a
restart and stop for people who blocked the bot; and old or forged buttons."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from bot.knowledge import load_knowledge
from bot.retrieval.embedder import Embedder
from bot.retrieval.store import build_index
from tests.conftest import KNOWLEDGE, BotFactory, Harness, copy_index
from tests.telegram_stub import Sent, TelegramStub

pytestmark = pytest.mark.slow

LANGS = ("en", "sv", "da")
WORKSHOP = "test-fictional-workshop"
WEBINAR = "test-fictional-webinar"
BEFORE = datetime(2031, 3, 1, 10, 0, tzinfo=UTC)
DUE = datetime(2031, 3, 13, 8, 0, tzinfo=UTC)  # 09:00 in Stockholm the day before the workshop
NONE_UPCOMING = {
    "en": "There are no upcoming meetings or events with a known date right now.",
    "sv": "Just nu finns det inga kommande möten eller evenemang med känt datum.",
    "da": "Lige nu er der ingen kommende møder eller arrangementer med en kendt dato.",
}
YEAR_UNKNOWN = {
    "en": "3 October (year not given in the source)",
    "sv": "3 oktober (året anges inte i källan)",
    "da": "3. oktober (året står ikke i kilden)",
}
DATE_UNKNOWN = {
    "en": "date not given in the source",
    "sv": "datumet anges inte i källan",
    "da": "datoen står ikke i kilden",
}
HELD = {"en": "already held", "sv": "redan genomfört", "da": "allerede afholdt"}
PLANNED = {"en": "planned", "sv": "planerat", "da": "planlagt"}
UPCOMING = {
    "en": "Upcoming meetings and events",
    "sv": "Kommande möten och evenemang",
    "da": "Kommende møder og arrangementer",
}
WORKSHOP_TITLE = {
    "en": "Fictional test workshop (not a real meeting)",
    "sv": "Påhittad testworkshop (inget riktigt möte)",
    "da": "Opdigtet testworkshop (ikke et rigtigt møde)",
}
REMINDER = {"en": "⏰ Reminder", "sv": "⏰ Påminnelse", "da": "⏰ Påmindelse"}
OUTDATED = {
    "en": "This button is outdated",
    "sv": "Den här knappen är inte längre aktuell",
    "da": "Denne knap er ikke længere aktuel",
}
FICTIONAL = f"""
  - id: {WORKSHOP}
    title:
      en: "{WORKSHOP_TITLE["en"]}"
      sv: "{WORKSHOP_TITLE["sv"]}"
      da: "{WORKSHOP_TITLE["da"]}"
    date: "2031-03-14"
    place: Malmö
    country: SE
    status: planned
    organiser: Test organiser
    description:
      en: "A made-up meeting that exists only in the tests. Nobody will be there."
      sv: "Ett påhittat möte som bara finns i testerna. Ingen kommer att vara där."
      da: "Et opdigtet møde, der kun findes i testene. Ingen vil være der."
    source: integrate-neets-working-groups

  - id: {WEBINAR}
    title:
      en: "Fictional test webinar (not a real meeting)"
      sv: "Påhittat testwebbinarium (inget riktigt möte)"
      da: "Opdigtet testwebinar (ikke et rigtigt møde)"
    date: "2031-04-02"
    time: "14:00"
    status: planned
    description:
      en: "Another made-up meeting for the tests."
      sv: "Ännu ett påhittat möte för testerna."
      da: "Endnu et opdigtet møde til testene."
    source: integrate-neets-working-groups
"""


@pytest.fixture(scope="module")
def built_test_knowledge(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> tuple[Path, Path]:
    """The repository's knowledge plus two fictional meetings with full dates in 2031, indexed
    once for the module (each bot would otherwise rebuild the index)."""
    root = tmp_path_factory.mktemp("meetings-knowledge")
    knowledge, index = root / "knowledge", root / "index"
    shutil.copytree(KNOWLEDGE, knowledge)
    catalog = knowledge / "catalogs" / "meetings.yaml"
    catalog.write_text(catalog.read_text(encoding="utf-8") + FICTIONAL, encoding="utf-8")
    build_index(load_knowledge(knowledge), embedder, index)
    return knowledge, index


@pytest.fixture
def fictional_meetings(tmp_path: Path, built_test_knowledge: tuple[Path, Path]) -> None:
    """Put the test knowledge and its index where this test's bots look (KNOWLEDGE_DIR and
    INDEX_DIR under tmp_path), so every bot started here, restarts included, serves them."""
    knowledge, index = built_test_knowledge
    shutil.copytree(knowledge, tmp_path / "knowledge")
    copy_index(index, tmp_path / "index")


def text_of(replies: list[Sent]) -> str:
    return "\n".join(reply.text or "" for reply in replies)


def data(message: Sent) -> list[str]:
    return [d or "" for _, d in message.buttons]


def reminders_in(stub: TelegramStub, chat_id: int, lang: str = "en") -> list[Sent]:
    return [
        s
        for s in stub.sent
        if s.chat_id == chat_id
        and s.method == "sendMessage"
        and (s.text or "").startswith(REMINDER[lang])
    ]


async def subscribe(bot: Harness, user: int, lang: str = "en") -> list[Sent]:
    """/meetings, then "remind me" on the workshop; returns the keyboard edit and the reply."""
    listing = (await bot.say(user, "/meetings", language_code=lang))[-1]
    outputs = await bot.press(user, listing, f"meet:sub:{WORKSHOP}", expect=2)
    assert not bot.stub.api_errors()
    return outputs


async def sweep(bot: Harness) -> None:
    """Run the reminder job now, then give the scheduled first run time to have happened too."""
    await bot.run_job("reminders")
    await asyncio.sleep(1.2)
    await bot.run_job("reminders")


# ---------------------------------------------------------------------------- real knowledge


@pytest.mark.parametrize("lang", LANGS)
async def test_nothing_upcoming_shows_recent_with_honest_dates(bot: Harness, lang: str) -> None:
    replies = await bot.say(401, "/meetings", language_code=lang)
    text = text_of(replies)
    assert text.startswith(NONE_UPCOMING[lang])
    assert YEAR_UNKNOWN[lang] in text
    assert DATE_UNKNOWN[lang] in text
    assert HELD[lang] in text
    assert PLANNED[lang] in text
    assert "Temagruppen Unga i Arbetslivet" in text  # organiser
    # The most recent (by day and month) first, the undated ones last.
    assert text.index("Östersund") < text.index("Kristianstad") < text.index("Hamburg")
    # No calendar file or reminder without a full date: only "details" buttons.
    buttons = data(replies[-1])
    assert buttons
    assert all(d.startswith("meet:show:") for d in buttons)
    assert not bot.stub.api_errors()


@pytest.mark.parametrize("lang", LANGS)
async def test_details_button_and_deep_link_open_the_card(bot: Harness, lang: str) -> None:
    listing = (await bot.say(402, "/meetings", language_code=lang))[-1]
    [card] = await bot.press(402, listing, "meet:show:autumn-conference-kristianstad", expect=1)
    text = card.text or ""
    assert YEAR_UNKNOWN[lang] in text
    assert "Höstens regionala konferenser leder oss vidare genom samverkan" in text  # source
    assert "Kristianstad" in text
    assert card.buttons == []  # the card says why there is no calendar file instead
    [linked] = await bot.say(
        403, "/start meeting_autumn-conference-kristianstad", language_code=lang
    )
    assert (linked.text or "") == text


# ---------------------------------------------------------------------------- upcoming


@pytest.mark.usefixtures("fictional_meetings")
async def test_upcoming_meetings_are_listed_soonest_first(bot_factory: BotFactory) -> None:
    async with bot_factory() as bot:
        bot.set_now(BEFORE)
        [listing] = await bot.say(411, "/meetings", language_code="sv")
        text = listing.text or ""
        assert text.startswith(UPCOMING["sv"])
        assert text.index(WORKSHOP_TITLE["sv"]) < text.index("Påhittat testwebbinarium")
        assert "14 mars 2031" in text
        assert "2 april 2031 kl. 14:00" in text
        assert "Malmö, Sverige" in text
        assert "Kristianstad" not in text  # past or year-less ones are not "upcoming"
        assert data(listing) == [
            f"meet:show:{WORKSHOP}",
            f"meet:ics:{WORKSHOP}",
            f"meet:sub:{WORKSHOP}",
            f"meet:show:{WEBINAR}",
            f"meet:ics:{WEBINAR}",
            f"meet:sub:{WEBINAR}",
        ]
        # The day after the workshop it is no longer upcoming.
        bot.set_now(datetime(2031, 3, 14, 23, 30, tzinfo=UTC))  # 00:30 on the 15th locally
        [later] = await bot.say(411, "/meetings", language_code="sv")
        assert WORKSHOP_TITLE["sv"] not in (later.text or "")


@pytest.mark.usefixtures("fictional_meetings")
@pytest.mark.parametrize("lang", LANGS)
async def test_calendar_file_parses_back(bot_factory: BotFactory, lang: str) -> None:
    async with bot_factory() as bot:
        bot.set_now(BEFORE)
        listing = (await bot.say(412, "/meetings", language_code=lang))[-1]
        [document] = await bot.press(412, listing, f"meet:ics:{WORKSHOP}", expect=1)
        assert document.method == "sendDocument"
        assert document.document_name == f"{WORKSHOP}.ics"
        assert WORKSHOP_TITLE[lang] in (document.text or "")  # the caption
        assert document.document_bytes is not None
        calendar = Calendar.from_ical(document.document_bytes)
        assert str(calendar["VERSION"]) == "2.0"
        assert str(calendar["PRODID"])
        [event] = calendar.walk("VEVENT")
        assert str(event["UID"]) == f"{WORKSHOP}@brobygger"
        assert str(event["SUMMARY"]) == WORKSHOP_TITLE[lang]
        assert event.decoded("DTSTART") == date(2031, 3, 14)
        assert event["DTSTART"].params.get("VALUE") == "DATE"
        assert "Malmö" in str(event["LOCATION"])
        assert event.decoded("DTSTAMP") == BEFORE

        [timed] = await bot.press(412, listing, f"meet:ics:{WEBINAR}", expect=1)
        assert timed.document_bytes is not None
        [webinar] = Calendar.from_ical(timed.document_bytes).walk("VEVENT")
        start = webinar.decoded("DTSTART")
        assert start == datetime(2031, 4, 2, 14, 0, tzinfo=ZoneInfo("Europe/Stockholm"))
        assert webinar.decoded("DTEND") - start == timedelta(hours=2)
        assert not bot.stub.api_errors()


# ---------------------------------------------------------------------------- reminders


@pytest.mark.usefixtures("fictional_meetings")
async def test_reminder_is_confirmed_delivered_once_and_can_be_stopped(
    bot_factory: BotFactory,
) -> None:
    async with bot_factory() as bot:
        bot.set_now(BEFORE)
        edit, confirmation = await subscribe(bot, 421)
        assert edit.method == "editMessageReplyMarkup"
        assert f"meet:unsub:{WORKSHOP}" in data(edit)
        assert "13 March 2031 at 09:00" in (confirmation.text or "")
        await sweep(bot)
        assert reminders_in(bot.stub, 421) == []  # not due yet

        bot.set_now(DUE)
        await sweep(bot)
        await sweep(bot)
        [reminder] = reminders_in(bot.stub, 421)
        assert WORKSHOP_TITLE["en"] in (reminder.text or "")
        assert "14 March 2031" in (reminder.text or "")
        assert data(reminder) == [f"meet:ics:{WORKSHOP}"]

        # Stopping works from the same keyboard, which turns back into "remind me".
        listing = (await bot.say(421, "/meetings"))[-1]
        assert f"meet:unsub:{WORKSHOP}" in data(listing)
        edit, stopped = await bot.press(421, listing, f"meet:unsub:{WORKSHOP}", expect=2)
        assert f"meet:sub:{WORKSHOP}" in data(edit)
        assert "you won't get a reminder" in (stopped.text or "")
        assert await bot.services.storage.subscriptions(421) == []


@pytest.mark.usefixtures("fictional_meetings")
async def test_reminder_comes_in_the_users_language(bot_factory: BotFactory) -> None:
    async with bot_factory() as bot:
        bot.set_now(BEFORE)
        await bot.say(422, "/start", language_code="da")  # stores Danish as the language
        _, confirmation = await subscribe(bot, 422, "da")
        assert "13. marts 2031 kl. 09:00" in (confirmation.text or "")
        bot.set_now(DUE)
        await sweep(bot)
        [reminder] = reminders_in(bot.stub, 422, "da")
        assert WORKSHOP_TITLE["da"] in (reminder.text or "")


@pytest.mark.usefixtures("fictional_meetings")
async def test_late_subscription_is_reminded_at_the_next_sweep(bot_factory: BotFactory) -> None:
    async with bot_factory() as bot:
        bot.set_now(DUE + timedelta(hours=5))  # after the usual moment, before the meeting
        _, confirmation = await subscribe(bot, 423)
        assert "in a minute or two" in (confirmation.text or "")
        await sweep(bot)
        assert len(reminders_in(bot.stub, 423)) == 1


@pytest.mark.usefixtures("fictional_meetings")
async def test_reminders_survive_a_restart(bot_factory: BotFactory) -> None:
    async with bot_factory() as first:
        first.set_now(BEFORE)
        await subscribe(first, 431)
        stub = first.stub
    async with bot_factory(stub=stub) as second:
        second.set_now(DUE)
        await sweep(second)
        assert len(reminders_in(stub, 431)) == 1
    async with bot_factory(stub=stub) as third:
        third.set_now(DUE + timedelta(minutes=5))
        await sweep(third)
        assert len(reminders_in(stub, 431)) == 1  # already sent before the restart


@pytest.mark.usefixtures("fictional_meetings")
async def test_blocked_user_loses_reminders_and_others_still_get_theirs(
    bot_factory: BotFactory,
) -> None:
    async with bot_factory() as bot:
        bot.set_now(BEFORE)
        await subscribe(bot, 441)
        await subscribe(bot, 442)
        bot.stub.block_user(441)
        bot.set_now(DUE)
        await sweep(bot)
        assert await bot.services.storage.subscriptions(441) == []
        assert len(reminders_in(bot.stub, 442)) == 1
        [kept] = await bot.services.storage.subscriptions(442)
        assert kept.sent


@pytest.mark.usefixtures("fictional_meetings")
async def test_failed_send_is_retried_at_the_next_sweep(bot_factory: BotFactory) -> None:
    async with bot_factory() as bot:
        bot.set_now(BEFORE)
        await subscribe(bot, 443)
        bot.stub.fail_next("sendMessage", 500, chat_id=443, times=4)  # 1 try + 3 retries
        bot.set_now(DUE)
        await bot.run_job("reminders")
        assert reminders_in(bot.stub, 443) == []
        [pending] = await bot.services.storage.subscriptions(443)
        assert not pending.sent
        await sweep(bot)
        assert len(reminders_in(bot.stub, 443)) == 1


# ---------------------------------------------------------------------------- stale buttons


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    "forged",
    [
        "meet:ics:nope",
        "meet:ics:autumn-conference-kristianstad",
        "meet:sub:hamburg-resource-centres",
        "meet:sub:autumn-conference-kristianstad",
        "meet:sub:nope",
        "meet:unsub:nope",
        "meet:show:nope",
        "meet:zz",
        "meet:ics:",
        "meet:sub:a:b",
    ],
)
async def test_stale_or_forged_buttons_are_outdated(bot: Harness, lang: str, forged: str) -> None:
    listing = (await bot.say(451, "/meetings", language_code=lang))[-1]
    stored: Any = bot.stub.message(listing.chat_id, int(listing.message_id or 0))
    stored.reply_markup = {"inline_keyboard": [[{"text": "old", "callback_data": forged}]]}
    outputs = await bot.press(451, listing, forged)
    assert outputs == []
    assert (bot.last_callback_text() or "").startswith(OUTDATED[lang])
    assert not bot.stub.api_errors()
    assert await bot.services.storage.subscriptions(451) == []


@pytest.mark.usefixtures("fictional_meetings")
async def test_reminder_button_for_a_meeting_that_has_passed_is_outdated(
    bot_factory: BotFactory,
) -> None:
    async with bot_factory() as bot:
        bot.set_now(BEFORE)
        listing = (await bot.say(452, "/meetings"))[-1]
        bot.set_now(datetime(2031, 3, 20, tzinfo=UTC))
        assert await bot.press(452, listing, f"meet:sub:{WORKSHOP}") == []
        assert (bot.last_callback_text() or "").startswith(OUTDATED["en"])
        assert await bot.services.storage.subscriptions(452) == []
