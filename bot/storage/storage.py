"""SQLite persistence for the bot: one file, one connection, serialised access."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Final, Self

import aiosqlite

from .errors import StorageError
from .migrations import LATEST_VERSION, MIGRATIONS, split_statements
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
from .normalise import normalise_question

DEFAULT_BUSY_TIMEOUT: Final[float] = 5.0

# Columns that identify a Telegram user. In a private chat the chat id *is*
# the user id, so ``chat_id`` counts too.
_USER_COLUMNS: Final[frozenset[str]] = frozenset({"user_id", "chat_id"})

Params = Iterable[Any]


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; expected one of {LANGUAGES}")
    return language


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unsupported role {role!r}; expected one of {ROLES}")
    return role


def _utc_text(moment: datetime) -> str:
    """Serialise a datetime so that text order equals time order.

    A fixed offset and precision matter because rows are ordered and compared
    as text in SQL; ``isoformat()`` alone drops microseconds when they are zero.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _user_prefs(row: sqlite3.Row | tuple[Any, ...]) -> UserPrefs:
    user_id, language, role, last_active = row
    return UserPrefs(
        user_id=int(user_id),
        language=str(language),
        role=None if role is None else str(role),
        last_active=None if last_active is None else date.fromisoformat(last_active),
    )


def _subscription(row: sqlite3.Row | tuple[Any, ...]) -> Subscription:
    sub_id, user_id, chat_id, meeting_id, remind_at, sent = row
    return Subscription(
        id=int(sub_id),
        user_id=int(user_id),
        chat_id=int(chat_id),
        meeting_id=str(meeting_id),
        remind_at=_parse_utc(remind_at),
        sent=bool(sent),
    )


_SUBSCRIPTION_COLUMNS: Final[str] = "id, user_id, chat_id, meeting_id, remind_at, sent"


class Storage:
    """Async façade over the bot's SQLite database.

    One ``aiosqlite`` connection writes, shared by all handlers and guarded by
    an ``asyncio.Lock``: aiosqlite runs each connection on one thread, so
    interleaving two coroutines' statements on it would mix their
    transactions. Plain reads (the user lookup every update starts with) go
    to a second, read-only connection and never wait for that lock: in WAL
    mode a reader sees the last committed state, so a hundred users asking at
    once are not looked up one after another behind each other's writes.
    Other *processes* (a second bot instance, an admin CLI) are kept apart by
    SQLite's own locking, with ``busy_timeout`` making them wait instead of
    failing at once.

    Obtain instances with :meth:`open`; always :meth:`close` them (or use
    ``async with``), since an unclosed connection leaks a thread.
    """

    #: Every table with a user-identifying column; :meth:`forget` deletes from
    #: exactly these. A test compares this with :meth:`user_tables`, so adding
    #: a table with a ``user_id`` column without listing it here fails CI.
    FORGET_TABLES: ClassVar[tuple[str, ...]] = ("feedback", "subscriptions", "users")

    def __init__(
        self, path: Path, conn: aiosqlite.Connection, reader: aiosqlite.Connection | None = None
    ) -> None:
        """Use :meth:`open`; this only wires up already-migrated connections (without a
        `reader`, reads share the write connection and its lock)."""
        self.path = path
        self._conn: aiosqlite.Connection | None = conn
        self._reader: aiosqlite.Connection | None = reader
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ life cycle

    @classmethod
    async def open(cls, path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Storage:
        """Open (creating if needed) and migrate the database at ``path``.

        ``busy_timeout`` is how long, in seconds, to wait for another process
        holding the write lock before giving up with :class:`StorageError`.
        """
        path = Path(path)
        await asyncio.to_thread(_prepare_file, path)
        try:
            conn = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc
        reader: aiosqlite.Connection | None = None
        try:
            await _configure(conn, path, busy_timeout)
            await _migrate(conn, path)
            reader = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout)
            await reader.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            await reader.execute("PRAGMA query_only = ON")
        except BaseException as exc:
            if reader is not None:
                await reader.close()
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"cannot open database {path}: {exc}") from exc
            raise
        return cls(path, conn, reader)

    async def close(self) -> None:
        """Close the connection; calling it again is harmless."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.close()
        async with self._lock:
            try:
                # Keeps query plans good without a separate maintenance job.
                await conn.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            finally:
                await conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ plumbing

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StorageError(f"database {self.path} is closed")
        return self._conn

    def _error(self, exc: sqlite3.Error) -> StorageError:
        return StorageError(f"database {self.path}: {exc}")

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run the body as one write transaction, rolled back on any exception.

        ``BEGIN IMMEDIATE`` takes SQLite's write lock up front. With a deferred
        transaction, two processes that both read and then write can deadlock,
        and SQLite reports that as SQLITE_BUSY at once without consulting
        ``busy_timeout``.
        """
        async with self._lock:
            conn = self._connection()
            try:
                await conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            try:
                yield conn
                await conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc) from exc
                raise

    async def _fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Read on the read-only connection: it sees only committed writes, so it needs no
        lock (and falls back to the write connection under the lock when there is none)."""
        self._connection()  # closed is closed, for reads too
        reader = self._reader
        if reader is None:
            async with self._lock:
                try:
                    rows = await self._connection().execute_fetchall(sql, tuple(params))
                except sqlite3.Error as exc:
                    raise self._error(exc) from exc
            return [tuple(row) for row in rows]
        try:
            rows = await reader.execute_fetchall(sql, tuple(params))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        except ValueError as exc:  # aiosqlite's "no active connection": closed meanwhile
            raise StorageError(f"database {self.path} is closed") from exc
        return [tuple(row) for row in rows]

    @staticmethod
    async def _changes(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> int:
        cursor = await conn.execute(sql, tuple(params))
        try:
            return cursor.rowcount
        finally:
            await cursor.close()

    async def user_tables(self) -> frozenset[str]:
        """Tables that currently have a user-identifying column, per the live schema.

        Exists so tests can check :attr:`FORGET_TABLES` against reality rather
        than against a list someone has to remember to update.
        """
        tables = await self._fetchall(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        found: set[str] = set()
        for (table,) in tables:
            columns = await self._fetchall("SELECT name FROM pragma_table_info(?)", (table,))
            if _USER_COLUMNS & {str(name) for (name,) in columns}:
                found.add(str(table))
        return frozenset(found)

    # ------------------------------------------------------------------ users

    async def get_user(self, user_id: int) -> UserPrefs | None:
        rows = await self._fetchall(
            "SELECT user_id, language, role, last_active FROM users WHERE user_id = ?",
            (user_id,),
        )
        return _user_prefs(rows[0]) if rows else None

    async def save_user(
        self, user_id: int, *, language: str | None = None, role: str | None = None
    ) -> UserPrefs:
        """Create or update a user; ``None`` means "leave as is" (or default if new)."""
        if language is not None:
            _check_language(language)
        if role is not None:
            _check_role(role)
        async with self._transaction() as conn:
            cursor = await conn.execute(
                """
                INSERT INTO users (user_id, language, role) VALUES (?, ?, ?)
                ON CONFLICT (user_id) DO UPDATE SET
                    language = coalesce(?, language),
                    role = coalesce(?, role)
                RETURNING user_id, language, role, last_active
                """,
                (user_id, language or DEFAULT_LANGUAGE, role, language, role),
            )
            try:
                row = await cursor.fetchone()
            finally:
                await cursor.close()
        assert row is not None  # RETURNING on an upsert always yields the row
        return _user_prefs(row)

    async def touch_user(self, user_id: int, today: date) -> None:
        """Record that the user was active on ``today`` (UTC day).

        Only the day is kept, never a time: that is all active-user counts
        need. The stored day never moves backwards, so a late-arriving update
        from yesterday cannot hide today's activity.
        """
        async with self._transaction() as conn:
            await conn.execute(
                """
                INSERT INTO users (user_id, last_active) VALUES (?, ?)
                ON CONFLICT (user_id) DO UPDATE SET last_active =
                    CASE WHEN last_active IS NULL OR excluded.last_active > last_active
                         THEN excluded.last_active ELSE last_active END
                """,
                (user_id, today.isoformat()),
            )

    # ------------------------------------------------------------------ questions

    async def record_question(
        self, *, language: str, answered: bool, day: date, text: str | None = None
    ) -> None:
        """Count a question for statistics, keeping its text only if unanswered.

        Deliberately takes no user id. Counters are per day, so nothing records
        the order or time of individual questions either. Unanswered texts
        are normalised (see :func:`normalise_question`) and also kept without
        any link to a user, so that staff can see what the knowledge base
        lacks; :meth:`purge_unanswered` bounds how long they stay.
        """
        _check_language(language)
        async with self._transaction() as conn:
            await self._count_question(conn, language, answered, day, text)

    async def record_asked(
        self, *, user_id: int, language: str, answered: bool, day: date, text: str | None = None
    ) -> None:
        """Everything one question changes, in one transaction: the asker's activity day (and
        their language when they are new) and the anonymous counters of `record_question`.
        One commit instead of three keeps many concurrent askers from queueing on the disk."""
        _check_language(language)
        async with self._transaction() as conn:
            await conn.execute(
                """
                INSERT INTO users (user_id, language, last_active) VALUES (?, ?, ?)
                ON CONFLICT (user_id) DO UPDATE SET last_active =
                    CASE WHEN last_active IS NULL OR excluded.last_active > last_active
                         THEN excluded.last_active ELSE last_active END
                """,
                (user_id, language, day.isoformat()),
            )
            await self._count_question(conn, language, answered, day, text)

    @staticmethod
    async def _count_question(
        conn: aiosqlite.Connection, language: str, answered: bool, day: date, text: str | None
    ) -> None:
        normalised = normalise_question(text) if text is not None and not answered else ""
        await conn.execute(
            """
            INSERT INTO questions (day, language, answered, count) VALUES (?, ?, ?, 1)
            ON CONFLICT (day, language, answered) DO UPDATE SET count = count + 1
            """,
            (day.isoformat(), language, int(answered)),
        )
        if normalised:
            await conn.execute(
                """
                INSERT INTO unanswered (day, text, count) VALUES (?, ?, 1)
                ON CONFLICT (day, text) DO UPDATE SET count = count + 1
                """,
                (day.isoformat(), normalised),
            )

    async def gaps(self, *, since: date, limit: int = 10) -> list[Gap]:
        """Most frequent unanswered questions from ``since`` (inclusive) onwards."""
        if limit < 1:
            raise ValueError("limit must be positive")
        rows = await self._fetchall(
            """
            SELECT text, sum(count) AS total, max(day) AS last_day
            FROM unanswered WHERE day >= ?
            GROUP BY text
            ORDER BY total DESC, last_day DESC, text
            LIMIT ?
            """,
            (since.isoformat(), limit),
        )
        return [
            Gap(text=str(text), count=int(total), last_day=date.fromisoformat(last_day))
            for text, total, last_day in rows
        ]

    async def purge_unanswered(self, *, before: date) -> int:
        """Delete unanswered texts from days before ``before``.

        Returns the number of questions removed (not storage rows), which is
        the figure meaningful to whoever runs the retention job.
        """
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM unanswered WHERE day < ? RETURNING count", (before.isoformat(),)
            )
            try:
                rows = await cursor.fetchall()
            finally:
                await cursor.close()
        return sum(int(count) for (count,) in rows)

    # ------------------------------------------------------------------ feedback

    async def add_feedback(
        self, *, user_id: int, answer_id: str, value: int, language: str, day: date
    ) -> None:
        """Store a vote; a user's later vote on the same answer replaces the earlier.

        The user id is kept only to make votes one-per-user; :meth:`forget`
        removes it.
        """
        if value not in (1, -1):
            raise ValueError("feedback value must be +1 or -1")
        _check_language(language)
        async with self._transaction() as conn:
            await conn.execute(
                """
                INSERT INTO feedback (user_id, answer_id, value, language, day)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (user_id, answer_id) DO UPDATE SET
                    value = excluded.value, language = excluded.language, day = excluded.day
                """,
                (user_id, answer_id, value, language, day.isoformat()),
            )

    # ------------------------------------------------------------------ reminders

    async def subscribe(
        self, *, user_id: int, chat_id: int, meeting_id: str, remind_at: datetime
    ) -> bool:
        """Subscribe to a meeting reminder; ``False`` if already subscribed."""
        when = _utc_text(remind_at)
        async with self._transaction() as conn:
            changed = await self._changes(
                conn,
                """
                INSERT INTO subscriptions (user_id, chat_id, meeting_id, remind_at)
                VALUES (?, ?, ?, ?)
                ON CONFLICT (user_id, meeting_id) DO NOTHING
                """,
                (user_id, chat_id, meeting_id, when),
            )
        return changed > 0

    async def unsubscribe(self, *, user_id: int, meeting_id: str) -> bool:
        async with self._transaction() as conn:
            changed = await self._changes(
                conn,
                "DELETE FROM subscriptions WHERE user_id = ? AND meeting_id = ?",
                (user_id, meeting_id),
            )
        return changed > 0

    async def subscriptions(self, user_id: int) -> list[Subscription]:
        rows = await self._fetchall(
            f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions"
            " WHERE user_id = ? ORDER BY remind_at, id",
            (user_id,),
        )
        return [_subscription(row) for row in rows]

    async def pending_reminders(self) -> list[Subscription]:
        """Unsent reminders, soonest first, for re-queueing jobs after a restart.

        Includes reminders whose time has already passed while the bot was
        down; the caller decides whether a late reminder is still useful.
        """
        rows = await self._fetchall(
            f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions"
            " WHERE sent = 0 ORDER BY remind_at, id"
        )
        return [_subscription(row) for row in rows]

    async def mark_reminder_sent(self, subscription_id: int) -> None:
        """Mark a reminder as delivered.

        A missing id is not an error: the user may have unsubscribed while the
        job was already running.
        """
        async with self._transaction() as conn:
            await conn.execute("UPDATE subscriptions SET sent = 1 WHERE id = ?", (subscription_id,))

    async def drop_reminders_for_chat(self, chat_id: int) -> int:
        """Delete every subscription (sent or not) for a chat that blocked the bot.

        Sent ones go too: once a user has blocked the bot there is no reason
        to keep anything about their reminders.
        """
        async with self._transaction() as conn:
            return await self._changes(
                conn, "DELETE FROM subscriptions WHERE chat_id = ?", (chat_id,)
            )

    # ------------------------------------------------------------------ audit

    async def audit(
        self, *, admin_id: int, action: str, detail: str = "", at: datetime | None = None
    ) -> None:
        """Append to the admin audit log.

        Admin ids are kept (admins are staff and accountable for their
        actions). ``at`` defaults to now and exists so tests can pin time.
        """
        if not action:
            raise ValueError("action must not be empty")
        when = _utc_text(at if at is not None else datetime.now(UTC))
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO audit_log (at, admin_id, action, detail) VALUES (?, ?, ?, ?)",
                (when, admin_id, action, detail),
            )

    async def audit_entries(self, limit: int = 50) -> list[AuditEntry]:
        """Most recent entries first."""
        if limit < 1:
            raise ValueError("limit must be positive")
        rows = await self._fetchall(
            "SELECT id, at, admin_id, action, detail FROM audit_log ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            AuditEntry(
                id=int(entry_id),
                at=_parse_utc(at),
                admin_id=int(admin_id),
                action=str(action),
                detail=str(detail),
            )
            for entry_id, at, admin_id, action, detail in rows
        ]

    # ------------------------------------------------------------------ stats

    async def stats(self, *, since: date) -> Stats:
        """Aggregate figures for days from ``since`` (inclusive) onwards.

        Read in one transaction so the totals and per-language figures are
        consistent with each other even while handlers keep writing.
        """
        day = since.isoformat()
        async with self._lock:
            conn = self._connection()
            try:
                await conn.execute("BEGIN")
                try:
                    users = await conn.execute_fetchall(
                        "SELECT language, count(*) FROM users"
                        " WHERE last_active >= ? GROUP BY language",
                        (day,),
                    )
                    questions = await conn.execute_fetchall(
                        "SELECT language, sum(count), sum(CASE WHEN answered THEN count END)"
                        " FROM questions WHERE day >= ? GROUP BY language",
                        (day,),
                    )
                    feedback = await conn.execute_fetchall(
                        "SELECT language, sum(value > 0), sum(value < 0)"
                        " FROM feedback WHERE day >= ? GROUP BY language",
                        (day,),
                    )
                finally:
                    await conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

        figures: dict[str, dict[str, int]] = {lang: {} for lang in LANGUAGES}
        for language, count in users:
            figures.setdefault(language, {})["users"] = int(count)
        for language, asked, answered in questions:
            entry = figures.setdefault(language, {})
            entry["questions"] = int(asked or 0)
            entry["answered"] = int(answered or 0)
        for language, up, down in feedback:
            entry = figures.setdefault(language, {})
            entry["feedback_up"] = int(up or 0)
            entry["feedback_down"] = int(down or 0)
        per_language = {lang: LanguageStats(**values) for lang, values in figures.items()}
        return Stats(
            since=since,
            active_users=sum(s.users for s in per_language.values()),
            questions=sum(s.questions for s in per_language.values()),
            answered=sum(s.answered for s in per_language.values()),
            feedback_up=sum(s.feedback_up for s in per_language.values()),
            feedback_down=sum(s.feedback_down for s in per_language.values()),
            per_language=per_language,
        )

    async def daily_questions(self, *, since: date) -> list[DailyQuestions]:
        """Questions per day and language from ``since`` on, for the /stats chart.

        Days without questions are simply absent; the chart fills them in.
        """
        rows = await self._fetchall(
            "SELECT day, language, sum(count), sum(CASE WHEN answered THEN count ELSE 0 END)"
            " FROM questions WHERE day >= ? GROUP BY day, language ORDER BY day, language",
            (since.isoformat(),),
        )
        return [
            DailyQuestions(
                day=date.fromisoformat(day),
                language=str(language),
                questions=int(asked),
                answered=int(answered),
            )
            for day, language, asked, answered in rows
        ]

    # ------------------------------------------------------------------ privacy

    async def forget(self, user_id: int) -> dict[str, int]:
        """Erase everything stored about a user; returns rows deleted per table.

        All tables are cleared in one transaction, so a failure part-way leaves
        the user's data intact rather than half-erased (and the request can
        simply be retried). ``secure_delete`` is on, so the deleted bytes are
        overwritten in the file rather than left in free pages.
        """
        deleted: dict[str, int] = {}
        async with self._transaction() as conn:
            for table in self.FORGET_TABLES:
                # Table names come from the class constant, never from input.
                deleted[table] = await self._changes(
                    conn, f"DELETE FROM {table} WHERE user_id = ?", (user_id,)
                )
        return deleted


# ---------------------------------------------------------------------- opening


def _prepare_file(path: Path) -> None:
    """Create the directory and an empty file readable only by the bot's user.

    SQLite would create the file with the process umask (often world
    readable), and its -wal/-shm files copy the main file's permissions, so
    creating it 0600 first keeps all three private.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StorageError(f"cannot create database {path}: {exc}") from exc
    os.close(fd)


def _is_locked(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def _configure(conn: aiosqlite.Connection, path: Path, busy_timeout: float) -> None:
    """Set per-connection pragmas, retrying while another process holds a lock.

    The retry loop exists for switching a new file to WAL: that needs an
    exclusive lock, and when two processes create the file at once SQLite
    reports the lock conflict immediately (to avoid deadlock) instead of
    waiting ``busy_timeout``. Every pragma here is idempotent, so repeating
    them all is safe.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + busy_timeout
    while True:
        try:
            await _apply_pragmas(conn, path, busy_timeout)
            return
        except sqlite3.DatabaseError as exc:
            if not _is_locked(exc):
                raise StorageError(f"{path} is not a usable SQLite database: {exc}") from exc
            if loop.time() >= deadline:
                raise StorageError(f"database {path} is locked by another process") from exc
        await asyncio.sleep(0.05)


async def _apply_pragmas(conn: aiosqlite.Connection, path: Path, busy_timeout: float) -> None:
    """Configure the connection and reject files that are not healthy SQLite databases.

    Runs outside any transaction because SQLite ignores ``foreign_keys`` and
    refuses ``journal_mode`` changes inside one.
    """
    await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    # The first statement that reads the header: garbage fails here.
    mode = list(await conn.execute_fetchall("PRAGMA journal_mode = WAL"))
    if not mode or str(mode[0][0]).lower() != "wal":
        raise StorageError(f"database {path} cannot use WAL journal mode")
    rows = list(await conn.execute_fetchall("PRAGMA quick_check"))
    if [tuple(row) for row in rows] != [("ok",)]:
        problems = "; ".join(str(row[0]) for row in rows[:5])
        raise StorageError(f"database {path} is corrupt: {problems}")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL
    await conn.execute("PRAGMA secure_delete = ON")


async def _migrate(conn: aiosqlite.Connection, path: Path) -> None:
    """Bring the schema to :data:`LATEST_VERSION`, all-or-nothing.

    An up-to-date database is detected without taking the write lock, so a
    second process can open the file while another one is writing. Otherwise
    the version is read again inside the write transaction, so two processes
    starting at once cannot both apply the same migration.
    """
    try:
        if await _user_version(conn) == LATEST_VERSION:
            return
        await conn.execute("BEGIN IMMEDIATE")
        try:
            version = await _user_version(conn)
            if version > LATEST_VERSION:
                raise StorageError(
                    f"database {path} has schema version {version}, newer than this"
                    f" code supports ({LATEST_VERSION}); refusing to touch it"
                )
            for number in range(version, LATEST_VERSION):
                for statement in split_statements(MIGRATIONS[number]):
                    await conn.execute(statement)
            if version != LATEST_VERSION:
                await conn.execute(f"PRAGMA user_version = {LATEST_VERSION}")
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StorageError(f"cannot migrate database {path}: {exc}") from exc


async def _user_version(conn: aiosqlite.Connection) -> int:
    rows = list(await conn.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])
