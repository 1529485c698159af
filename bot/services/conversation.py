"""Conversation context: what a chat was just talking about, so a follow-up can be understood.

People ask in follow-ups: "Vad är BAGS4YOUTH?" and then "vad var målet med det?". Searched on
its own, the second question finds whatever document talks most about "mål" (the autumn
conferences'); searched together with the topic of the answer before it, it finds BAGS4YOUTH's
aims. This module keeps that topic per chat and decides, for each new question, whether it
continues the topic or starts a new one.

Privacy: the topic lives in process memory only (never in SQLite or logs), expires after
`CONVERSATION_TTL_MINUTES` of silence, and `/forget` drops it at once.

The decision is a few readable rules rather than a model, so a reviewer can see why a question
was read as a follow-up (`Plan.reason`):

1. no topic, or the topic has expired: a fresh question;
2. the question names something (a project, a place, an organisation…) the topic does not
   contain: a new topic; names the topic does contain make it self-contained, searched as it is;
3. it uses words the knowledge base never uses (pizza, weather, Madrid): it is about something
   else, and the old topic must not make it look answerable;
4. most of its subject words (everything but names, facets and small words) occur in other
   documents but not in the topic's: a new topic ("Var ska pilotens första möte hållas?" after
   NEO);
5. otherwise it names nothing new and asks a facet ("and its budget?", "hvem var kontakt?",
   "när var det?"): a follow-up, searched together with the topic's names.

A facet is what one asks *about* a topic (budget, contact, date, place, aims, partners, funding,
results…): asking for a facet the topic lacks ("och budgeten?" after BAGS4YOUTH, which has none)
stays on the topic, so the search's own "names must own the asked fact" rule answers "I don't
know" instead of showing another project's budget.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.knowledge.models import KnowledgeBase
from bot.retrieval.answer_types import answers_kinds, asked_types
from bot.retrieval.text import STOPWORDS, content_words, stems, terms, words

if TYPE_CHECKING:
    from bot.retrieval.chunks import Chunk
    from bot.retrieval.search import Searcher, SearchResult
    from bot.retrieval.store import LoadedIndex
    from bot.services.search import SearchService

Clock = Callable[[], datetime]

#: Chats remembered at once; the quietest are dropped first (memory stays bounded).
MAX_CHATS = 10_000

#: What people ask *about* a topic, in English, Swedish and Danish (whole words, lowercase).
#: Asking one of these about the current topic never makes a question a new topic.
_FACET_PATTERNS = (
    # money
    r"budget\w*|budjet\w*|cost\w*|kost\w*|pris\w*|price\w*|much|mycket|meget|amount|belopp\w*",
    r"beløb\w*|get|got|fick|fik|få|paid|betal\w*|udbetal\w*|utbetal\w*",
    # contact
    r"contact\w*|kontakt\w*|write|skriva|skrive|reach|email|e-?mail|mail|ring\w*|call",
    r"phone\w*|telefon\w*|nummer|number|tel",
    r"web\w*|hemsida\w*|hjemmeside\w*|url|link\w*|länk\w*|sida|side|site",
    # time
    r"date\w*|datum|dato\w*|start\w*|began|begin\w*|börja\w*|begynd\w*|end|ends|ended|ending",
    r"slut\w*|avslut\w*|period\w*|duration|varighed|run|ran|runs|last\w*|pågå\w*|time|tid",
    r"year\w*|år|året|long|länge|længe|again|igen|next|nästa|næste|later|senare|senere",
    r"ses|ser|meet|meets|träffas|mødes|mødtes|möttes",
    # place
    r"held|hold\w*|hölls|hålls|hållas|holdes|located|ligger|lå|låg|place\w*|plats\w*|sted\w*",
    r"city|stad|staden|by|byen|town",
    # people and organisations
    r"lead\w*|led|leder|ledde|ledet|coordinat\w*|koordin\w*|samordn\w*|partner\w*|ansvar\w*",
    r"responsible|behind|bakom|bag|står|stod|organis\w*|arrang\w*|involved|deltar|deltog",
    r"deltag\w*|participa\w*|medverk\w*|members?|medlem\w*|people|folk|personer",
    # aims and content
    r"goal\w*|aim\w*|purpose\w*|objective\w*|mål\w*|formål\w*|syfte\w*|idea|idé\w*|idé",
    r"theme\w*|tema\w*|topic\w*|emne\w*|subject|focus\w*|fokus\w*|do|does|gör|gjorde|gør|gjorde",
    r"fund\w*|financ\w*|finansi\w*|program\w*|support\w*|stöd\w*|støtte\w*|money|pengar|penge",
    r"countr\w*|land|länder|landet|lande|landene|nation\w*",
    r"result\w*|outcome\w*|impact\w*|effekt\w*|achieve\w*|uppnå\w*|opnå\w*",
    r"learn\w*|lär\w*|lær\w*|conclu\w*|lesson\w*|takeaway\w*|say|said|sa|sade|sagt|sagde|sige",
    r"step\w*|steg|skridt|plan\w*|happen\w*|hände|händer|skete|sker|more|mer|mere|else|annat",
    r"model\w*|modell\w*|method\w*|metod\w*|work\w*|arbet\w*|arbejd\w*|about|om",
    # small words people use when they point back ("the last one", "that thing")
    r"one|ones|thing|things|something|anything|that|this|those|there|here|then|now|also",
)
FACET = re.compile(rf"^(?:{'|'.join(_FACET_PATTERNS)})$")


def is_facet(word: str) -> bool:
    """True for words that ask about a topic rather than name one ("budget", "kontakt")."""
    return bool(FACET.match(word))


@dataclass(frozen=True)
class Rules:
    """The decision's settings, chosen on the tuning split of the dialogues
    (benchmarks/tune_dialogues.py), never on the report split."""

    #: a question is about something else when more than this share of its subject words
    #: occur elsewhere but not in the topic
    elsewhere_share: float = 0.5
    #: words the knowledge never uses start a new topic
    unknown_is_new: bool = True


@dataclass(frozen=True)
class Topic:
    """The last answered topic of a chat: what its answer was about."""

    documents: tuple[str, ...]  # document ids, the best first
    projects: tuple[str, ...] = ()  # catalog project ids named or found
    meetings: tuple[str, ...] = ()  # catalog meeting ids found
    names: tuple[str, ...] = ()  # names the asking question used, as typed
    anchor: str = ""  # what a follow-up is searched together with


@dataclass(frozen=True)
class Plan:
    """How one question is searched: as typed, or together with the chat's topic."""

    question: str
    query: str
    follow_up: bool
    topic: Topic | None
    reason: str


@dataclass(frozen=True)
class Turn:
    """One question searched in a chat: the plan, the result, the build it came from and the
    chat's topic afterwards."""

    plan: Plan
    result: SearchResult
    index: LoadedIndex
    topic: Topic | None


@dataclass
class ChatState:
    """Everything remembered about one chat, in memory only."""

    topic: Topic | None = None
    explained: set[str] = field(default_factory=set)  # glossary terms already explained
    seen: datetime | None = None


class TopicLexicon:
    """What the decision needs from the served index and the knowledge: which words the corpus
    knows, which words are names, and per document the words and stems of everything indexed
    from it (passages, summaries and catalog cards in every language, so a Danish follow-up
    meets a Swedish document through its Danish summary). One per index build; a document's
    words are stemmed the first time a conversation touches it, so a large corpus costs
    nothing up front.

    Names are the search vocabulary's (words the prose nearly always capitalises) plus the
    catalog's own: project names, meeting places and one-word partner names, so "NEO" is a
    name even though the corpus also writes "neo-web.eu". Names are compared as whole words
    (Integrate NEETs is not atWork4NEETs' "integration"); subject words by stem."""

    def __init__(self, searcher: Searcher, kb: KnowledgeBase) -> None:
        self.index = searcher.index
        self.vocabulary = searcher.vocabulary
        self._analyse = searcher.analyser(searcher.config).analyse
        self._chunks: dict[str, list[int]] = {}
        for position, chunk in enumerate(searcher.index.chunks):
            self._chunks.setdefault(chunk.document, []).append(position)
        self._words: dict[str, frozenset[str]] = {}
        self._stems: dict[str, frozenset[str]] = {}
        names: set[str] = set()
        for project in kb.projects.values():
            if project.kind != "working-group":  # their names are descriptions
                names.update(words(project.name))
                names.update(words(project.id))
            names.update(
                w for p in project.partners for w in words(p.name) if len(words(p.name)) == 1
            )
        for meeting in kb.meetings.values():
            if meeting.place:
                names.update(words(meeting.place))
        self.catalog_names = frozenset(w for w in names if w not in STOPWORDS and not is_facet(w))

    def _texts(self, document: str) -> Iterable[str]:
        chunks = self.index.chunks
        return (chunks[i].title + " " + chunks[i].text for i in self._chunks.get(document, []))

    def document_words(self, document: str) -> frozenset[str]:
        if document not in self._words:
            self._words[document] = frozenset(w for t in self._texts(document) for w in words(t))
        return self._words[document]

    def document_stems(self, document: str) -> frozenset[str]:
        if document not in self._stems:
            self._stems[document] = frozenset(s for t in self._texts(document) for s in terms(t))
        return self._stems[document]

    def names(self, question_words: Iterable[str]) -> list[str]:
        """The words of a question that name something (never a facet: "Mål" is capitalised
        as a heading, but asking for "målet" names nothing)."""
        return [
            w
            for w in question_words
            if not is_facet(w) and (w in self.catalog_names or self.vocabulary.names_in([w]))
        ]

    def unknown(self, question: str) -> tuple[str, ...]:
        """Content words the corpus never uses, even after typo and compound repair."""
        return self._analyse(question).unknown

    def named_in(self, name: str, documents: Iterable[str]) -> bool:
        return any(name in self.document_words(d) for d in documents)

    def in_documents(self, word: str, documents: Iterable[str]) -> bool:
        found = set(stems(word))
        return any(found & self.document_stems(d) for d in documents)

    def elsewhere(self, word: str, documents: Iterable[str]) -> bool:
        """The corpus uses the word, but not in `documents`: another document does."""
        return self.vocabulary.known(word) and not self.in_documents(word, documents)


def decide(
    question: str, topic: Topic | None, lexicon: TopicLexicon, rules: Rules | None = None
) -> tuple[bool, str]:
    """(follow-up?, why) for a question in a chat whose last topic is `topic` (rules 1-5 of the
    module docstring)."""
    rules = rules or Rules()
    if topic is None or not topic.documents:
        return False, "no topic"
    words_ = content_words(question)
    names = lexicon.names(words_)
    new = [n for n in names if not lexicon.named_in(n, topic.documents)]
    if new:
        return False, f"names something new: {', '.join(new)}"
    unknown = [w for w in lexicon.unknown(question) if not is_facet(w)]
    if unknown and rules.unknown_is_new:
        return False, f"words the knowledge never uses: {', '.join(unknown)}"
    subject = [w for w in words_ if not is_facet(w) and w not in names]
    elsewhere = [
        w
        for w in subject
        if not lexicon.in_documents(w, topic.documents) and lexicon.elsewhere(w, topic.documents)
    ]
    if elsewhere and len(elsewhere) > rules.elsewhere_share * len(subject):
        return False, f"about something else: {', '.join(elsewhere)}"
    if names:
        return True, f"names only the topic's own: {', '.join(names)}"
    return True, "names nothing new"


class ConversationMemory:
    """Per chat, the last answered topic (and the glossary terms already explained), for
    `ttl` after the chat's last question. Process memory only: a restart forgets everything,
    which is the point."""

    def __init__(
        self,
        ttl: timedelta,
        clock: Clock,
        max_chats: int = MAX_CHATS,
        rules: Rules | None = None,
    ) -> None:
        self.ttl = ttl
        self.rules = rules or Rules()
        self.clock = clock
        self.max_chats = max_chats
        self._chats: OrderedDict[int, ChatState] = OrderedDict()
        self._lexicon: TopicLexicon | None = None
        # Questions are concluded (`conclude`) in the encoder's worker thread while /forget and
        # new questions read and change the chats on the event loop.
        self._lock = threading.RLock()

    # --- state ----------------------------------------------------------------------------

    def state(self, chat_id: int) -> ChatState:
        """The chat's state, fresh when it has been quiet for longer than the ttl."""
        now = self.clock()
        with self._lock:
            state = self._chats.get(chat_id)
            if state is None or state.seen is None or now - state.seen > self.ttl:
                state = ChatState()
            state.seen = now
            self._chats[chat_id] = state
            self._chats.move_to_end(chat_id)
            while len(self._chats) > self.max_chats:
                self._chats.popitem(last=False)
            return state

    def topic(self, chat_id: int) -> Topic | None:
        """The chat's topic if it has not expired (does not count as activity)."""
        with self._lock:
            state = self._chats.get(chat_id)
        if state is None or state.seen is None or self.clock() - state.seen > self.ttl:
            return None
        return state.topic

    def forget(self, chat_id: int) -> None:
        """/forget: the chat's context goes at once."""
        with self._lock:
            self._chats.pop(chat_id, None)

    def __len__(self) -> int:
        return len(self._chats)

    # --- questions --------------------------------------------------------------------------

    def lexicon(self, searcher: Searcher, kb: KnowledgeBase) -> TopicLexicon:
        with self._lock:
            if self._lexicon is None or self._lexicon.index is not searcher.index:
                self._lexicon = TopicLexicon(searcher, kb)  # a reindex brings new documents
            return self._lexicon

    def plan(self, chat_id: int, question: str, searcher: Searcher, kb: KnowledgeBase) -> Plan:
        """How to search `question` in this chat. Pure: nothing is remembered until
        `remember` is called with the result."""
        topic = self.topic(chat_id)
        follow_up, reason = decide(question, topic, self.lexicon(searcher, kb), self.rules)
        if follow_up and topic is not None and topic.anchor:
            return Plan(question, f"{question} {topic.anchor}", True, topic, reason)
        return Plan(question, question, False, topic, reason)

    def remember(
        self,
        chat_id: int,
        plan: Plan,
        result: SearchResult,
        kb: KnowledgeBase,
        searcher: Searcher,
    ) -> Topic | None:
        """Keep what a question was about: what its answer found, or, when it could not be
        answered, what it named ("Tell me about BAGS4YOUTH" and then "who can I write to?").
        An unanswered question naming nothing leaves the topic as it was ("och budgeten?"
        refused, then "vem var kontakt?" is still about BAGS4YOUTH)."""
        lexicon = self.lexicon(searcher, kb)
        if not result.hits or not (result.answered or lexicon.names(content_words(plan.question))):
            return self.state(chat_id).topic
        topic = topic_of(plan, result, kb, lexicon)
        if plan.follow_up and plan.topic is not None and topic.documents == plan.topic.documents:
            topic = replace(topic, names=plan.topic.names, anchor=plan.topic.anchor)
        with self._lock:
            self.state(chat_id).topic = topic
        return topic

    async def ask(self, chat_id: int, plan: Plan, search: SearchService) -> Turn:
        """Search a planned question, judge it as a follow-up and remember its topic."""
        kb = search.knowledge
        return await search.ask_then(
            plan.query, lambda result, searcher: self.conclude(chat_id, plan, result, searcher, kb)
        )

    def conclude(
        self, chat_id: int, plan: Plan, result: SearchResult, searcher: Searcher, kb: KnowledgeBase
    ) -> Turn:
        """What a searched question means for the chat: judged as a follow-up, its topic
        remembered. Runs in the encoder's worker thread, right after the search."""
        result = self.judge(plan, result)
        topic = self.remember(chat_id, plan, result, kb, searcher)
        return Turn(plan, result, searcher.index, topic)

    def judge(self, plan: Plan, result: SearchResult) -> SearchResult:
        """Whether a follow-up was answered, knowing what the search cannot: that the words
        added to it are the topic's name. The search's own rule refuses "when did it run? NEO"
        (half its words are the name) and "när ses de igen? Integrate NEETs" (no sentence
        names both words next to a date). A follow-up counts as answered when the topic's
        document ranks first and, if the question asks for a kind of fact (a date, an amount,
        a phone number…), one of that document's passages among the hits holds one; so
        "och budgeten?" after BAGS4YOUTH, which has no budget, is still refused."""
        if result.answered or not plan.follow_up or plan.topic is None or not result.hits:
            return result
        documents = set(plan.topic.documents)
        if result.hits[0].chunk.document not in documents:
            return result
        texts = [
            h.chunk.title + " " + h.chunk.text for h in result.hits if h.chunk.document in documents
        ]
        if not answers_kinds(asked_types(plan.question), texts):
            return result
        return replace(result, answered=True)

    def explained(self, chat_id: int) -> set[str]:
        """Glossary terms this chat has had explained (the set itself: add to it)."""
        return self.state(chat_id).explained


def _surface(name: str, text: str) -> str:
    """A name as the person typed it ("BAGS4YOUTH"), found case-insensitively in `text`."""
    match = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, flags=re.IGNORECASE)
    return match.group(0) if match else name


def topic_of(plan: Plan, result: SearchResult, kb: KnowledgeBase, lexicon: TopicLexicon) -> Topic:
    """The topic of an answer: the document that holds every name the question used (the best
    ranked such), else the document of the best passage; that document's projects and meetings
    among the hits; and the names. The anchor is what identifies the topic in a search: the
    project's name, else the names the question used, else the document's title."""
    named = lexicon.names(content_words(plan.question))
    ranked = list(dict.fromkeys(h.chunk.document for h in result.hits))
    first = next((d for d in ranked if all(lexicon.named_in(n, [d]) for n in named)), ranked[0])
    hits: list[Chunk] = [h.chunk for h in result.hits if h.chunk.document == first]
    document = kb.documents.get(first)
    projects: list[str] = []
    if document is not None and document.project and document.project in kb.projects:
        projects.append(document.project)
    projects += [c.ref for c in hits if c.kind == "project" and c.ref and c.ref not in projects]
    meetings = list(dict.fromkeys(c.ref for c in hits if c.kind == "meeting" and c.ref))
    names = tuple(
        dict.fromkeys(_surface(n, plan.question) for n in named if lexicon.named_in(n, [first]))
    )
    project_names = [kb.projects[p].name for p in projects[:1] if p in kb.projects]
    parts = project_names or list(names)
    if not parts and document is not None:
        parts = [document.title]
    anchor = " ".join(dict.fromkeys(parts))
    return Topic((first,), tuple(projects), tuple(meetings), names, anchor)
