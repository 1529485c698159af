"""The catalog services behind /projects, /takeaways and /factors, over the repository's
knowledge: search in three languages, paging maths, cards that show only what the source gives,
and every page rendering to Telegram HTML that fits one message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.i18n import LOCALES_DIR, translate
from bot.knowledge import load_knowledge
from bot.knowledge.models import LANGUAGES, KnowledgeBase
from bot.render import Renderer
from bot.services.catalog import (
    browse_factors,
    browse_projects,
    browse_takeaways,
    normalise_query,
    one_line,
    paginate,
    project_card,
    query_key,
    search_projects,
)
from tests.telegram_stub import MAX_MESSAGE_LENGTH, parse_html, utf16_len

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    loaded = load_knowledge(KNOWLEDGE)
    assert not loaded.problems
    return loaded


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def ids(kb: KnowledgeBase, query: str) -> list[str]:
    return [project.id for project in search_projects(kb, query)]


# --- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "Sweden",
        "Sverige",
        "sverige",
        "SE",
        "se",
        "Denmark",
        "Danmark",
        "DK",
        "projects in Denmark",
        "projekter i Danmark",
        "projekt i Sverige",
    ],
)
def test_search_by_country_in_every_language_and_by_code(kb: KnowledgeBase, query: str) -> None:
    assert ids(kb, query) == ["neo"]


@pytest.mark.parametrize(
    "query",
    [
        "Malta",
        "Italien",
        "Kroatien",
        "Rumänien",
        "Rumænien",
        "rumanien",
        "Lithuania",
        "Litauen",
        "MT",
    ],
)
def test_search_by_partner_country_is_accent_tolerant(kb: KnowledgeBase, query: str) -> None:
    assert ids(kb, query) == ["atwork4neets"]


def test_a_country_code_is_not_matched_as_a_word_in_the_texts(kb: KnowledgeBase) -> None:
    # Danish "se på" appears in Integrate NEETs' aims; "SE" still means Sweden only.
    assert "integrate-neets" not in ids(kb, "SE")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("guidance", ["bags4youth"]),
        ("one stop shops", ["integrate-neets", "integrate-neets-resource-centres"]),
        ("employment services", ["atwork4neets", "bags4youth"]),
        ("ngos", ["atwork4neets", "neo"]),
    ],
)
def test_search_by_theme(kb: KnowledgeBase, query: str, expected: list[str]) -> None:
    assert ids(kb, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Jobsplus", "atwork4neets"),
        ("Askovfonden", "neo"),
        ("trelleborg", "neo"),
        ("Kobenhavns kommune", "neo"),
        ("Felix Schartner", "integrate-neets"),
        ("bags", "bags4youth"),
        ("INTERREG", "atwork4neets"),
    ],
)
def test_search_by_partner_name_prefix_and_funding(
    kb: KnowledgeBase, query: str, expected: str
) -> None:
    assert ids(kb, query)[0] == expected


def test_search_in_the_aims_of_every_language(kb: KnowledgeBase) -> None:
    assert ids(kb, "Hamburg") == ["integrate-neets-resource-centres"]
    assert ids(kb, "Hamborg") == ["integrate-neets-resource-centres"]
    assert ids(kb, "resurscentrum") == ["integrate-neets-resource-centres"]
    assert ids(kb, "brobyggere") == ["neo"]  # stemmed: "brobyggare"/"brobygger" in the aims


def test_all_words_first_then_most_words(kb: KnowledgeBase) -> None:
    assert ids(kb, "one stop shops Hamburg") == ["integrate-neets-resource-centres"]
    partial = ids(kb, "Hamburg zzqx")
    assert partial == ["integrate-neets-resource-centres"]


def test_nothing_found_lists_everything_instead(kb: KnowledgeBase) -> None:
    assert ids(kb, "nonsense") == []
    listing = browse_projects(kb, "en", "nonsense")
    assert not listing.found
    assert listing.words == "nonsense"
    assert [line.id for line in listing.page.items] == list(kb.projects)[:5]


def test_a_search_of_only_filler_words_is_the_full_list(kb: KnowledgeBase) -> None:
    listing = browse_projects(kb, "sv", "projekt i")
    assert listing.found
    assert listing.query == ""
    assert listing.page.total == len(kb.projects)


def test_normalised_query_and_its_key_are_stable(kb: KnowledgeBase) -> None:
    assert normalise_query("  Sverige ") == normalise_query("SVERIGE") == "sverige"
    assert normalise_query("Göteborg projekter") == "goteborg"
    assert query_key("sverige") == query_key(normalise_query("Sverige"))
    assert len(query_key("a long search " * 20)) == 8


# --- paging ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "number", "size", "expected_items", "pages", "shown"),
    [
        (0, 0, 5, [], 1, 0),
        (5, 0, 5, [0, 1, 2, 3, 4], 1, 0),
        (6, 1, 5, [5], 2, 1),
        (11, 1, 5, [5, 6, 7, 8, 9], 3, 1),
        (11, 9, 5, [10], 3, 2),  # past the end: the last page
        (11, -3, 5, [0, 1, 2, 3, 4], 3, 0),
    ],
)
def test_paging_maths(
    count: int, number: int, size: int, expected_items: list[int], pages: int, shown: int
) -> None:
    page = paginate(list(range(count)), number, size)
    assert list(page.items) == expected_items
    assert (page.pages, page.number, page.total) == (pages, shown, count)
    assert page.has_previous == (shown > 0)
    assert page.has_next == (shown < pages - 1)


def test_page_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="page size"):
        paginate([1], 0, 0)


def test_project_list_pages_in_fives(kb: KnowledgeBase) -> None:
    listing = browse_projects(kb, "da", page=0, size=2)
    assert listing.page.pages == 3
    assert [line.id for line in listing.page.items] == ["atwork4neets", "bags4youth"]
    assert browse_projects(kb, "da").page.items == tuple(
        browse_projects(kb, "da", size=5).page.items
    )


def test_list_lines_are_short_and_in_the_readers_language(kb: KnowledgeBase) -> None:
    for lang in LANGUAGES:
        for line in browse_projects(kb, lang).page.items:
            assert len(line.aim) <= 111
    neo = next(line for line in browse_projects(kb, "sv").page.items if line.id == "neo")
    assert "förde samman" in neo.aim
    assert neo.countries == ("SE", "DK")


def test_one_line_cuts_at_a_word() -> None:
    assert one_line("Short. Second sentence.") == "Short."
    cut = one_line("word " * 40, limit=22)
    assert cut == "word word word word…"


# --- cards ----------------------------------------------------------------------------------


def test_unknown_project_has_no_card(kb: KnowledgeBase) -> None:
    assert project_card(kb, "en", "unknown") is None


@pytest.mark.parametrize("lang", LANGUAGES)
def test_card_without_a_budget_never_mentions_one(
    kb: KnowledgeBase, renderer: Renderer, lang: str
) -> None:
    card = project_card(kb, lang, "bags4youth")
    assert card is not None
    assert card.budget is None
    assert card.period_start is None
    html = renderer.render("project", lang, card=card)
    for key in (
        "projects.budget",
        "projects.period",
        "projects.website",
        "projects.countries",
        "projects.partners",
    ):
        assert translate(lang, key) not in html
    assert "budget" not in html.lower()
    assert translate(lang, "projects.funding") in html
    assert "SERN Sekretariat" in html


def test_card_shows_every_field_the_source_gives(kb: KnowledgeBase, renderer: Renderer) -> None:
    card = project_card(kb, "sv", "neo")
    assert card is not None
    html = renderer.render("project", "sv", card=card)
    for expected in (
        "<b>NEO</b>",
        "Projekt",
        "Askovfonden – Lead Partner",
        "Sverige, Danmark",
        "3 september 2012 – 31 december 2014",
        "868 744 EUR",
        "434 372 EUR",
        '<a href="http://neo-web.eu">neo-web.eu</a>',
        "Annika Svensson, +45 22 88 26 40",
        "NEO - NGO, Erhvervsliv och det Offentliga",
        "(danska)",
        "Källan är skriven på danska",
    ):
        assert expected in html, expected


def test_source_note_only_when_the_source_is_in_another_language(
    kb: KnowledgeBase, renderer: Renderer
) -> None:
    danish = renderer.render("project", "da", card=project_card(kb, "da", "neo"))
    assert translate("da", "projects.source_note", language="dansk") not in danish
    english = renderer.render("project", "en", card=project_card(kb, "en", "neo"))
    assert "The source is written in Danish" in english


def test_partner_countries_in_the_readers_language(kb: KnowledgeBase, renderer: Renderer) -> None:
    html = renderer.render("project", "da", card=project_card(kb, "da", "atwork4neets"))
    assert "Jobsplus (Malta) – Coordinator" in html
    assert "Ministry of Labour and Social Solidarity Romania (Rumænien)" in html
    assert "https://www.interregeurope.eu/atwork4neets" in html


def test_platform_and_working_group_point_at_each_other(
    kb: KnowledgeBase, renderer: Renderer
) -> None:
    platform = project_card(kb, "en", "integrate-neets")
    assert platform is not None
    assert platform.kind == "platform"
    assert [g.id for g in platform.working_groups] == ["integrate-neets-resource-centres"]
    group = project_card(kb, "sv", "integrate-neets-resource-centres")
    assert group is not None
    assert group.parent is not None
    assert "Arbetsgrupp inom Integrate NEETs" in renderer.render("project", "sv", card=group)
    assert "Knowledge platform" in renderer.render("project", "en", card=platform)


# --- takeaways and factors ------------------------------------------------------------------


def test_takeaways_grouped_by_conference_with_year_unknown(kb: KnowledgeBase) -> None:
    first = browse_takeaways(kb, "en")
    assert first.page.pages == 2
    assert first.page.total == 6
    [section] = first.sections
    assert not section.continued
    assert [c.title.split(":")[0] for c in section.conferences] == [
        "Autumn conference in Kristianstad",
        "Autumn conference in Gävle",
        "Autumn conference in Östersund",
    ]
    assert [(c.date.year, c.date.month, c.date.day) for c in section.conferences] == [
        (None, 10, 3),
        (None, 10, 27),
        (None, 11, 16),
    ]
    assert [s.title for s in section.sources] == [
        "Höstens regionala konferenser leder oss vidare genom samverkan"
    ]
    [second] = browse_takeaways(kb, "en", 1).sections
    assert second.continued


def test_original_swedish_wording_only_for_other_languages(kb: KnowledgeBase) -> None:
    for lang, shown in (("en", True), ("da", True), ("sv", False)):
        for section in browse_takeaways(kb, lang).sections:
            assert all(t.show_quote is shown for t in section.takeaways)
            assert all(t.quote_language == "sv" for t in section.takeaways)


def test_takeaways_render_dates_without_a_year(kb: KnowledgeBase, renderer: Renderer) -> None:
    html = renderer.render("takeaways", "da", view=browse_takeaways(kb, "da"))
    assert "3. oktober (året står ikke i kilden)" in html
    assert "<blockquote>Den oprindelige ordlyd (svensk):" in html
    assert "Arbetet med UVAS gruppen kräver samverkan" in html
    swedish = renderer.render("takeaways", "sv", view=browse_takeaways(kb, "sv"))
    assert "<blockquote>" not in swedish


def test_factors_name_their_source_and_projects(kb: KnowledgeBase) -> None:
    pages = [browse_factors(kb, "sv", n) for n in range(3)]
    assert [p.pages for p in pages] == [3, 3, 3]
    factors = [f for p in pages for f in p.items]
    assert len(factors) == len(kb.factors)
    neo = next(f for f in factors if f.id == "ngos-as-bridge-builders")
    assert neo.title == "NGO:er som brobyggare i ögonhöjd"
    assert neo.projects == ("NEO",)
    assert neo.source is not None
    assert neo.source.language == "da"


# --- every page renders to Telegram HTML that fits one message ------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_view_renders_valid_short_html(
    kb: KnowledgeBase, renderer: Renderer, lang: str
) -> None:
    htmls = [
        renderer.render("projects", lang, listing=browse_projects(kb, lang, query))
        for query in ("", "Sverige", "nonsense", "<b>Sverige&", "zz <i>")
    ]
    htmls += [
        renderer.render("project", lang, card=project_card(kb, lang, project_id))
        for project_id in kb.projects
    ]
    htmls += [
        renderer.render("takeaways", lang, view=browse_takeaways(kb, lang, n))
        for n in range(browse_takeaways(kb, lang).page.pages)
    ]
    htmls += [
        renderer.render("factors", lang, page=browse_factors(kb, lang, n))
        for n in range(browse_factors(kb, lang).pages)
    ]
    for html in htmls:
        text, _ = parse_html(html, strict_ampersand=True)
        assert utf16_len(text) < MAX_MESSAGE_LENGTH
        assert "\n\n\n" not in html


def test_empty_catalogs_render(kb: KnowledgeBase, renderer: Renderer) -> None:
    empty = KnowledgeBase({}, (), {}, {}, (), (), (), "")
    assert "There are no conference takeaways yet." in renderer.render(
        "takeaways", "en", view=browse_takeaways(empty, "en")
    )
    assert "Der er ingen succesfaktorer endnu." in renderer.render(
        "factors", "da", page=browse_factors(empty, "da")
    )


@pytest.mark.parametrize("feature", ["projects", "takeaways"])
def test_every_language_has_every_string(feature: str) -> None:
    keys = {
        lang: set(
            yaml.safe_load((LOCALES_DIR / lang / f"{feature}.yaml").read_text(encoding="utf-8"))
        )
        for lang in LANGUAGES
    }
    assert keys["sv"] == keys["en"] == keys["da"]
