"""/takeaways and /factors through the real application, in English, Swedish and Danish: the
reader's language first, the original Swedish wording beside it, sources named, pages turned."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Harness
from tests.telegram_stub import Sent

pytestmark = pytest.mark.slow

LANGS = ("en", "sv", "da")
QUOTE = "Arbetet med UVAS gruppen kräver samverkan mellan flera parter"
LATER_QUOTE = "Fortsätt lyfta ungas röster."
SOURCE = "Höstens regionala konferenser leder oss vidare genom samverkan"
TAKEAWAYS_TITLE = {
    "en": "Takeaways from the conferences",
    "sv": "Lärdomar från konferenserna",
    "da": "Pointer fra konferencerne",
}
FIRST_TAKEAWAY = {
    "en": "Work with young people who are neither working nor studying (the UVAS group)",
    "sv": "Arbetet med unga som varken arbetar eller studerar (UVAS-gruppen)",
    "da": "Arbejdet med unge, der hverken arbejder eller studerer",
}
LATER_TAKEAWAY = {
    "en": "Keep lifting young people's voices",
    "sv": "Fortsätt lyfta ungas röster: för att stödet",
    "da": "Bliv ved med at løfte de unges stemmer",
}
DATE = {
    "en": "3 October (year not given in the source)",
    "sv": "3 oktober (året anges inte i källan)",
    "da": "3. oktober (året står ikke i kilden)",
}
ORIGINAL = {"en": "Original wording (Swedish):", "da": "Den oprindelige ordlyd (svensk):"}
NEXT = {"en": "Next ▶", "sv": "Nästa ▶", "da": "Næste ▶"}
PREVIOUS = {"en": "◀ Previous", "sv": "◀ Föregående", "da": "◀ Forrige"}
PAGE = {"en": "Page {} of {}", "sv": "Sida {} av {}", "da": "Side {} af {}"}
FACTORS_TITLE = {"en": "Success factors", "sv": "Framgångsfaktorer", "da": "Succesfaktorer"}
FIRST_FACTOR = {
    "en": "Multi-competent teams under one roof",
    "sv": "Multikompetenta team under samma tak",
    "da": "Multikompetente teams under samme tag",
}
NEO_FACTOR = {
    "en": "NGOs as bridge-builders at eye level",
    "sv": "NGO:er som brobyggare i ögonhöjd",
    "da": "NGO'er som brobyggere i øjenhøjde",
}
RELATED = {
    "en": "Related projects: NEO",
    "sv": "Kopplade projekt: NEO",
    "da": "Tilknyttede projekter: NEO",
}
OUTDATED = {
    "en": "This button is outdated",
    "sv": "Den här knappen är inte längre aktuell",
    "da": "Denne knap er ikke længere aktuel",
}


def entity_types_covering(message: Sent, needle: str) -> set[str]:
    """The entity types that cover the first occurrence of `needle` (offsets in UTF-16)."""
    text = message.text or ""
    start = len(text[: text.index(needle)].encode("utf-16-le")) // 2
    return {e["type"] for e in message.entities if e["offset"] <= start < e["offset"] + e["length"]}


async def turn(bot: Harness, user: int, message: Sent, label: str) -> Sent:
    data = next(d for text, d in message.buttons if text == label)
    [edited] = await bot.press(user, message, data or "", expect=1)
    assert edited.method == "editMessageText"
    return edited


@pytest.mark.parametrize("lang", LANGS)
async def test_takeaways_in_the_readers_language_with_the_original(bot: Harness, lang: str) -> None:
    [first] = await bot.say(401, "/takeaways", language_code=lang)
    text = first.text or ""
    assert text.startswith(TAKEAWAYS_TITLE[lang])
    assert FIRST_TAKEAWAY[lang] in text
    assert DATE[lang] in text
    for place in ("Kristianstad", "Gävle", "Östersund"):
        assert place in text
    assert SOURCE in text
    assert PAGE[lang].format(1, 2) in text
    if lang == "sv":
        assert QUOTE not in text
        assert not any(e["type"] == "blockquote" for e in first.entities)
    else:
        assert ORIGINAL[lang] in text
        assert {"blockquote", "italic"} <= entity_types_covering(first, QUOTE)
    assert len(text) < 4096
    assert [label for label, _ in first.buttons] == [NEXT[lang]]

    second = await turn(bot, 401, first, NEXT[lang])
    later = second.text or ""
    assert later.startswith(TAKEAWAYS_TITLE[lang])
    assert LATER_TAKEAWAY[lang] in later
    assert (LATER_QUOTE in later) is (lang != "sv")
    assert PAGE[lang].format(2, 2) in later
    assert [label for label, _ in second.buttons] == [PREVIOUS[lang]]
    back = await turn(bot, 401, second, PREVIOUS[lang])
    assert FIRST_TAKEAWAY[lang] in (back.text or "")
    assert not bot.stub.api_errors()


@pytest.mark.parametrize("lang", LANGS)
async def test_factors_with_their_sources_and_projects(bot: Harness, lang: str) -> None:
    [first] = await bot.say(402, "/factors", language_code=lang)
    text = first.text or ""
    assert text.startswith(FACTORS_TITLE[lang])
    assert FIRST_FACTOR[lang] in text
    assert "Thematic working groups: second round of meetings" in text
    assert PAGE[lang].format(1, 3) in text
    second = await turn(bot, 402, first, NEXT[lang])
    later = second.text or ""
    assert NEO_FACTOR[lang] in later
    assert RELATED[lang] in later
    assert "NEO - NGO, Erhvervsliv och det Offentliga" in later
    assert {label for label, _ in second.buttons} == {PREVIOUS[lang], NEXT[lang]}
    assert not bot.stub.api_errors()


@pytest.mark.parametrize("data", ["tk:x:1", "tk:t:one", "tk:f", "tk:"])
async def test_forged_page_buttons_are_outdated(bot: Harness, data: str) -> None:
    [listing] = await bot.say(403, "/takeaways", language_code="da")
    stored: Any = bot.stub.message(listing.chat_id, int(listing.message_id or 0))
    stored.reply_markup = {"inline_keyboard": [[{"text": "old", "callback_data": data}]]}
    assert await bot.press(403, listing, data) == []
    assert (bot.last_callback_text() or "").startswith(OUTDATED["da"])


async def test_deep_link_to_takeaways(bot: Harness) -> None:
    [reply] = await bot.say(404, "/start takeaways", language_code="sv")
    assert (reply.text or "").startswith(TAKEAWAYS_TITLE["sv"])
