"""Meetings and events: what is coming up, calendar files and reminders, without Telegram.

Dates are only as precise as the sources: a meeting counts as upcoming only when its year, month
and day are all known, because a date without a year may lie years in the past. "Today" is the
day in the configured time zone, not in UTC, so a meeting does not vanish at 01:00 in Stockholm.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Literal
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from bot.knowledge.models import KnowledgeBase, Meeting, pick
from bot.render import country_name
from bot.retrieval.text import sentences
from bot.storage import Storage

UPCOMING_LIMIT = 10
RECENT_LIMIT = 8
SHORT_DESCRIPTION_CHARS = 180
DEFAULT_DURATION = timedelta(hours=2)
REMINDER_TIME = time(9, 0)  # local time on the day before an all-day meeting
REMINDER_AHEAD = timedelta(hours=24)  # before a meeting whose time is known
PRODID = "-//Brobygger//Meetings//EN"
UID_DOMAIN = "brobygger"
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class MeetingEntry:
    """One meeting as a reader sees it, in one language, with what the reader may do with it."""

    id: str
    title: str
    description: str
    short_description: str
    status: Literal["planned", "held"]
    date: date | None  # only when the source gives year, month and day
    day: int | None
    month: int | None
    time: str | None
    place: str | None
    country: str | None
    organiser: str | None
    project: str | None  # the project's name, when the catalog links one
    source_title: str | None
    upcoming: bool
    subscribed: bool

    @property
    def has_full_date(self) -> bool:
        return self.date is not None


@dataclass(frozen=True)
class MeetingList:
    """Upcoming meetings; when there are none, the most recent ones instead."""

    upcoming: tuple[MeetingEntry, ...]
    recent: tuple[MeetingEntry, ...]
    hidden: int  # how many more there are than shown

    @property
    def entries(self) -> tuple[MeetingEntry, ...]:
        return self.upcoming or self.recent


@dataclass(frozen=True)
class CalendarFile:
    filename: str
    content: bytes
    entry: MeetingEntry


@dataclass(frozen=True)
class ReminderChange:
    """The answer to "remind me" / "stop reminder"."""

    entry: MeetingEntry
    changed: bool  # False: it already was the way the user asked
    remind_at: datetime | None  # local time the reminder comes; None after unsubscribing
    soon: bool  # the usual moment has passed, so it goes out at the next sweep
    delivered: bool = False  # subscribed earlier and the reminder has already gone out


@dataclass(frozen=True)
class DueReminder:
    subscription_id: int
    chat_id: int
    lang: str
    entry: MeetingEntry


class Delivery(Enum):
    SENT = "sent"
    BLOCKED = "blocked"  # the chat blocked the bot: forget all its reminders
    FAILED = "failed"  # anything else: try again at the next sweep


@dataclass(frozen=True)
class SweepReport:
    sent: int = 0
    skipped: int = 0  # meeting gone or already over: marked sent without a message
    blocked_chats: int = 0
    failed: int = 0


Deliver = Callable[[DueReminder], Awaitable[Delivery]]


def local_today(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


def is_upcoming(meeting: Meeting, today: date) -> bool:
    day = meeting.date.as_date()
    return day is not None and day >= today


def start_time(meeting: Meeting, tz: ZoneInfo) -> datetime | None:
    """The local start of a timed meeting; None for all-day or incompletely dated ones."""
    day = meeting.date.as_date()
    if day is None or meeting.time is None:
        return None
    hour, minute = (int(part) for part in meeting.time.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=tz)


def reminder_moment(meeting: Meeting, tz: ZoneInfo) -> datetime | None:
    """When to remind (UTC): 24 h before a known start, else 09:00 local the day before."""
    day = meeting.date.as_date()
    if day is None:
        return None
    start = start_time(meeting, tz)
    if start is not None:
        return start.astimezone(UTC) - REMINDER_AHEAD
    return datetime.combine(day - timedelta(days=1), REMINDER_TIME, tzinfo=tz).astimezone(UTC)


def shorten(text: str, limit: int = SHORT_DESCRIPTION_CHARS) -> str:
    """The first sentence, cut at a word when even that is long: lists should stay scannable."""
    first = " ".join((sentences(text) or [""])[0].split())
    if len(first) <= limit:
        return first
    cut = first.rfind(" ", 0, limit)
    return first[: cut if cut > 0 else limit].rstrip(" ,;:–-") + "…"


def _recent_order(meetings: Iterable[Meeting], today: date) -> list[Meeting]:
    """Dated ones newest first, then day and month without a year, then the undated ones."""
    dated: list[Meeting] = []
    day_month: list[Meeting] = []
    undated: list[Meeting] = []
    for meeting in meetings:
        if meeting.date.is_complete:
            dated.append(meeting)
        elif meeting.date.month is not None and meeting.date.day is not None:
            day_month.append(meeting)
        else:
            undated.append(meeting)
    dated.sort(key=lambda m: (m.date.sort_key(), m.time or ""), reverse=True)
    day_month.sort(key=lambda m: m.date.sort_key(), reverse=True)
    return [m for m in dated if not is_upcoming(m, today)] + day_month + undated


class MeetingService:
    """The meetings feature over one knowledge base, one database, one time zone and one clock.

    Built per request (cheap), so a reindex that replaces the knowledge base is seen at once.
    """

    def __init__(
        self, kb: KnowledgeBase, storage: Storage, tz: ZoneInfo, clock: Callable[[], datetime]
    ) -> None:
        self.kb = kb
        self.storage = storage
        self.tz = tz
        self.clock = clock

    def _today(self) -> date:
        return local_today(self.clock(), self.tz)

    async def _subscribed(self, user_id: int) -> set[str]:
        return {sub.meeting_id for sub in await self.storage.subscriptions(user_id)}

    def _entry(self, meeting: Meeting, lang: str, today: date, subscribed: bool) -> MeetingEntry:
        description = pick(meeting.description, lang)
        document = self.kb.documents.get(meeting.source)
        project = self.kb.projects.get(meeting.project) if meeting.project else None
        return MeetingEntry(
            id=meeting.id,
            title=pick(meeting.title, lang),
            description=description,
            short_description=shorten(description),
            status=meeting.status,
            date=meeting.date.as_date(),
            day=meeting.date.day,
            month=meeting.date.month,
            time=meeting.time,
            place=meeting.place,
            country=meeting.country,
            organiser=meeting.organiser,
            project=project.name if project else None,
            source_title=document.title if document else None,
            upcoming=is_upcoming(meeting, today),
            subscribed=subscribed,
        )

    async def overview(self, user_id: int, lang: str) -> MeetingList:
        """What /meetings shows: upcoming soonest first, else the most recent ones."""
        today = self._today()
        subscribed = await self._subscribed(user_id)
        meetings = list(self.kb.meetings.values())
        upcoming = sorted(
            (m for m in meetings if is_upcoming(m, today)),
            key=lambda m: (m.date.sort_key(), m.time or ""),
        )
        chosen, limit = (
            (upcoming, UPCOMING_LIMIT)
            if upcoming
            else (_recent_order(meetings, today), RECENT_LIMIT)
        )
        entries = tuple(self._entry(m, lang, today, m.id in subscribed) for m in chosen[:limit])
        hidden = max(len(chosen) - limit, 0)
        if upcoming:
            return MeetingList(upcoming=entries, recent=(), hidden=hidden)
        return MeetingList(upcoming=(), recent=entries, hidden=hidden)

    async def card(self, user_id: int, lang: str, meeting_id: str) -> MeetingEntry | None:
        meeting = self.kb.meetings.get(meeting_id)
        if meeting is None:
            return None
        return self._entry(
            meeting, lang, self._today(), meeting_id in await self._subscribed(user_id)
        )

    def calendar_file(self, meeting_id: str, lang: str) -> CalendarFile | None:
        """An .ics file for a meeting with a full date; None when there is no such meeting."""
        meeting = self.kb.meetings.get(meeting_id)
        day = meeting.date.as_date() if meeting else None
        if meeting is None or day is None:
            return None
        entry = self._entry(meeting, lang, self._today(), subscribed=False)
        event = Event()
        event.add("uid", f"{meeting.id}@{UID_DOMAIN}")
        event.add("dtstamp", self.clock().astimezone(UTC))
        event.add("summary", entry.title)
        details = entry.description
        if entry.source_title:
            details += f"\n\n{entry.source_title}"
        event.add("description", details)
        location = ", ".join(
            part
            for part in (
                meeting.place,
                country_name(meeting.country, lang) if meeting.country else None,
            )
            if part
        )
        if location:
            event.add("location", location)
        start = start_time(meeting, self.tz)
        if start is None:
            event.add("dtstart", day)
            event.add("dtend", day + timedelta(days=1))
        else:
            event.add("dtstart", start)
            event.add("dtend", start + DEFAULT_DURATION)
        calendar = Calendar()
        calendar.add("prodid", PRODID)
        calendar.add("version", "2.0")
        calendar.add("calscale", "GREGORIAN")
        calendar.add("method", "PUBLISH")
        calendar.add_component(event)
        if start is not None:
            calendar.add_missing_timezones()
        return CalendarFile(filename=f"{meeting.id}.ics", content=calendar.to_ical(), entry=entry)

    async def subscribe(
        self, user_id: int, chat_id: int, meeting_id: str, lang: str
    ) -> ReminderChange | None:
        """Remember to remind; None when the meeting is unknown or not upcoming (stale button)."""
        meeting = self.kb.meetings.get(meeting_id)
        moment = reminder_moment(meeting, self.tz) if meeting else None
        if meeting is None or moment is None or not is_upcoming(meeting, self._today()):
            return None
        changed = await self.storage.subscribe(
            user_id=user_id, chat_id=chat_id, meeting_id=meeting_id, remind_at=moment
        )
        delivered = False
        if not changed:  # report the moment stored back then: that is the one that will fire
            for sub in await self.storage.subscriptions(user_id):
                if sub.meeting_id == meeting_id:
                    moment, delivered = sub.remind_at, sub.sent
        entry = self._entry(meeting, lang, self._today(), subscribed=True)
        return ReminderChange(
            entry=entry,
            changed=changed,
            remind_at=moment.astimezone(self.tz),
            soon=not delivered and moment <= self.clock(),
            delivered=delivered,
        )

    async def unsubscribe(self, user_id: int, meeting_id: str, lang: str) -> ReminderChange | None:
        """Stop a reminder; None when the meeting is no longer in the knowledge base."""
        changed = await self.storage.unsubscribe(user_id=user_id, meeting_id=meeting_id)
        meeting = self.kb.meetings.get(meeting_id)
        if meeting is None:
            return None
        entry = self._entry(meeting, lang, self._today(), subscribed=False)
        return ReminderChange(entry=entry, changed=changed, remind_at=None, soon=False)

    async def sweep(self, deliver: Deliver) -> SweepReport:
        """Send every reminder that is due. The database is the queue, so a restart loses
        nothing; a reminder is marked sent only after Telegram accepted it."""
        now = self.clock()
        today = local_today(now, self.tz)
        sent = skipped = failed = 0
        blocked: set[int] = set()
        languages: dict[int, str] = {}
        for sub in await self.storage.pending_reminders():
            if sub.remind_at > now:
                break  # soonest first: the rest are not due either
            if sub.chat_id in blocked:
                continue
            meeting = self.kb.meetings.get(sub.meeting_id)
            if meeting is None or not is_upcoming(meeting, today):
                await self.storage.mark_reminder_sent(sub.id)
                skipped += 1
                continue
            if sub.user_id not in languages:
                prefs = await self.storage.get_user(sub.user_id)
                languages[sub.user_id] = prefs.language if prefs else DEFAULT_LANGUAGE
            lang = languages[sub.user_id]
            due = DueReminder(
                subscription_id=sub.id,
                chat_id=sub.chat_id,
                lang=lang,
                entry=self._entry(meeting, lang, today, subscribed=True),
            )
            outcome = await deliver(due)
            if outcome is Delivery.SENT:
                await self.storage.mark_reminder_sent(sub.id)
                sent += 1
            elif outcome is Delivery.BLOCKED:
                await self.storage.drop_reminders_for_chat(sub.chat_id)
                blocked.add(sub.chat_id)
            else:
                failed += 1
        return SweepReport(sent=sent, skipped=skipped, blocked_chats=len(blocked), failed=failed)
