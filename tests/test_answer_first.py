"""Answer first, without the model: which sentence leads a reply, how passages are shortened,
which passages are listed, and the plain-word glossary."""

from __future__ import annotations

from typing import Any

import pytest

from bot.knowledge.models import LANGUAGES
from bot.services.answers import (
    ELLIPSIS,
    Answer,
    Passage,
    Segment,
    asks_for_value,
    choose_lead,
    clip,
    excerpt,
    gist,
    listed,
    show,
    value_kinds,
)
from bot.services.glossary import MAX_PER_REPLY, explain, glossary


def _passage(lines: list[str], **overrides: Any) -> Passage:
    values: dict[str, Any] = {
        "title": "NEO",
        "lang": "da",
        "kind": "project",
        "document_id": "neo",
        "document_title": "NEO - NGO, Erhvervsliv och det Offentliga",
        "document_lang": "da",
        "segments": tuple(Segment(line, False, "\n") for line in lines),
        "other_language": False,
        "summary": None,
    }
    values.update(overrides)
    values.setdefault("excerpt", values["segments"])
    return Passage(**values)


CARD = _passage(
    [
        "NEO.",
        "Formål: NEO samlede NGO'er, virksomheder og jobcentre for at skabe en model.",
        "Periode: 2012-09-03 – 2014-12-31",
        "Budget: 868 744 EUR",
        "Hjemmeside: neo-web.eu",
        "Kontakt: Annika Svensson, +45 22 88 26 40",
    ]
)
DOCUMENT = _passage(
    ["Fakta om projektet", "Kontakt:", "Annika Svensson", "Mål", "Tel: +45 22 88 26 40"],
    kind="document",
    title="NEO - NGO, Erhvervsliv och det Offentliga",
)
OTHER = _passage(
    ["Duration: 01 March 2023 - 28 February 2027 - Budget: €1,427,499.00"],
    document_id="atwork4neets",
    title="atWork4NEETs",
    lang="en",
)


# --- what a question asks for ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Hvad er budgettet for NEO?", "money"),
        ("How much did it cost?", "money"),
        ("Hvem er kontaktperson for NEO?", "person"),
        ("Var hölls mötet om resurscentrum?", "place"),
        ("Where did the working group meet?", "place"),
        ("Who is the lead partner of atWork4NEETs?", "partner"),
        ("När slutar atWork4NEETs?", "date"),
        ("Hvad er telefonnummeret til NEO?", "phone"),
    ],
)
def test_value_kinds(question: str, kind: str) -> None:
    assert kind in value_kinds(question)
    assert asks_for_value(question)


def test_danish_how_much_is_no_place_question() -> None:
    assert "place" not in value_kinds("Hvor meget fik NEO fra ERUF?")
    assert not asks_for_value("Hvad handler NEO om?")


# --- the lead --------------------------------------------------------------------------------


def test_a_value_question_leads_with_the_value_of_the_named_project() -> None:
    lead = choose_lead("Hvad er budgettet for NEO?", [CARD, OTHER], "da")
    assert lead is not None
    assert lead.value == "868 744 EUR"  # the whole amount, in bold
    assert lead.text == "Budget: 868 744 EUR"
    assert (lead.title, lead.lang, lead.passage) == ("NEO", "da", 0)


def test_a_sentence_from_another_document_never_leads() -> None:
    lead = choose_lead("Hvad er budgettet for NEO?", [CARD, OTHER], "da")
    assert lead is not None
    assert "1,427,499" not in lead.text


def test_a_label_without_its_value_and_a_heading_do_not_lead() -> None:
    lead = choose_lead("Hvem er kontaktperson for NEO?", [DOCUMENT, CARD], "da")
    assert lead is not None
    assert lead.text != "Kontakt:"
    assert "Annika Svensson" in lead.text
    goal = choose_lead("Hvad var målet med NEO?", [DOCUMENT, CARD], "da")
    assert goal is not None
    assert goal.text != "Mål"
    assert goal.text.startswith("Formål: NEO samlede")


def test_a_phone_question_leads_with_the_number_not_a_date() -> None:
    lead = choose_lead("Hvad er telefonnummeret til NEO?", [CARD], "da")
    assert lead is not None
    assert "+45 22 88 26 40" in lead.text


def test_what_is_leads_with_the_first_real_sentence() -> None:
    lead = choose_lead("Hvad er NEO?", [CARD], "da")
    assert lead is not None
    assert lead.text.startswith("Formål: NEO samlede")


def test_no_lead_without_an_answering_sentence() -> None:
    assert choose_lead("Hvad er budgettet for NEO?", [DOCUMENT], "da") is None
    assert choose_lead("hvad", [CARD], "da") is None


def test_a_long_lead_is_cut_around_its_value() -> None:
    sentence = "Words " * 60 + "and the budget was 868 744 EUR in total, " + "more " * 30
    passage = _passage([sentence])
    lead = choose_lead("What was the budget of NEO?", [passage], "en")
    assert lead is not None
    assert lead.value == "868 744 EUR"
    assert len(lead.text) <= 180
    assert lead.text.startswith(ELLIPSIS)
    assert lead.text.endswith(ELLIPSIS)


# --- shortening ------------------------------------------------------------------------------


def test_clip_cuts_at_spaces_and_marks_the_cut() -> None:
    text = "one two three four five six seven eight nine ten"
    assert clip(text, 100) == text
    short = clip(text, 20)
    assert len(short) <= 20
    assert short.endswith(ELLIPSIS)
    assert " ".join(short.rstrip(ELLIPSIS).split()) in text
    around = clip(text, 20, around=(text.index("nine"), text.index("nine") + 4))
    assert "nine" in around
    assert around.startswith(ELLIPSIS)


def test_excerpt_keeps_the_answering_sentences_and_marks_gaps() -> None:
    segments = (
        Segment("First sentence that sets the scene for everything.", False),
        Segment("The budget was 868 744 EUR for the whole project period.", True),
        Segment("Something else entirely that nobody asked about here.", False),
        Segment("The contact is Annika Svensson, reachable by phone.", True),
    )
    shortened = excerpt(segments, 400)
    texts = [s.text for s in shortened]
    assert texts[0].startswith(ELLIPSIS)  # the first sentence was left out
    assert texts[1].startswith(ELLIPSIS)  # and the one between them
    assert all(s.highlight for s in shortened)
    assert len(excerpt(segments, 60)) == 1  # the limit holds


def test_gist_is_the_first_sentence_only() -> None:
    summary = "NEO brought NGOs, businesses and job centres together. " + "More. " * 100
    assert gist(summary) == "NEO brought NGOs, businesses and job centres together."
    assert len(gist("word " * 200)) <= 150


def test_listing_skips_the_lead_passage_and_what_was_shown() -> None:
    passages = [
        _passage(["Budget: 868 744 EUR"]),
        _passage(["A"], excerpt=(Segment("NEO samlede NGO'er og virksomheder i en model.", True),)),
        _passage(["B"], excerpt=(Segment("neo-web.eu", True),)),  # adds nothing beside a lead
        _passage(["C"], excerpt=(Segment("Region Skåne og Gladsaxe bruger modellen nu.", True),)),
    ]
    answer = Answer("id", 1, "q", "da", True, passages)
    answer.lead = choose_lead("Hvad er budgettet for NEO?", passages, "da")
    assert answer.lead is not None
    assert answer.lead.passage == 0
    first = listed(answer, 1)
    assert [n for n, _ in first] == [2]
    show(answer, first)
    assert [n for n, _ in listed(answer, 3)] == [4]


# --- glossary --------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_glossary_explains_neet_uvas_and_esf_in_every_language(lang: str) -> None:
    terms = {term.term for term in glossary(lang)}
    assert {"NEET", "UVAS", "ESF"} <= terms
    for term in glossary(lang):
        assert term.text.strip()
        assert term.patterns


def test_a_term_is_explained_once_per_chat_in_reading_order() -> None:
    explained: set[str] = set()
    first = explain(["ESF programmes for NEETs", "UVAS"], "sv", explained)
    assert [t.term for t in first] == ["ESF", "NEET", "UVAS"]
    assert explain(["NEETs again"], "sv", explained) == []
    assert explained == {"ESF", "NEET", "UVAS"}


def test_a_reply_explains_at_most_a_few_terms() -> None:
    text = "NEET UVAS ESF ERUF INTERREG NGO EUSBSR one stop shop"
    assert len(explain([text], "da", set())) == MAX_PER_REPLY
