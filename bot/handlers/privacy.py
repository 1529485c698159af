"""What the bot keeps about people, deleting it on request, and the retention job for the texts
of unanswered questions. Many users are young people: the wording is plain and complete."""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import timedelta

from telegram import Message, Update
from telegram.constants import ChatType

from bot.handlers.common import (
    Context,
    answer_callback,
    callback_args,
    edit,
    get_services,
    outdated,
    send,
    who,
)
from bot.i18n import translate

log = logging.getLogger(__name__)

#: bot_data key of the confirmation prompts already answered, and how many to remember.
ANSWERED_PROMPTS = "privacy.answered_prompts"
ANSWERED_PROMPTS_KEPT = 1000


async def privacy(update: Update, context: Context) -> None:
    """/privacy: everything that is stored, for how long, and how to delete it."""
    me = await who(update, context)
    await send(
        context,
        me.chat_id,
        "privacy",
        me.lang,
        retention_days=get_services(context).settings.unanswered_retention_days,
        conversation_minutes=get_services(context).settings.conversation_ttl_minutes,
    )


async def forget(update: Update, context: Context) -> None:
    """/forget: the conversation's topic goes at once (it was only ever in memory); for what is
    stored, ask first, because deleting cannot be undone."""
    me = await who(update, context)
    get_services(context).conversation.forget(me.chat_id)
    chat = update.effective_chat
    if chat is not None and chat.type != ChatType.PRIVATE:
        # In a group anyone could press the buttons, and the reply would be public.
        await send(context, me.chat_id, "forget_private_only", me.lang)
        return
    await send(
        context,
        me.chat_id,
        "forget_confirm",
        me.lang,
        buttons=[
            [
                (translate(me.lang, "privacy.forget_yes"), "forget:yes"),
                (translate(me.lang, "privacy.forget_no"), "forget:no"),
            ]
        ],
    )


def _first_answer(context: Context, message: Message) -> bool:
    """True only for the first press on a prompt. A double tap delivers two presses that both
    still show the buttons; only one may act, or the second would overwrite the first's
    report with "nothing stored". Checked and recorded without an await in between."""
    answered = context.application.bot_data.setdefault(ANSWERED_PROMPTS, OrderedDict())
    assert isinstance(answered, OrderedDict)
    key = (message.chat_id, message.message_id)
    if key in answered:
        return False
    answered[key] = None
    while len(answered) > ANSWERED_PROMPTS_KEPT:
        answered.popitem(last=False)
    return True


async def forget_button(update: Update, context: Context) -> None:
    """forget:yes deletes everything about the person (database and memory); forget:no not."""
    me = await who(update, context)
    query = update.callback_query
    message = query.message if query is not None else None
    args = callback_args(update, "forget:")
    if (
        args not in (["yes"], ["no"])
        or not isinstance(message, Message)
        or message.chat.type != ChatType.PRIVATE
        or not _first_answer(context, message)
    ):
        await outdated(update, context, me.lang)
        return
    await answer_callback(update)
    if args == ["no"]:
        await edit(update, context, "forget_kept", me.lang)
        return
    services = get_services(context)
    deleted = await services.storage.forget(me.user_id)
    services.answers.forget_user(me.user_id)
    services.conversation.forget(me.chat_id)
    if services.limiter is not None:
        services.limiter.forget_user(me.user_id)
    context.application.drop_user_data(me.user_id)  # e.g. project searches kept for paging
    context.application.drop_chat_data(me.chat_id)
    log.info("forgot a user on request: %s", deleted)
    await edit(update, context, "forget_done", me.lang, deleted=deleted)


async def purge_old_questions(context: Context) -> None:
    """Job: delete the texts of unanswered questions once the retention period has passed."""
    services = get_services(context)
    today = services.clock().astimezone(services.settings.tz).date()
    before = today - timedelta(days=services.settings.unanswered_retention_days)
    removed = await services.storage.purge_unanswered(before=before)
    if removed:
        log.info("deleted %d unanswered question text(s) from before %s", removed, before)
