"""Free text is a question: safety first, then the conversation's topic and retrieval, then an
answer (answer first) or an honest "I don't know"; plus the buttons under each answer:
feedback, more results, full text, and suggested next questions for young people.

The search and the reply are composed in the encoder's worker thread (bot/services/answering.py);
the handler checks, waits and sends. "typing…" is shown only when an answer is not ready within
about a second: Telegram allows a bot about 30 calls a second in all, and a typing action before
every answer, even one ready in 60 ms, spent half of them on courtesy."""

from __future__ import annotations

import re

from telegram import Message, Update
from telegram.constants import ChatType

from bot.handlers.common import (
    Context,
    Who,
    answer_callback,
    callback_args,
    get_services,
    outdated,
    send,
    send_rendered,
    typing_after,
    who,
)
from bot.i18n import translate
from bot.retrieval.text import content_words, normalise
from bot.safety import Level, assess, helplines_for
from bot.services.answering import Asker, reply
from bot.services.answers import PASSAGES_MORE, listed, show

MAX_QUESTION_CHARS = 1000


def _question_text(message: Message, bot_username: str | None) -> str:
    """The question without the @mention that addressed the bot in a group."""
    text = message.text or ""
    if bot_username:
        text = re.sub(rf"@{re.escape(bot_username)}\b", " ", text, flags=re.IGNORECASE)
    return normalise(text)


async def ask(update: Update, context: Context) -> None:
    """Answer a question from the knowledge base."""
    message = update.effective_message
    if message is None or update.effective_user is None:
        return
    me = await who(update, context)
    if message.chat.type != ChatType.PRIVATE and not _addressed(message, context.bot.username):
        return
    await respond(context, me, _question_text(message, context.bot.username))


async def respond(context: Context, me: Who, question: str, *, asked: str | None = None) -> None:
    """Everything between a question and its reply. `asked` echoes a question that came from a
    suggestion button, so the chat still reads as question and answer."""
    services = get_services(context)
    plan = services.conversation.plan(me.chat_id, question, services.search.searcher, services.kb)
    if not content_words(plan.query):  # "när var det?" has no words of its own, but a topic
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
    helplines = helplines_for(me.lang) if safety.level is Level.TOPIC else None
    asker = Asker(me.user_id, me.chat_id, me.lang, me.role)
    async with typing_after(context, me.chat_id):  # only when the answer is slow
        first = await reply(services, asker, plan, asked=asked, helplines=helplines)
    services.answers.put(first.answer)
    today = services.clock().astimezone(services.settings.tz).date()
    try:
        await send_rendered(context, me.chat_id, first.parts, first.buttons)
    finally:  # the answer first; the statistics do not keep anyone waiting
        # a new asker's language is remembered, so stats and reminders agree with the replies
        await services.storage.record_asked(
            user_id=me.user_id,
            language=me.lang,
            answered=first.answered,
            day=today,
            text=None if first.answered else question,
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
    """The next passages of an answer, shortened like the first ones, as a new message."""
    me = await who(update, context)
    services = get_services(context)
    args = callback_args(update, "more:")
    answer = services.answers.get(args[0], me.user_id) if args else None
    if answer is None:
        await outdated(update, context, me.lang)
        return
    passages = listed(answer, PASSAGES_MORE)
    if not passages:
        await answer_callback(update, translate(me.lang, "questions.no_more"))
        return
    show(answer, passages)
    await answer_callback(update)
    more = listed(answer, 1)
    await send(
        context,
        me.chat_id,
        "answer_more",
        me.lang,
        buttons=[[(translate(me.lang, "questions.more"), f"more:{answer.id}")]] if more else None,
        passages=passages,
        gist_at=None,
    )


async def full_button(update: Update, context: Context) -> None:
    """The whole text of the passages shown so far, answering sentences in bold, with the
    curated summary in the reader's language (folded away) when the source is in another."""
    me = await who(update, context)
    services = get_services(context)
    args = callback_args(update, "full:")
    answer = services.answers.get(args[0], me.user_id) if args else None
    if answer is None:
        await outdated(update, context, me.lang)
        return
    await answer_callback(update)
    seen = sorted(answer.seen) or [0]
    passages = [(i + 1, answer.passages[i]) for i in seen if i < len(answer.passages)]
    await send(context, me.chat_id, "answer_full", me.lang, passages=passages)


async def suggestion_button(update: Update, context: Context) -> None:
    """A suggested next question: asked as if the person had typed it."""
    me = await who(update, context)
    services = get_services(context)
    args = callback_args(update, "sg:")
    answer = services.answers.get(args[0], me.user_id) if len(args) == 2 else None
    number = int(args[1]) if answer is not None and args[1].isdigit() else -1
    if answer is None or not 0 <= number < len(answer.suggestions):
        await outdated(update, context, me.lang)
        return
    await answer_callback(update)
    question = answer.suggestions[number]
    await respond(context, me, question, asked=question)
