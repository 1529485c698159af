"""`brobygger doctor`: one line per check an operator can act on, and exit 1 when one fails.

Each test breaks one thing in an otherwise healthy installation (the repository's knowledge, its
index, a migrated database, and the Telegram stand-in answering getMe)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import bot.safety
from bot import cli
from bot.doctor import Check, Status, run_checks
from bot.storage import LATEST_VERSION, Storage
from tests.conftest import KNOWLEDGE, TOKEN, copy_index
from tests.telegram_stub import TelegramStub


@pytest.fixture
async def stub() -> AsyncIterator[TelegramStub]:
    async with TelegramStub() as telegram:
        yield telegram


async def _migrated(path: Path) -> None:
    storage = await Storage.open(path)
    await storage.close()


@pytest.fixture
def installation(tmp_path: Path, session_index: Path) -> dict[str, str]:
    """Knowledge, its index and a migrated database; no Telegram token."""
    shutil.copytree(KNOWLEDGE, tmp_path / "knowledge")
    copy_index(session_index, tmp_path / "index")
    asyncio.run(_migrated(tmp_path / "data" / "brobygger.sqlite3"))
    return {
        "KNOWLEDGE_DIR": str(tmp_path / "knowledge"),
        "INDEX_DIR": str(tmp_path / "index"),
        "DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
async def healthy(installation: dict[str, str], stub: TelegramStub) -> dict[str, str]:
    """The environment of an installation where every check passes."""
    return {
        **installation,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": stub.base_url,
        "TELEGRAM_API_BASE_FILE_URL": stub.base_file_url,
    }


async def checks(env: dict[str, str]) -> dict[str, Check]:
    found = await run_checks(env, dotenv=Path("no-such.env"))
    return {check.name: check for check in found}


def failed(found: dict[str, Check]) -> list[str]:
    return [name for name, check in found.items() if check.status is Status.FAILED]


async def test_a_healthy_installation_passes_every_check(healthy: dict[str, str]) -> None:
    found = await checks(healthy)
    assert list(found) == [
        "settings",
        "knowledge",
        "crisis phrases",
        "index",
        "database",
        "telegram",
    ]
    assert failed(found) == []
    assert all(check.status is Status.OK for check in found.values())
    assert "no problems" in found["knowledge"].detail
    assert "up to date" in found["index"].detail
    assert f"schema version {LATEST_VERSION} is current" in found["database"].detail
    assert "getMe answered: @" in found["telegram"].detail
    assert all(line.startswith("✓ ") for line in (c.line() for c in found.values()))


async def test_bad_settings_are_the_only_line(healthy: dict[str, str]) -> None:
    found = await checks({**healthy, "QUESTIONS_PER_MINUTE": "0"})
    assert list(found) == ["settings"]
    assert found["settings"].line() == (
        "✗ settings: QUESTIONS_PER_MINUTE must be at least 1, got 0"
    )


async def test_a_knowledge_problem_names_the_file_and_line(healthy: dict[str, str]) -> None:
    broken = Path(healthy["KNOWLEDGE_DIR"]) / "documents" / "broken.md"
    broken.write_text("---\ntitle: [unclosed\n---\nText.\n", encoding="utf-8")
    found = await checks(healthy)
    assert found["knowledge"].status is Status.FAILED
    assert "documents/broken.md:" in found["knowledge"].detail
    assert "1 problem the bot skips" in found["knowledge"].detail


async def test_a_broken_crisis_phrase_file_fails(
    healthy: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phrases = tmp_path / "crisis"
    phrases.mkdir()
    (phrases / "en.yaml").write_text("implied:\n  suicide: ['<NOPE>']\n", encoding="utf-8")
    monkeypatch.setattr(bot.safety, "CRISIS_DIR", phrases)
    found = await checks(healthy)
    assert failed(found) == ["crisis phrases"]
    assert "en.yaml" in found["crisis phrases"].detail
    assert "unknown word list <NOPE>" in found["crisis phrases"].detail


async def test_a_missing_index(healthy: dict[str, str]) -> None:
    shutil.rmtree(healthy["INDEX_DIR"])
    found = await checks(healthy)
    assert failed(found) == ["index"]
    assert "there is no index" in found["index"].detail
    assert "brobygger reindex" in found["index"].detail


async def test_an_index_built_with_another_model(healthy: dict[str, str]) -> None:
    found = await checks({**healthy, "EMBEDDING_MODEL": "intfloat/multilingual-e5-small"})
    assert failed(found) == ["index"]
    assert "built with the model" in found["index"].detail
    assert "intfloat/multilingual-e5-small" in found["index"].detail


async def test_a_stale_index(healthy: dict[str, str]) -> None:
    document = next((Path(healthy["KNOWLEDGE_DIR"]) / "documents").glob("*.md"))
    document.write_text(
        document.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8"
    )
    found = await checks(healthy)
    assert failed(found) == ["index"]
    assert found["index"].detail.startswith("stale: the knowledge changed")


async def test_a_damaged_index(healthy: dict[str, str]) -> None:
    current = Path(healthy["INDEX_DIR"]) / "current"
    (current.resolve() / "dense.faiss").write_bytes(b"not an index")
    found = await checks(healthy)
    assert failed(found) == ["index"]
    assert "damaged" in found["index"].detail


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (0, "migrations are pending"),
        (LATEST_VERSION + 1, "newer than this version of the bot"),
    ],
)
async def test_a_database_whose_schema_is_not_current(
    healthy: dict[str, str], version: int, expected: str
) -> None:
    path = Path(healthy["DATA_DIR"]) / "brobygger.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
    found = await checks(healthy)
    assert failed(found) == ["database"]
    assert expected in found["database"].detail


async def test_a_file_that_is_not_a_database(healthy: dict[str, str]) -> None:
    (Path(healthy["DATA_DIR"]) / "brobygger.sqlite3").write_bytes(b"x" * 4096)
    found = await checks(healthy)
    assert failed(found) == ["database"]
    assert "cannot open" in found["database"].detail


async def test_no_database_yet_is_fine(healthy: dict[str, str]) -> None:
    shutil.rmtree(healthy["DATA_DIR"])
    found = await checks(healthy)
    assert failed(found) == []
    assert "created at the first start" in found["database"].detail
    assert not await asyncio.to_thread(Path(healthy["DATA_DIR"]).exists)  # nothing changed


async def test_telegram_refuses_the_token(healthy: dict[str, str], stub: TelegramStub) -> None:
    stub.fail_next("getMe", 401, description="Unauthorized")
    found = await checks(healthy)
    assert failed(found) == ["telegram"]
    assert "refused the token" in found["telegram"].detail


async def test_telegram_cannot_be_reached(healthy: dict[str, str], stub: TelegramStub) -> None:
    await stub.close()  # nothing listens on its port any more
    found = await checks(healthy)
    assert failed(found) == ["telegram"]
    assert found["telegram"].detail.startswith("cannot reach http://127.0.0.1:")


async def test_a_malformed_token_is_not_sent(healthy: dict[str, str], stub: TelegramStub) -> None:
    found = await checks({**healthy, "TELEGRAM_BOT_TOKEN": "not-a-token"})
    assert failed(found) == ["telegram"]
    assert "TELEGRAM_BOT_TOKEN is malformed" in found["telegram"].detail
    assert all(request.method != "getMe" for request in stub.requests)


async def test_without_a_token_telegram_is_skipped(healthy: dict[str, str]) -> None:
    env = {key: value for key, value in healthy.items() if key != "TELEGRAM_BOT_TOKEN"}
    found = await checks(env)
    assert failed(found) == []
    assert found["telegram"].line().startswith("– telegram: not checked")


def test_the_command_prints_one_line_per_check_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no knowledge, no index here
    for name in ("TELEGRAM_BOT_TOKEN", "KNOWLEDGE_DIR", "INDEX_DIR", "DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["doctor"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("✓ settings: ")
    assert lines[1].startswith("✗ knowledge: ")
    assert lines[3].startswith("✗ index: there is no index")
    assert lines[-1] == "2 checks failed: knowledge, index"


def test_the_command_exits_0_when_all_is_well(
    installation: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in installation.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert cli.main(["doctor"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("All checks passed.")
