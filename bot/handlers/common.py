"""What every handler shares: the services accessor, who is asking, and sending rendered replies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Message, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ContextTypes

from bot.i18n import translate, user_language
from bot.render import split_html
from bot.services.container import Services

log = logging.getLogger(__name__)
CALLBACK_LIMIT = 64
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
#: Seconds an answer may take before the chat shows "typing…".
TYPING_AFTER = 1.0

Context = ContextTypes.DEFAULT_TYPE
#: Rows of (label, callback data) or (label, "url:" + address).
Buttons = Sequence[Sequence[tuple[str, str]]]


def get_services(context: Context) -> Services:
    services = context.application.bot_data["services"]
    assert isinstance(services, Services)
    return services


@dataclass(frozen=True)
class Who:
    user_id: int
    chat_id: int
    lang: str
    role: str | None
    is_admin: bool
    known: bool  # has used the bot before (preferences stored)


async def who(update: Update, context: Context) -> Who:
    """The person behind an update with their stored preferences (or Telegram's language)."""
    services = get_services(context)
    user = update.effective_user
    chat = update.effective_chat
    user_id = user.id if user else 0
    prefs = await services.storage.get_user(user_id) if user else None
    lang = prefs.language if prefs else user_language(user.language_code if user else None)
    return Who(
        user_id=user_id,
        chat_id=chat.id if chat else user_id,
        lang=lang,
        role=prefs.role if prefs else None,
        is_admin=services.is_admin(user.id if user else None),
        known=prefs is not None,
    )


def keyboard(rows: Buttons | None) -> InlineKeyboardMarkup | None:
    """Inline keyboard; callback data over Telegram's 64-byte limit is a bug caught here."""
    if not rows:
        return None
    markup: list[list[InlineKeyboardButton]] = []
    for row in rows:
        buttons = []
        for label, data in row:
            if data.startswith("url:"):
                buttons.append(InlineKeyboardButton(label, url=data[4:]))
                continue
            if len(data.encode()) > CALLBACK_LIMIT:
                raise ValueError(f"callback data over {CALLBACK_LIMIT} bytes: {data!r}")
            buttons.append(InlineKeyboardButton(label, callback_data=data))
        markup.append(buttons)
    return InlineKeyboardMarkup(markup)


async def send(
    context: Context,
    chat_id: int,
    template: str,
    lang: str,
    buttons: Buttons | None = None,
    **values: Any,
) -> Message | None:
    """Render a template and send it, split under 4096 characters; buttons go on the last part."""
    html = get_services(context).renderer.render(template, lang, **values)
    return await send_rendered(context, chat_id, split_html(html), buttons)


async def send_rendered(
    context: Context, chat_id: int, parts: Sequence[str], buttons: Buttons | None = None
) -> Message | None:
    """Send HTML already rendered and split (bot/services/answering.py renders answers in the
    encoder's thread); buttons go on the last part."""
    message = None
    for number, part in enumerate(parts, start=1):
        message = await context.bot.send_message(
            chat_id,
            part,
            parse_mode=ParseMode.HTML,
            link_preview_options=NO_PREVIEW,
            reply_markup=keyboard(buttons) if number == len(parts) else None,
        )
    return message


@contextlib.asynccontextmanager
async def typing_after(
    context: Context, chat_id: int, delay: float | None = None
) -> AsyncIterator[None]:
    """Show "typing…" in the chat only if the work inside takes longer than `delay` seconds
    (TYPING_AFTER). Most answers are ready well within it, and each chat action is a call
    against Telegram's overall limit that the answers need. A typing action still waiting for
    the rate limiter when the work is done is called off: the answer goes instead."""
    loop = asyncio.get_running_loop()
    typing: asyncio.Task[None] | None = None

    async def show() -> None:
        with contextlib.suppress(TelegramError):  # only a courtesy; the answer matters
            await context.bot.send_chat_action(chat_id, ChatAction.TYPING)

    def start() -> None:
        nonlocal typing
        typing = loop.create_task(show())

    timer = loop.call_later(TYPING_AFTER if delay is None else delay, start)
    try:
        yield
    finally:
        timer.cancel()
        if typing is not None and not typing.done():
            typing.cancel()


async def edit(
    update: Update,
    context: Context,
    template: str,
    lang: str,
    buttons: Buttons | None = None,
    **values: Any,
) -> None:
    """Replace the text of the message a button belongs to (paging, progress)."""
    query = update.callback_query
    if query is None or not isinstance(query.message, Message):
        return
    html = get_services(context).renderer.render(template, lang, **values)
    parts = split_html(html)
    try:
        await query.message.edit_text(
            parts[0],
            parse_mode=ParseMode.HTML,
            link_preview_options=NO_PREVIEW,
            reply_markup=keyboard(buttons),
        )
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise
    for part in parts[1:]:
        await context.bot.send_message(
            query.message.chat_id, part, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
        )


async def answer_callback(update: Update, text: str | None = None) -> None:
    """Stop the button's spinner; a query that is too old to answer is not an error for users."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer(text)
    except (BadRequest, Forbidden) as error:
        log.debug("could not answer callback query: %s", error)


async def outdated(update: Update, context: Context, lang: str) -> None:
    """Buttons from an old keyboard (after a restart, a reindex or from someone else)."""
    await answer_callback(update, translate(lang, "common.outdated"))


def callback_args(update: Update, prefix: str) -> list[str]:
    query = update.callback_query
    data = query.data if query and query.data else ""
    return data.removeprefix(prefix).split(":") if data.startswith(prefix) else []
