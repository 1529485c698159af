"""Persistence for Brobygger: user preferences, anonymous statistics,
reminder subscriptions and the admin audit log, in one SQLite file.

What is stored is limited to what each feature needs, because many users are
young people: see ``migrations.py`` for the reasoning behind each table.
"""

from .errors import StorageError
from .migrations import LATEST_VERSION, MIGRATIONS
from .models import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    ROLES,
    AuditEntry,
    DailyQuestions,
    Gap,
    LanguageStats,
    Stats,
    Subscription,
    UserPrefs,
)
from .normalise import MAX_QUESTION_CHARS, normalise_question
from .storage import DEFAULT_BUSY_TIMEOUT, Storage

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LATEST_VERSION",
    "MAX_QUESTION_CHARS",
    "MIGRATIONS",
    "ROLES",
    "AuditEntry",
    "DailyQuestions",
    "Gap",
    "LanguageStats",
    "Stats",
    "Storage",
    "StorageError",
    "Subscription",
    "UserPrefs",
    "normalise_question",
]
