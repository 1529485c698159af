"""Webhook mode (`WEBHOOK_URL` set): the real application behind PTB's webhook server, fed by the
Telegram stand-in. Only requests carrying the secret token Telegram was given are processed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import build_application
from bot.retrieval.embedder import Embedder
from bot.services.container import Services
from bot.services.search import SearchService
from bot.settings import Settings
from bot.storage import Storage
from tests.conftest import KNOWLEDGE, copy_index, make_settings
from tests.telegram_stub import TelegramStub

pytestmark = pytest.mark.slow

SECRET = "s3cret-Token_for-webhooks"
QUESTION = "What is the budget of atWork4NEETs?"
ANSWER_FACT = "1,427,499"


@contextlib.asynccontextmanager
async def bot_services(
    tmp_path: Path, embedder: Embedder, session_index: Path
) -> AsyncIterator[tuple[Settings, Services]]:
    """Settings and loaded services over a private copy of the knowledge and the index, for tests
    that run the application's lifecycle themselves (webhook mode, shutdown)."""
    settings = make_settings(tmp_path)
    shutil.copytree(KNOWLEDGE, settings.knowledge_dir)
    copy_index(session_index, settings.index_dir)
    search = SearchService(settings, embedder=embedder)
    search.load(build_if_missing=False)
    storage = await Storage.open(settings.database_path)
    services = Services(settings=settings, search=search, storage=storage)
    try:
        yield settings, services
    finally:
        await services.close()


def pointed_at(settings: Settings, stub: TelegramStub) -> Settings:
    return replace(
        settings,
        telegram_api_base_url=stub.base_url,
        telegram_api_base_file_url=stub.base_file_url,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def webhook_bot(
    tmp_path: Path, embedder: Embedder, session_index: Path
) -> AsyncIterator[tuple[TelegramStub, str]]:
    """The application serving a webhook on 127.0.0.1, registered with the stub like
    `brobygger run` registers it with Telegram. Yields the stub and the webhook URL."""
    async with (
        bot_services(tmp_path, embedder, session_index) as (settings, services),
        TelegramStub() as stub,
    ):
        port = free_port()
        url = f"http://127.0.0.1:{port}/telegram"
        app = build_application(pointed_at(settings, stub), services)
        await app.initialize()
        if app.post_init:
            await app.post_init(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="telegram",
            secret_token=SECRET,
            webhook_url=url,
        )
        try:
            yield stub, url
        finally:
            await app.updater.stop()
            await app.stop()
            if app.post_shutdown:
                await app.post_shutdown(app)
            await app.shutdown()


def _update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Webhook"},
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": "Webhook",
                "language_code": "en",
            },
            "text": text,
        },
    }


async def _post(url: str, body: dict[str, Any], secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=json.dumps(body), headers=headers) as response,
    ):
        await response.read()
        return response.status


def _answers(stub: TelegramStub, chat_id: int) -> list[str]:
    return [
        s.text or "" for s in stub.sent if s.chat_id == chat_id and ANSWER_FACT in (s.text or "")
    ]


async def test_webhook_is_registered_with_the_secret(
    webhook_bot: tuple[TelegramStub, str],
) -> None:
    stub, url = webhook_bot
    assert stub.webhook is not None
    assert stub.webhook["url"] == url
    assert stub.webhook["secret_token"] == SECRET


async def test_updates_pushed_by_telegram_are_answered(
    webhook_bot: tuple[TelegramStub, str],
) -> None:
    stub, _ = webhook_bot
    update_id = await stub.send_text(8101, QUESTION, language_code="en")
    await stub.next_reply(8101, timeout=30)
    await asyncio.sleep(0.5)
    assert (update_id, 200) in stub.webhook_deliveries
    assert len(_answers(stub, 8101)) == 1


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", SECRET.upper()])
async def test_requests_without_the_right_secret_are_refused_and_ignored(
    webhook_bot: tuple[TelegramStub, str], secret: str | None
) -> None:
    stub, url = webhook_bot
    stub.register_user(8102)
    assert await _post(url, _update(900_001, 8102, QUESTION), secret) == 403
    # The same question with the secret: had the refused one been processed, two answers come.
    assert await _post(url, _update(900_002, 8102, QUESTION), SECRET) == 200
    await stub.next_reply(8102, timeout=30)
    await asyncio.sleep(1.0)
    assert len(_answers(stub, 8102)) == 1
    assert not stub.api_errors()


async def test_a_direct_request_with_the_right_secret_is_answered(
    webhook_bot: tuple[TelegramStub, str],
) -> None:
    stub, url = webhook_bot
    stub.register_user(8103)
    assert await _post(url, _update(900_003, 8103, QUESTION), SECRET) == 200
    await stub.next_reply(8103, timeout=30)
    await asyncio.sleep(0.5)
    assert len(_answers(stub, 8103)) == 1
    assert not stub.api_errors()
