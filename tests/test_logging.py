"""Logs never hold the bot token (it is in every Bot API URL) and, at INFO, never what people
wrote to the bot."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from telegram import Update
from telegram.ext import CommandHandler

from bot import cli
from bot.errors import BrobyggerError
from bot.handlers.common import Context
from bot.i18n import translate
from bot.logging_setup import NOISY_LOGGERS, REDACTED, RedactingFilter, setup_logging
from bot.storage.errors import StorageError
from tests.conftest import TOKEN, Harness

# Shaped like a real BotFather token, so the pattern (not only the exact secret) is exercised.
OTHER_TOKEN = "7412589630:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging changes process-wide state; put it back for the next test."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    filters = {handler: list(handler.filters) for handler in handlers}
    names = ("bot", *NOISY_LOGGERS)
    levels = {name: logging.getLogger(name).level for name in names}
    root_level = root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler, kept in filters.items():
        handler.filters[:] = kept
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    root.setLevel(root_level)


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("bot.test", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_filter_redacts_the_token_in_message_arguments_and_exception() -> None:
    redactor = RedactingFilter([TOKEN])
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/sendMessage failed")
    except RuntimeError as error:
        record = _record("calling %s with %r", f"bot{TOKEN}/getMe", {"token": TOKEN}, exc=error)
    assert redactor.filter(record) is True
    text = record.getMessage() + (record.exc_text or "")
    assert TOKEN not in text
    assert f"bot{REDACTED}/getMe" in record.getMessage()
    assert "RuntimeError: POST https://api.telegram.org/bot<redacted>/sendMessage" in (
        record.exc_text or ""
    )
    assert record.exc_info is None  # nothing left for a later formatter to render raw
    formatted = logging.Formatter("%(message)s").format(record)
    assert TOKEN not in formatted
    assert "RuntimeError" in formatted


def test_filter_redacts_token_shaped_text_it_was_not_told_about() -> None:
    redactor = RedactingFilter()
    record = _record(
        "url=%s pasted=%s", f"https://x.example/bot{OTHER_TOKEN}/getUpdates", OTHER_TOKEN
    )
    redactor.filter(record)
    message = record.getMessage()
    assert OTHER_TOKEN not in message
    assert message == f"url=https://x.example/bot{REDACTED}/getUpdates pasted={REDACTED}"


def test_filter_leaves_ordinary_text_alone() -> None:
    redactor = RedactingFilter([TOKEN])
    record = _record("meeting at 10:30, budget 1,427,499, user %s", 123456)
    redactor.filter(record)
    assert record.getMessage() == "meeting at 10:30, budget 1,427,499, user 123456"


def test_filter_redacts_stack_info() -> None:
    record = _record("x")
    record.stack_info = f"File 'x', in call bot{TOKEN}"
    RedactingFilter([TOKEN]).filter(record)
    assert TOKEN not in (record.stack_info or "")


@pytest.mark.usefixtures("restore_logging")
def test_setup_logging_scrubs_every_record_that_reaches_the_root_handlers() -> None:
    stream = io.StringIO()
    setup_logging("INFO", [TOKEN, "webhook-secret-value"], stream=stream)
    setup_logging("INFO", [TOKEN, "webhook-secret-value"], stream=stream)  # idempotent
    logging.getLogger("bot.somewhere").info("GET %s/bot%s/getMe", "https://host", TOKEN)
    logging.getLogger("bot.somewhere").warning("secret header %s", "webhook-secret-value")
    try:
        raise ConnectionError(f"cannot reach https://host/bot{TOKEN}/sendMessage")
    except ConnectionError:
        logging.getLogger("telegram.ext.Application").exception("fetching updates failed")
    logging.getLogger("httpx").info("HTTP Request: POST https://host/bot%s/x", TOKEN)
    output = stream.getvalue()
    assert TOKEN not in output
    assert "webhook-secret-value" not in output
    assert output.count(f"bot{REDACTED}/getMe") == 1  # one handler, not two after two calls
    assert f"ConnectionError: cannot reach https://host/bot{REDACTED}/sendMessage" in output
    assert "HTTP Request" not in output  # httpx logs every request at INFO: kept quiet
    assert logging.getLogger("bot").level == logging.INFO


@pytest.mark.usefixtures("restore_logging")
def test_cli_installs_redaction_with_the_configured_token_and_shows_storage_errors_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", OTHER_TOKEN)
    monkeypatch.setenv("WEBHOOK_SECRET", "hook-secret_1")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))

    def broken(settings: object, args: object) -> int:
        raise StorageError(f"the database {tmp_path / 'data'} is locked")

    monkeypatch.setitem(cli.COMMANDS, "reindex", broken)
    assert cli.main(["reindex"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"brobygger: error: the database {tmp_path}/data is locked"]
    assert issubclass(StorageError, BrobyggerError)
    redactors = [
        f for h in logging.getLogger().handlers for f in h.filters if isinstance(f, RedactingFilter)
    ]
    assert redactors
    assert all({OTHER_TOKEN, "hook-secret_1"} <= set(f.secrets) for f in redactors)


# --- through the running bot ------------------------------------------------------------------


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts += [record.getMessage(), record.exc_text or "", record.stack_info or ""]
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.usefixtures("restore_logging")
async def test_questions_never_reach_the_logs_at_info_and_the_token_never_does(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    setup_logging("INFO", [TOKEN])
    caplog.set_level(logging.INFO)
    # The libraries that see URLs at INFO, on purpose: their lines must arrive redacted.
    caplog.set_level(logging.INFO, logger="httpx")
    caplog.set_level(logging.INFO, logger="telegram")
    answered = "What is the budget of atWork4NEETs?"
    unanswered = "Where can my cousin Quirinella buy cheap violet bicycles?"
    replies = await bot.say(7001, answered)
    assert "1,427,499" in "\n".join(r.text or "" for r in replies)
    [refusal] = await bot.say(7001, unanswered)
    assert translate("en", "questions.no_answer") in (refusal.text or "")

    logged = _everything_logged(caplog)
    assert TOKEN not in logged
    assert f"bot{REDACTED}/sendMessage" in logged  # httpx's request lines were there, scrubbed
    for words in (answered, "atWork4NEETs?", unanswered, "Quirinella", "violet bicycles"):
        assert words not in logged


@pytest.mark.slow
@pytest.mark.usefixtures("restore_logging")
async def test_an_exception_with_the_api_url_is_logged_without_the_token(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    setup_logging("INFO", [TOKEN])
    caplog.set_level(logging.INFO)

    async def boom(update: Update, context: Context) -> None:
        raise RuntimeError(f"POST {bot.stub.base_url}{TOKEN}/sendMessage: connection reset")

    bot.app.add_handler(CommandHandler("boom", boom), group=-1)
    replies = await bot.say(7002, "/boom", expect=2)  # the error, then "unknown command"
    assert translate("en", "common.error") in [r.text for r in replies]

    errors = [r for r in caplog.records if r.name == "bot.handlers.errors"]
    assert errors
    assert errors[0].levelno == logging.ERROR
    assert f"/bot{REDACTED}/sendMessage: connection reset" in (errors[0].exc_text or "")
    assert TOKEN not in _everything_logged(caplog)
