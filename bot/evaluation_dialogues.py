"""Conversation and reply figures for `make eval`: two-turn dialogues and answer-first replies.

* **Dialogues** (`benchmarks/data/dialogues.yaml`): each dialogue is played through the real
  conversation memory (`bot.services.conversation`) and search, turn 1 then turn 2, in a chat of
  its own. Figures: for follow-ups, the share whose second turn has the expected document among
  its first three documents (Hit@3), next to the same second turns searched alone (what the
  context buys); for new topics, the share *not dragged back*: the second turn's first document
  is not the first turn's document (an unanswerable second turn counts when it is refused or
  its first document is another one), and their Hit@3; and the share of second turns the
  knowledge cannot answer that are refused.
* **Replies** (`benchmarks/data/questions.yaml`): every question is answered and rendered with
  the reply templates the bot sends (`bot.services.answers`), for a practitioner and for a young
  person. Figures: median reply length (characters a person sees, markup removed), and for
  questions that ask for a value (amount, date, place, person, phone, website, partner…) and can
  be answered, the share whose reply shows one of the question's answer phrases in its first
  300 characters.

The report split is measured here and nowhere else; tuning code loads the tuning split only
(`load_dialogues(..., splits=("tuning",))`, see benchmarks/tune_dialogues.py).
"""

from __future__ import annotations

import html
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot.errors import BrobyggerError
from bot.evaluation import replace_between
from bot.knowledge.models import LANGUAGES

if TYPE_CHECKING:
    from bot.evaluation import Question
    from bot.render import Renderer
    from bot.retrieval.search import SearchResult
    from bot.services.conversation import Plan, Rules
    from bot.services.search import SearchService

SPLITS: tuple[str, ...] = ("report", "tuning")
KINDS: tuple[str, ...] = ("follow-up", "new-topic")
#: The answering value must appear within this many characters of the reply.
VALUE_WINDOW = 300
SECTION_START, SECTION_END = "<!-- conversation:start -->", "<!-- conversation:end -->"


class DialogueFileError(BrobyggerError):
    """The dialogues file is unusable; the message names the dialogue."""


@dataclass(frozen=True)
class Dialogue:
    id: str
    split: str
    lang: str
    kind: str  # follow-up | new-topic
    first: str
    second: str
    first_document: str
    document: str | None  # None: the knowledge base cannot answer the second turn
    phrases: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return self.document is not None


_KEYS = {
    "id",
    "split",
    "lang",
    "kind",
    "first",
    "second",
    "first_document",
    "document",
    "phrases",
}


def _fail(where: str, message: str) -> DialogueFileError:
    return DialogueFileError(f"{where}: {message}")


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"'{key}' is missing or empty")
    return value.strip()


def parse_dialogues(
    data: Any,
    source: str = "dialogues",
    *,
    splits: Sequence[str] = SPLITS,
    documents: Iterable[str] | None = None,
) -> list[Dialogue]:
    """Validate the parsed YAML and keep only the dialogues of `splits`. The others are checked
    for their split and nothing else: tuning code asking for the tuning split never builds a
    report dialogue. With `documents`, document ids must exist."""
    if not isinstance(data, dict) or not isinstance(data.get("dialogues"), list):
        raise _fail(source, "expected a mapping with a 'dialogues' list")
    wanted = set(splits)
    if not wanted <= set(SPLITS):
        raise _fail(source, f"unknown split(s): {', '.join(sorted(wanted - set(SPLITS)))}")
    known = set(documents) if documents is not None else None
    seen: set[str] = set()
    found: list[Dialogue] = []
    for n, entry in enumerate(data["dialogues"], start=1):
        where = f"{source}: dialogue #{n}"
        if not isinstance(entry, dict):
            raise _fail(where, "must be a mapping")
        did = _text(entry, "id", where)
        where = f"{source}: dialogue {did}"
        if did in seen:
            raise _fail(where, "duplicate id")
        seen.add(did)
        split = entry.get("split")
        if split not in SPLITS:
            raise _fail(where, f"'split' must be one of {', '.join(SPLITS)}, not {split!r}")
        if split not in wanted:
            continue
        unknown = set(entry) - _KEYS
        if unknown:
            raise _fail(where, f"unknown key(s): {', '.join(sorted(unknown))}")
        lang = entry.get("lang")
        if lang not in LANGUAGES:
            raise _fail(where, f"'lang' must be one of {', '.join(LANGUAGES)}, not {lang!r}")
        kind = entry.get("kind")
        if kind not in KINDS:
            raise _fail(where, f"'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
        first_document = _text(entry, "first_document", where)
        document = entry.get("document")
        if document is not None and (not isinstance(document, str) or not document.strip()):
            raise _fail(where, "'document' must be a document id or null")
        for doc in (first_document, document):
            if known is not None and doc is not None and doc not in known:
                raise _fail(where, f"unknown document {doc!r}")
        if kind == "new-topic" and document == first_document:
            raise _fail(where, "a new topic must be about another document than the first turn")
        phrases = entry.get("phrases") or []
        if not isinstance(phrases, list) or not all(isinstance(p, str) and p for p in phrases):
            raise _fail(where, "'phrases' must be a list of non-empty strings")
        if document is None and phrases:
            raise _fail(where, "an unanswerable second turn has no phrases")
        found.append(
            Dialogue(
                did,
                str(split),
                str(lang),
                str(kind),
                _text(entry, "first", where),
                _text(entry, "second", where),
                first_document,
                document,
                tuple(phrases),
            )
        )
    return found


def load_dialogues(
    path: Path, *, splits: Sequence[str] = SPLITS, documents: Iterable[str] | None = None
) -> list[Dialogue]:
    """Read and validate a dialogues file, keeping the dialogues of `splits` only."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DialogueFileError(f"cannot read {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise DialogueFileError(f"{path}: not valid YAML: {error}") from None
    return parse_dialogues(data, str(path), splits=splits, documents=documents)


# --- playing dialogues ------------------------------------------------------------------------


def ranked_documents(result: SearchResult) -> list[str]:
    """Distinct documents in rank order."""
    return list(dict.fromkeys(hit.chunk.document for hit in result.hits))


@dataclass(frozen=True)
class DialogueOutcome:
    dialogue: Dialogue
    plan: Plan  # how the second turn was searched
    first: list[str]  # documents of the first turn, in rank order
    second: list[str]  # documents of the second turn, with the conversation
    answered: bool  # the second turn, with the conversation
    alone: list[str]  # documents of the second turn searched on its own
    alone_answered: bool

    @property
    def found(self) -> bool:
        """The expected document among the first three (follow-up Hit@3)."""
        return self.dialogue.document in self.second[:3]

    @property
    def found_alone(self) -> bool:
        return self.dialogue.document in self.alone[:3]

    @property
    def kept(self) -> bool:
        """A new topic not dragged back to the first turn's document."""
        if self.dialogue.document is None and not self.answered:
            return True
        return not self.second or self.second[0] != self.dialogue.first_document

    @property
    def refused(self) -> bool:
        return not self.answered


def play(
    service: SearchService, dialogues: Sequence[Dialogue], rules: Rules | None = None
) -> list[DialogueOutcome]:
    """Both turns of every dialogue through the conversation memory and the search, as the
    bot does them (each dialogue in its own chat, one clock minute between the turns)."""
    from bot.services.conversation import ConversationMemory

    moment = [datetime(2026, 1, 1, tzinfo=UTC)]
    memory = ConversationMemory(timedelta(minutes=15), lambda: moment[0], rules=rules)
    searcher = service.searcher
    kb = service.knowledge
    firsts = service.ask_many([d.first for d in dialogues], top_k=5)
    for chat, (dialogue, result) in enumerate(zip(dialogues, firsts, strict=True), start=1):
        plan = memory.plan(chat, dialogue.first, searcher, kb)
        memory.remember(chat, plan, memory.judge(plan, result), kb, searcher)
    moment[0] += timedelta(minutes=1)
    plans = [memory.plan(chat, d.second, searcher, kb) for chat, d in enumerate(dialogues, start=1)]
    seconds = [
        memory.judge(plan, result)
        for plan, result in zip(
            plans, service.ask_many([p.query for p in plans], top_k=5), strict=True
        )
    ]
    alone = service.ask_many([d.second for d in dialogues], top_k=5)
    return [
        DialogueOutcome(
            dialogue,
            plan,
            ranked_documents(first),
            ranked_documents(second),
            second.answered,
            ranked_documents(single),
            single.answered,
        )
        for dialogue, plan, first, second, single in zip(
            dialogues, plans, firsts, seconds, alone, strict=True
        )
    ]


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


@dataclass(frozen=True)
class DialogueFigures:
    follow_ups: int
    follow_up_hit3: float | None
    follow_up_hit3_alone: float | None
    new_topics: int
    new_topic_kept: float | None
    new_topic_hit3: float | None
    unanswerable: int
    unanswerable_refused: float | None


def dialogue_figures(outcomes: Sequence[DialogueOutcome]) -> DialogueFigures:
    follow = [o for o in outcomes if o.dialogue.kind == "follow-up" and o.dialogue.answerable]
    new = [o for o in outcomes if o.dialogue.kind == "new-topic"]
    new_answerable = [o for o in new if o.dialogue.answerable]
    unanswerable = [o for o in outcomes if not o.dialogue.answerable]
    return DialogueFigures(
        follow_ups=len(follow),
        follow_up_hit3=_share([o.found for o in follow]),
        follow_up_hit3_alone=_share([o.found_alone for o in follow]),
        new_topics=len(new),
        new_topic_kept=_share([o.kept for o in new]),
        new_topic_hit3=_share([o.found for o in new_answerable]),
        unanswerable=len(unanswerable),
        unanswerable_refused=_share([o.refused for o in unanswerable]),
    )


def dialogue_failures(outcomes: Sequence[DialogueOutcome]) -> list[str]:
    lines = []
    for o in outcomes:
        d = o.dialogue
        wrong = (
            (d.kind == "follow-up" and d.answerable and not o.found)
            or (d.kind == "new-topic" and not o.kept)
            or (d.kind == "new-topic" and d.answerable and not o.found)
            or (not d.answerable and not o.refused)
        )
        if wrong:
            lines.append(
                f"{d.id} ({d.lang}, {d.kind}) {d.first!r} → {d.second!r}\n"
                f"    expected {d.document or '(refusal)'}; got {o.second[:3]} "
                f"({'answered' if o.answered else 'refused'}); "
                f"{'follow-up' if o.plan.follow_up else 'fresh'}: {o.plan.reason}"
            )
    return lines


# --- replies ----------------------------------------------------------------------------------


_TAG = re.compile(r"<[^>]+>")


def visible_text(reply_html: str) -> str:
    """What a person reads: the reply without markup, entities decoded."""
    return html.unescape(_TAG.sub("", reply_html))


@dataclass(frozen=True)
class ReplyOutcome:
    question: Question
    role: str
    answered: bool
    asks_value: bool
    length: int
    value_early: bool  # one of the question's phrases within the first VALUE_WINDOW characters


@dataclass(frozen=True)
class ReplyFigures:
    role: str
    questions: int
    median_length: float
    longest: int
    value_questions: int
    value_early: float | None


def reply_outcomes(
    service: SearchService, questions: Sequence[Question], renderer: Renderer, role: str
) -> list[ReplyOutcome]:
    """Each question answered and rendered as the bot would reply (no conversation context:
    every question is the first of its chat)."""
    from bot.evaluation import contains_phrase
    from bot.services.answers import asks_for_value, build_answer, reply_html

    kb = service.knowledge
    chunks = service.searcher.index.chunk_map
    results = service.ask_many([q.q for q in questions], top_k=5)
    outcomes = []
    for question, result in zip(questions, results, strict=True):
        answer = build_answer(result, 1, question.lang, kb, chunks, role=role, question=question.q)
        text = visible_text(reply_html(renderer, answer, explained=set(), helplines=None))
        outcomes.append(
            ReplyOutcome(
                question,
                role,
                result.answered,
                asks_for_value(question.q),
                len(text),
                result.answered and contains_phrase(text[:VALUE_WINDOW], question.phrases),
            )
        )
    return outcomes


def reply_figures(outcomes: Sequence[ReplyOutcome]) -> ReplyFigures:
    valued = [o for o in outcomes if o.asks_value and o.question.answerable]
    lengths = [o.length for o in outcomes]
    return ReplyFigures(
        role=outcomes[0].role if outcomes else "",
        questions=len(outcomes),
        median_length=statistics.median(lengths) if lengths else 0.0,
        longest=max(lengths, default=0),
        value_questions=len(valued),
        value_early=_share([o.value_early for o in valued]),
    )


def value_failures(outcomes: Sequence[ReplyOutcome]) -> list[str]:
    return [
        f"{o.question.id} ({o.question.lang}) {o.question.q} — "
        f"{'refused' if not o.answered else 'value not in the first 300 characters'}"
        for o in outcomes
        if o.asks_value and o.question.answerable and not o.value_early
    ]


# --- the report -------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


@dataclass
class ConversationReport:
    dialogues: DialogueFigures
    dialogue_count: int
    replies: list[ReplyFigures] = field(default_factory=list)
    failing_dialogues: list[str] = field(default_factory=list)
    failing_values: list[str] = field(default_factory=list)


def markdown(report: ConversationReport, *, heading: str = "##") -> str:
    d = report.dialogues
    lines = [
        f"{heading} Conversations and replies",
        "",
        "Written by `make eval` (`bot/evaluation_dialogues.py`); do not edit by hand. "
        f"{report.dialogue_count} two-turn dialogues of the **report** split of "
        "`benchmarks/data/dialogues.yaml` (en/sv/da, written before the conversation code; "
        "rules are tuned on the tuning split only), and the "
        f"{report.replies[0].questions if report.replies else 0} questions of "
        "`benchmarks/data/questions.yaml` rendered as replies.",
        "",
        "| figure | goal | measured |",
        "|---|---|---|",
        f"| follow-up: right document in the top 3 (n={d.follow_ups}) | ≥ 90 % | "
        f"**{_pct(d.follow_up_hit3)}** (without context: {_pct(d.follow_up_hit3_alone)}) |",
        f"| new topic: not dragged back to the first turn (n={d.new_topics}) | ≥ 95 % | "
        f"**{_pct(d.new_topic_kept)}** (right document in the top 3: {_pct(d.new_topic_hit3)}) |",
        f"| second turn the knowledge cannot answer: refused (n={d.unanswerable}) | – | "
        f"{_pct(d.unanswerable_refused)} |",
    ]
    for r in report.replies:
        lines += [
            f"| median reply length, {r.role} (n={r.questions}, longest {r.longest}) | "
            f"{'≤ 600' if r.role == 'practitioner' else '–'} | **{r.median_length:.0f}** "
            "characters |",
            f"| value questions: the answer in the first {VALUE_WINDOW} characters, {r.role} "
            f"(n={r.value_questions}) | ≥ 90 % | **{_pct(r.value_early)}** |",
        ]
    lines += [""]
    if report.failing_dialogues:
        lines += [
            f"Dialogues not as expected ({len(report.failing_dialogues)}):",
            "",
            "```",
            *report.failing_dialogues,
            "```",
            "",
        ]
    if report.failing_values:
        lines += [
            f"Value questions whose answer is not early, practitioner "
            f"({len(report.failing_values)}):",
            "",
            "```",
            *report.failing_values,
            "```",
            "",
        ]
    return "\n".join(lines)


def measure(
    service: SearchService, dialogues_file: Path, questions_file: Path
) -> ConversationReport:
    """Every figure of the section, on the report split."""
    from bot.evaluation import load_questions
    from bot.render import Renderer

    documents = list(service.knowledge.documents)
    dialogues = load_dialogues(dialogues_file, splits=("report",), documents=documents)
    outcomes = play(service, dialogues)
    languages = {doc.id: doc.language for doc in service.knowledge.documents.values()}
    questions = load_questions(questions_file, languages)
    renderer = Renderer()
    replies: list[ReplyFigures] = []
    failing_values: list[str] = []
    for role in ("practitioner", "young"):
        reply = reply_outcomes(service, questions, renderer, role)
        replies.append(reply_figures(reply))
        if role == "practitioner":
            failing_values = value_failures(reply)
    return ConversationReport(
        dialogue_figures(outcomes),
        len(dialogues),
        replies,
        dialogue_failures(outcomes),
        failing_values,
    )


def replace_section(path: Path, section: str) -> None:
    """Put `section` between the conversation markers of `path` (appended when missing)."""
    replace_between(path, SECTION_START, SECTION_END, section)


def run_conversation_evaluation(
    service: SearchService,
    dialogues_file: Path,
    questions_file: Path,
    *,
    outputs: Sequence[Path] = (),
) -> ConversationReport:
    """`brobygger eval`'s conversation part: print the figures and write them into each of
    `outputs` (their conversation section only)."""
    report = measure(service, dialogues_file, questions_file)
    text = markdown(report)
    print(text)
    for path in outputs:
        replace_section(path, text)
        print(f"Wrote the conversation section of {path}")
    return report
