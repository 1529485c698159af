"""Everything handlers need, built once at start-up and reached through one typed accessor."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.knowledge.models import KnowledgeBase
from bot.render import Renderer
from bot.services.answers import AnswerCache
from bot.services.conversation import ConversationMemory
from bot.services.search import SearchService, settle
from bot.settings import Settings
from bot.storage import Storage

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class QuestionLimiter:
    """A sliding one-minute window per user, so one person cannot starve everyone else."""

    def __init__(self, per_minute: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._monotonic = monotonic
        self._events: defaultdict[int, deque[float]] = defaultdict(deque)

    def allow(self, user_id: int) -> bool:
        now = self._monotonic()
        events = self._events[user_id]
        while events and now - events[0] >= 60:
            events.popleft()
        if len(events) >= self.per_minute:
            return False
        events.append(now)
        if len(self._events) > 10_000:  # forget people who have been quiet for a minute
            for quiet in [u for u, e in self._events.items() if e and now - e[-1] >= 60]:
                del self._events[quiet]
        return True

    def forget_user(self, user_id: int) -> None:
        self._events.pop(user_id, None)


@dataclass
class Services:
    settings: Settings
    search: SearchService
    storage: Storage
    renderer: Renderer = field(default_factory=Renderer)
    answers: AnswerCache = field(default_factory=AnswerCache)
    clock: Clock = utc_now
    limiter: QuestionLimiter | None = None
    owns_search: bool = True
    conversation: ConversationMemory = field(init=False)

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = QuestionLimiter(self.settings.questions_per_minute)
        # the clock is looked up on each call, so tests that move time move the memory too
        self.conversation = ConversationMemory(
            timedelta(minutes=self.settings.conversation_ttl_minutes), lambda: self.clock()
        )

    @property
    def kb(self) -> KnowledgeBase:
        return self.search.knowledge

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.settings.admin_ids

    @classmethod
    async def create(
        cls, settings: Settings, *, search: SearchService | None = None, clock: Clock = utc_now
    ) -> Services:
        """Open the database and load the model and index (building it when missing)."""
        owns = search is None
        if search is None:
            search = SearchService(settings)
            await asyncio.to_thread(search.load)
            settle()
        storage = await Storage.open(settings.database_path)
        return cls(settings=settings, search=search, storage=storage, clock=clock, owns_search=owns)

    async def close(self) -> None:
        await self.storage.close()
        if self.owns_search:
            await self.search.close()
