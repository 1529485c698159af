"""/meetings, a meeting's card, its calendar file and reminder buttons, and the reminder sweep."""

from __future__ import annotations

import asyncio
import logging

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden

from bot.handlers.common import (
    CALLBACK_LIMIT,
    Context,
    answer_callback,
    callback_args,
    get_services,
    keyboard,
    outdated,
    send,
    who,
)
from bot.i18n import translate
from bot.services.meetings import Delivery, DueReminder, MeetingEntry, MeetingService

log = logging.getLogger(__name__)
SWEEP_LOCK = "meetings.sweep_lock"


def _service(context: Context) -> MeetingService:
    services = get_services(context)
    return MeetingService(services.kb, services.storage, services.settings.tz, services.clock)


def _fits(data: str) -> bool:
    """Ids may be up to 64 characters; a button whose data would not fit is left out rather
    than breaking the whole reply."""
    return len(data.encode()) <= CALLBACK_LIMIT


def _reminder_button(entry: MeetingEntry, lang: str) -> tuple[str, str]:
    if entry.subscribed:
        return translate(lang, "meetings.button_stop"), f"meet:unsub:{entry.id}"
    return translate(lang, "meetings.button_remind"), f"meet:sub:{entry.id}"


def _buttons(entry: MeetingEntry, lang: str, number: int | None = None) -> list[tuple[str, str]]:
    """Details (in a list), a calendar file (full date only), a reminder (upcoming only)."""
    row: list[tuple[str, str]] = []
    if number is not None:
        row.append(
            (translate(lang, "meetings.button_details", number=number), f"meet:show:{entry.id}")
        )
    if entry.has_full_date:
        row.append((translate(lang, "meetings.button_ics"), f"meet:ics:{entry.id}"))
    if entry.upcoming:
        row.append(_reminder_button(entry, lang))
    return [button for button in row if _fits(button[1])]


async def _send_card(context: Context, chat_id: int, lang: str, entry: MeetingEntry) -> None:
    row = _buttons(entry, lang)
    await send(context, chat_id, "meetings_card", lang, buttons=[row] if row else None, entry=entry)


async def upcoming_meetings(update: Update, context: Context) -> None:
    """/meetings: what is coming up, or honestly nothing and the most recent ones instead."""
    me = await who(update, context)
    listing = await _service(context).overview(me.user_id, me.lang)
    buttons = [
        row
        for number, entry in enumerate(listing.entries, start=1)
        if (row := _buttons(entry, me.lang, number))
    ]
    await send(context, me.chat_id, "meetings", me.lang, buttons=buttons, listing=listing)


async def show_meeting(context: Context, chat_id: int, lang: str, meeting_id: str) -> bool:
    """One meeting's card (deep link `meeting_<id>`); False when there is no such meeting.

    Deep links open in a private chat, where the chat id is the user id, so that is whose
    reminder the card shows."""
    entry = await _service(context).card(chat_id, lang, meeting_id)
    if entry is None:
        return False
    await _send_card(context, chat_id, lang, entry)
    return True


async def _flip_reminder_button(update: Update, entry: MeetingEntry, lang: str) -> None:
    """Turn "remind me" into "stop reminder" (and back) on the keyboard that was pressed, so
    the list or card the person is looking at stays true."""
    query = update.callback_query
    message = query.message if query else None
    if not isinstance(message, Message) or message.reply_markup is None:
        return
    targets = {f"meet:sub:{entry.id}", f"meet:unsub:{entry.id}"}
    rows: list[list[tuple[str, str]]] = []
    for row in message.reply_markup.inline_keyboard:
        buttons: list[tuple[str, str]] = []
        for button in row:
            data = button.callback_data if isinstance(button.callback_data, str) else None
            if data in targets:
                buttons.append(_reminder_button(entry, lang))
            elif data is not None:
                buttons.append((button.text, data))
            elif button.url:
                buttons.append((button.text, f"url:{button.url}"))
        rows.append(buttons)
    try:
        await message.edit_reply_markup(keyboard(rows))
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise


async def _send_calendar_file(update: Update, context: Context, meeting_id: str) -> None:
    me = await who(update, context)
    calendar = _service(context).calendar_file(meeting_id, me.lang)
    if calendar is None:
        await outdated(update, context, me.lang)
        return
    await answer_callback(update)
    caption = get_services(context).renderer.render(
        "meetings_ics_caption", me.lang, entry=calendar.entry
    )
    await context.bot.send_document(
        me.chat_id,
        calendar.content,
        filename=calendar.filename,
        caption=caption,
        parse_mode=ParseMode.HTML,
    )


async def meeting_button(update: Update, context: Context) -> None:
    """meet:show|ics|sub|unsub:<meeting id>; anything else, or a meeting that no longer
    qualifies, is an outdated button."""
    me = await who(update, context)
    args = callback_args(update, "meet:")
    action, meeting_id = args if len(args) == 2 else ("", "")
    service = _service(context)
    if action == "show":
        entry = await service.card(me.user_id, me.lang, meeting_id)
        if entry is None:
            await outdated(update, context, me.lang)
            return
        await answer_callback(update)
        await _send_card(context, me.chat_id, me.lang, entry)
    elif action == "ics":
        await _send_calendar_file(update, context, meeting_id)
    elif action in ("sub", "unsub"):
        change = (
            await service.subscribe(me.user_id, me.chat_id, meeting_id, me.lang)
            if action == "sub"
            else await service.unsubscribe(me.user_id, meeting_id, me.lang)
        )
        if change is None:
            await outdated(update, context, me.lang)
            return
        await answer_callback(update)
        await _flip_reminder_button(update, change.entry, me.lang)
        await send(
            context,
            me.chat_id,
            "meetings_reminder_set" if action == "sub" else "meetings_reminder_stopped",
            me.lang,
            change=change,
            zone=get_services(context).settings.timezone,
        )
    else:
        await outdated(update, context, me.lang)


async def send_due_reminders(context: Context) -> None:
    """JobQueue callback: deliver what is due. One sweep at a time, so a reminder that a
    manual run and the scheduled run both see is still sent once."""
    lock = context.application.bot_data.setdefault(SWEEP_LOCK, asyncio.Lock())
    assert isinstance(lock, asyncio.Lock)

    async def deliver(due: DueReminder) -> Delivery:
        ics = (translate(due.lang, "meetings.button_ics"), f"meet:ics:{due.entry.id}")
        row = [ics] if _fits(ics[1]) else []
        try:
            await send(
                context,
                due.chat_id,
                "meetings_reminder",
                due.lang,
                buttons=[row] if row else None,
                entry=due.entry,
            )
        except Forbidden:
            log.info("chat %s blocked the bot; dropping its reminders", due.chat_id)
            return Delivery.BLOCKED
        except Exception:
            log.exception(
                "reminder %s to chat %s failed; retrying at the next sweep",
                due.subscription_id,
                due.chat_id,
            )
            return Delivery.FAILED
        return Delivery.SENT

    async with lock:
        report = await _service(context).sweep(deliver)
    if report.sent or report.failed or report.blocked_chats:
        log.info("reminder sweep: %s", report)
