"""An in-process Telegram for the concurrency benchmark: like bot/console.py's ConsoleRequest, a
BaseRequest that answers the Bot API calls itself, but records what was sent (with the time)
instead of printing it, and lets the benchmark wait until a number of chats got a message."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.request import BaseRequest, RequestData

BOT_USER = {"id": 100000, "is_bot": True, "first_name": "Brobygger", "username": "brobygger_bot"}


@dataclass(frozen=True)
class Recorded:
    method: str
    chat_id: int
    text: str
    at: float  # time.perf_counter() when the bot made the call


class RecordingRequest(BaseRequest):
    """Answers getMe, sendMessage, sendChatAction, setMyCommands… locally and records them."""

    def __init__(self) -> None:
        self.calls: list[Recorded] = []
        self.message_ids = itertools.count(1)
        self._waiters: list[tuple[int, set[int], asyncio.Future[None]]] = []
        self._answered: set[int] = set()

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def messages(self, since: int = 0) -> list[Recorded]:
        return [c for c in self.calls[since:] if c.method == "sendMessage"]

    def reset_answers(self) -> None:
        self._answered = set()

    async def wait_for_chats(self, count: int, within: float) -> None:
        """Until `count` distinct chats got a message since the last reset_answers()."""
        if len(self._answered) >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, self._answered, future))
        await asyncio.wait_for(future, within)

    def _record(self, method: str, chat_id: int, text: str) -> None:
        self.calls.append(Recorded(method, chat_id, text, time.perf_counter()))
        if method != "sendMessage":
            return
        self._answered.add(chat_id)
        for waiter in list(self._waiters):
            count, answered, future = waiter
            if answered is self._answered and len(answered) >= count and not future.done():
                future.set_result(None)
                self._waiters.remove(waiter)

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        api = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(request_data.parameters) if request_data else {}
        chat_id = int(params.get("chat_id", 0) or 0)
        text = str(params.get("text", ""))
        self._record(api, chat_id, text)
        result: Any = True
        if api == "getMe":
            result = BOT_USER
        elif api in ("sendMessage", "editMessageText"):
            result = {
                "message_id": int(params.get("message_id", 0)) or next(self.message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER,
                "text": text,
            }
        return 200, json.dumps({"ok": True, "result": result}, default=str).encode()


def text_update(bot: Any, update_id: int, user_id: int, text: str, language: str) -> Update:
    """A private text message from a user, as Telegram would deliver it."""
    update = Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": int(time.time()),
                "chat": {"id": user_id, "type": "private"},
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": f"User {user_id}",
                    "language_code": language,
                },
                "text": text,
            },
        },
        bot,
    )
    assert update is not None
    return update
