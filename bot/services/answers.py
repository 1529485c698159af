"""Turn a search result into what a person reads: the best passages with the sentences that answer
highlighted, the source and its language, and the curated summary when the source is in another
language. Also remembers recent answers briefly so buttons (feedback, more results) can refer to
them with a short id instead of the question text."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bot.knowledge.models import KnowledgeBase
from bot.retrieval.chunks import Chunk
from bot.retrieval.search import Hit, SearchResult
from bot.retrieval.text import content_words, sentence_units, stems, terms

PASSAGES_FIRST = 2
PASSAGES_MORE = 3


@dataclass(frozen=True)
class Segment:
    text: str
    highlight: bool
    sep: str = " "  # what followed the sentence in the source: a space or a line break


@dataclass(frozen=True)
class Passage:
    title: str
    lang: str
    kind: str
    document_id: str
    document_title: str
    document_lang: str
    segments: tuple[Segment, ...]
    other_language: bool
    summary: str | None  # curated summary in the reader's language, when the source is not


@dataclass
class Answer:
    id: str
    user_id: int
    query: str
    lang: str
    answered: bool
    passages: list[Passage] = field(default_factory=list)
    shown: int = 0


def _segments(query: str, text: str) -> tuple[Segment, ...]:
    """Mark the sentences that share most meaning-bearing words with the question."""
    wanted = {s for word in content_words(query) for s in stems(word)}
    units = sentence_units(text) if len(text) > 200 or "\n" in text else [(text, "")]
    scores = [len(wanted & set(terms(unit))) for unit, _ in units]
    best = max(scores, default=0)
    return tuple(
        Segment(unit, best > 0 and score == best, sep)
        for (unit, sep), score in zip(units, scores, strict=True)
    )


def build_passage(hit: Hit, query: str, reader_lang: str, kb: KnowledgeBase) -> Passage:
    doc = kb.documents.get(hit.chunk.document)
    doc_lang = doc.language if doc else hit.chunk.lang
    other = hit.chunk.lang != reader_lang
    summary = kb.summary(hit.chunk.document, reader_lang) if other else None
    if summary is not None and summary.text == hit.chunk.text:
        summary = None
    return Passage(
        title=hit.chunk.title,
        lang=hit.chunk.lang,
        kind=hit.chunk.kind,
        document_id=hit.chunk.document,
        document_title=doc.title if doc else hit.chunk.title,
        document_lang=doc_lang,
        segments=_segments(query, hit.chunk.text),
        other_language=other,
        summary=summary.text if summary else None,
    )


def build_answer(
    result: SearchResult,
    user_id: int,
    reader_lang: str,
    kb: KnowledgeBase,
    chunks: Mapping[str, Chunk],
) -> Answer:
    """Passages in reading order, in the reader's language where the same content exists in it
    (catalog cards exist in every language)."""
    passages: list[Passage] = []
    seen_refs: set[tuple[str, str]] = set()
    summarised: set[str] = set()
    for hit in result.hits:
        ref = hit.chunk.ref or hit.chunk.id
        if hit.chunk.ref and hit.chunk.lang != reader_lang:
            localised = chunks.get(f"{hit.chunk.kind}:{hit.chunk.ref}@{reader_lang}")
            if localised is not None:
                hit = replace(hit, chunk=localised)
        key = (hit.chunk.kind, ref)
        if hit.chunk.kind != "document" and key in seen_refs:
            continue
        seen_refs.add(key)
        passage = build_passage(hit, result.query, reader_lang, kb)
        if passage.summary is not None:
            if passage.document_id in summarised:
                passage = replace(passage, summary=None)
            summarised.add(passage.document_id)
        passages.append(passage)
    return Answer(
        secrets.token_urlsafe(6), user_id, result.query, reader_lang, result.answered, passages
    )


class AnswerCache:
    """The last answers, in memory only: button ids stay short and nothing is written to disk.
    After a restart the ids are unknown and the buttons say politely that they are outdated."""

    def __init__(self, size: int = 2000) -> None:
        self.size = size
        self._answers: OrderedDict[str, Answer] = OrderedDict()

    def put(self, answer: Answer) -> None:
        self._answers[answer.id] = answer
        self._answers.move_to_end(answer.id)
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)

    def get(self, answer_id: str, user_id: int) -> Answer | None:
        answer = self._answers.get(answer_id)
        if answer is None or answer.user_id != user_id:
            return None
        return answer

    def forget_user(self, user_id: int) -> None:
        for key in [k for k, a in self._answers.items() if a.user_id == user_id]:
            del self._answers[key]
