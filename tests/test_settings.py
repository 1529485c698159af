"""Settings **contract**: defaults, `.env` under the environment, and every malformed setting
rejected with one message that names it; the token never shows up in a repr or a log line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import SettingsError
from bot.settings import (
    BUNDLED_MODEL,
    DEFAULT_API_BASE_FILE_URL,
    DEFAULT_API_BASE_URL,
    Settings,
    load_settings,
)

TOKEN = "123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-ab"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # defaults are relative to the working directory


def load(env: dict[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    return load_settings(environ=env or {}, dotenv=dotenv or Path("no-such.env"))


def test_defaults(tmp_path: Path) -> None:
    settings = load()
    assert settings.knowledge_dir == tmp_path / "knowledge"
    assert settings.index_dir == tmp_path / "index"
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_path.parent == tmp_path / "data"
    assert settings.embedding_model == BUNDLED_MODEL
    assert settings.timezone == "Europe/Stockholm"
    assert str(settings.tz) == "Europe/Stockholm"
    assert settings.telegram_bot_token is None
    assert settings.telegram_api_base_url == DEFAULT_API_BASE_URL == "https://api.telegram.org/bot"
    assert settings.telegram_api_base_file_url == DEFAULT_API_BASE_FILE_URL
    assert settings.admin_ids == frozenset()
    assert settings.webhook_url is None
    assert settings.webhook_secret is None
    assert settings.log_level == "INFO"
    assert settings.questions_per_minute >= 1


def test_every_contract_setting_is_read(tmp_path: Path) -> None:
    settings = load(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": "http://localhost:8081/bot",
            "TELEGRAM_API_BASE_FILE_URL": "http://localhost:8081/file/bot",
            "ADMIN_IDS": " 42, 4242 ,-100 ",
            "DATA_DIR": str(tmp_path / "state"),
            "KNOWLEDGE_DIR": str(tmp_path / "kb"),
            "INDEX_DIR": str(tmp_path / "idx"),
            "EMBEDDING_MODEL": "intfloat/multilingual-e5-small",
            "TIMEZONE": "Europe/Copenhagen",
            "WEBHOOK_URL": "https://bot.example.org/hook",
            "WEBHOOK_SECRET": "s3cret_-X",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.telegram_bot_token == TOKEN
    assert settings.telegram_api_base_url == "http://localhost:8081/bot"
    assert settings.telegram_api_base_file_url == "http://localhost:8081/file/bot"
    assert settings.admin_ids == frozenset({42, 4242, -100})
    assert settings.data_dir == tmp_path / "state"
    assert settings.knowledge_dir == tmp_path / "kb"
    assert settings.index_dir == tmp_path / "idx"
    assert settings.embedding_model == "intfloat/multilingual-e5-small"
    assert settings.timezone == "Europe/Copenhagen"
    assert settings.webhook_url == "https://bot.example.org/hook"
    assert settings.webhook_secret == "s3cret_-X"
    assert settings.log_level == "DEBUG"


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\n"
        "\n"
        f"TELEGRAM_BOT_TOKEN='{TOKEN}'\n"
        'TIMEZONE="Europe/Copenhagen"\n'
        "export ADMIN_IDS=7,8\n"
        "LOG_LEVEL=WARNING\n",
        encoding="utf-8",
    )
    settings = load({"LOG_LEVEL": "ERROR"}, dotenv)
    assert settings.telegram_bot_token == TOKEN  # quotes removed
    assert settings.timezone == "Europe/Copenhagen"
    assert settings.admin_ids == frozenset({7, 8})
    assert settings.log_level == "ERROR"  # the environment beats .env


def test_dotenv_in_the_working_directory_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("TIMEZONE=Europe/Copenhagen\n", encoding="utf-8")
    monkeypatch.delenv("TIMEZONE", raising=False)
    assert load_settings(environ={}).timezone == "Europe/Copenhagen"


def test_malformed_dotenv_line_names_file_and_line(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("LOG_LEVEL=INFO\nthis is not a setting\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"\.env:2: expected KEY=VALUE"):
        load({}, dotenv)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        ({"TIMEZONE": "../../etc/passwd"}, "TIMEZONE"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"ADMIN_IDS": "abc"}, "ADMIN_IDS"),
        ({"ADMIN_IDS": "42,@alice"}, "ADMIN_IDS"),
        ({"WEBHOOK_URL": "https://bot.example.org/hook"}, "WEBHOOK_SECRET"),
        ({"WEBHOOK_URL": "bot.example.org/hook", "WEBHOOK_SECRET": "abc"}, "WEBHOOK_URL"),
        ({"WEBHOOK_URL": "https://x.org/h", "WEBHOOK_SECRET": "has space"}, "WEBHOOK_SECRET"),
        ({"QUESTIONS_PER_MINUTE": "x"}, "QUESTIONS_PER_MINUTE"),
        ({"QUESTIONS_PER_MINUTE": "0"}, "QUESTIONS_PER_MINUTE"),
        ({"WEBHOOK_PORT": "eighty"}, "WEBHOOK_PORT"),
        ({"TELEGRAM_API_BASE_URL": "localhost:8081"}, "TELEGRAM_API_BASE_URL"),
        ({"APPROXIMATE_INDEX_ABOVE": "-5"}, "APPROXIMATE_INDEX_ABOVE"),
    ],
)
def test_malformed_setting_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load(env)
    message = str(caught.value)
    assert message.startswith(named), message
    assert "\n" not in message


def test_empty_values_mean_the_default() -> None:
    settings = load({"TIMEZONE": "", "LOG_LEVEL": " ", "ADMIN_IDS": "", "EMBEDDING_MODEL": ""})
    assert (settings.timezone, settings.log_level) == ("Europe/Stockholm", "INFO")
    assert settings.embedding_model == BUNDLED_MODEL


def test_require_token_when_missing() -> None:
    with pytest.raises(SettingsError, match="TELEGRAM_BOT_TOKEN is not set"):
        load().require_token()


@pytest.mark.parametrize(
    "token", ["abc", "98765", "98765:short", "12:" + "z" * 30, "98765:has spaces in it ok"]
)
def test_require_token_when_malformed(token: str) -> None:
    settings = load({"TELEGRAM_BOT_TOKEN": token})
    with pytest.raises(SettingsError, match="TELEGRAM_BOT_TOKEN is malformed") as caught:
        settings.require_token()
    assert token not in str(caught.value)


def test_require_token_returns_a_good_one() -> None:
    assert load({"TELEGRAM_BOT_TOKEN": f"  {TOKEN}  "}).require_token() == TOKEN


def test_secrets_are_not_in_the_repr() -> None:
    settings = load(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "WEBHOOK_URL": "https://bot.example.org/hook",
            "WEBHOOK_SECRET": "very-secret-value",
        }
    )
    shown = repr(settings) + str(settings)
    assert TOKEN not in shown
    assert TOKEN.split(":")[1] not in shown
    assert "very-secret-value" not in shown
    assert "Europe/Stockholm" in shown  # the repr is still useful


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QUESTIONS_PER_MINUTE": "x"}, "QUESTIONS_PER_MINUTE must be a whole number, got 'x'"),
        ({"QUESTIONS_PER_MINUTE": "0"}, "QUESTIONS_PER_MINUTE must be at least 1, got 0"),
        ({"MAX_UPLOAD_BYTES": "10"}, "MAX_UPLOAD_BYTES must be at least 1024, got 10"),
        ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE is not a known time zone: 'Mars/Olympus'"),
        ({"WEBHOOK_URL": "https://x.org/h"}, "WEBHOOK_SECRET must be set when WEBHOOK_URL is set"),
    ],
)
def test_the_message_says_how_to_fix_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load(env)
    assert str(caught.value) == message


def test_the_process_environment_is_read_over_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("LOG_LEVEL=WARNING\nTIMEZONE=Europe/Oslo\n", encoding="utf-8")
    monkeypatch.setenv("LOG_LEVEL", "error")
    monkeypatch.setenv("QUESTIONS_PER_MINUTE", " 25 ")
    settings = load_settings()
    assert (settings.log_level, settings.timezone) == ("ERROR", "Europe/Oslo")
    assert settings.questions_per_minute == 25


def test_a_rejected_secret_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load({"WEBHOOK_URL": "https://x.org/h", "WEBHOOK_SECRET": "top secret!"})
    assert "top secret" not in str(caught.value)


def test_documents_defaults_take_what_telegram_lets_a_bot_download() -> None:
    settings = load()
    assert settings.max_upload_bytes == 20 * 1024 * 1024
    assert settings.fetch_timeout_seconds == 20
    assert settings.allow_private_urls is False  # the SSRF guard is on unless a test says so


def test_document_settings_are_read() -> None:
    settings = load(
        {"MAX_UPLOAD_BYTES": "4096", "FETCH_TIMEOUT_SECONDS": "3", "ALLOW_PRIVATE_URLS": "true"}
    )
    assert (settings.max_upload_bytes, settings.fetch_timeout_seconds) == (4096, 3)
    assert settings.allow_private_urls is True


def test_a_malformed_private_url_flag_is_named() -> None:
    with pytest.raises(SettingsError, match="ALLOW_PRIVATE_URLS must be true or false"):
        load({"ALLOW_PRIVATE_URLS": "sometimes"})
