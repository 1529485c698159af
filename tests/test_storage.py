"""Tests for bot.storage against real SQLite files in a temporary directory."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.storage import (
    LANGUAGES,
    LATEST_VERSION,
    MAX_QUESTION_CHARS,
    LanguageStats,
    Storage,
    StorageError,
    normalise_question,
)
from bot.storage.migrations import split_statements

TODAY = date(2025, 3, 31)
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "brobygger.sqlite3"


@pytest.fixture
async def storage(db_path: Path) -> AsyncIterator[Storage]:
    store = await Storage.open(db_path)
    try:
        yield store
    finally:
        await store.close()


def query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the file through a separate plain sqlite3 connection, as an outsider would."""
    with closing(sqlite3.connect(path)) as conn:
        return [tuple(row) for row in conn.execute(sql, params).fetchall()]


def columns(path: Path, table: str) -> set[str]:
    return {row[0] for row in query(path, "SELECT name FROM pragma_table_info(?)", (table,))}


def schema(path: Path) -> list[tuple[Any, ...]]:
    return query(path, "SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_garbage(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database \x00\xff" * 200)


def damage_page(path: Path, page: int, page_size: int = 4096) -> None:
    """Overwrite one page after the first, so the header still says SQLite."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    assert page >= 1
    assert len(data) >= (page + 1) * page_size
    data[page * page_size : (page + 1) * page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------- opening


async def test_open_creates_parent_dir_private_file_and_wal(db_path: Path) -> None:
    async with await Storage.open(db_path) as store:
        assert store.path == db_path
        assert db_path.parent.is_dir()
        assert query(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert file_mode(db_path) == 0o600


async def test_connection_pragmas(storage: Storage) -> None:
    conn = storage._connection()
    for pragma, expected in [
        ("journal_mode", "wal"),
        ("foreign_keys", 1),
        ("busy_timeout", 5000),
        ("secure_delete", 1),
    ]:
        rows = list(await conn.execute_fetchall(f"PRAGMA {pragma}"))
        assert rows[0][0] == expected, pragma


async def test_migrations_are_idempotent(db_path: Path) -> None:
    store = await Storage.open(db_path)
    await store.save_user(1, language="sv")
    await store.close()
    first = schema(db_path)
    assert query(db_path, "PRAGMA user_version") == [(LATEST_VERSION,)]

    for _ in range(2):
        async with await Storage.open(db_path) as store:
            assert (await store.get_user(1)) is not None
    assert schema(db_path) == first
    assert query(db_path, "PRAGMA user_version") == [(LATEST_VERSION,)]


async def test_two_processes_opening_fresh_file_at_once(db_path: Path) -> None:
    stores = await asyncio.gather(*(Storage.open(db_path) for _ in range(4)))
    try:
        assert query(db_path, "PRAGMA user_version") == [(LATEST_VERSION,)]
    finally:
        for store in stores:
            await store.close()


async def test_newer_schema_is_refused(db_path: Path) -> None:
    async with await Storage.open(db_path):
        pass
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(StorageError, match="newer") as info:
        await Storage.open(db_path)
    assert str(db_path) in str(info.value)


async def test_corrupt_file_raises_storage_error_naming_file(db_path: Path) -> None:
    write_garbage(db_path)
    with pytest.raises(StorageError) as info:
        await Storage.open(db_path)
    assert str(db_path) in str(info.value)


async def test_damaged_database_page_raises_storage_error(db_path: Path) -> None:
    async with await Storage.open(db_path) as store:
        for user_id in range(500):
            await store.save_user(user_id, language="da")
    damage_page(db_path, page=2)
    with pytest.raises(StorageError) as info:
        await Storage.open(db_path)
    assert str(db_path) in str(info.value)


async def test_closed_storage_raises(db_path: Path) -> None:
    store = await Storage.open(db_path)
    await store.close()
    await store.close()  # harmless twice
    with pytest.raises(StorageError, match="closed"):
        await store.get_user(1)
    with pytest.raises(StorageError, match="closed"):
        await store.save_user(1)


def test_split_statements_handles_semicolons_in_literals_and_triggers() -> None:
    script = """
    CREATE TABLE t (x TEXT DEFAULT 'a;b');
    -- a comment
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        UPDATE t SET x = 'c;d';
    END;
    """
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[1].startswith("-- a comment")
    assert statements[1].rstrip().endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;")


# --------------------------------------------------------------------------- users


async def test_save_user_upserts_only_given_fields(storage: Storage) -> None:
    assert await storage.get_user(5) is None

    created = await storage.save_user(5)
    assert (created.language, created.role, created.last_active) == ("en", None, None)

    assert (await storage.save_user(5, language="sv")).language == "sv"
    updated = await storage.save_user(5, role="practitioner")
    assert (updated.language, updated.role) == ("sv", "practitioner")
    updated = await storage.save_user(5, language="da")
    assert (updated.language, updated.role) == ("da", "practitioner")
    assert await storage.get_user(5) == updated


async def test_save_user_keeps_last_active(storage: Storage) -> None:
    await storage.touch_user(8, TODAY)
    prefs = await storage.save_user(8, role="young")
    assert prefs.last_active == TODAY
    assert prefs.language == "en"


@pytest.mark.parametrize(
    "kwargs", [{"language": "de"}, {"language": ""}, {"role": "admin"}, {"role": ""}]
)
async def test_save_user_rejects_unknown_values(storage: Storage, kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        await storage.save_user(1, **kwargs)
    assert await storage.get_user(1) is None


async def test_touch_user_stores_day_and_never_moves_back(storage: Storage, db_path: Path) -> None:
    await storage.touch_user(3, TODAY)
    await storage.touch_user(3, TODAY - timedelta(days=5))
    prefs = await storage.get_user(3)
    assert prefs is not None
    assert prefs.last_active == TODAY
    assert query(db_path, "SELECT last_active FROM users") == [("2025-03-31",)]
    await storage.touch_user(3, TODAY + timedelta(days=1))
    prefs = await storage.get_user(3)
    assert prefs is not None
    assert prefs.last_active == TODAY + timedelta(days=1)


# --------------------------------------------------------------------------- stats


async def test_stats_windows_and_per_language(storage: Storage) -> None:
    week, month = TODAY - timedelta(days=6), TODAY - timedelta(days=29)
    for user_id, language, days_ago in [
        (1, "en", 0),
        (2, "sv", 3),
        (3, "sv", 10),
        (4, "da", 29),
        (5, "da", 30),  # just outside the month
        (6, "en", 100),
    ]:
        await storage.save_user(user_id, language=language)
        await storage.touch_user(user_id, TODAY - timedelta(days=days_ago))
    await storage.save_user(7, language="sv")  # never active

    for language, answered, days_ago in [
        ("en", True, 0),
        ("en", False, 1),
        ("sv", True, 6),
        ("sv", True, 7),
        ("da", False, 20),
        ("da", True, 45),
    ]:
        await storage.record_question(
            language=language, answered=answered, day=TODAY - timedelta(days=days_ago)
        )

    await storage.add_feedback(user_id=1, answer_id="a", value=1, language="en", day=TODAY)
    await storage.add_feedback(user_id=2, answer_id="a", value=-1, language="sv", day=TODAY)
    await storage.add_feedback(
        user_id=3, answer_id="b", value=1, language="sv", day=TODAY - timedelta(days=15)
    )

    weekly = await storage.stats(since=week)
    assert weekly.since == week
    assert (weekly.active_users, weekly.questions, weekly.answered, weekly.unanswered) == (
        2,
        3,
        2,
        1,
    )
    assert (weekly.feedback_up, weekly.feedback_down) == (1, 1)
    assert weekly.per_language == {
        "en": LanguageStats(questions=2, answered=1, users=1, feedback_up=1),
        "sv": LanguageStats(questions=1, answered=1, users=1, feedback_down=1),
        "da": LanguageStats(),
    }

    monthly = await storage.stats(since=month)
    assert (monthly.active_users, monthly.questions, monthly.answered) == (4, 5, 3)
    assert (monthly.feedback_up, monthly.feedback_down) == (2, 1)
    assert monthly.per_language == {
        "en": LanguageStats(questions=2, answered=1, users=1, feedback_up=1),
        "sv": LanguageStats(questions=2, answered=2, users=2, feedback_up=1, feedback_down=1),
        "da": LanguageStats(questions=1, answered=0, users=1),
    }


async def test_stats_on_empty_database_lists_every_language(storage: Storage) -> None:
    stats = await storage.stats(since=TODAY)
    assert stats.active_users == stats.questions == stats.answered == 0
    assert set(stats.per_language) == set(LANGUAGES)
    assert all(value == LanguageStats() for value in stats.per_language.values())


# --------------------------------------------------------------------------- questions


async def test_question_tables_hold_no_user_identity(storage: Storage, db_path: Path) -> None:
    await storage.record_question(language="sv", answered=False, day=TODAY, text="Hur gör jag?")
    await storage.record_question(language="sv", answered=True, day=TODAY, text="Svarad fråga")
    for table in ("questions", "unanswered"):
        cols = columns(db_path, table)
        assert cols, table
        assert not any("user" in c or "chat" in c for c in cols), (table, cols)
    assert columns(db_path, "questions") == {"day", "language", "answered", "count"}
    assert columns(db_path, "unanswered") == {"day", "text", "count"}
    # Answered question texts are never stored.
    assert query(db_path, "SELECT text FROM unanswered") == [("hur gör jag?",)]
    assert sorted(query(db_path, "SELECT answered, count FROM questions")) == [(0, 1), (1, 1)]


async def test_record_question_validates_language(storage: Storage) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        await storage.record_question(language="xx", answered=True, day=TODAY)


def test_normalise_question() -> None:
    assert normalise_question("  Hur\tSÖKER   jag\n\n CSN?  ") == "hur söker jag csn?"
    assert normalise_question("ring mig på +46 70-123 45 67 tack") == "ring mig på [number] tack"
    assert normalise_question("mitt personnummer 20050101-1234") == "mitt personnummer [number]"
    assert normalise_question("Mail: Kim.Svensson@example.se") == "mail: [email]"
    assert normalise_question("ung 16-24 år, 2025") == "ung 16-24 år, 2025"
    long = normalise_question("å" * 2000)
    assert long == "å" * MAX_QUESTION_CHARS
    assert normalise_question("   \n\t ") == ""


async def test_gaps_ranking_normalisation_window_and_limit(storage: Storage) -> None:
    async def ask(text: str, days_ago: int = 0, *, answered: bool = False) -> None:
        await storage.record_question(
            language="da", answered=answered, day=TODAY - timedelta(days=days_ago), text=text
        )

    for _ in range(3):
        await ask("Hvad er  NEET?")
    await ask("  hvad er neet?  ", days_ago=2)
    await ask("HVAD   ER\nNEET?", days_ago=40)  # outside the window
    for days_ago in (1, 5):
        await ask("Hvordan får jeg SU?", days_ago=days_ago)
    await ask("Hvor er mødet?", days_ago=3)
    await ask("Hvad er en mentor?", days_ago=3)
    await ask("besvaret spørgsmål", answered=True)
    await ask("   ")  # nothing left to store

    gaps = await storage.gaps(since=TODAY - timedelta(days=30))
    assert [(g.text, g.count, g.last_day) for g in gaps] == [
        ("hvad er neet?", 4, TODAY),
        ("hvordan får jeg su?", 2, TODAY - timedelta(days=1)),
        # equal count and day: alphabetical, so the order is stable
        ("hvad er en mentor?", 1, TODAY - timedelta(days=3)),
        ("hvor er mødet?", 1, TODAY - timedelta(days=3)),
    ]
    assert len(await storage.gaps(since=TODAY - timedelta(days=30), limit=2)) == 2
    all_time = await storage.gaps(since=date.min)
    assert all_time[0].count == 5
    assert await storage.gaps(since=TODAY + timedelta(days=1)) == []
    with pytest.raises(ValueError, match="limit"):
        await storage.gaps(since=TODAY, limit=0)


async def test_long_unanswered_text_truncated(storage: Storage, db_path: Path) -> None:
    await storage.record_question(language="en", answered=False, day=TODAY, text="why " * 400)
    ((length,),) = query(db_path, "SELECT length(text) FROM unanswered")
    assert length <= MAX_QUESTION_CHARS


async def test_purge_unanswered_retention(storage: Storage, db_path: Path) -> None:
    for days_ago, text in [(100, "old"), (100, "old"), (91, "older"), (90, "edge"), (1, "new")]:
        await storage.record_question(
            language="en", answered=False, day=TODAY - timedelta(days=days_ago), text=text
        )
    cutoff = TODAY - timedelta(days=90)
    assert await storage.purge_unanswered(before=cutoff) == 3
    remaining = {g.text for g in await storage.gaps(since=date.min)}
    assert remaining == {"edge", "new"}
    assert await storage.purge_unanswered(before=cutoff) == 0
    # Anonymous counters are kept for long-term statistics.
    assert (await storage.stats(since=date.min)).questions == 5


# --------------------------------------------------------------------------- feedback


async def test_feedback_revote_replaces(storage: Storage, db_path: Path) -> None:
    await storage.add_feedback(user_id=1, answer_id="csn", value=1, language="sv", day=TODAY)
    await storage.add_feedback(user_id=1, answer_id="csn", value=-1, language="en", day=TODAY)
    await storage.add_feedback(user_id=2, answer_id="csn", value=1, language="sv", day=TODAY)
    await storage.add_feedback(user_id=1, answer_id="other", value=1, language="sv", day=TODAY)
    assert sorted(query(db_path, "SELECT user_id, answer_id, value, language FROM feedback")) == [
        (1, "csn", -1, "en"),
        (1, "other", 1, "sv"),
        (2, "csn", 1, "sv"),
    ]
    stats = await storage.stats(since=TODAY)
    assert (stats.feedback_up, stats.feedback_down) == (2, 1)


@pytest.mark.parametrize("value", [0, 2, -2])
async def test_feedback_rejects_other_values(storage: Storage, value: int) -> None:
    with pytest.raises(ValueError, match="feedback"):
        await storage.add_feedback(user_id=1, answer_id="a", value=value, language="en", day=TODAY)


# --------------------------------------------------------------------------- reminders


async def test_subscription_lifecycle(storage: Storage, db_path: Path) -> None:
    soon = datetime(2025, 4, 2, 8, 0, tzinfo=UTC)
    later = datetime(2025, 4, 3, 17, 30, tzinfo=timezone(timedelta(hours=2)))  # 15:30 UTC

    assert await storage.subscribe(user_id=1, chat_id=1, meeting_id="m2", remind_at=later)
    assert await storage.subscribe(user_id=1, chat_id=1, meeting_id="m1", remind_at=soon)
    assert not await storage.subscribe(user_id=1, chat_id=1, meeting_id="m1", remind_at=later)
    assert await storage.subscribe(user_id=2, chat_id=-100, meeting_id="m1", remind_at=soon)

    mine = await storage.subscriptions(1)
    assert [(s.meeting_id, s.remind_at, s.sent) for s in mine] == [
        ("m1", soon, False),
        ("m2", datetime(2025, 4, 3, 15, 30, tzinfo=UTC), False),
    ]
    assert all(s.remind_at.tzinfo is not None for s in mine)
    assert query(db_path, "SELECT remind_at FROM subscriptions WHERE meeting_id = 'm2'") == [
        ("2025-04-03T15:30:00+00:00",)
    ]

    pending = await storage.pending_reminders()
    assert [(s.user_id, s.meeting_id) for s in pending] == [(1, "m1"), (2, "m1"), (1, "m2")]

    await storage.mark_reminder_sent(pending[0].id)
    await storage.mark_reminder_sent(999_999)  # already gone: no error
    assert [s.id for s in await storage.pending_reminders()] == [pending[1].id, pending[2].id]
    assert [s.sent for s in await storage.subscriptions(1)] == [True, False]

    assert await storage.unsubscribe(user_id=1, meeting_id="m2")
    assert not await storage.unsubscribe(user_id=1, meeting_id="m2")
    assert [s.meeting_id for s in await storage.subscriptions(1)] == ["m1"]

    assert await storage.drop_reminders_for_chat(1) == 1  # the sent one goes too
    assert await storage.drop_reminders_for_chat(1) == 0
    assert await storage.subscriptions(1) == []
    assert [s.chat_id for s in await storage.pending_reminders()] == [-100]


async def test_subscription_ids_are_not_reused(storage: Storage) -> None:
    when = datetime(2025, 4, 2, tzinfo=UTC)
    await storage.subscribe(user_id=1, chat_id=1, meeting_id="a", remind_at=when)
    (first,) = await storage.subscriptions(1)
    await storage.unsubscribe(user_id=1, meeting_id="a")
    await storage.subscribe(user_id=2, chat_id=2, meeting_id="b", remind_at=when)
    (second,) = await storage.subscriptions(2)
    assert second.id != first.id
    await storage.mark_reminder_sent(first.id)  # a stale job must not touch user 2
    assert [s.sent for s in await storage.pending_reminders()] == [False]


async def test_subscribe_rejects_naive_datetime(storage: Storage) -> None:
    with pytest.raises(ValueError, match="timezone"):
        await storage.subscribe(
            user_id=1, chat_id=1, meeting_id="m", remind_at=datetime(2025, 4, 2, 8, 0)
        )


# --------------------------------------------------------------------------- audit


async def test_audit_log(storage: Storage) -> None:
    at = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)
    await storage.audit(admin_id=10, action="reload", at=at)
    await storage.audit(admin_id=11, action="broadcast", detail="meeting moved")
    entries = await storage.audit_entries()
    assert [(e.admin_id, e.action, e.detail) for e in entries] == [
        (11, "broadcast", "meeting moved"),
        (10, "reload", ""),
    ]
    assert entries[1].at == at
    assert entries[0].at.tzinfo is not None
    assert len(await storage.audit_entries(limit=1)) == 1
    with pytest.raises(ValueError, match="action"):
        await storage.audit(admin_id=10, action="")


# --------------------------------------------------------------------------- privacy


async def _populate_user(storage: Storage, user_id: int) -> None:
    await storage.save_user(user_id, language="sv", role="young")
    await storage.touch_user(user_id, TODAY)
    await storage.add_feedback(user_id=user_id, answer_id="a", value=1, language="sv", day=TODAY)
    await storage.add_feedback(user_id=user_id, answer_id="b", value=-1, language="sv", day=TODAY)
    for meeting in ("m1", "m2"):
        await storage.subscribe(
            user_id=user_id,
            chat_id=user_id,
            meeting_id=meeting,
            remind_at=datetime(2025, 4, 2, tzinfo=UTC),
        )
    await storage.record_question(language="sv", answered=False, day=TODAY, text="hjälp")


async def test_forget_covers_every_user_linked_table(storage: Storage, db_path: Path) -> None:
    user_tables = await storage.user_tables()
    # If this fails, a migration added a table with a user_id/chat_id column:
    # add it to Storage.FORGET_TABLES (and to _populate_user above).
    assert user_tables == set(Storage.FORGET_TABLES)

    await _populate_user(storage, 42)
    await _populate_user(storage, 7)
    await storage.audit(admin_id=42, action="reload")

    for table in user_tables:
        assert query(db_path, f"SELECT count(*) FROM {table} WHERE user_id = 42") != [(0,)], (
            f"_populate_user does not exercise {table}"
        )

    deleted = await storage.forget(42)
    assert deleted == {"users": 1, "feedback": 2, "subscriptions": 2}
    assert set(deleted) == user_tables

    for table in user_tables:
        for column in columns(db_path, table) & {"user_id", "chat_id"}:
            rows = query(db_path, f"SELECT count(*) FROM {table} WHERE {column} = 42")
            assert rows == [(0,)], (table, column)
            others = query(db_path, f"SELECT count(*) FROM {table} WHERE {column} = 7")
            assert others != [(0,)], (table, column)
    assert await storage.get_user(42) is None
    # Anonymous statistics and the staff audit log are not personal data of the user.
    assert (await storage.stats(since=TODAY)).questions == 2
    assert [e.admin_id for e in await storage.audit_entries()] == [42]

    assert await storage.forget(42) == dict.fromkeys(Storage.FORGET_TABLES, 0)


async def test_user_tables_notices_new_user_linked_table(storage: Storage, db_path: Path) -> None:
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER, body TEXT)")
        conn.commit()
    assert "notes" in await storage.user_tables()
    assert await storage.user_tables() != set(Storage.FORGET_TABLES)


async def test_forget_failing_midway_keeps_everything(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _populate_user(storage, 42)
    monkeypatch.setattr(Storage, "FORGET_TABLES", (*Storage.FORGET_TABLES, "no_such_table"))
    with pytest.raises(StorageError, match="no_such_table"):
        await storage.forget(42)
    assert await storage.get_user(42) is not None
    assert len(await storage.subscriptions(42)) == 2
    assert (await storage.stats(since=TODAY)).feedback_up == 1


# --------------------------------------------------------------------------- transactions


async def test_exception_inside_transaction_rolls_back(storage: Storage) -> None:
    async def crash() -> None:
        async with storage._transaction() as conn:
            await conn.execute("INSERT INTO users (user_id) VALUES (1)")
            await conn.execute("INSERT INTO audit_log (at, admin_id, action) VALUES ('x', 1, 'a')")
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        await crash()
    assert await storage.get_user(1) is None
    assert await storage.audit_entries() == []
    # The lock was released and no transaction is left open.
    assert not storage._connection().in_transaction
    await storage.save_user(1)
    assert await storage.get_user(1) is not None


async def test_cancelled_transaction_rolls_back(storage: Storage) -> None:
    entered = asyncio.Event()

    async def slow_write() -> None:
        async with storage._transaction() as conn:
            await conn.execute("INSERT INTO users (user_id) VALUES (1)")
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow_write())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await storage.get_user(1) is None
    await storage.save_user(2)


async def test_process_killed_mid_transaction_leaves_no_trace(db_path: Path) -> None:
    async with await Storage.open(db_path) as store:
        await store.save_user(1)
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from pathlib import Path
        from bot.storage import Storage

        async def main():
            store = await Storage.open(Path({str(db_path)!r}))
            async with store._transaction() as conn:
                await conn.execute("UPDATE users SET language = 'da'")
                await conn.execute("INSERT INTO users (user_id) VALUES (2)")
                os._exit(3)

        asyncio.run(main())
        """
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=REPO_ROOT)
    assert await proc.wait() == 3
    async with await Storage.open(db_path) as store:
        prefs = await store.get_user(1)
        assert prefs is not None
        assert prefs.language == "en"
        assert await store.get_user(2) is None


async def test_internal_sql_errors_surface_as_storage_error(storage: Storage) -> None:
    async def bad_write() -> None:
        async with storage._transaction() as conn:
            await conn.execute("INSERT INTO users (user_id) VALUES (1)")
            await conn.execute("INSERT INTO users (user_id, language) VALUES (2, 'xx')")

    with pytest.raises(StorageError, match="CHECK constraint") as info:
        await bad_write()
    assert str(storage.path) in str(info.value)
    assert await storage.get_user(1) is None


# --------------------------------------------------------------------------- concurrency


async def test_concurrent_writers_lose_nothing(storage: Storage) -> None:
    async def work(i: int) -> None:
        language = LANGUAGES[i % 3]
        await storage.save_user(i, language=language)
        await storage.touch_user(i, TODAY)
        await storage.record_question(
            language=language, answered=i % 2 == 0, day=TODAY, text=f"question {i % 10}"
        )
        await storage.add_feedback(
            user_id=i, answer_id="a", value=1 if i % 4 else -1, language=language, day=TODAY
        )

    await asyncio.gather(*(work(i) for i in range(200)))

    stats = await storage.stats(since=TODAY)
    assert stats.active_users == 200
    assert stats.questions == 200
    assert stats.answered == 100
    assert (stats.feedback_up, stats.feedback_down) == (150, 50)
    assert sum(s.users for s in stats.per_language.values()) == 200
    gaps = await storage.gaps(since=TODAY, limit=100)
    assert sum(g.count for g in gaps) == 100
    users = await asyncio.gather(*(storage.get_user(i) for i in range(200)))
    assert None not in users


async def test_concurrent_subscribes_to_same_meeting(storage: Storage) -> None:
    when = datetime(2025, 4, 2, tzinfo=UTC)
    results = await asyncio.gather(
        *(
            storage.subscribe(user_id=1, chat_id=1, meeting_id="m", remind_at=when)
            for _ in range(50)
        )
    )
    assert results.count(True) == 1
    assert len(await storage.subscriptions(1)) == 1


async def test_second_storage_waits_for_lock(db_path: Path) -> None:
    first = await Storage.open(db_path)
    second = await Storage.open(db_path)
    try:
        async with first._transaction() as conn:
            await conn.execute("INSERT INTO users (user_id) VALUES (1)")
            blocked = asyncio.create_task(second.save_user(2, language="sv"))
            await asyncio.sleep(0.3)
            assert not blocked.done()  # waiting on busy_timeout, not failed
            # Other connections can still read in WAL mode, and do not see
            # the uncommitted row.
            assert query(db_path, "SELECT count(*) FROM users") == [(0,)]
        assert (await blocked).language == "sv"
        assert await second.get_user(1) is not None
        assert await first.get_user(2) is not None
    finally:
        await first.close()
        await second.close()


async def test_second_storage_gives_up_after_busy_timeout(db_path: Path) -> None:
    first = await Storage.open(db_path)
    second = await Storage.open(db_path, busy_timeout=0.1)
    try:
        async with first._transaction() as conn:
            await conn.execute("INSERT INTO users (user_id) VALUES (1)")
            with pytest.raises(StorageError, match="locked") as info:
                await second.save_user(2)
            assert str(db_path) in str(info.value)
        # Once the lock is free the same instance works again.
        await second.save_user(2)
        assert await first.get_user(2) is not None
    finally:
        await first.close()
        await second.close()


async def test_record_asked_is_activity_and_anonymous_counts_in_one_go(tmp_path: Path) -> None:
    """One question: the asker becomes active (new askers keep their language) and the counters
    and gap text change, without the text being linked to the asker."""
    storage = await Storage.open(tmp_path / "one.sqlite3")
    try:
        day = date(2026, 11, 22)
        await storage.record_asked(
            user_id=7, language="da", answered=False, day=day, text="Hvad koster  en pizza?"
        )
        await storage.record_asked(user_id=7, language="sv", answered=True, day=day)
        user = await storage.get_user(7)
        assert user is not None
        assert (user.language, user.last_active) == ("da", day)
        stats = await storage.stats(since=day)
        assert (stats.questions, stats.answered, stats.active_users) == (2, 1, 1)
        assert [gap.text for gap in await storage.gaps(since=day)] == ["hvad koster en pizza?"]
    finally:
        await storage.close()


async def test_lookups_do_not_wait_for_a_write_in_progress(storage: Storage) -> None:
    """A hundred people asking at once are looked up side by side, not one after another
    behind each other's writes: a lookup answers while a write transaction is open and sees
    only what was committed."""
    await storage.save_user(1, language="sv")
    async with storage._transaction() as conn:
        await conn.execute("UPDATE users SET language = 'da' WHERE user_id = 1")
        prefs = await asyncio.wait_for(storage.get_user(1), timeout=5)
        assert prefs is not None
        assert prefs.language == "sv"  # not yet committed
        lookups = await asyncio.wait_for(
            asyncio.gather(*(storage.get_user(n) for n in range(100))), timeout=5
        )
        assert [p is not None for p in lookups] == [n == 1 for n in range(100)]
    prefs = await storage.get_user(1)
    assert prefs is not None
    assert prefs.language == "da"
