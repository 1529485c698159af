"""The conversation service: the setting, the memory (ttl, /forget, bounded, never on disk),
and the follow-up decision and search against the real index; and the suggested questions,
every one of which the knowledge base must answer. The dialogues here are not the report
split of benchmarks/data/dialogues.yaml (that one is only measured, never tested or tuned)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.errors import SettingsError
from bot.knowledge.models import LANGUAGES
from bot.retrieval.search import SearchResult
from bot.services.conversation import ConversationMemory, Plan, Topic, is_facet
from bot.services.search import SearchService
from bot.services.suggestions import MAX_SUGGESTIONS, all_suggestions, suggest
from bot.settings import load_settings

# --- the setting -------------------------------------------------------------------------------


def test_ttl_setting_defaults_to_15_minutes_and_is_validated(tmp_path: Path) -> None:
    none = tmp_path / "none.env"
    assert load_settings(environ={}, dotenv=none).conversation_ttl_minutes == 15
    env = {"CONVERSATION_TTL_MINUTES": "5"}
    assert load_settings(environ=env, dotenv=none).conversation_ttl_minutes == 5
    for bad in ("0", "soon"):
        with pytest.raises(SettingsError, match=r"^CONVERSATION_TTL_MINUTES"):
            load_settings(environ={"CONVERSATION_TTL_MINUTES": bad}, dotenv=none)


def test_env_example_documents_the_setting() -> None:
    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text(encoding="utf-8")
    assert "CONVERSATION_TTL_MINUTES=15" in example


# --- the memory --------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_topic_expires_after_the_ttl_of_silence_and_forget_drops_it() -> None:
    clock = Clock()
    memory = ConversationMemory(timedelta(minutes=15), clock)
    memory.state(1).topic = Topic(("neo",), anchor="NEO")
    clock.now += timedelta(minutes=14)
    assert memory.topic(1) is not None
    memory.state(1)  # a question keeps the conversation alive
    clock.now += timedelta(minutes=14)
    assert memory.topic(1) is not None
    clock.now += timedelta(minutes=2)
    assert memory.topic(1) is None  # 16 minutes of silence
    memory.state(2).topic = Topic(("bags4youth",))
    memory.forget(2)
    assert memory.topic(2) is None
    assert memory.topic(3) is None  # a chat never seen


def test_memory_is_bounded() -> None:
    memory = ConversationMemory(timedelta(minutes=15), Clock(), max_chats=3)
    for chat in range(10):
        memory.state(chat).topic = Topic(("neo",))
    assert len(memory) == 3
    assert memory.topic(9) is not None
    assert memory.topic(0) is None


def test_facets_are_what_people_ask_about_a_topic() -> None:
    for word in ("budget", "budgeten", "kontakt", "målet", "hjemmesiden", "partners", "when"):
        assert is_facet(word) or word == "when", word
    for word in ("pilot", "hamburg", "pizza", "konferenserna"):
        assert not is_facet(word), word


# --- deciding and searching, with the real index -----------------------------------------------


def _turns(service: SearchService, memory: ConversationMemory, *questions: str) -> list[Plan]:
    """Play questions in chat 1 as the bot does; the plans of all of them."""
    plans = []
    for question in questions:
        plan = memory.plan(1, question, service.searcher, service.knowledge)
        [result] = service.ask_many([plan.query])
        memory.remember(1, plan, memory.judge(plan, result), service.knowledge, service.searcher)
        plans.append(plan)
    return plans


def _ask(service: SearchService, memory: ConversationMemory, question: str) -> SearchResult:
    plan = memory.plan(1, question, service.searcher, service.knowledge)
    [result] = service.ask_many([plan.query])
    return memory.judge(plan, result)


def _documents(result: SearchResult) -> list[str]:
    return list(dict.fromkeys(h.chunk.document for h in result.hits))


@pytest.mark.slow
def test_a_follow_up_is_searched_with_the_topic(search_service: SearchService) -> None:
    memory = ConversationMemory(timedelta(minutes=15), Clock())
    _turns(search_service, memory, "Vad handlar BAGS4YOUTH om?")
    topic = memory.topic(1)
    assert topic is not None
    assert topic.documents == ("bags4youth",)
    assert topic.projects[0] == "bags4youth"
    assert topic.anchor == "BAGS4YOUTH"
    plan = memory.plan(1, "vad var syftet?", search_service.searcher, search_service.knowledge)
    assert plan.follow_up
    assert plan.query == "vad var syftet? BAGS4YOUTH"
    result = _ask(search_service, memory, "vad var syftet?")
    assert result.answered
    assert _documents(result)[0] == "bags4youth"


@pytest.mark.slow
def test_a_follow_up_asking_for_a_fact_the_topic_lacks_is_refused(
    search_service: SearchService,
) -> None:
    """BAGS4YOUTH has no budget: another project's budget is no answer to "and the budget?"."""
    memory = ConversationMemory(timedelta(minutes=15), Clock())
    _turns(search_service, memory, "Hvad handler BAGS4YOUTH om?")
    result = _ask(search_service, memory, "og budgettet?")
    assert not result.answered
    # and the topic survives the refusal
    _turns(search_service, memory, "og budgettet?")
    topic = memory.topic(1)
    assert topic is not None
    assert topic.documents == ("bags4youth",)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "second", "why"),
    [
        ("What is NEO?", "What is the budget of atWork4NEETs?", "names something new"),
        ("What is NEO?", "is it going to rain in Oslo tomorrow?", "never uses"),
        ("Vad är NEO?", "Vad sa deltagarna om stuprörsformade rutiner?", "something else"),
    ],
)
def test_a_new_topic_starts_fresh(
    search_service: SearchService, first: str, second: str, why: str
) -> None:
    memory = ConversationMemory(timedelta(minutes=15), Clock())
    [_, plan] = _turns(search_service, memory, first, second)
    assert not plan.follow_up, plan.reason
    assert why in plan.reason
    assert plan.query == second


@pytest.mark.slow
def test_a_question_naming_only_the_topics_own_things_stays_on_it(
    search_service: SearchService,
) -> None:
    memory = ConversationMemory(timedelta(minutes=15), Clock())
    [_, plan] = _turns(
        search_service, memory, "Vilka konferenser ordnade Temagruppen?", "och den i Östersund?"
    )
    assert plan.follow_up
    assert "östersund" in plan.reason


@pytest.mark.slow
def test_a_project_named_in_an_unanswered_question_is_still_the_topic(
    search_service: SearchService,
) -> None:
    memory = ConversationMemory(timedelta(minutes=15), Clock())
    plan = memory.plan(1, "Tell me about NEO", search_service.searcher, search_service.knowledge)
    refused = SearchResult(plan.query, "en", False, search_service.ask_many([plan.query])[0].hits)
    memory.remember(1, plan, refused, search_service.knowledge, search_service.searcher)
    topic = memory.topic(1)
    assert topic is not None
    assert topic.documents == ("neo",)


# --- suggestions --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_suggestion_is_answered_from_its_project(
    search_service: SearchService, lang: str
) -> None:
    kb = search_service.knowledge
    suggestions = all_suggestions(kb, lang)
    assert suggestions
    results = search_service.ask_many([q for _, _, q in suggestions])
    for (project, _, question), result in zip(suggestions, results, strict=True):
        assert result.answered, question
        assert kb.projects[project].source in _documents(result)[:3], question


@pytest.mark.slow
def test_suggestions_follow_the_topic_and_skip_what_was_asked(
    search_service: SearchService,
) -> None:
    kb = search_service.knowledge
    offered = suggest(kb, "sv", "Vem är kontakt för NEO?", ["neo"])
    assert 2 <= len(offered) <= MAX_SUGGESTIONS
    assert "Vem är kontakt för NEO?" not in offered
    assert offered[0] == "Vilken webbplats har NEO?"
    assert all(text.endswith("?") for text in offered)
    fresh = suggest(kb, "en", "I left school, what can I do?")
    assert fresh[0] in {"What is NEO?", "What is BAGS4YOUTH?"}  # young people take part there
