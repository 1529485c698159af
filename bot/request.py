"""Bot API requests that survive Telegram's bad moments: network errors, timeouts and 5xx answers
are retried a few times with exponential backoff before the error reaches a handler.

What is never retried here:

* 4xx answers. They are about the request (bad HTML, blocked user, unknown chat) and would fail
  again. 429 "Too Many Requests" is a 4xx too: PTB's AIORateLimiter waits the `retry_after`
  Telegram names and repeats the call, which a blind backoff here would only get wrong.
* Anything once the attempts are used up: the last error goes to the error handler as before.

The trade-off for calls that are not idempotent (sendMessage, sendDocument, ...): a timeout or a
dropped connection after Telegram received the request but before its answer reached us looks
exactly like a request that never arrived. Retrying it may deliver the same message twice;
not retrying would lose the answer of every such hiccup. A rare duplicate answer is the lesser
harm for this bot, so everything is retried. Errors raised before the request left (connection
refused, no free connection in the pool) can never duplicate anything.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from telegram._utils.types import JSONDict
from telegram.error import NetworkError
from telegram.ext import AIORateLimiter
from telegram.request import HTTPXRequest, RequestData

log = logging.getLogger(__name__)

#: Waits before the 1st, 2nd and 3rd retry, in seconds; each gets up to 25 % random jitter so
#: many requests failing together do not come back together.
BACKOFF = (0.5, 1.0, 2.0)
JITTER = 0.25

Sleep = Callable[[float], Awaitable[Any]]


class RetryingRequest(HTTPXRequest):
    """HTTPXRequest that retries transient failures (see the module docstring for what and why)."""

    def __init__(
        self,
        *args: Any,
        backoff: Sequence[float] = BACKOFF,
        jitter: float = JITTER,
        sleep: Sleep = asyncio.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.backoff = tuple(backoff)
        self.jitter = jitter
        self._sleep = sleep

    def _delay(self, retry: int) -> float:
        base = self.backoff[retry]
        return base + random.uniform(0, base * self.jitter)

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        write_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        connect_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        pool_timeout: Any = HTTPXRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        # The URL holds the token: only the method name (its last part) is ever logged.
        name = url.rsplit("/", 1)[-1]

        async def attempt() -> tuple[int, bytes]:
            return await super(RetryingRequest, self).do_request(
                url,
                method,
                request_data=request_data,
                read_timeout=read_timeout,
                write_timeout=write_timeout,
                connect_timeout=connect_timeout,
                pool_timeout=pool_timeout,
            )

        for retry in range(len(self.backoff)):
            try:
                code, payload = await attempt()
            except NetworkError as error:  # TimedOut is a NetworkError too
                reason = f"{type(error).__name__}: {error}"
            else:
                if code < 500:
                    return code, payload
                reason = f"HTTP {code}"
            delay = self._delay(retry)
            log.warning(
                "Telegram %s failed (%s); retry %d of %d in %.1f s",
                name,
                reason,
                retry + 1,
                len(self.backoff),
                delay,
            )
            await self._sleep(delay)
        return await attempt()


class AnswersFirstRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter (Telegram's limits: 30 calls a second overall, 20 a minute per
    group), with chat actions ("typing…") as a courtesy that never takes budget answers need:
    one is dropped (reported as sent) when less than half of the overall budget is free.

    bot/handlers/common.py already shows "typing…" only for answers that take over a second;
    this covers the case where many do at once (a hundred people asking together): a typing
    action for each would delay every answer behind them, and each answer ends the typing
    anyway."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        limiter = self._base_limiter
        if (
            endpoint == "sendChatAction"
            and limiter is not None
            and not limiter.has_capacity(limiter.max_rate / 2)
        ):
            log.debug("typing action skipped: the rate limit's budget goes to answers")
            return True
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )
