"""Immutable records returned by :class:`~bot.storage.Storage`.

Frozen so that a handler cannot mutate a record and believe it has changed
the database; changes go through ``Storage`` methods only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

LANGUAGES: Final[tuple[str, ...]] = ("en", "sv", "da")
ROLES: Final[tuple[str, ...]] = ("practitioner", "young")
DEFAULT_LANGUAGE: Final[str] = "en"


@dataclass(frozen=True, slots=True)
class UserPrefs:
    user_id: int
    language: str
    role: str | None
    last_active: date | None


@dataclass(frozen=True, slots=True)
class Gap:
    """A question the bot could not answer, for curating the knowledge base."""

    text: str
    count: int
    last_day: date


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    user_id: int
    chat_id: int
    meeting_id: str
    remind_at: datetime  # tz-aware, UTC
    sent: bool


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime  # tz-aware, UTC
    admin_id: int
    action: str
    detail: str


@dataclass(frozen=True, slots=True)
class LanguageStats:
    questions: int = 0
    answered: int = 0
    users: int = 0
    feedback_up: int = 0
    feedback_down: int = 0


@dataclass(frozen=True, slots=True)
class DailyQuestions:
    """Questions asked on one day in one language, and how many got an answer."""

    day: date
    language: str
    questions: int
    answered: int


@dataclass(frozen=True, slots=True)
class Stats:
    """Figures for ``/stats`` over the window ``[since, today]``.

    ``per_language`` always has an entry for every supported language (zeros
    included), so the report layout does not shift with the data.
    """

    since: date
    active_users: int
    questions: int
    answered: int
    feedback_up: int
    feedback_down: int
    per_language: dict[str, LanguageStats] = field(default_factory=dict)

    @property
    def unanswered(self) -> int:
        return self.questions - self.answered
