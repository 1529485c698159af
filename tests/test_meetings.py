"""Unit tests of the meetings service and its templates: no Telegram, no model."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from icalendar import Calendar

from bot.knowledge import KnowledgeBase, load_knowledge
from bot.knowledge.models import LANGUAGES, FuzzyDate, Meeting
from bot.render import Renderer
from bot.services.meetings import (
    Delivery,
    DueReminder,
    MeetingService,
    reminder_moment,
    shorten,
)
from bot.storage import Storage
from tests.telegram_stub import parse_html

REPO = Path(__file__).resolve().parent.parent
STOCKHOLM = ZoneInfo("Europe/Stockholm")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SOURCE = "integrate-neets-working-groups"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def fictional(
    meeting_id: str,
    when: FuzzyDate,
    *,
    time: str | None = None,
    place: str | None = "Gävle",
    country: str | None = "SE",
) -> Meeting:
    """A clearly made-up meeting, so tests can have dates the real sources never give."""
    return Meeting(
        id=meeting_id,
        title={
            "en": f"Test meeting {meeting_id}",
            "sv": f"Testmöte {meeting_id}",
            "da": f"Testmøde {meeting_id}",
        },
        date=when,
        status="planned",
        description={
            "en": "A fictional meeting for tests. It does not exist.",
            "sv": "Ett påhittat möte för tester. Det finns inte.",
            "da": "Et opdigtet møde til test. Det findes ikke.",
        },
        source=SOURCE,
        time=time,
        place=place,
        country=country,
        organiser="Test organiser",
    )


def day(value: date) -> FuzzyDate:
    return FuzzyDate(value.year, value.month, value.day)


@pytest.fixture(scope="module")
def real_kb() -> KnowledgeBase:
    return load_knowledge(REPO / "knowledge")


def with_meetings(kb: KnowledgeBase, *meetings: Meeting) -> KnowledgeBase:
    return dataclasses.replace(kb, meetings={**kb.meetings, **{m.id: m for m in meetings}})


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    store = await Storage.open(tmp_path / "data" / "brobygger.sqlite3")
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def service(kb: KnowledgeBase, storage: Storage, clock: Clock) -> MeetingService:
    return MeetingService(kb, storage, STOCKHOLM, clock)


# ---------------------------------------------------------------------------- listing


def test_shorten_keeps_the_first_sentence_and_cuts_long_ones_at_a_word() -> None:
    assert shorten("One thing. Another thing.") == "One thing."
    assert shorten("Der følges op den 10. juni, når alle mødes. Så videre.") == (
        "Der følges op den 10. juni, når alle mødes."
    )
    long = "word " * 100
    cut = shorten(long, limit=40)
    assert cut.endswith("…")
    assert len(cut) <= 41
    assert " wor…" not in cut


async def test_real_knowledge_has_nothing_upcoming_and_lists_recent_by_precision(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    listing = await service(real_kb, storage, clock).overview(1, "en")
    assert listing.upcoming == ()
    ids = [entry.id for entry in listing.recent]
    # Day and month known (newest in the year first), then the undated ones in catalog order.
    assert ids[:4] == [
        "autumn-conference-ostersund",
        "autumn-conference-gavle",
        "autumn-conference-kristianstad",
        "thematic-groups-follow-up",
    ]
    assert set(ids[4:]) == {m.id for m in real_kb.meetings.values() if m.date.month is None}
    assert all(not entry.has_full_date and not entry.upcoming for entry in listing.recent)
    kristianstad = listing.recent[2]
    assert (kristianstad.day, kristianstad.month, kristianstad.date) == (3, 10, None)
    assert kristianstad.source_title == (
        "Höstens regionala konferenser leder oss vidare genom samverkan"
    )


async def test_upcoming_uses_full_dates_only_soonest_first(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    today = date(2026, 11, 22)
    kb = with_meetings(
        real_kb,
        fictional("test-later", day(today + timedelta(days=30))),
        fictional("test-today", day(today)),
        fictional("test-past", day(today - timedelta(days=1))),
        fictional("test-no-year", FuzzyDate(None, today.month, today.day + 1)),
    )
    listing = await service(kb, storage, clock).overview(1, "sv")
    assert [e.id for e in listing.upcoming] == ["test-today", "test-later"]
    assert listing.recent == ()
    assert listing.entries == listing.upcoming
    assert listing.upcoming[0].title == "Testmöte test-today"


async def test_today_is_the_day_in_the_configured_time_zone(
    real_kb: KnowledgeBase, storage: Storage
) -> None:
    # 23:30 UTC on the 21st is already 00:30 on the 22nd in Stockholm.
    clock = Clock(datetime(2026, 11, 21, 23, 30, tzinfo=UTC))
    kb = with_meetings(
        real_kb,
        fictional("test-21", FuzzyDate(2026, 11, 21)),
        fictional("test-22", FuzzyDate(2026, 11, 22)),
    )
    listing = await service(kb, storage, clock).overview(1, "en")
    assert [e.id for e in listing.upcoming] == ["test-22"]


async def test_past_full_dates_come_first_among_recent_newest_first(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    kb = with_meetings(
        real_kb,
        fictional("test-2024", FuzzyDate(2024, 5, 1)),
        fictional("test-2025", FuzzyDate(2025, 1, 1)),
    )
    listing = await service(kb, storage, clock).overview(1, "en")
    assert [e.id for e in listing.recent[:3]] == [
        "test-2025",
        "test-2024",
        "autumn-conference-ostersund",
    ]
    assert listing.hidden == len(kb.meetings) - len(listing.recent) > 0


async def test_card_unknown_meeting_is_none(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    assert await service(real_kb, storage, clock).card(1, "en", "nope") is None


# ---------------------------------------------------------------------------- calendar files


def test_reminder_moment_is_nine_the_day_before_or_a_day_before_the_start() -> None:
    all_day = fictional("test-a", FuzzyDate(2026, 12, 1))
    assert reminder_moment(all_day, STOCKHOLM) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    summer = fictional("test-b", FuzzyDate(2026, 6, 10))
    assert reminder_moment(summer, STOCKHOLM) == datetime(2026, 6, 9, 7, 0, tzinfo=UTC)
    timed = fictional("test-c", FuzzyDate(2026, 12, 1), time="14:30")
    assert reminder_moment(timed, STOCKHOLM) == datetime(2026, 11, 30, 13, 30, tzinfo=UTC)
    assert reminder_moment(fictional("test-d", FuzzyDate(None, 12, 1)), STOCKHOLM) is None


def parse(content: bytes) -> tuple[Calendar, Any]:
    calendar = Calendar.from_ical(content)
    [event] = calendar.walk("VEVENT")
    return calendar, event


async def test_all_day_calendar_file_parses_back(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    kb = with_meetings(real_kb, fictional("test-ics", FuzzyDate(2026, 12, 1)))
    calendar_file = service(kb, storage, clock).calendar_file("test-ics", "sv")
    assert calendar_file is not None
    assert calendar_file.filename == "test-ics.ics"
    calendar, event = parse(calendar_file.content)
    assert calendar["VERSION"] == "2.0"
    assert "Brobygger" in str(calendar["PRODID"])
    assert str(event["UID"]) == "test-ics@brobygger"
    assert str(event["SUMMARY"]) == "Testmöte test-ics"
    assert "Ett påhittat möte" in str(event["DESCRIPTION"])
    assert "Thematic working groups" in str(event["DESCRIPTION"])  # the source's title
    assert str(event["LOCATION"]) == "Gävle, Sverige"
    assert event["DTSTART"].params.get("VALUE") == "DATE"
    assert event.decoded("DTSTART") == date(2026, 12, 1)
    assert event.decoded("DTEND") == date(2026, 12, 2)
    assert event.decoded("DTSTAMP") == NOW
    assert not calendar.walk("VTIMEZONE")


async def test_timed_calendar_file_is_two_hours_in_the_configured_zone(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    kb = with_meetings(
        real_kb,
        fictional("test-timed", FuzzyDate(2026, 12, 1), time="14:30", place=None, country=None),
    )
    calendar_file = service(kb, storage, clock).calendar_file("test-timed", "en")
    assert calendar_file is not None
    calendar, event = parse(calendar_file.content)
    assert event["DTSTART"].params["TZID"] == "Europe/Stockholm"
    start = event.decoded("DTSTART")
    assert start == datetime(2026, 12, 1, 14, 30, tzinfo=STOCKHOLM)
    assert event.decoded("DTEND") - start == timedelta(hours=2)
    assert "LOCATION" not in event
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Stockholm"]


async def test_no_calendar_file_without_a_full_date_or_for_unknown_ids(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    meetings = service(real_kb, storage, clock)
    assert meetings.calendar_file("autumn-conference-kristianstad", "en") is None
    assert meetings.calendar_file("hamburg-resource-centres", "en") is None
    assert meetings.calendar_file("nope", "en") is None


# ---------------------------------------------------------------------------- reminders


async def test_subscribe_stores_the_moment_and_is_idempotent(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    kb = with_meetings(real_kb, fictional("test-sub", FuzzyDate(2026, 12, 1)))
    meetings = service(kb, storage, clock)
    change = await meetings.subscribe(7, 7, "test-sub", "en")
    assert change is not None
    assert change.changed
    assert not change.soon
    assert change.remind_at == datetime(2026, 11, 30, 9, 0, tzinfo=STOCKHOLM)
    assert change.entry.subscribed
    [stored] = await storage.subscriptions(7)
    assert stored.remind_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    again = await meetings.subscribe(7, 7, "test-sub", "en")
    assert again is not None
    assert not again.changed
    assert again.remind_at == change.remind_at
    card = await meetings.card(7, "en", "test-sub")
    assert card is not None
    assert card.subscribed


async def test_subscribing_late_means_the_next_sweep(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    kb = with_meetings(real_kb, fictional("test-soon", FuzzyDate(2026, 11, 22)))
    change = await service(kb, storage, clock).subscribe(7, 7, "test-soon", "en")
    assert change is not None
    assert change.changed
    assert change.soon


@pytest.mark.parametrize(
    "meeting_id",
    ["nope", "hamburg-resource-centres", "autumn-conference-kristianstad", "test-past"],
)
async def test_cannot_subscribe_without_an_upcoming_full_date(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock, meeting_id: str
) -> None:
    kb = with_meetings(real_kb, fictional("test-past", FuzzyDate(2026, 11, 21)))
    assert await service(kb, storage, clock).subscribe(7, 7, meeting_id, "en") is None
    assert await storage.subscriptions(7) == []


async def test_unsubscribe(real_kb: KnowledgeBase, storage: Storage, clock: Clock) -> None:
    kb = with_meetings(real_kb, fictional("test-unsub", FuzzyDate(2026, 12, 1)))
    meetings = service(kb, storage, clock)
    await meetings.subscribe(7, 7, "test-unsub", "en")
    change = await meetings.unsubscribe(7, "test-unsub", "da")
    assert change is not None
    assert change.changed
    assert not change.entry.subscribed
    assert await storage.subscriptions(7) == []
    again = await meetings.unsubscribe(7, "test-unsub", "da")
    assert again is not None
    assert not again.changed
    # A meeting that left the knowledge base: the subscription still goes, the button is stale.
    await storage.subscribe(user_id=7, chat_id=7, meeting_id="gone", remind_at=NOW)
    assert await meetings.unsubscribe(7, "gone", "en") is None
    assert await storage.subscriptions(7) == []


class Recorder:
    """A deliver callback that answers from a script and remembers what it was asked."""

    def __init__(self, outcome: Delivery = Delivery.SENT) -> None:
        self.outcome = outcome
        self.calls: list[DueReminder] = []

    async def __call__(self, due: DueReminder) -> Delivery:
        self.calls.append(due)
        return self.outcome


async def test_sweep_sends_due_reminders_once_in_the_users_language(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    kb = with_meetings(real_kb, fictional("test-sweep", FuzzyDate(2026, 12, 1)))
    meetings = service(kb, storage, clock)
    await storage.save_user(8, language="da")
    await meetings.subscribe(7, 7, "test-sweep", "en")
    await meetings.subscribe(8, 8, "test-sweep", "da")
    recorder = Recorder()
    assert (await meetings.sweep(recorder)).sent == 0
    assert recorder.calls == []
    clock.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    report = await meetings.sweep(recorder)
    assert report.sent == 2
    assert {(c.chat_id, c.lang, c.entry.title) for c in recorder.calls} == {
        (7, "en", "Test meeting test-sweep"),
        (8, "da", "Testmøde test-sweep"),
    }
    assert await storage.pending_reminders() == []
    assert (await meetings.sweep(recorder)).sent == 0
    assert len(recorder.calls) == 2


async def test_sweep_drops_blocked_chats_and_retries_failures(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    # Both tomorrow: subscribed at noon, the 09:00 reminders are already due.
    kb = with_meetings(
        real_kb,
        fictional("test-a", FuzzyDate(2026, 11, 23)),
        fictional("test-b", FuzzyDate(2026, 11, 23)),
    )
    meetings = service(kb, storage, clock)
    for meeting_id in ("test-a", "test-b"):
        await meetings.subscribe(7, 7, meeting_id, "en")
    await meetings.subscribe(9, 9, "test-a", "en")

    failing = Recorder(Delivery.FAILED)
    report = await meetings.sweep(failing)
    assert report.failed == 3
    assert len(await storage.pending_reminders()) == 3

    blocked = Recorder(Delivery.BLOCKED)
    report = await meetings.sweep(blocked)
    assert report.blocked_chats == 2
    assert [c.chat_id for c in blocked.calls] == [7, 9]  # chat 7 asked once, then skipped
    assert await storage.subscriptions(7) == []
    assert await storage.subscriptions(9) == []


async def test_sweep_silently_retires_reminders_for_gone_or_past_meetings(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    await storage.subscribe(user_id=7, chat_id=7, meeting_id="gone", remind_at=NOW)
    await storage.subscribe(
        user_id=7, chat_id=7, meeting_id="test-past", remind_at=NOW - timedelta(days=3)
    )
    kb = with_meetings(real_kb, fictional("test-past", FuzzyDate(2026, 11, 20)))
    recorder = Recorder()
    report = await service(kb, storage, clock).sweep(recorder)
    assert (report.sent, report.skipped) == (0, 2)
    assert recorder.calls == []
    assert await storage.pending_reminders() == []


# ---------------------------------------------------------------------------- texts


def test_every_language_has_every_meetings_string() -> None:
    catalogs = {
        lang: yaml.safe_load(
            (REPO / "bot" / "locales" / lang / "meetings.yaml").read_text(encoding="utf-8")
        )
        for lang in LANGUAGES
    }
    keys = set(catalogs["en"])
    for lang in ("sv", "da"):
        assert set(catalogs[lang]) == keys
        same = {k for k in keys if catalogs[lang][k] == catalogs["en"][k]}
        assert same == set(), f"{lang} still has English text: {same}"


async def test_every_template_renders_valid_telegram_html_in_every_language(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    renderer = Renderer()
    kb = with_meetings(
        real_kb,
        fictional("test-html", FuzzyDate(2026, 12, 1), time="09:15"),
        fictional("test-html-soon", FuzzyDate(2026, 11, 22)),
    )
    meetings = service(kb, storage, clock)
    for lang in LANGUAGES:
        listing = await meetings.overview(1, lang)
        recent = await service(real_kb, storage, clock).overview(1, lang)
        entry = await meetings.card(1, lang, "test-html")
        assert entry is not None
        change = await meetings.subscribe(1, 1, "test-html", lang)
        soon = await meetings.subscribe(1, 1, "test-html-soon", lang)
        stopped = await meetings.unsubscribe(1, "test-html", lang)
        assert change is not None
        assert soon is not None
        assert stopped is not None
        rendered = [
            renderer.render("meetings", lang, listing=listing),
            renderer.render("meetings", lang, listing=recent),
            renderer.render("meetings_card", lang, entry=entry),
            renderer.render("meetings_ics_caption", lang, entry=entry),
            renderer.render("meetings_reminder_set", lang, change=change, zone="Europe/Stockholm"),
            renderer.render("meetings_reminder_set", lang, change=soon, zone="Europe/Stockholm"),
            renderer.render("meetings_reminder_stopped", lang, change=stopped),
            renderer.render("meetings_reminder", lang, entry=entry),
        ]
        for html in rendered:
            text, _ = parse_html(html)  # raises on anything Telegram would refuse
            assert text.strip()
            assert "{" not in text
        await meetings.unsubscribe(1, "test-html-soon", lang)


async def test_card_and_confirmation_wording(
    real_kb: KnowledgeBase, storage: Storage, clock: Clock
) -> None:
    renderer = Renderer()
    meetings = service(real_kb, storage, clock)
    card = await meetings.card(1, "en", "autumn-conference-kristianstad")
    assert card is not None
    html, _ = parse_html(renderer.render("meetings_card", "en", entry=card))
    assert "3 October (year not given in the source)" in html
    assert "Temagruppen Unga i Arbetslivet" in html
    assert "Kristianstad, Sweden" in html
    assert "the source doesn't give the full date" in html
    undated = await meetings.card(1, "sv", "hamburg-resource-centres")
    assert undated is not None
    assert "datumet anges inte i källan" in renderer.render("meetings_card", "sv", entry=undated)

    kb = with_meetings(real_kb, fictional("test-confirm", FuzzyDate(2026, 12, 1), time="14:30"))
    change = await service(kb, storage, clock).subscribe(1, 1, "test-confirm", "sv")
    assert change is not None
    confirmation = renderer.render(
        "meetings_reminder_set", "sv", change=change, zone="Europe/Stockholm"
    )
    assert "30 november 2026 kl. 14:30" in confirmation
