"""Rendering: long replies split into valid Telegram messages, document and user text escaped,
and UI strings complete and really translated in every language."""

from __future__ import annotations

import re
import signal
import string
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from bot.handlers.start import ADMIN_COMMANDS, USER_COMMANDS
from bot.i18n import catalog
from bot.knowledge.models import LANGUAGES
from bot.render import (
    TELEGRAM_LIMIT,
    Renderer,
    country_name,
    format_date,
    format_day_month,
    language_name,
    split_html,
)
from bot.safety import helplines_for
from bot.services.answers import Lead, Passage, Segment
from bot.services.glossary import glossary
from tests.telegram_stub import parse_html, utf16_len


def _plain(html: str) -> str:
    text, _ = parse_html(html, strict_ampersand=True)
    return re.sub(r"\s+", " ", text).strip()


def _check_parts(html: str, parts: list[str]) -> None:
    """Every part fits, parses as Telegram HTML, and together they say exactly what the whole
    message said."""
    assert len(parts) > 1
    for part in parts:
        assert utf16_len(part) <= TELEGRAM_LIMIT, f"{utf16_len(part)} UTF-16 units"
        text, _ = parse_html(part, strict_ampersand=True)  # raises on a broken tag or entity
        assert text.strip(), f"a part with no text (Telegram refuses it): {part!r}"
    nothing_lost = "".join(_plain(part) for part in parts)
    assert re.sub(r"\s", "", nothing_lost) == re.sub(r"\s", "", _plain(html))


# --- split_html ----------------------------------------------------------------------------------


def test_short_reply_is_one_part() -> None:
    assert split_html("<b>Hej</b> &amp; välkommen") == ["<b>Hej</b> &amp; välkommen"]
    assert split_html("   \n") == []


def test_long_reply_is_cut_at_paragraph_boundaries() -> None:
    paragraphs = [
        f"<b>{n}. Project {n}</b>\n" + " ".join(f"word{n}-{i}" for i in range(110))
        for n in range(1, 13)
    ]
    html = "\n\n".join(paragraphs)
    assert utf16_len(html) > 2 * TELEGRAM_LIMIT
    parts = split_html(html)
    _check_parts(html, parts)
    for paragraph in paragraphs:
        holders = [part for part in parts if paragraph in part]
        assert len(holders) == 1, f"paragraph {paragraph[:20]!r} was cut"


def test_tags_open_at_a_cut_are_closed_and_reopened() -> None:
    html = (
        '<b>Title</b>\n<i>intro <a href="https://example.org/x">' + "link text " * 900 + "</a></i>"
    )
    parts = split_html(html)
    _check_parts(html, parts)
    assert parts[0].endswith("</a></i>")
    assert parts[1].startswith('<i><a href="https://example.org/x">')
    for part in parts:
        _, entities = parse_html(part)
        assert {"italic", "text_link"} <= {e["type"] for e in entities}


def test_no_cut_inside_an_entity_or_a_word_around_it() -> None:
    html = "<b>Q&amp;A</b>\n" + "Q&amp;A och R&amp;D &lt;3 &quot;ok&quot; " * 400
    parts = split_html(html)
    _check_parts(html, parts)
    for part in parts:
        assert not re.search(r"&[a-z]*$", part)
        assert not re.match(r"^[a-z]*;", part)
        words = _plain(part).split(" ")
        assert words[0] in {"Q&A", "och", "R&D", "<3", '"ok"'}, part[:40]
        assert words[-1] in {"Q&A", "och", "R&D", "<3", '"ok"'}, part[-40:]


def _within(seconds: int, html: str) -> list[str]:
    def give_up(signum: int, frame: Any) -> None:
        raise TimeoutError(f"split_html did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        return split_html(html)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(
    "html",
    [
        "<b>" + "x" * 10_000 + "</b>",  # one unbreakable run inside a tag (a long URL, a hash)
        '<a href="https://example.org">' + "https://example.org/" + "a" * 9000 + "</a>",
        "x" * 10_000,
    ],
    ids=["bold", "link", "bare"],
)
def test_an_unbreakable_run_is_hard_cut(html: str) -> None:
    parts = _within(3, html)
    _check_parts(html, parts)
    assert len(parts) == 3


def test_blockquote_spanning_a_cut_is_valid_in_every_part() -> None:
    html = "<b>Summary</b>\n<blockquote expandable>" + "Sammanfattning på svenska. " * 400
    html += "</blockquote>"
    parts = split_html(html)
    _check_parts(html, parts)
    assert all("<blockquote expandable>" in part for part in parts)


@pytest.mark.parametrize(
    "html",
    [
        "😀 " * 3000,  # astral characters with spaces between them
        "😀" * 5000,  # one long run of astral characters, no place to break
        "<b>" + "Grüße 🇸🇪🇩🇰 " * 800 + "</b>",  # flags are two astral characters each
    ],
    ids=["emoji-words", "emoji-run", "flags-in-bold"],
)
def test_astral_characters_count_as_two_units(html: str) -> None:
    assert len(html) <= 2 * utf16_len(html)
    parts = split_html(html)
    _check_parts(html, parts)


def test_cyrillic_and_nordic_letters_count_as_one_unit() -> None:
    html = "Ærø Åland Östersund Жизнь " * 400
    parts = split_html(html)
    _check_parts(html, parts)
    assert len(parts) == 3  # 10,400 units: three messages, not more


# --- the renderer --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def _passage(**overrides: Any) -> Passage:
    values: dict[str, Any] = {
        "title": "<script>alert('x')</script> Budget & partners",
        "lang": "en",
        "kind": "document",
        "document_id": "neo",
        "document_title": "NEO <b>not bold</b>",
        "document_lang": "da",
        "segments": (
            Segment("Fish & chips cost <5 €.", True),
            Segment("<i>Tags</i> in a document stay text.", False),
        ),
        "other_language": True,
        "summary": "A summary with <u>markup</u> & an ampersand.",
    }
    values.update(overrides)
    values.setdefault("excerpt", values["segments"])
    return Passage(**values)


def _lead(**overrides: Any) -> Lead:
    values: dict[str, Any] = {
        "before": "Budget <i>&</i> costs: ",
        "value": "€<5",
        "after": " & more",
        "title": "NEO <b>card</b>",
        "document_title": "NEO",
        "lang": "da",
        "passage": 0,
        "sentence": "Budget <i>&</i> costs: €<5 & more",
        "kind": "money",
    }
    values.update(overrides)
    return Lead(**values)


def _answer_context(lang: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "lead": _lead(),
        "passages": [(2, _passage(lang=lang))],
        "gist_at": 2,
        "glossary": list(glossary(lang)[:2]),
        "helplines": None,
        "asked": None,
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize("lang", LANGUAGES)
def test_answer_first_reply_escapes_and_leads(renderer: Renderer, lang: str) -> None:
    html = renderer.render("answer", lang, **_answer_context(lang, asked="<b>x</b> & y?"))
    plain, entities = parse_html(html, strict_ampersand=True)
    assert plain.startswith("❓")  # a question from a button is echoed first
    lead_at = plain.index("Budget <i>&</i> costs: €<5 & more")
    assert lead_at < plain.index("<script>")  # the lead comes before the passages
    units = plain.encode("utf-16-le")  # entity offsets count UTF-16 units (emoji count two)
    bold = [
        units[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
        for e in entities
        if e["type"] == "bold"
    ]
    assert "€<5" in bold  # only the value is bold in an exact lead
    assert "NEO <b>card</b>" in plain
    assert "<b>x</b> & y?" in plain
    assert "A summary with <u>markup</u>" in plain  # the gist of the summary
    for term in glossary(lang)[:2]:
        assert term.text in plain


@pytest.mark.parametrize("lang", LANGUAGES)
def test_document_text_is_escaped(renderer: Renderer, lang: str) -> None:
    html = renderer.render("answer_full", lang, passages=[(1, _passage())])
    assert "<script>" not in html
    assert "<u>" not in html
    assert "<b>not bold</b>" not in html
    assert "&lt;script&gt;" in html
    assert "Fish &amp; chips cost &lt;5 €." in html
    plain, entities = parse_html(html, strict_ampersand=True)
    assert "<script>alert('x')</script> Budget & partners" in plain
    assert "Fish & chips cost <5 €." in plain
    assert "<i>Tags</i> in a document stay text." in plain
    assert "A summary with <u>markup</u> & an ampersand." in plain
    bold = [plain[e["offset"] : e["offset"] + e["length"]] for e in entities if e["type"] == "bold"]
    assert "Fish & chips cost <5 €." in bold  # the template's own markup still works


def test_user_text_is_escaped(renderer: Renderer) -> None:
    html = renderer.render("unknown_command", "en", command="/x<b>&amp;</b>")
    plain, entities = parse_html(html, strict_ampersand=True)
    assert "/x<b>&amp;</b>" in plain
    assert entities == [] or all(e["type"] != "bold" for e in entities)


# --- UI strings ----------------------------------------------------------------------------------

#: Identical on purpose: a symbol-only format and a loanword used as is.
SAME_AS_ENGLISH = {"projects.period_range", "admin.stats_feedback", "admin.upload_format"}


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_language_has_the_same_keys() -> None:
    english = set(catalog("en"))
    assert len(english) > 50
    for lang in LANGUAGES:
        keys = set(catalog(lang))
        assert keys - english == set(), f"{lang} has keys English lacks"
        assert english - keys == set(), f"{lang} lacks keys"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_empty_strings(lang: str) -> None:
    empty = [key for key, text in catalog(lang).items() if not text.strip()]
    assert empty == []


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_placeholders_match_english(lang: str) -> None:
    english = catalog("en")
    wrong = {
        key: (sorted(_placeholders(english[key])), sorted(_placeholders(text)))
        for key, text in catalog(lang).items()
        if _placeholders(text) != _placeholders(english[key])
    }
    assert wrong == {}


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_strings_are_translated(lang: str) -> None:
    english = catalog("en")
    untranslated = [
        key
        for key, text in catalog(lang).items()
        if len(text) > 12 and text == english[key] and key not in SAME_AS_ENGLISH
    ]
    assert untranslated == []


# --- templates -----------------------------------------------------------------------------------


def _samples(lang: str) -> dict[str, dict[str, Any]]:
    roles = sorted(
        key.removeprefix("start.role_set_")
        for key in catalog("en")
        if key.startswith("start.role_set_")
    )
    return {
        "help": {"commands": [*USER_COMMANDS, *ADMIN_COMMANDS]},
        "start": {"role": None, "unknown_link": True},
        **{f"start-{role}": {"role": role, "unknown_link": False} for role in roles},
        **{f"role_set-{role}": {"role": role} for role in roles},
        "answer": _answer_context(lang, helplines=helplines_for(lang)),
        "answer-nolead": _answer_context(lang, lead=None, gist_at=None, glossary=[]),
        "answer_more": {"passages": [(3, _passage(lang=lang))], "gist_at": None},
        "answer_full": {"passages": [(1, _passage(lang=lang))]},
        "no_answer": {"role": "young", "helplines": helplines_for(lang)},
        "crisis": {"helplines": helplines_for(lang)},
        "privacy": {"retention_days": 30, "conversation_minutes": 15},
        "question_empty": {},
        "question_too_long": {"limit": 1000},
        "rate_limited": {},
        "unknown_command": {"command": "/nope"},
        "unsupported": {},
        "error": {},
        "language": {},
        "language_set": {},
        "forget_confirm": {},
        "forget_kept": {},
        "forget_private_only": {},
        "forget_done": {"deleted": SimpleNamespace(users=1, feedback=2, subscriptions=1)},
        "admin_reindex_started": {},
        "admin_reindex_busy": {},
        "admin_reindex_failed": {"error": "disk full"},
        "admin_reindex_done": {
            "seconds": 12.5,
            "documents": 5,
            "chunks": 159,
            "problems": [],
            "max_problems": 10,
        },
    }  # fmt: skip


@pytest.mark.parametrize("lang", LANGUAGES)
def test_templates_render_in_every_language(renderer: Renderer, lang: str) -> None:
    for name, context in _samples(lang).items():
        template = name.split("-")[0]
        html = renderer.render(template, lang, **context)
        assert html.strip(), name
        assert utf16_len(html) <= TELEGRAM_LIMIT, name
        parse_html(html, strict_ampersand=True)
        if lang != "en":
            assert html != renderer.render(template, "en", **context), f"{name} not translated"


@pytest.mark.parametrize(
    ("lang", "full", "day_month"),
    [
        ("en", "3 October 2026", "29 February"),
        ("sv", "3 oktober 2026", "29 februari"),
        ("da", "3. oktober 2026", "29. februar"),
        # CLDR knows languages the bot does not speak yet: adding one needs no month table.
        ("fi", "3. lokakuuta 2026", "29. helmikuuta"),
    ],
)
def test_dates_read_naturally_in_each_language(lang: str, full: str, day_month: str) -> None:
    assert format_date(date(2026, 10, 3), lang) == full
    assert format_date(datetime(2026, 10, 3, 23, 30), lang) == full
    assert format_day_month(29, 2, lang) == day_month


@pytest.mark.parametrize(
    ("lang", "sweden", "romania", "swedish"),
    [
        ("en", "Sweden", "Romania", "Swedish"),
        ("sv", "Sverige", "Rumänien", "svenska"),
        ("da", "Sverige", "Rumænien", "svensk"),
        ("de", "Schweden", "Rumänien", "Schwedisch"),
    ],
)
def test_country_and_language_names_come_from_cldr(
    lang: str, sweden: str, romania: str, swedish: str
) -> None:
    assert (country_name("SE", lang), country_name("RO", lang)) == (sweden, romania)
    assert language_name("sv", lang) == swedish
    assert country_name("XX", lang) == "XX"  # an unknown code is shown as written
