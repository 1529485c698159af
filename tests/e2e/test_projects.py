"""/projects through the real application: the list and its pages, searches that survive paging,
cards opened by buttons and deep links, and old or forged buttons — in English, Swedish and
Danish."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KNOWLEDGE, BotFactory, Harness
from tests.telegram_stub import Sent

pytestmark = pytest.mark.slow

LANGS = ("en", "sv", "da")
TITLE = {"en": "Projects", "sv": "Projekt", "da": "Projekter"}
PAGE = {"en": "Page {} of {}", "sv": "Sida {} av {}", "da": "Side {} af {}"}
NEXT = {"en": "Next ▶", "sv": "Nästa ▶", "da": "Næste ▶"}
PREVIOUS = {"en": "◀ Previous", "sv": "◀ Föregående", "da": "◀ Forrige"}
BACK = {"en": "◀ All projects", "sv": "◀ Alla projekt", "da": "◀ Alle projekter"}
AIMS = {"en": "Aims", "sv": "Mål", "da": "Formål"}
BUDGET = {"en": "Budget:", "sv": "Budget:", "da": "Budget:"}
SEARCH = {
    "en": "Projects matching “{}”",
    "sv": "Projekt som passar ”{}”",
    "da": "Projekter, der passer til »{}«",
}
NOT_FOUND = {
    "en": "I found no project matching “{}”",
    "sv": "Jag hittade inget projekt som passar ”{}”",
    "da": "Jeg fandt intet projekt, der passer til »{}«",
}
OUTDATED = {
    "en": "This button is outdated",
    "sv": "Den här knappen är inte längre aktuell",
    "da": "Denne knap er ikke længere aktuel",
}
NEO_PERIOD = {
    "en": "3 September 2012 – 31 December 2014",
    "sv": "3 september 2012 – 31 december 2014",
    "da": "3. september 2012 – 31. december 2014",
}
NEO_AIM = {"en": "brought together NGOs", "sv": "förde samman NGO:er", "da": "samlede NGO'er"}
SOURCE_NOTE = {"en": "The source is written in Danish", "sv": "Källan är skriven på danska"}
ALL_PROJECTS = [
    "atWork4NEETs",
    "BAGS4YOUTH",
    "NEO",
    "Integrate NEETs",
    "Thematic working group on resource centres",
]
EXTRA = [f"Extra Sweden {n}" for n in range(1, 6)]


def labels(message: Sent) -> list[str]:
    return [label for label, _ in message.buttons]


def data_of(message: Sent, label: str) -> str:
    found = [data for text, data in message.buttons if text == label]
    assert found, f"no button {label!r} in {message.buttons}"
    return found[0] or ""


async def press_one(bot: Harness, user: int, message: Sent, label: str) -> Sent:
    """Press a button by its label; the bot edits the same message in place."""
    [edited] = await bot.press(user, message, data_of(message, label), expect=1)
    assert edited.method == "editMessageText"
    assert edited.message_id == message.message_id
    return edited


@pytest.fixture
def more_knowledge(tmp_path: Path) -> Path:
    """The repository's knowledge plus five small Swedish projects, so lists need two pages."""
    target = tmp_path / "more-knowledge"
    shutil.copytree(KNOWLEDGE, target)
    entries = "".join(
        f"""
  - id: extra-sweden-{n}
    name: Extra Sweden {n}
    kind: project
    source: neo
    aims:
      en: A small test project in Sweden, number {n}.
      sv: Ett litet testprojekt i Sverige, nummer {n}.
      da: Et lille testprojekt i Sverige, nummer {n}.
    countries: [SE]
"""
        for n in range(1, 6)
    )
    catalog = target / "catalogs" / "projects.yaml"
    catalog.write_text(catalog.read_text(encoding="utf-8") + entries, encoding="utf-8")
    return target


async def test_list_pages_and_cards_in_every_language(
    bot_factory: BotFactory, more_knowledge: Path
) -> None:
    async with bot_factory(knowledge=more_knowledge) as bot:
        for user, lang in enumerate(LANGS, start=301):
            [listing] = await bot.say(user, "/projects", language_code=lang)
            text = listing.text or ""
            assert text.startswith(TITLE[lang])
            assert PAGE[lang].format(1, 2) in text
            assert labels(listing) == [*ALL_PROJECTS, NEXT[lang]]
            assert NEO_AIM[lang] in text

            second = await press_one(bot, user, listing, NEXT[lang])
            assert PAGE[lang].format(2, 2) in (second.text or "")
            assert labels(second) == [*EXTRA, PREVIOUS[lang]]

            first = await press_one(bot, user, second, PREVIOUS[lang])
            assert labels(first) == labels(listing)

            card = await press_one(bot, user, first, "NEO")
            card_text = card.text or ""
            assert card_text.startswith("NEO")
            for expected in (
                AIMS[lang],
                NEO_AIM[lang],
                "Askovfonden",
                NEO_PERIOD[lang],
                "868 744 EUR",
                "Annika Svensson",
                "neo-web.eu",
            ):
                assert expected in card_text, expected
            assert any(
                e["type"] == "text_link" and e["url"].startswith("http://neo-web.eu")
                for e in card.entities
            )
            assert labels(card) == [BACK[lang]]

            back = await press_one(bot, user, card, BACK[lang])
            assert (back.text or "").startswith(TITLE[lang])
            assert PAGE[lang].format(1, 2) in (back.text or "")
        assert not bot.stub.api_errors()


async def test_search_words_survive_paging_and_cards(
    bot_factory: BotFactory, more_knowledge: Path
) -> None:
    async with bot_factory(knowledge=more_knowledge) as bot:
        for user, lang in enumerate(LANGS, start=311):
            [found] = await bot.say(user, "/projects Sverige", language_code=lang)
            assert (found.text or "").startswith(SEARCH[lang].format("Sverige"))
            assert labels(found) == ["NEO", *EXTRA[:4], NEXT[lang]]
            assert all(len((data or "").encode()) <= 64 for _, data in found.buttons)

            second = await press_one(bot, user, found, NEXT[lang])
            assert (second.text or "").startswith(SEARCH[lang].format("Sverige"))
            assert labels(second) == [EXTRA[4], PREVIOUS[lang]]

            card = await press_one(bot, user, second, EXTRA[4])
            assert "Extra Sweden 5" in (card.text or "")
            back = await press_one(bot, user, card, BACK[lang])
            assert (back.text or "").startswith(SEARCH[lang].format("Sverige"))
            assert labels(back) == labels(second)

            # A restart forgets the searches: the old list's buttons say so instead of guessing.
            bot.app.drop_user_data(user)
            edits = await bot.press(user, back, data_of(back, PREVIOUS[lang]))
            assert edits == []
            assert (bot.last_callback_text() or "").startswith(OUTDATED[lang])
        assert not bot.stub.api_errors()


@pytest.mark.parametrize("lang", LANGS)
async def test_search_by_country_name(bot: Harness, lang: str) -> None:
    for user, words in enumerate(("sverige", "Denmark", "DK"), start=321):
        [reply] = await bot.say(user, f"/projects {words}", language_code=lang)
        assert (reply.text or "").startswith(SEARCH[lang].format(words))
        assert labels(reply) == ["NEO"]


@pytest.mark.parametrize("lang", LANGS)
async def test_search_without_a_match_shows_everything_kindly(bot: Harness, lang: str) -> None:
    [reply] = await bot.say(331, "/projects nonsense", language_code=lang)
    assert (reply.text or "").startswith(NOT_FOUND[lang].format("nonsense"))
    assert labels(reply) == ALL_PROJECTS
    card = await press_one(bot, 331, reply, "BAGS4YOUTH")
    assert "budget" not in (card.text or "").lower()


@pytest.mark.parametrize("lang", LANGS)
async def test_deep_link_opens_a_card(bot: Harness, lang: str) -> None:
    [card] = await bot.say(341, "/start project_neo", language_code=lang)
    text = card.text or ""
    assert text.startswith("NEO")
    assert BUDGET[lang] in text
    assert NEO_AIM[lang] in text
    if lang in SOURCE_NOTE:
        assert SOURCE_NOTE[lang] in text
    else:
        assert "Kilden er skrevet" not in text
    listing = await press_one(bot, 341, card, BACK[lang])
    assert labels(listing) == ALL_PROJECTS


async def test_platform_card_leads_to_its_working_groups(bot: Harness) -> None:
    [card] = await bot.say(342, "/start project_integrate_neets", language_code="da")
    assert "Videnplatform" in (card.text or "")
    group = await press_one(bot, 342, card, "Thematic working group on resource centres")
    assert "Arbejdsgruppe under Integrate NEETs" in (group.text or "")
    assert "Hamborg" in (group.text or "")
    platform = await press_one(bot, 342, group, "Del af Integrate NEETs")
    assert (platform.text or "").startswith("Integrate NEETs")


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    "data", ["proj:c:unknown", "proj:c:unknown:0:", "proj:l:x:", "proj:l:0:deadbeef", "proj:zz"]
)
async def test_stale_or_forged_buttons_are_outdated(bot: Harness, lang: str, data: str) -> None:
    [listing] = await bot.say(351, "/projects", language_code=lang)
    stored: Any = bot.stub.message(listing.chat_id, int(listing.message_id or 0))
    stored.reply_markup = {"inline_keyboard": [[{"text": "old", "callback_data": data}]]}
    edits = await bot.press(351, listing, data)
    assert edits == []
    assert (bot.last_callback_text() or "").startswith(OUTDATED[lang])
    assert not bot.stub.api_errors()
