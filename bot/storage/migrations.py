"""Numbered schema migrations.

``MIGRATIONS[i]`` upgrades a database from ``PRAGMA user_version == i`` to
``i + 1``. Entries are append-only: once a version has shipped, its script must
never change, because databases in the field have already run it. To change
the schema, append a new script.

Privacy notes that shaped the schema (young people use this bot):

* ``questions`` and ``unanswered`` are daily counters with no user id and no
  row order, so a question cannot be tied back to whoever asked it, not even
  by correlating insertion order with other tables.
* ``users.last_active`` is a day, not a timestamp: active-user counts need no
  more, and a day does not reveal when someone is online.
* Every table holding a ``user_id`` must be listed in
  ``Storage.FORGET_TABLES``; a test enforces this.
"""

from __future__ import annotations

import sqlite3
from typing import Final

_DAY = "GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'"

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: initial schema
    f"""
    CREATE TABLE users (
        user_id     INTEGER PRIMARY KEY,
        language    TEXT NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'sv', 'da')),
        role        TEXT CHECK (role IS NULL OR role IN ('practitioner', 'young')),
        last_active TEXT CHECK (last_active IS NULL OR last_active {_DAY})
    ) STRICT;
    CREATE INDEX users_last_active ON users (last_active);

    CREATE TABLE questions (
        day      TEXT NOT NULL CHECK (day {_DAY}),
        language TEXT NOT NULL CHECK (language IN ('en', 'sv', 'da')),
        answered INTEGER NOT NULL CHECK (answered IN (0, 1)),
        count    INTEGER NOT NULL CHECK (count > 0),
        PRIMARY KEY (day, language, answered)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE unanswered (
        day   TEXT NOT NULL CHECK (day {_DAY}),
        text  TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 500),
        count INTEGER NOT NULL CHECK (count > 0),
        PRIMARY KEY (day, text)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE feedback (
        user_id   INTEGER NOT NULL,
        answer_id TEXT NOT NULL,
        value     INTEGER NOT NULL CHECK (value IN (-1, 1)),
        language  TEXT NOT NULL CHECK (language IN ('en', 'sv', 'da')),
        day       TEXT NOT NULL CHECK (day {_DAY}),
        PRIMARY KEY (user_id, answer_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX feedback_day ON feedback (day);

    -- AUTOINCREMENT: ids are handed to scheduled jobs, and a reused id would
    -- let a stale job mark somebody else's reminder as sent.
    CREATE TABLE subscriptions (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id    INTEGER NOT NULL,
        chat_id    INTEGER NOT NULL,
        meeting_id TEXT NOT NULL,
        remind_at  TEXT NOT NULL,
        sent       INTEGER NOT NULL DEFAULT 0 CHECK (sent IN (0, 1)),
        UNIQUE (user_id, meeting_id)
    ) STRICT;
    CREATE INDEX subscriptions_pending ON subscriptions (sent, remind_at);
    CREATE INDEX subscriptions_chat ON subscriptions (chat_id);

    CREATE TABLE audit_log (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        at       TEXT NOT NULL,
        admin_id INTEGER NOT NULL,
        action   TEXT NOT NULL CHECK (length(action) > 0),
        detail   TEXT NOT NULL DEFAULT ''
    ) STRICT;
    """,
)

LATEST_VERSION: Final[int] = len(MIGRATIONS)


def split_statements(script: str) -> list[str]:
    """Split a script into single statements.

    ``sqlite3.executescript`` would be simpler, but it issues an implicit
    COMMIT first on Python 3.11, which would break applying all pending
    migrations atomically. ``sqlite3.complete_statement`` copes with semicolons
    inside string literals and trigger bodies, which a plain ``split(';')``
    does not.
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if statement.strip(";").strip():
                statements.append(statement)
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement in migration: {buffer.strip()!r}")
    return statements
