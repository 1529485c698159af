"""/projects: the project catalog as a paged list, a search, and one card per project.

Callback data (all under 64 bytes):
  proj:l:<page>:<key>            a page of the list; <key> names a search kept in user_data
  proj:c:<id>:<page>:<key>       a project's card; page and key lead back to the same list
An empty <key> is the full list. Searches live in user_data, not in the buttons, because the words
may not fit; after a restart the key is gone and the button answers "outdated".
"""

from __future__ import annotations

from typing import Any

from telegram import Update

from bot.handlers.common import (
    CALLBACK_LIMIT,
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
from bot.services.catalog import (
    ProjectCard,
    ProjectListing,
    browse_projects,
    project_card,
    query_key,
)

SEARCHES_KEY = "proj_q"
MAX_SEARCHES = 20
MAX_SEARCH_CHARS = 200


def _remember_search(context: Context, listing: ProjectListing) -> str:
    """The key for this search's buttons ("" for the full list), keeping the last few searches so
    older list messages still page through their own results."""
    if not (listing.found and listing.query):
        return ""
    key = query_key(listing.query)
    user_data: dict[Any, Any] | None = context.user_data
    if user_data is None:
        return ""
    searches: dict[str, str] = user_data.setdefault(SEARCHES_KEY, {})
    searches.pop(key, None)
    searches[key] = listing.words[:MAX_SEARCH_CHARS]
    while len(searches) > MAX_SEARCHES:
        searches.pop(next(iter(searches)))
    return key


def _recall_search(context: Context, key: str) -> str | None:
    """The words of a kept search, "" for the full list, None when forgotten (restart)."""
    if not key:
        return ""
    searches = (context.user_data or {}).get(SEARCHES_KEY, {})
    words = searches.get(key) if isinstance(searches, dict) else None
    return words if isinstance(words, str) else None


def _card_data(project_id: str, page: int, key: str) -> str:
    data = f"proj:c:{project_id}:{page}:{key}"
    # A very long id leaves no room for the way back; the card then returns to the first page.
    return data if len(data.encode()) <= CALLBACK_LIMIT else f"proj:c:{project_id}:0:"


def _list_buttons(listing: ProjectListing, key: str, lang: str) -> Buttons:
    page = listing.page
    rows: list[list[tuple[str, str]]] = [
        [(line.name, _card_data(line.id, page.number, key))] for line in page.items
    ]
    paging: list[tuple[str, str]] = []
    if page.has_previous:
        paging.append((translate(lang, "common.previous"), f"proj:l:{page.number - 1}:{key}"))
    if page.has_next:
        paging.append((translate(lang, "common.next"), f"proj:l:{page.number + 1}:{key}"))
    if paging:
        rows.append(paging)
    return rows


def _card_buttons(card: ProjectCard, page: int, key: str, lang: str) -> Buttons:
    rows: list[list[tuple[str, str]]] = [
        [(group.name, _card_data(group.id, page, key))] for group in card.working_groups
    ]
    if card.parent is not None:
        rows.append(
            [
                (
                    translate(lang, "projects.part_of", name=card.parent.name),
                    _card_data(card.parent.id, page, key),
                )
            ]
        )
    rows.append([(translate(lang, "projects.back_to_list"), f"proj:l:{page}:{key}")])
    return rows


async def list_projects(update: Update, context: Context) -> None:
    """/projects [words]: the whole catalog, or the projects matching the words."""
    me = await who(update, context)
    words = " ".join(context.args or [])
    listing = browse_projects(get_services(context).kb, me.lang, words)
    key = _remember_search(context, listing)
    await send(
        context,
        me.chat_id,
        "projects",
        me.lang,
        _list_buttons(listing, key, me.lang),
        listing=listing,
    )


async def show_project(context: Context, chat_id: int, lang: str, project_id: str) -> bool:
    """Send one project's card (deep links such as /start project_neo); False if unknown."""
    card = project_card(get_services(context).kb, lang, project_id)
    if card is None:
        return False
    await send(context, chat_id, "project", lang, _card_buttons(card, 0, "", lang), card=card)
    return True


async def project_button(update: Update, context: Context) -> None:
    """List pages and cards, both edited into the message the button belongs to."""
    me = await who(update, context)
    args = callback_args(update, "proj:")
    kind, rest = (args[0], args[1:]) if args else ("", [])
    if kind == "l" and len(rest) == 2 and rest[0].isdecimal():
        page_text, key = rest
        card_id = None
    elif kind == "c" and len(rest) == 3 and rest[1].isdecimal():
        card_id, page_text, key = rest
    else:
        await outdated(update, context, me.lang)
        return
    page = int(page_text)
    kb = get_services(context).kb
    if card_id is not None:
        card = project_card(kb, me.lang, card_id)
        if card is None:
            await outdated(update, context, me.lang)
            return
        await answer_callback(update)
        await edit(
            update, context, "project", me.lang, _card_buttons(card, page, key, me.lang), card=card
        )
        return
    words = _recall_search(context, key)
    if words is None:
        await outdated(update, context, me.lang)
        return
    listing = browse_projects(kb, me.lang, words, page)
    await answer_callback(update)
    await edit(
        update, context, "projects", me.lang, _list_buttons(listing, key, me.lang), listing=listing
    )
