"""`brobygger doctor`: is this installation ready to run? One line per check, ✓ or ✗ and why.

Checks the settings, the knowledge base (what the loader would skip), the crisis phrase files,
the search index (present, built with the configured model, readable, up to date with the
knowledge), the database (opens, schema current) and, when a token is set, that Telegram answers
`getMe` at TELEGRAM_API_BASE_URL. Nothing is changed: no index is built, no database created or
migrated. The exit status is 1 when any check failed.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TextIO

from bot.errors import BrobyggerError, SettingsError
from bot.settings import BUNDLED_MODEL, Settings, load_settings

#: How long Telegram may take to answer getMe before the check fails.
TELEGRAM_TIMEOUT_SECONDS = 10.0


class Status(Enum):
    OK = "✓"
    FAILED = "✗"
    SKIPPED = "–"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED

    def line(self) -> str:
        return f"{self.status.value} {self.name}: {self.detail}"


def _ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def _failed(name: str, detail: str) -> Check:
    return Check(name, Status.FAILED, detail)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def check_settings(
    environ: Mapping[str, str] | None = None, dotenv: Path | None = None
) -> tuple[Settings | None, Check]:
    try:
        settings = load_settings(environ, dotenv)
    except SettingsError as error:
        return None, _failed("settings", str(error))
    model = "bundled" if settings.embedding_model == BUNDLED_MODEL else settings.embedding_model
    return settings, _ok(
        "settings",
        f"knowledge {settings.knowledge_dir}, index {settings.index_dir}, "
        f"data {settings.data_dir}, model {model}, time zone {settings.timezone}",
    )


def check_knowledge(settings: Settings) -> Check:
    from bot.knowledge.loader import load_knowledge

    kb = load_knowledge(settings.knowledge_dir)
    loaded = (
        f"{_plural(len(kb.documents), 'document')}, {_plural(len(kb.projects), 'project')}, "
        f"{_plural(len(kb.meetings), 'meeting')}"
    )
    if kb.problems:
        more = f" (and {len(kb.problems) - 1} more)" if len(kb.problems) > 1 else ""
        return _failed(
            "knowledge",
            f"{_plural(len(kb.problems), 'problem')} the bot skips: {kb.problems[0]}{more}; "
            f"{loaded} load",
        )
    return _ok("knowledge", f"{loaded} in {settings.knowledge_dir}, no problems")


def check_crisis_phrases() -> Check:
    from bot.safety import CrisisRulesError, load_rules

    try:
        rules = load_rules()
    except CrisisRulesError as error:
        return _failed("crisis phrases", str(error))
    phrases = len(rules.own) + len(rules.implied) + len(rules.themes)
    return _ok("crisis phrases", f"{phrases} phrases in {', '.join(rules.languages)}")


def check_index(settings: Settings) -> Check:
    from bot.knowledge.loader import knowledge_checksum
    from bot.retrieval.store import load_index

    try:
        index = load_index(settings.index_dir, settings.embedding_model)
    except BrobyggerError as error:
        return _failed("index", str(error))
    meta = index.meta
    built = f"{meta.chunks} chunks of {meta.documents} documents, built {meta.built_at}"
    if meta.knowledge_checksum != knowledge_checksum(settings.knowledge_dir):
        return _failed(
            "index",
            f"stale: the knowledge changed after it was built ({built}): run `brobygger reindex`",
        )
    return _ok("index", f"{built} with {meta.model}, up to date")


def check_database(settings: Settings) -> Check:
    from bot.storage import LATEST_VERSION

    path = settings.database_path
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is None or not parent.is_dir() or not _writable(parent):
            return _failed("database", f"{path} does not exist and cannot be created there")
        return _ok("database", f"{path} does not exist yet; it is created at the first start")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as error:
        return _failed("database", f"cannot open {path}: {error}")
    if integrity != "ok":
        return _failed("database", f"{path} is damaged: {integrity}")
    if version > LATEST_VERSION:
        return _failed(
            "database",
            f"{path} has schema version {version}, newer than this version of the bot "
            f"({LATEST_VERSION}): run the newer version",
        )
    if version < LATEST_VERSION:
        return _failed(
            "database",
            f"{path} has schema version {version}, this version needs {LATEST_VERSION}: "
            "migrations are pending (the bot applies them at start)",
        )
    return _ok("database", f"{path} opens, schema version {version} is current")


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


async def check_telegram(settings: Settings) -> Check:
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError, TelegramError
    from telegram.request import HTTPXRequest

    if not settings.telegram_bot_token:
        return Check(
            "telegram",
            Status.SKIPPED,
            "not checked: TELEGRAM_BOT_TOKEN is not set (only `brobygger run` needs it)",
        )
    try:
        token = settings.require_token()
    except SettingsError as error:
        return _failed("telegram", str(error))
    timeout = TELEGRAM_TIMEOUT_SECONDS
    bot = Bot(
        token,
        base_url=settings.telegram_api_base_url,
        base_file_url=settings.telegram_api_base_file_url,
        request=HTTPXRequest(connect_timeout=timeout, read_timeout=timeout),
        get_updates_request=HTTPXRequest(connect_timeout=timeout, read_timeout=timeout),
    )
    where = settings.telegram_api_base_url.split("/bot")[0] or settings.telegram_api_base_url
    try:
        async with bot:
            me = bot.bot
    except InvalidToken:
        return _failed("telegram", f"{where} refused the token: check TELEGRAM_BOT_TOKEN")
    except NetworkError as error:
        return _failed("telegram", f"cannot reach {where}: {error}")
    except TelegramError as error:
        return _failed("telegram", f"{where} answered getMe with an error: {error}")
    return _ok("telegram", f"getMe answered: @{me.username} (id {me.id}) at {where}")


async def run_checks(
    environ: Mapping[str, str] | None = None, dotenv: Path | None = None
) -> list[Check]:
    """All checks, in the order an operator fixes things; without settings nothing else runs."""
    settings, first = check_settings(environ, dotenv)
    if settings is None:
        return [first]
    checks = [first]
    for check in (check_knowledge, check_index, check_database):
        try:
            checks.append(await asyncio.to_thread(check, settings))
        except (BrobyggerError, OSError) as error:
            name = check.__name__.removeprefix("check_")
            checks.append(_failed(name, str(error)))
    checks.insert(2, await asyncio.to_thread(check_crisis_phrases))
    checks.append(await check_telegram(settings))
    return checks


def doctor(
    out: TextIO, environ: Mapping[str, str] | None = None, dotenv: Path | None = None
) -> int:
    """Print one line per check; 1 when any failed."""
    checks = asyncio.run(run_checks(environ, dotenv))
    for check in checks:
        print(check.line(), file=out)
    failed = [check.name for check in checks if check.failed]
    if failed:
        print(f"\n{_plural(len(failed), 'check')} failed: {', '.join(failed)}", file=out)
        return 1
    print("\nAll checks passed.", file=out)
    return 0
