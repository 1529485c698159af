"""Retrieval with the real bundled model over the repository's knowledge: questions in English,
Swedish and Danish find the right document first — also when the document is in another of the
three languages — and questions the knowledge cannot answer are refused."""

from __future__ import annotations

import pytest

from bot.retrieval.search import SearchResult, detect_language
from bot.services.search import SearchService

# Document languages: integrate-neets-working-groups en, atwork4neets en,
# hostens-regionala-konferenser sv, bags4youth sv, neo da.
GROUPS = "integrate-neets-working-groups"
AUTUMN = "hostens-regionala-konferenser"

# (question, document expected at rank 1, text expected in the top passage or None)
QUESTIONS = [
    # English
    ("What is BAGS4YOUTH about?", "bags4youth", None),  # en -> sv
    ("When is the follow-up meeting of the thematic working groups?", GROUPS, "10/6"),
    ("Who are the partners in the NEO project?", "neo", "Askovfonden"),  # en -> da
    (
        "What did the autumn conferences in Kristianstad conclude?",
        AUTUMN,
        "Kristianstad",
    ),  # en -> sv
    # Swedish
    ("Vilka partner har NEO?", "neo", "Askovfonden"),  # sv -> da
    ("Vad är budgeten för atWork4NEETs?", "atwork4neets", "1,427,499"),  # sv -> en
    ("När träffas de tematiska arbetsgrupperna igen?", GROUPS, "10/6"),  # sv -> en
    ("Vilka slutsatser drog höstens regionala konferenser?", AUTUMN, None),
    # Danish
    ("Hvad er budgettet for atWork4NEETs?", "atwork4neets", "1,427,499"),  # da -> en
    ("Hvad kom konferencerne i Kristianstad frem til?", AUTUMN, "Kristianstad"),  # da -> sv
    ("Hvem er partnerne i NEO?", "neo", "Askovfonden"),
    ("Hvornår mødes de tematiske arbejdsgrupper igen?", GROUPS, "10/6"),  # da -> en
]

UNRELATED = [
    "What's the weather in Madrid?",
    "Hur lagar man köttbullar?",
    "Who won the football world cup?",
    # a place the knowledge mentions does not make the question answerable
    "What is the weather in Gävle?",
    "Hvad koster en pizza i København?",
]


def _ask(service: SearchService, question: str, **kwargs: object) -> SearchResult:
    (result,) = service.ask_many([question], **kwargs)  # type: ignore[arg-type]
    return result


def _describe(result: SearchResult) -> str:
    return "; ".join(
        f"{h.rank}. {h.chunk.id} ({h.score:.2f}, dense {h.dense:.2f})" for h in result.hits
    )


@pytest.mark.slow
@pytest.mark.parametrize(("question", "document", "phrase"), QUESTIONS)
def test_question_finds_the_right_document_first(
    search_service: SearchService, question: str, document: str, phrase: str | None
) -> None:
    result = _ask(search_service, question)
    assert result.answered, f"refused: {_describe(result)}"
    top = result.hits[0]
    assert top.chunk.document == document, _describe(result)
    if phrase is not None:
        assert phrase in top.chunk.text, top.chunk.text


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        "Vad handlar BAGS4YOUTH om?",  # sv -> sv: the document's own language
        "Hvad handler BAGS4YOUTH om?",  # da -> sv
    ],
)
def test_what_is_it_about_in_swedish_and_danish(
    search_service: SearchService, question: str
) -> None:
    """The Scandinavian way to ask "what is X about" must not be derailed by the verb."""
    result = _ask(search_service, question)
    assert result.hits[0].chunk.document == "bags4youth", _describe(result)
    assert result.answered, _describe(result)


@pytest.mark.slow
@pytest.mark.parametrize("question", UNRELATED)
def test_unrelated_question_is_not_answered(search_service: SearchService, question: str) -> None:
    result = _ask(search_service, question)
    assert result.answered is False, _describe(result)


@pytest.mark.slow
def test_results_are_ranked_deduplicated_and_respect_top_k(
    search_service: SearchService,
) -> None:
    result = _ask(search_service, "NEO budget", top_k=7)
    assert [h.rank for h in result.hits] == list(range(1, 8))
    assert result.hits[0].score == max(h.score for h in result.hits)
    texts = [h.chunk.text for h in result.hits]
    assert len(set(texts)) == len(texts)
    assert "868 744" in result.hits[0].chunk.text
    assert len(_ask(search_service, "NEO budget", top_k=1).hits) == 1


@pytest.mark.slow
def test_language_can_be_given_instead_of_guessed(search_service: SearchService) -> None:
    assert _ask(search_service, "NEO budget").lang == "en"
    assert _ask(search_service, "NEO budget", lang="da").lang == "da"


@pytest.mark.slow
async def test_async_ask_matches_the_batch_search(search_service: SearchService) -> None:
    question = "Hvad er budgettet for atWork4NEETs?"
    try:
        single = await search_service.ask(question)
    finally:
        await search_service.close()
    batch = _ask(search_service, question)
    assert [h.chunk.id for h in single.hits] == [h.chunk.id for h in batch.hits]
    assert single.answered == batch.answered


@pytest.mark.parametrize(
    ("question", "lang"),
    [
        ("What is the budget of NEO?", "en"),
        ("Who coordinates atWork4NEETs?", "en"),
        ("When is the next meeting?", "en"),
        ("Vad är budgeten för NEO?", "sv"),
        ("Vilka partner har NEO?", "sv"),
        ("När träffas arbetsgrupperna?", "sv"),
        ("Finns det något möte i Gävle?", "sv"),
        ("Hvad er budgettet for NEO?", "da"),
        ("Hvem er partnerne i NEO?", "da"),
        ("Hvornår mødes arbejdsgrupperne?", "da"),
        ("Hvilke lande deltager i BAGS4YOUTH?", "da"),
        # a Swedish or Danish place name does not make a question Swedish or Danish
        ("What is the weather in Gävle?", "en"),
        ("When was the conference in Östersund?", "en"),
        ("Who is the contact person for NEO in København?", "en"),
        ("Hvornår er mødet i Malmö?", "da"),
        ("Vilka deltog från Køge?", "sv"),
    ],
)
def test_detect_language_of_typical_questions(question: str, lang: str) -> None:
    assert detect_language(question) == lang


def test_detect_language_of_an_english_text_about_swedish_places() -> None:
    """Uploads are labelled with this guess when the admin gives no language."""
    text = (
        "The autumn conferences were held in Kristianstad, Gävle and Östersund. "
        "Participants from Malmö and Göteborg discussed early interventions for young people."
    )
    assert detect_language(text) == "en"


def test_detect_language_falls_back_to_the_default() -> None:
    assert detect_language("NEO") == "en"
    assert detect_language("NEO", default="sv") == "sv"
    assert detect_language("12345") == "en"
