"""Language detection of questions and uploads: py3langid among the bot's languages, with names
ignored and a default when the text gives no evidence."""

from __future__ import annotations

import pytest

from bot.knowledge.models import LANGUAGES
from bot.retrieval.language import detect_language


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("hur lange pagick projektet", "sv"),  # typed without å and ä
        ("hvornar er det naeste mode", "da"),  # typed without å, æ and ø
        ("Vad hände på konferensen i København?", "sv"),  # a Danish place in Swedish
        ("hvem er kontaktperson i Göteborg", "da"),  # a Swedish place in Danish
        ("any projects in Malmö or Århus?", "en"),
        ("Hvem koordinerer atWork4NEETs?", "da"),  # a project name with digits
    ],
)
def test_short_chat_questions(text: str, lang: str) -> None:
    assert detect_language(text) == lang


@pytest.mark.parametrize("text", ["", "   ", "12345", "NEO", "BAGS4YOUTH", "?!", "👍"])
def test_no_words_means_the_default(text: str) -> None:
    assert detect_language(text, default="sv") == "sv"
    assert detect_language(text, default="da") == "da"


@pytest.mark.parametrize(
    "text",
    [
        "Jeg vil gjerne vite mer om prosjektene i Norge",  # Norwegian
        "Was kostet das Projekt in Hamburg?",  # German
        "Kuinka paljon projekti maksoi?",  # Finnish
    ],
)
def test_only_the_bots_languages_are_answered(text: str) -> None:
    assert detect_language(text) in LANGUAGES


def test_a_long_document_is_recognised() -> None:
    text = (
        "Projektet riktade sig till unga mellan 16 och 29 år som varken arbetade eller "
        "studerade. Deltagarna träffade en coach varje vecka i Malmö, Lund och København, "
        "och många gick vidare till studier eller arbete efter ett halvår."
    )
    assert detect_language(text) == "sv"
