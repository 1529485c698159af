"""Free text is a question: safety first, then retrieval, then an answer or an honest "I don't
know"; plus the feedback and "more results" buttons under each answer."""

from __future__ import annotations

import contextlib
import re

from telegram import Message, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import TelegramError

from bot.handlers.common import (
    Context,
    answer_callback,
    callback_args,
    get_services,
    outdated,
    send,
    who,
)
from bot.i18n import translate
from bot.retrieval.text import content_words, normalise
from bot.safety import Level, assess, helplines_for
from bot.services.answers import PASSAGES_FIRST, PASSAGES_MORE, Answer, build_answer

MAX_QUESTION_CHARS = 1000


def _question_text(message: Message, bot_username: str | None) -> str:
    """The question without the @mention that addressed the bot in a group."""
    text = message.text or ""
    if bot_username:
        text = re.sub(rf"@{re.escape(bot_username)}\b", " ", text, flags=re.IGNORECASE)
    return normalise(text)


def _answer_buttons(answer: Answer, lang: str) -> list[list[tuple[str, str]]]:
    row = [("👍", f"fb:{answer.id}:+"), ("👎", f"fb:{answer.id}:-")]
    if len(answer.passages) > answer.shown:
        row.append((translate(lang, "questions.more"), f"more:{answer.id}"))
    return [row]


async def ask(update: Update, context: Context) -> None:
    """Answer a question from the knowledge base."""
    message = update.effective_message
    if message is None or update.effective_user is None:
        return
    services = get_services(context)
    me = await who(update, context)
    if message.chat.type != ChatType.PRIVATE and not _addressed(message, context.bot.username):
        return
    question = _question_text(message, context.bot.username)
    if not content_words(question):
        await send(context, me.chat_id, "question_empty", me.lang)
        return
    safety = assess(question)  # before any refusal: a long message can be a cry for help
    if safety.level is Level.CRISIS:
        await send(context, me.chat_id, "crisis", me.lang, helplines=helplines_for(me.lang))
        return
    if len(question) > MAX_QUESTION_CHARS:
        await send(context, me.chat_id, "question_too_long", me.lang, limit=MAX_QUESTION_CHARS)
        return
    assert services.limiter is not None
    if not services.limiter.allow(me.user_id):
        await send(context, me.chat_id, "rate_limited", me.lang)
        return
    with contextlib.suppress(TelegramError):  # only a courtesy; the answer matters
        await context.bot.send_chat_action(me.chat_id, ChatAction.TYPING)
    result, index = await services.search.ask_pinned(question)
    answer = build_answer(result, me.user_id, me.lang, services.kb, index.chunk_map)
    today = services.clock().astimezone(services.settings.tz).date()
    # a new asker's language is remembered, so stats and reminders agree with the replies
    await services.storage.record_asked(
        user_id=me.user_id,
        language=me.lang,
        answered=result.answered,
        day=today,
        text=None if result.answered else question,
    )
    helplines = helplines_for(me.lang) if safety.level is Level.TOPIC else None
    if not result.answered:
        await send(context, me.chat_id, "no_answer", me.lang, role=me.role, helplines=helplines)
        return
    answer.shown = min(PASSAGES_FIRST, len(answer.passages))
    services.answers.put(answer)
    await send(
        context,
        me.chat_id,
        "answer",
        me.lang,
        buttons=_answer_buttons(answer, me.lang),
        passages=answer.passages[: answer.shown],
        helplines=helplines,
    )


def _addressed(message: Message, username: str | None) -> bool:
    """In groups the bot speaks only when mentioned or replied to."""
    if (
        message.reply_to_message
        and message.reply_to_message.from_user
        and (
            message.reply_to_message.from_user.is_bot
            and message.reply_to_message.from_user.username == username
        )
    ):
        return True
    return bool(username) and f"@{username}".casefold() in (message.text or "").casefold()


async def feedback_button(update: Update, context: Context) -> None:
    """👍 / 👎 on an answer: stored with the answer's short id, one vote per person."""
    me = await who(update, context)
    services = get_services(context)
    args = callback_args(update, "fb:")
    answer = services.answers.get(args[0], me.user_id) if len(args) == 2 else None
    if answer is None or args[1] not in {"+", "-"}:
        await outdated(update, context, me.lang)
        return
    today = services.clock().astimezone(services.settings.tz).date()
    await services.storage.add_feedback(
        user_id=me.user_id,
        answer_id=answer.id,
        value=1 if args[1] == "+" else -1,
        language=me.lang,
        day=today,
    )
    await answer_callback(update, translate(me.lang, "questions.thanks"))


async def more_button(update: Update, context: Context) -> None:
    """The next passages of an answer, as a new message under it."""
    me = await who(update, context)
    services = get_services(context)
    args = callback_args(update, "more:")
    answer = services.answers.get(args[0], me.user_id) if args else None
    if answer is None:
        await outdated(update, context, me.lang)
        return
    if answer.shown >= len(answer.passages):
        await answer_callback(update, translate(me.lang, "questions.no_more"))
        return
    start = answer.shown
    answer.shown = min(start + PASSAGES_MORE, len(answer.passages))
    await answer_callback(update)
    await send(
        context,
        me.chat_id,
        "answer_more",
        me.lang,
        buttons=_answer_buttons(answer, me.lang) if answer.shown < len(answer.passages) else None,
        passages=answer.passages[start : answer.shown],
        first_number=start + 1,
        helplines=None,
    )
