"""Turn a search result into what a person reads, answer first.

When one sentence answers the question — it holds a value of the asked kind (an amount, a
date, a place, a person, a phone number, a website, a partner…) or it covers the question
best — the reply opens with it, in one or two lines, with its source and language. The
passages follow, shortened around the sentences that answer; their full text is one "Full
text" button away, and a curated summary in the reader's language is shown as a short gist,
never whole. People read on phones: two or three screens for "what is the budget?" buries the
answer (issue 12 measured 2,700 characters for the README's own budget example).

Young people (the role chosen at /start) get a shorter reply, jargon explained in their
language the first time it appears (bot/glossary/), and two or three next questions as
buttons, all built from the knowledge base's own catalog entries.

Also remembers recent answers briefly so buttons (feedback, more, full text, suggestions) can
refer to them with a short id instead of the question text.
"""

from __future__ import annotations

import bisect
import re
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bot.knowledge.models import KnowledgeBase
from bot.retrieval.answer_types import ASKS, HAS
from bot.retrieval.chunks import Chunk
from bot.retrieval.search import Hit, SearchResult
from bot.retrieval.text import content_words, passage_term_set, sentence_units, stems

if TYPE_CHECKING:
    from bot.render import Renderer
    from bot.safety import Helpline

PASSAGES_FIRST = 2  # passages under the lead, for practitioners
PASSAGES_FIRST_YOUNG = 1  # young people: the lead and one passage
PASSAGES_MORE = 3
LEAD_CHARS = 180  # one or two lines on a phone
EXCERPT_CHARS = 170
EXCERPT_CHARS_YOUNG = 130
GIST_CHARS = 150
MIN_LEAD = 40  # a sentence without a value shorter than this is a heading
LEAD_PASSAGES = 5  # the lead is looked for in this many passages of the best document
TITLE_CHARS = 64  # meeting titles run to 100 characters; the full one is in the full text
ELLIPSIS = "…"
ROLES_SHORT = frozenset({"young"})


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
    excerpt: tuple[Segment, ...] = ()  # the answering sentences, shortened ("…" marks cuts)
    summary_title: str | None = None
    summary_lang: str | None = None

    @property
    def gist(self) -> str | None:
        """The summary's opening, at most GIST_CHARS: what the source says, in short."""
        return gist(self.summary) if self.summary else None

    @property
    def heading(self) -> str:
        return clip(self.title, TITLE_CHARS)


@dataclass(frozen=True)
class Lead:
    """The sentence that answers, shortened to one or two lines around its value."""

    before: str
    value: str  # shown in bold; empty when the whole snippet is the answer
    after: str
    title: str  # where it comes from (the passage's title: a project, a meeting, a document)
    document_title: str
    lang: str  # the language of the sentence shown
    passage: int  # index into Answer.passages
    sentence: str  # the whole sentence (left out of that passage's excerpt)
    kind: str | None = None  # the asked kind it holds, if any

    @property
    def text(self) -> str:
        return self.before + self.value + self.after

    @property
    def heading(self) -> str:
        return clip(self.title, TITLE_CHARS)


@dataclass
class Answer:
    id: str
    user_id: int
    query: str
    lang: str
    answered: bool
    passages: list[Passage] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)  # indices of the passages shown so far
    lead: Lead | None = None
    role: str | None = None
    question: str = ""  # what the person asked (the query may carry the conversation's topic)
    suggestions: list[str] = field(default_factory=list)

    @property
    def young(self) -> bool:
        return self.role in ROLES_SHORT

    @property
    def first(self) -> int:
        """How many passages the first reply lists: for young people none beside a lead (its
        source is named under it; the passages are one button away)."""
        if self.young:
            return 0 if self.lead is not None else PASSAGES_FIRST_YOUNG
        return PASSAGES_FIRST


# --- what kind of value a question asks for -------------------------------------------------------

#: Kinds the retrieval's refusal check does not know but a reply can still lead with.
LEAD_ASKS: dict[str, re.Pattern[str]] = {
    "place": re.compile(
        r"^\W*(where|var|hvor)\b(?! (meget|mange|lang|længe|stor|ofte))|\bwhere\b|"
        r"\b(which|what|vilken|vilka|hvilken|hvilke) (city|town|place|cities|stad|städer|ort|"
        r"plats|by|byer|sted)\b|\bvar (hölls|hålls|ligger|möttes|träffades|ska)\b|"
        r"\bhvor (blev|bliver|skal|ligger|holdes|mødtes|mødes)\b"
    ),
    "person": re.compile(
        r"\b(who|whom|vem|hvem)\b|\bcontact\w*|\bkontakt\w*|\bcoordinat\w*|\bkoordin\w*|"
        r"\bsamordn\w*"
    ),
    "partner": re.compile(r"\bpartner\w*|\blead\b|\bleder\b|\bleds?\b"),
}

#: What those kinds look like in a sentence (matched on the original, case-sensitive text).
LEAD_HAS: dict[str, re.Pattern[str]] = {
    "place": re.compile(
        r"\b(in|i|på|at|to|till|til)\s+[A-ZÅÄÖÆØ][\wåäöæøéń-]+|\b(Place|Plats|Sted): \S+"
    ),
    "person": re.compile(r"\b[A-ZÅÄÖÆØ][\wåäöæøé]+ [A-ZÅÄÖÆØ][a-zåäöæøé]+"),
    "partner": re.compile(
        r"(?i)\b(lead partner|associated partner|coordinator|koordinator|samordnare|"
        r"projektpartner\w*)\b|\b(partners?|partner|partnere|projektpartnere): |"
        r"\((MT|IT|HR|RO|SI|LU|LT|SE|DK)\)"
    ),
}

#: Labels that say outright what a sentence holds ("Kontakt: …", "– Coordinator"): a sentence
#: with one answers a loose kind (person, partner, place) better than two capitalised words.
LABELS: dict[str, re.Pattern[str]] = {
    "person": re.compile(r"(?i)\b(contact|kontakt|kontaktperson|coordinator|koordinator)\b"),
    "partner": re.compile(
        r"(?i)\b(lead partner|associated partner|coordinator|koordinator|samordnare|"
        r"projektpartner\w*)\b|\b(partners?|partnere|projektpartnere): "
    ),
    "place": re.compile(r"\b(Place|Plats|Sted): "),
}

#: Words that ask rather than say what is asked about: "Tell me about the NEO project" asks
#: about NEO, so its lead is what NEO is.
ASKING = frozenset(
    "tell describe explain know information info fortæl fortael berätta beskriv förklara "
    "forklar project projects projekt projektet projekter projektets".split()
)

#: The whole value, for bold: the retrieval's patterns only need to find a currency sign.
VALUE: dict[str, re.Pattern[str]] = {
    "money": re.compile(
        r"(€|EUR|SEK|DKK)\s?\d[\d.,\u00a0 ]*\d|"
        r"\d[\d.,\u00a0 ]*\d\s?(€|EUR|euro|SEK|DKK|kr|kronor|kroner)\b"
    ),
    "web": re.compile(
        r"https?://[^\s,;]+[\w/]|www\.[^\s,;]+[\w/]|\b[\w-]+\.(eu|com|org|net|se|dk)\b[^\s,;]*"
    ),
    "phone": re.compile(r"\+?\d{2,4}(?:[ -]?\d{2,4}){2,}"),
}

#: Kinds whose value is short and exact: only it is shown in bold.
PRECISE = ("money", "phone", "web", "email", "date", "year", "time", "count")
#: Preference when a sentence holds several kinds.
KIND_ORDER = (*PRECISE, "countries", "person", "partner", "place")


def value_kinds(question: str) -> set[str]:
    """The kinds of value a question asks for: the retrieval's own (amounts, dates, phone…)
    and the ones only a reply uses (place, person, partner)."""
    lowered = question.casefold()
    kinds = {kind for kind, pattern in ASKS.items() if pattern.search(lowered)}
    return kinds | {kind for kind, pattern in LEAD_ASKS.items() if pattern.search(lowered)}


def asks_for_value(question: str) -> bool:
    return bool(value_kinds(question))


def _value(
    kinds: set[str], sentence: str, places: re.Pattern[str] | None = None
) -> tuple[str, re.Match[str], int] | None:
    """The asked kind a sentence holds, with its match and strength: 3 for an exact value (an
    amount, a date), 2 for a list of partners, 1 for a labelled loose one ("Kontakt: …", a
    place the catalog knows), 0 for a loose guess (two capitalised words for a person)."""
    best: tuple[str, re.Match[str], int] | None = None
    for kind in KIND_ORDER:
        if kind not in kinds:
            continue
        if kind in LEAD_HAS:
            match = LEAD_HAS[kind].search(sentence)
            label = LABELS[kind].search(sentence) if kind in LABELS else None
            if kind == "place" and label is None and places is not None:
                label = places.search(sentence)
            strength = 1 if label is not None else 0
            if kind == "partner" and label and len(LEAD_HAS[kind].findall(sentence)) >= 3:
                strength = 2  # a list of them: "Partners: Jobsplus (MT) – Coordinator; …"
            match = label or match  # the label is where the answer starts
        else:
            match = HAS[kind].search(sentence.casefold())
            strength = 3
        if match is not None and (best is None or strength > best[2]):
            best = (kind, match, strength)
    return best


# --- passages -------------------------------------------------------------------------------------


def _segments(query: str, text: str) -> tuple[Segment, ...]:
    """Mark the sentences that share most meaning-bearing words with the question."""
    wanted = {s for word in content_words(query) for s in stems(word)}
    units = sentence_units(text) if len(text) > 200 or "\n" in text else [(text, "")]
    scores = [len(wanted & passage_term_set(unit)) for unit, _ in units]
    best = max(scores, default=0)
    return tuple(
        Segment(unit, best > 0 and score == best, sep)
        for (unit, sep), score in zip(units, scores, strict=True)
    )


def clip(text: str, limit: int, around: tuple[int, int] | None = None) -> str:
    """At most `limit` characters of `text`, cut at spaces, "…" where something was left out;
    kept around the span `around` (a value) when given."""
    if len(text) <= limit:
        return text
    start = 0
    if around is not None and around[1] > limit - 1:
        start = max(0, min(around[0] - limit // 3, len(text) - limit))
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < around[0] else start
    end = start + limit - 2
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + limit // 2 else end
    head = ELLIPSIS if start > 0 else ""
    tail = ELLIPSIS if end < len(text) else ""
    return head + text[start:end].strip(" ,;:–-") + tail


def gist(text: str, limit: int = GIST_CHARS) -> str:
    """The first sentence of a text (a summary), at most `limit` characters."""
    units = sentence_units(text)
    first = units[0][0] if units else text
    return clip(first, limit)


def excerpt(
    segments: Sequence[Segment], limit: int, *, skip: str | None = None
) -> tuple[Segment, ...]:
    """The answering sentences of a passage, shortened to `limit` characters: the highlighted
    ones (else the first), or, beside a lead taken from this passage, the sentences around it.
    "…" marks where sentences were left out, so nobody mistakes an excerpt for the source."""
    chosen: list[int]
    at = next((i for i, s in enumerate(segments) if s.text == skip), None) if skip else None
    if at is not None:
        chosen = [i for i in (at - 1, at + 1) if 0 <= i < len(segments)]
    else:
        chosen = [i for i, s in enumerate(segments) if s.highlight] or ([0] if segments else [])
    picked: list[Segment] = []
    used = 0
    previous: int | None = None
    for i in chosen:
        room = limit - used
        if room < 40:
            break
        text = clip(segments[i].text, room)
        gap = i > 0 if previous is None else i != previous + 1
        if gap and not text.startswith(ELLIPSIS):
            text = f"{ELLIPSIS} {text}"
        if picked and gap:
            picked[-1] = replace(picked[-1], sep=" ")
        picked.append(Segment(text, segments[i].highlight and at is None, segments[i].sep))
        used += len(text) + 1
        previous = i
    if picked and previous is not None and previous < len(segments) - 1:
        last = picked[-1]
        if not last.text.endswith(ELLIPSIS):
            picked[-1] = replace(last, text=f"{last.text} {ELLIPSIS}")
    return tuple(picked)


def build_passage(hit: Hit, query: str, reader_lang: str, kb: KnowledgeBase) -> Passage:
    doc = kb.documents.get(hit.chunk.document)
    doc_lang = doc.language if doc else hit.chunk.lang
    other = hit.chunk.lang != reader_lang
    summary = kb.summary(hit.chunk.document, reader_lang) if other else None
    if summary is not None and summary.text == hit.chunk.text:
        summary = None
    segments = _segments(query, hit.chunk.text)
    return Passage(
        title=hit.chunk.title,
        lang=hit.chunk.lang,
        kind=hit.chunk.kind,
        document_id=hit.chunk.document,
        document_title=doc.title if doc else hit.chunk.title,
        document_lang=doc_lang,
        segments=segments,
        other_language=other,
        summary=summary.text if summary else None,
        excerpt=excerpt(segments, EXCERPT_CHARS),
        summary_title=summary.title if summary else None,
        summary_lang=summary.language if summary else None,
    )


# --- the lead -------------------------------------------------------------------------------------


def _overlap(wanted: Iterable[str], text: str) -> int:
    """How many of the question's words a text holds, by stem or as the start of a compound
    ("kontaktperson" meets "Kontakt")."""
    index = _term_index(text)
    return sum(1 for word in wanted if any(index.related(form) for form in stems(word)))


@dataclass(frozen=True)
class _TermIndex:
    """A text's terms, sorted forwards and backwards, so "does any term start or end with this
    form (or this form with it)?" is a binary search instead of a scan over every term: the
    scan was most of an answer's Python work."""

    have: frozenset[str]
    ordered: tuple[str, ...]
    backwards: tuple[str, ...]  # each term reversed, sorted

    def related(self, form: str) -> bool:
        """The form is a term, or shares a compound's start (both ≥ 5 letters) or end (both
        ≥ 6 letters) with one."""
        if form in self.have:
            return True
        if len(form) >= 5 and (
            _has_prefix(self.ordered, form)
            or any(form[:k] in self.have for k in range(5, len(form)))
        ):
            return True
        return len(form) >= 6 and (
            _has_prefix(self.backwards, form[::-1])
            or any(form[-k:] in self.have for k in range(6, len(form)))
        )


def _has_prefix(ordered: Sequence[str], prefix: str) -> bool:
    at = bisect.bisect_left(ordered, prefix)
    return at < len(ordered) and ordered[at].startswith(prefix)


@lru_cache(maxsize=20_000)
def _term_index(text: str) -> _TermIndex:
    have = passage_term_set(text)
    return _TermIndex(have, tuple(sorted(have)), tuple(sorted(h[::-1] for h in have)))


#: Question words and the sentence words that answer them without sharing a stem.
_SYNONYMS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (
        re.compile(r"\b(lead\w*|leder|leds|ledde|coordinat\w*|koordin\w*|samordn\w*)\b"),
        re.compile(r"(?i)\b(coordinator|koordinator|samordnare|lead partner)\b"),
    ),
    (
        re.compile(r"\b(contact\w*|kontakt\w*|reach|write|ring\w*|call)\b"),
        re.compile(r"(?i)\b(contact|kontakt|tel|phone|telefon)\b"),
    ),
    (
        re.compile(r"\b(goal\w*|aim\w*|purpose|objective\w*|mål\w*|syfte\w*|formål\w*)\b"),
        re.compile(r"(?i)\b(aims?|objective|purpose|mål|målet|syfte\w*|syftar|formål\w*)\b"),
    ),
    (
        re.compile(r"\b(phone\w*|telefon\w*|tlf|nummer\w*|number)\b"),
        re.compile(r"(?i)\b(tel|tlf|phone|telefon)\b|\+\d{2}"),
    ),
    (
        re.compile(r"\b(end\w*|slut\w*|start\w*|began|börja\w*|run|ran|long|länge|længe)\b"),
        re.compile(r"(?i)\b(duration|period|periode|projektperiode|varighed)\b"),
    ),
)


def _synonyms(question: str, sentence: str) -> int:
    lowered = question.casefold()
    return sum(1 for asks, has in _SYNONYMS if asks.search(lowered) and has.search(sentence))


def place_pattern(kb: KnowledgeBase) -> re.Pattern[str] | None:
    """The places the catalog knows (where meetings are held), as one pattern."""
    names = sorted({m.place for m in kb.meetings.values() if m.place}, key=len, reverse=True)
    if not names:
        return None
    return re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")


def choose_lead(
    question: str,
    passages: Sequence[Passage],
    reader_lang: str,
    places: re.Pattern[str] | None = None,
) -> Lead | None:
    """The sentence to open the reply with. Candidates are the sentences of the first three
    passages from the best passage's document (a sentence about another project does not
    answer). A question asking for a value needs a sentence holding one of that kind; the
    sentence sharing most of the question's words beyond the passage's title wins, then the
    surer value, the better-ranked passage, the reader's language, the earlier sentence. Any
    other question gets its best-covering sentence; when all it names is the title ("What is
    NEO?", "Tell me about the NEO project"), the first real sentence that names it."""
    wanted = [w for w in content_words(question) if w not in ASKING]
    kinds = value_kinds(question)
    if not passages or not (wanted or kinds):  # "när var det?" still asks for a date
        return None
    exact = bool(kinds & set(PRECISE))  # only an exact kind requires its value
    document = passages[0].document_id
    best: tuple[tuple[int, ...], Lead] | None = None
    for index, passage in enumerate(passages[:LEAD_PASSAGES]):
        if passage.document_id != document:
            continue
        beyond = [w for w in wanted if not _overlap([w], passage.title)]
        for position, (sentence, source) in enumerate(_candidates(passage)):
            if sentence.rstrip().endswith(":"):
                continue  # a label whose value is on the next line ("Kontakt:")
            if not kinds and _bare_field(sentence):
                continue  # "Website: https://…" names the project but says nothing about it
            own = _overlap(beyond, sentence) + _synonyms(question, sentence)
            found = _value(kinds, sentence, places) if kinds else None
            if exact and (found is None or found[2] < 3):
                continue
            if found is None or found[2] == 0:
                if len(sentence) < MIN_LEAD:
                    continue  # a heading ("Mål"), not an answer
                if beyond and (own == 0 or 2 * (len(wanted) - len(beyond) + own) < len(wanted)):
                    continue
                if not beyond and not _overlap(wanted, sentence):
                    continue
            strength = found[2] if found else 0
            readable = int(source.lang == reader_lang)
            key: tuple[int, ...]
            if beyond or kinds:
                key = (own, strength, readable, -index, -position)
            else:  # "What is NEO?": a curated opening in the reader's language first
                key = (readable, _CURATED.get(source.kind, 0), -index, -position, 0)
            if best is None or key > best[0]:
                best = (key, _lead(sentence, source, index, found))
    return best[1] if best else None


#: A catalog card's field line ("Website: …", "Budget: …", but also "Aims: …").
_LABEL_LINE = re.compile(r"^\s*[^\W\d][\w ()/-]{0,30}:\s")


def _bare_field(sentence: str) -> bool:
    """A field holding a bare value (an address, an amount, a name), not a description: it
    names the project but says nothing about it. "Aims: …" with a sentence after it passes."""
    label = _LABEL_LINE.match(sentence)
    if label is None:
        return False
    value = sentence[label.end() :]
    return len(value.split()) < 6 or "://" in value or "www." in value


#: For "what is…" questions: a curated summary opens best, then a catalog card.
_CURATED = {"summary": 2, "project": 1, "meeting": 1}


def _candidates(passage: Passage) -> list[tuple[str, Passage]]:
    """The sentences a lead may be: the passage's own, then those of the curated summary in
    the reader's language that comes with a passage in another language (as a summary
    passage of its own, so the lead names it and its language)."""
    own = [(segment.text, passage) for segment in passage.segments]
    if not passage.summary:
        return own
    summary = replace(
        passage,
        title=passage.summary_title or passage.document_title,
        kind="summary",
        lang=passage.summary_lang or passage.lang,
        other_language=False,
    )
    return own + [(text, summary) for text, _ in sentence_units(passage.summary)]


def _lead(
    sentence: str, passage: Passage, index: int, found: tuple[str, re.Match[str], int] | None
) -> Lead:
    kind = found[0] if found else None
    span = found[1].span() if found else None
    text = clip(sentence, LEAD_CHARS, around=span)
    before, value, after = text, "", ""
    if found and kind in PRECISE:
        whole = VALUE[kind].search(text) if kind in VALUE else None
        raw = whole.group(0) if whole else (sentence[span[0] : span[1]] if span else "")
        at = text.find(raw) if raw else -1
        if at >= 0:
            before, value, after = text[:at], raw, text[at + len(raw) :]
    return Lead(
        before,
        value,
        after,
        passage.title,
        passage.document_title,
        passage.lang,
        index,
        sentence,
        kind,
    )


# --- the answer -----------------------------------------------------------------------------------


def build_answer(
    result: SearchResult,
    user_id: int,
    reader_lang: str,
    kb: KnowledgeBase,
    chunks: Mapping[str, Chunk],
    *,
    role: str | None = None,
    question: str | None = None,
) -> Answer:
    """Passages in reading order, in the reader's language where the same content exists in it
    (catalog cards exist in every language), the lead chosen from what the person asked, and
    excerpts shortened for their role."""
    asked = question or result.query
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
    answer = Answer(
        secrets.token_urlsafe(6),
        user_id,
        result.query,
        reader_lang,
        result.answered,
        passages,
        role=role,
        question=asked,
    )
    if result.answered:
        answer.lead = choose_lead(asked, passages, reader_lang, place_pattern(kb))
    limit = EXCERPT_CHARS_YOUNG if answer.young else EXCERPT_CHARS
    answer.passages = [replace(p, excerpt=excerpt(p.segments, limit)) for p in passages]
    return answer


def listed(answer: Answer, count: int) -> list[tuple[int, Passage]]:
    """(number, passage) of the next `count` passages to list that were not shown yet,
    leaving out the lead's passage (the lead already shows what it says; its full text is one
    button away) and, beside a lead, passages whose excerpt adds nothing."""
    picked: list[tuple[int, Passage]] = []
    lead = answer.lead.passage if answer.lead is not None else None
    for index, passage in enumerate(answer.passages):
        if len(picked) >= count:
            break
        if index in answer.seen or index == lead or not passage.excerpt:
            continue
        if lead is not None and not _adds(passage):
            continue  # beside a lead, "BAGS4YOUTH." or "neo-web.eu" adds nothing
        picked.append((index + 1, passage))
    return picked


def show(answer: Answer, passages: Iterable[tuple[int, Passage]]) -> None:
    """Remember that these passages have been shown (for "more" and "full text")."""
    answer.seen.update(number - 1 for number, _ in passages)


def _adds(passage: Passage) -> bool:
    """An excerpt says something: a highlighted sentence of some length."""
    said = [s.text.strip(ELLIPSIS + " ") for s in passage.excerpt if s.highlight]
    return sum(len(text) for text in said) >= 40


def reply_texts(answer: Answer, passages: Iterable[tuple[int, Passage]]) -> list[str]:
    """Everything a person reads in a reply (glossary terms are looked for here)."""
    texts: list[str] = []
    if answer.lead is not None:
        texts += [answer.lead.text, answer.lead.title]
    for _, passage in passages:
        texts.append(passage.title)
        texts += [s.text for s in passage.excerpt]
        if passage.gist:
            texts.append(passage.gist)
    return texts


def answer_context(
    answer: Answer,
    *,
    explained: set[str],
    helplines: Mapping[str, Sequence[Helpline]] | None,
    asked: str | None = None,
) -> dict[str, Any]:
    """The `answer` template's values for the first reply to a question. Glossary terms shown
    here are added to `explained` (the chat's set, kept in memory only)."""
    from bot.services.glossary import explain

    passages = listed(answer, answer.first)
    show(answer, passages)
    if answer.lead is not None:
        answer.seen.add(answer.lead.passage)
    gist_at = _gist_position(answer, passages)
    glossary = (
        explain(reply_texts(answer, passages), answer.lang, explained) if answer.young else []
    )
    return {
        "lead": answer.lead,
        "passages": passages,
        "gist_at": gist_at,
        "glossary": glossary,
        "helplines": helplines,
        "asked": asked,
    }


def _gist_position(answer: Answer, passages: Sequence[tuple[int, Passage]]) -> int | None:
    """Which listed passage shows the gist of its curated summary in the reader's language
    (once per reply): when no sentence could lead, or when the lead is a sentence in another
    language that holds no value. A value (an amount, a date) reads the same in any language."""
    lead = answer.lead
    if lead is not None and (lead.lang == answer.lang or lead.kind is not None):
        return None
    for number, passage in passages:
        if passage.gist:
            return number
    return None


def reply_html(
    renderer: Renderer,
    answer: Answer,
    *,
    explained: set[str],
    helplines: Mapping[str, Sequence[Helpline]] | None,
) -> str:
    """The first reply to a question as HTML (what the bot sends, before splitting)."""
    if not answer.answered:
        return renderer.render("no_answer", answer.lang, role=answer.role, helplines=helplines)
    context = answer_context(answer, explained=explained, helplines=helplines)
    return renderer.render("answer", answer.lang, **context)


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
