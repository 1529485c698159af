"""`brobygger chat` shows Telegram HTML the way Telegram does, as terminal styles (no model)."""

from __future__ import annotations

from bot.console import html_to_terminal, html_to_text
from bot.render import Renderer
from bot.services.answers import Lead

REPLY = (
    "💡 Budget: <b>€1,427,499.00</b>\n"
    "<i>Source: atWork4NEETs · English</i>\n\n"
    'See <a href="https://www.interregeurope.eu/atwork4neets">the project page</a> or '
    '<a href="https://neo-web.eu">https://neo-web.eu</a> &amp; more.\n'
    "<blockquote expandable>First line of a summary\nsecond line</blockquote>\n"
    "After the quote."
)


def test_plain_terminal_text_has_no_markup_but_keeps_addresses_and_quotes() -> None:
    text = html_to_terminal(REPLY, color=False)
    assert "<" not in text
    assert "&amp;" not in text
    assert "Budget: €1,427,499.00" in text
    assert "the project page (https://www.interregeurope.eu/atwork4neets)" in text
    assert "https://neo-web.eu & more." in text  # the address is the text: not twice
    assert "  │ First line of a summary\n  │ second line\nAfter the quote." in text
    assert "\x1b[" not in text  # no colour codes when colours are off


def test_coloured_terminal_text_is_bold_and_italic_where_telegram_is() -> None:
    text = html_to_terminal(REPLY, color=True)
    assert "\x1b[1m€1,427,499.00\x1b[0m" in text
    assert "\x1b[3mSource: atWork4NEETs · English\x1b[0m" in text


def test_styles_follow_the_tags() -> None:
    text = html_to_text("<b>bold <i>both</i></b> plain")
    spans = {text.plain[s.start : s.end]: str(s.style) for s in text.spans}
    assert spans["bold "] == "bold"
    assert spans["both"] == "bold italic"
    assert "plain" not in spans


def test_a_rendered_answer_reads_in_the_terminal() -> None:
    sentence = "Budget: 868 744 EUR"
    lead = Lead("Budget: ", "868 744 EUR", "", "NEO", "NEO", "da", 0, sentence, "money")
    html = Renderer().render(
        "answer",
        "da",
        lead=lead,
        passages=[],
        gist_at=None,
        glossary=[],
        helplines=None,
        asked=None,
    )
    text = html_to_terminal(html, color=False)
    assert text.startswith("💡 Budget: 868 744 EUR\nKilde: NEO · dansk")
