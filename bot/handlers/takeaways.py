"""/takeaways (what the conferences concluded) and /factors (success factors), paged.

Callback data: tk:t:<page> pages the takeaways, tk:f:<page> the success factors.
"""

from __future__ import annotations

from telegram import Update

from bot.handlers.common import (
    Buttons,
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
from bot.services.catalog import browse_factors, browse_takeaways


def _paging(number: int, pages: int, kind: str, lang: str) -> Buttons:
    row: list[tuple[str, str]] = []
    if number > 0:
        row.append((translate(lang, "common.previous"), f"tk:{kind}:{number - 1}"))
    if number < pages - 1:
        row.append((translate(lang, "common.next"), f"tk:{kind}:{number + 1}"))
    return [row] if row else []


async def list_takeaways(update: Update, context: Context) -> None:
    """/takeaways: conference takeaways in the reader's language with the original wording."""
    me = await who(update, context)
    view = browse_takeaways(get_services(context).kb, me.lang)
    buttons = _paging(view.page.number, view.page.pages, "t", me.lang)
    await send(context, me.chat_id, "takeaways", me.lang, buttons, view=view)


async def list_factors(update: Update, context: Context) -> None:
    """/factors: success factors and where each comes from."""
    me = await who(update, context)
    page = browse_factors(get_services(context).kb, me.lang)
    buttons = _paging(page.number, page.pages, "f", me.lang)
    await send(context, me.chat_id, "factors", me.lang, buttons, page=page)


async def takeaway_button(update: Update, context: Context) -> None:
    """Turn the page of either list, editing the message in place."""
    me = await who(update, context)
    args = callback_args(update, "tk:")
    if len(args) != 2 or args[0] not in {"t", "f"} or not args[1].isdecimal():
        await outdated(update, context, me.lang)
        return
    kind, number = args[0], int(args[1])
    kb = get_services(context).kb
    await answer_callback(update)
    if kind == "t":
        view = browse_takeaways(kb, me.lang, number)
        buttons = _paging(view.page.number, view.page.pages, "t", me.lang)
        await edit(update, context, "takeaways", me.lang, buttons, view=view)
    else:
        page = browse_factors(kb, me.lang, number)
        buttons = _paging(page.number, page.pages, "f", me.lang)
        await edit(update, context, "factors", me.lang, buttons, page=page)
