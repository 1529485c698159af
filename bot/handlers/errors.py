"""The one error handler: log the exception first, then tell the person something short and kind."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, TelegramError

from bot.handlers.common import Context, send, who

log = logging.getLogger(__name__)


async def on_error(update: object, context: Context) -> None:
    if isinstance(context.error, Forbidden):
        log.warning("a user has blocked the bot: %s", context.error)
        return  # nobody to tell
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    try:
        me = await who(update, context)
        if update.callback_query is not None:
            await update.callback_query.answer()
        await send(context, me.chat_id, "error", me.lang)
    except (TelegramError, KeyError, RuntimeError) as error:
        log.warning("could not tell the user about the error: %s", error)
