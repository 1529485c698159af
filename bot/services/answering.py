"""From a planned question to the rendered first reply, in the encoder's worker thread.

The question handler used to search, build the answer and render it on the event loop after
the vector came back. With a hundred people asking at once, the vectors of a whole batch come
back together and every handler resumed in the same loop iteration, so the loop ran (batch ×
a few milliseconds) of Python at a stretch: updates, sends and timers all waited (issue 10).
Here everything between the encode and the HTML runs right after the batch's encode in the
encoder's thread (bot/retrieval/embedder.py, BatchingEncoder), one question after another in
the order they arrived; the handler on the loop only waits, then sends.

A reply is the same whether the person asked alone or among a hundred: the same search, the
same conversation rules (bot/services/conversation.py) and the same answer-first reply
(bot/services/answers.py), in the same order, only in another thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.i18n import translate
from bot.render import split_html
from bot.services.answers import Answer, answer_context, build_answer, listed
from bot.services.suggestions import suggest

if TYPE_CHECKING:
    from bot.retrieval.search import Searcher, SearchResult
    from bot.safety import Helpline
    from bot.services.container import Services
    from bot.services.conversation import Plan

#: Rows of (label, callback data), as bot.handlers.common.keyboard takes them.
ButtonRows = list[list[tuple[str, str]]]


@dataclass(frozen=True)
class Asker:
    """Who asked, as far as the reply depends on it."""

    user_id: int
    chat_id: int
    lang: str
    role: str | None


@dataclass(frozen=True)
class Reply:
    """A first reply ready to send: HTML split under Telegram's limit, buttons for the last
    part, and the answer the buttons refer to (kept in the AnswerCache by the caller)."""

    answer: Answer
    parts: tuple[str, ...]
    buttons: ButtonRows | None

    @property
    def answered(self) -> bool:
        return self.answer.answered


def suggestion_rows(answer: Answer) -> ButtonRows:
    return [[(f"❓ {text}", f"sg:{answer.id}:{n}")] for n, text in enumerate(answer.suggestions)]


def answer_buttons(answer: Answer, lang: str) -> ButtonRows:
    """👍/👎, then "full text" and "more results" when there is more; suggestions last."""
    rows: ButtonRows = [[("👍", f"fb:{answer.id}:+"), ("👎", f"fb:{answer.id}:-")]]
    extra = [(translate(lang, "questions.full_text"), f"full:{answer.id}")]
    if listed(answer, 1):
        extra.append((translate(lang, "questions.more"), f"more:{answer.id}"))
    rows.append(extra)
    return rows + suggestion_rows(answer)


async def reply(
    services: Services,
    asker: Asker,
    plan: Plan,
    *,
    asked: str | None = None,
    helplines: Mapping[str, Sequence[Helpline]] | None = None,
) -> Reply:
    """Search the planned question and render its first reply (`asked` echoes a question that
    came from a suggestion button). Only the waiting happens on the event loop."""
    kb = services.kb
    conversation = services.conversation
    renderer = services.renderer
    question = plan.question

    def compose(result: SearchResult, searcher: Searcher) -> Reply:  # in the worker thread
        turn = conversation.conclude(asker.chat_id, plan, result, searcher, kb)
        result = turn.result
        answer = build_answer(
            result,
            asker.user_id,
            asker.lang,
            kb,
            turn.index.chunk_map,
            role=asker.role,
            question=question,
        )
        if answer.young:
            projects = turn.topic.projects if turn.topic is not None else ()
            answer.suggestions = suggest(kb, asker.lang, question, projects)
        if not result.answered:
            html = renderer.render("no_answer", asker.lang, role=asker.role, helplines=helplines)
            return Reply(answer, tuple(split_html(html)), suggestion_rows(answer) or None)
        values = answer_context(
            answer,
            explained=conversation.explained(asker.chat_id),
            helplines=helplines,
            asked=asked,
        )
        html = renderer.render("answer", asker.lang, **values)
        return Reply(answer, tuple(split_html(html)), answer_buttons(answer, asker.lang))

    return await services.search.ask_then(plan.query, compose)
