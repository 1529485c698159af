"""Welcome, help, language and role; and the polite answers to what the bot does not understand."""

from __future__ import annotations

from typing import Any

from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.error import TelegramError
from telegram.ext import Application

from bot.handlers import meetings, projects, takeaways
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
from bot.i18n import translate, user_language
from bot.knowledge.models import LANGUAGES
from bot.render import language_name

USER_COMMANDS = (
    "projects",
    "meetings",
    "takeaways",
    "factors",
    "language",
    "privacy",
    "forget",
    "help",
)
ADMIN_COMMANDS = ("reindex", "documents", "add", "stats", "gaps")
ROLES = ("practitioner", "young")


def _language_buttons(lang: str) -> list[list[tuple[str, str]]]:
    return [[(language_name(code, code).capitalize(), f"lang:{code}") for code in LANGUAGES]]


def _role_buttons(lang: str) -> list[list[tuple[str, str]]]:
    return [[(translate(lang, f"start.role_{role}"), f"role:{role}")] for role in ROLES]


async def start(update: Update, context: Context) -> None:
    """/start [payload]: deep links open a card directly; otherwise welcome, ask the role once."""
    me = await who(update, context)
    services = get_services(context)
    if not me.known and update.effective_user:
        await services.storage.save_user(me.user_id, language=me.lang)
    payload = context.args[0] if context.args else ""
    if payload.startswith("project_") and await projects.show_project(
        context, me.chat_id, me.lang, payload.removeprefix("project_").replace("_", "-")
    ):
        return
    if payload.startswith("meeting_") and await meetings.show_meeting(
        context, me.chat_id, me.lang, payload.removeprefix("meeting_").replace("_", "-")
    ):
        return
    if payload == "takeaways":
        await takeaways.list_takeaways(update, context)
        return
    await send(
        context,
        me.chat_id,
        "start",
        me.lang,
        buttons=None if me.role else _role_buttons(me.lang),
        role=me.role,
        unknown_link=bool(payload),
    )


async def help_command(update: Update, context: Context) -> None:
    """/help: every command with one line, admin commands only for admins."""
    me = await who(update, context)
    commands = list(USER_COMMANDS) + (list(ADMIN_COMMANDS) if me.is_admin else [])
    await send(context, me.chat_id, "help", me.lang, commands=commands, role=me.role)


async def choose_language(update: Update, context: Context) -> None:
    me = await who(update, context)
    await send(context, me.chat_id, "language", me.lang, buttons=_language_buttons(me.lang))


async def language_button(update: Update, context: Context) -> None:
    me = await who(update, context)
    args = callback_args(update, "lang:")
    if not args or args[0] not in LANGUAGES:
        await outdated(update, context, me.lang)
        return
    lang = args[0]
    await get_services(context).storage.save_user(me.user_id, language=lang)
    await answer_callback(update)
    await edit(update, context, "language_set", lang)


async def role_button(update: Update, context: Context) -> None:
    me = await who(update, context)
    args = callback_args(update, "role:")
    if not args or args[0] not in ROLES:
        await outdated(update, context, me.lang)
        return
    await get_services(context).storage.save_user(me.user_id, role=args[0], language=me.lang)
    await answer_callback(update)
    await edit(update, context, "role_set", me.lang, role=args[0])


async def unknown_button(update: Update, context: Context) -> None:
    """Any callback no other handler claims: an old keyboard or forged data."""
    me = await who(update, context)
    await outdated(update, context, me.lang)


async def unknown_command(update: Update, context: Context) -> None:
    me = await who(update, context)
    text = update.effective_message.text if update.effective_message else ""
    command = (text or "").split()[0][:40] if text else ""
    await send(context, me.chat_id, "unknown_command", me.lang, command=command)


async def unsupported_message(update: Update, context: Context) -> None:
    """Stickers, photos, voice messages and the like: say what the bot understands."""
    me = await who(update, context)
    await send(context, me.chat_id, "unsupported", me.lang)


async def publish_commands(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """The command menu in each language, and the admin commands in admins' own chats."""
    services = app.bot_data["services"]
    for lang in LANGUAGES:
        commands = [BotCommand(name, translate(lang, f"help.cmd_{name}")) for name in USER_COMMANDS]
        await app.bot.set_my_commands(commands, language_code=None if lang == "en" else lang)
    for admin_id in services.settings.admin_ids:
        prefs = await services.storage.get_user(admin_id)
        lang = prefs.language if prefs else user_language(None)
        commands = [
            BotCommand(name, translate(lang, f"help.cmd_{name}"))
            for name in USER_COMMANDS + ADMIN_COMMANDS
        ]
        try:
            await app.bot.set_my_commands(commands, scope=BotCommandScopeChat(admin_id))
        except TelegramError:  # the admin has not started the bot yet
            continue
