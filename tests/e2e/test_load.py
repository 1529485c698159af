"""Many people at once, over HTTP against the Telegram stand-in: everyone gets exactly one reply,
the very reply they would have got asking alone, and "typing…" is spent only where an answer is
slow. This is the small, correctness-only version of the load benchmark (benchmarks/load.py);
nothing here measures time."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import pytest

from bot.evaluation import load_questions
from bot.handlers import common
from bot.request import AnswersFirstRateLimiter
from tests.conftest import REPO, Harness
from tests.telegram_stub import Sent

pytestmark = pytest.mark.slow

USERS = 20
QUESTIONS = REPO / "benchmarks" / "data" / "questions.yaml"


def _spread(count: int) -> list[tuple[str, str]]:
    """(question, language) pairs spread over the evaluation set: en/sv/da, typos, follow-ups
    of nothing, unanswerable ones."""
    questions = load_questions(QUESTIONS)
    picked = [questions[i * len(questions) // count] for i in range(count)]
    return [(q.q, q.lang) for q in picked]


def _seen(reply: Sent) -> tuple[str | None, list[tuple[str, str]]]:
    """What a person sees: the text and the buttons (answer ids in callback data differ per
    answer, so they are left out)."""
    buttons = [
        (label, re.sub(r"^(\w+):[^:]*", r"\1:…", data or "")) for label, data in reply.buttons
    ]
    return reply.text, buttons


async def _replies(bot: Harness, chats: list[int], mark: int, quiet: float = 1.0) -> dict[int, Any]:
    """Every chat's messages since `mark`, once each chat has one and nothing came for `quiet`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 300
    last, changed = -1, loop.time()
    while True:
        sent = [s for s in bot.stub.sent[mark:] if s.method == "sendMessage"]
        if len(sent) != last:
            last, changed = len(sent), loop.time()
        got = {chat for chat in chats if any(s.chat_id == chat for s in sent)}
        if len(got) == len(chats) and loop.time() - changed >= quiet:
            return {chat: [s for s in sent if s.chat_id == chat] for chat in chats}
        assert loop.time() < deadline, f"{len(chats) - len(got)} chats got no reply"
        await asyncio.sleep(0.05)


async def test_twenty_people_at_once_each_get_the_reply_they_would_get_alone(bot: Harness) -> None:
    questions = _spread(USERS)
    alone: list[tuple[str | None, list[tuple[str, str]]]] = []
    for n, (question, lang) in enumerate(questions):
        [reply] = await bot.say(20_000 + n, question, language_code=lang)
        alone.append(_seen(reply))

    together = [30_000 + n for n in range(USERS)]
    mark = bot.stub.mark()
    for user, (question, lang) in zip(together, questions, strict=True):
        # queued without yielding to the event loop: the bot fetches all of them in one batch
        await bot.stub.send_text(user, question, language_code=lang)
    replies = await _replies(bot, together, mark)

    assert Counter(len(r) for r in replies.values()) == {1: USERS}  # one reply each, no more
    for user, expected in zip(together, alone, strict=True):
        assert _seen(replies[user][0]) == expected
    assert not bot.stub.api_errors()


async def test_typing_is_shown_only_while_an_answer_is_slow(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "What is the budget of atWork4NEETs?"
    monkeypatch.setattr(common, "TYPING_AFTER", 60.0)  # every answer is quicker than that
    [reply] = await bot.say(21_001, question)
    assert bot.stub.chat_actions == []
    monkeypatch.setattr(common, "TYPING_AFTER", 0.0)  # every answer is slower than that
    [again] = await bot.say(21_002, question)
    assert bot.stub.chat_actions == [(21_002, "typing")]
    assert again.text == reply.text


async def test_typing_never_takes_the_budget_answers_need() -> None:
    """Answers take Telegram's overall limit first: a typing action is dropped when less than
    half of it is free, and goes out when the bot is quiet."""
    limiter = AnswersFirstRateLimiter(overall_max_rate=30, overall_time_period=1)
    calls: list[str] = []

    async def call(method: str) -> bool:
        calls.append(method)
        return True

    async def request(method: str) -> Any:
        return await limiter.process_request(call, (method,), {}, method, {"chat_id": 1}, None)

    assert await request("sendChatAction") is True
    assert calls == ["sendChatAction"]
    for _ in range(20):  # a burst of answers
        await request("sendMessage")
    calls.clear()
    assert await request("sendChatAction") is True  # reported as sent…
    assert calls == []  # …but not spent
    await request("sendMessage")
    assert calls == ["sendMessage"]  # answers still go
