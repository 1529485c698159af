"""Property-based tests: whatever people type and whatever lands in knowledge/, the pure parts of
the bot never raise, and every reply still fits Telegram's rules."""

from __future__ import annotations

import re
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from html import unescape
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.knowledge.loader import load_knowledge
from bot.knowledge.models import LANGUAGES
from bot.render import Renderer, split_html
from bot.retrieval.embedder import Embedder
from bot.retrieval.search import SearchConfig, Searcher
from bot.retrieval.text import content_words, normalise, terms, words
from bot.safety import Level, assess, helplines_for
from bot.services.answers import (
    EXCERPT_CHARS,
    Answer,
    Passage,
    Segment,
    choose_lead,
    excerpt,
    reply_html,
)
from bot.services.search import SearchService
from tests.telegram_stub import MAX_MESSAGE_LENGTH, TDLIB_MAX_TEXT, parse_html, utf16_len

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Anything a person can type, control characters included; lone surrogates cannot be UTF-8.
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Turn a hang (an endless loop in pure Python) into a failure instead of a stuck run."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- (a) the question path ---------------------------------------------------------------------


@pytest.fixture
def query_vector(embedder: Embedder) -> np.ndarray:
    """One real query vector; the properties are about text handling, not the model."""
    vector: np.ndarray = embedder.encode_queries(["NEO budget"])[0]
    return vector


@pytest.mark.slow
@PROPERTY
@given(text=ANY_TEXT)
def test_any_text_goes_through_the_question_path(
    search_service: SearchService, query_vector: np.ndarray, text: str
) -> None:
    cleaned = normalise(text)
    assert cleaned == cleaned.strip()
    assert not re.search(r"\s{2}", cleaned)
    assert all(w and w == w.casefold() for w in words(text))
    assert set(content_words(text)) <= set(words(text))
    assert all(t for t in terms(text))
    searcher: Searcher = search_service.searcher
    analysed = searcher.analyser(SearchConfig()).analyse(cleaned)
    assert 0.0 <= analysed.unknown_share <= 1.0
    result = searcher.search(cleaned, query_vector)
    assert result.query == cleaned
    assert len(result.hits) <= 5
    if not content_words(cleaned):
        assert not result.answered
    safety = assess(text)
    assert safety.level in Level
    assert (safety.level is Level.NONE) == (not safety.concerns)


#: Words as people type them in the three languages, with digits and punctuation.
_NORDIC_TEXT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzåäöæøéüABCDEFGHIJKLMNOPQRSTUVWXYZÅÄÖÆØÉÜ0123456789 .,?!-'",
    max_size=80,
)
_INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\u202e", "\ufeff", "\u00ad"])


@PROPERTY
@given(text=_NORDIC_TEXT, filler=_INVISIBLE)
def test_invisible_characters_inside_words_change_nothing(text: str, filler: str) -> None:
    """Zero-width and direction marks are how a word is hidden from a filter; they must not
    change what the bot reads or how the safety screen judges it."""
    hidden = filler.join(text)
    assert normalise(hidden) == normalise(text)
    assert words(hidden) == words(text)
    assert assess(hidden) == assess(text)


@PROPERTY
@given(prefix=ANY_TEXT, filler=_INVISIBLE)
def test_a_crisis_split_by_invisible_characters_is_still_a_crisis(prefix: str, filler: str) -> None:
    message = filler.join("I want to kill myself")
    assert assess(message).level is Level.CRISIS
    assert assess(prefix + "\n" + message).level is not Level.NONE


# --- (b) the knowledge loader --------------------------------------------------------------------

_KEYS = (
    "id",
    "title",
    "language",
    "kind",
    "project",
    "provenance",
    "summary_of",
    "name",
    "date",
    "status",
    "time",
    "country",
    "source",
    "meetings",
    "projects",
    "text",
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(min_value=date(1, 1, 1)),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40),
    st.sampled_from(["en", "sv", "da", "xx", "project", "news", "held", "planned", "SE", "14:00"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_MAPPINGS = st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=8)
#: Lines that look like YAML but often are not: indentation, flow collections, anchors, tags.
_YAMLISH_LINE = st.builds(
    lambda indent, key, sep, value: " " * indent + key + sep + value,
    st.integers(0, 6),
    st.sampled_from(_KEYS) | st.text(alphabet="-?*&!|>%@`'\"[]{},:# \tabc", max_size=6),
    st.sampled_from([": ", ":", " - ", "", ": |", ": >", ": &a ", ": *a", ": !!str ", ": !!int "]),
    st.text(alphabet="abc019-:'\"[]{}#&*!|>% \t\\", max_size=30),
)
#: Dates and times as people mistype them: unquoted, YAML itself tries to read them.
_MISTYPED = st.from_regex(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2})?)?", fullmatch=True
) | st.from_regex(r"-?[0-9]{1,3}:[0-9]{1,2}(:[0-9]{2})?", fullmatch=True)


@st.composite
def knowledge_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """A file for documents/, summaries/ or catalogs/: random bytes, well-formed YAML with
    random content, or YAML-ish lines, with or without front matter."""
    folder = draw(st.sampled_from(["documents", "summaries", "catalogs"]))
    kind = draw(st.sampled_from(["bytes", "yaml", "mistyped", "lines"]))
    if kind == "bytes":
        return folder, draw(st.binary(max_size=400))
    if kind in ("yaml", "mistyped"):
        data: Any = draw(_MAPPINGS)
        if folder == "catalogs":
            key = draw(st.sampled_from(["projects", "meetings", "takeaways", "success_factors"]))
            data = {key: draw(st.lists(_MAPPINGS, min_size=kind == "mistyped", max_size=3))}
        text = yaml.safe_dump(data, allow_unicode=draw(st.booleans()), sort_keys=False)
        if kind == "mistyped":  # one more field, written by hand
            indent = "  " if folder == "catalogs" else ""
            text += f"{indent}{draw(st.sampled_from(_KEYS))}x: {draw(_MISTYPED)}\n"
    else:
        text = "\n".join(draw(st.lists(_YAMLISH_LINE, max_size=10)))
    if folder != "catalogs" and (kind == "mistyped" or draw(st.booleans())):
        body = draw(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=80))
        text = f"---\n{text}\n---\n{body}"
    return folder, text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"])))


@PROPERTY
@given(files=st.lists(knowledge_file(), min_size=1, max_size=4))
def test_the_loader_reports_instead_of_raising(files: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "knowledge"
        for number, (folder, data) in enumerate(files):
            directory = root / folder
            directory.mkdir(parents=True, exist_ok=True)
            suffix = ".yaml" if folder == "catalogs" else ".md"
            (directory / f"file-{number}{suffix}").write_bytes(data)
        kb = load_knowledge(root)
    for problem in kb.problems:
        assert isinstance(problem.line, int)
        assert problem.line >= 0
        assert problem.message
        assert str(problem).startswith(problem.path)
    assert len(kb.documents) <= len(files)


def test_absurdly_deep_yaml_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "catalogs").mkdir()
    (tmp_path / "catalogs" / "projects.yaml").write_text(
        "projects: " + "[" * 3000 + "]" * 3000, encoding="utf-8"
    )
    kb = load_knowledge(tmp_path)
    [problem] = kb.problems
    assert problem.line >= 1


# --- (c) replies built from people's text fit Telegram --------------------------------------------

#: Text as people and documents write it: words of any script (emoji included), punctuation,
#: markup-looking characters and control characters, separated by spaces and line breaks.
#: NUL is left out: Telegram never delivers it and the loader refuses files containing it.
_WORD = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Zs", "Zl", "Zp"], exclude_characters="\x00")
    | st.sampled_from(list("<>&\"';*_[]`~|/\\")),
    min_size=1,
    max_size=40,
)
_PROSE = st.lists(
    st.tuples(_WORD, st.sampled_from([" ", " ", " ", "\n", "\n\n", "  ", "\t"])),
    max_size=40,
).map(lambda pairs: "".join(w + s for w, s in pairs).strip() or "x")
# Long texts repeat a random piece, so they are long without costing Hypothesis much entropy.
#: Prose longer than a message, which has to be cut at line breaks or spaces.
_LONG_PROSE = st.tuples(_PROSE, st.integers(1, 80)).map(lambda t: " ".join([t[0]] * t[1]))
#: A run without any break, longer than a message (a pasted link or base64 blob in a document).
_RUN = st.tuples(st.text(alphabet="ab😀&<", min_size=1, max_size=4), st.integers(800, 3000)).map(
    lambda t: t[0] * t[1]
)
_LONG_TEXT = st.one_of(_PROSE, _LONG_PROSE, _RUN, st.tuples(_PROSE, _RUN).map(" ".join))


@st.composite
def passages(draw: st.DrawFn) -> Passage:
    lang = draw(st.sampled_from(LANGUAGES))
    segments = draw(
        st.lists(
            st.builds(Segment, _LONG_TEXT, st.booleans(), st.sampled_from([" ", "\n"])),
            min_size=1,
            max_size=3,
        )
    )
    title = draw(_PROSE.map(lambda t: t[:120]))
    other = draw(st.booleans())
    return Passage(
        title=title,
        lang=lang,
        kind=draw(st.sampled_from(["document", "project", "meeting", "summary"])),
        document_id="doc",
        document_title=draw(st.sampled_from([title, "Another <document> & co"])),
        document_lang=lang,
        segments=tuple(segments),
        other_language=other,
        summary=draw(st.none() | _PROSE) if other else None,
    )


def assert_fits_telegram(html: str) -> list[str]:
    with time_limit(10):
        parts = split_html(html)
    assert parts
    if len(html) <= TDLIB_MAX_TEXT:
        plain_whole, _ = parse_html(html)
    else:  # TDLib refuses to parse more than this at once ("Text is too long")
        plain_whole = unescape(re.sub(r"<[^>]*>", "", html))
    plains = []
    for part in parts:
        assert utf16_len(part) <= MAX_MESSAGE_LENGTH
        plain, _ = parse_html(part, strict_ampersand=True)
        assert plain.strip(" \t\r\n"), "Telegram refuses an empty message"
        plains.append(plain)
    # Cuts only ever drop the whitespace they are made at: no text is lost or duplicated.
    assert re.sub(r"\s", "", "".join(plains)) == re.sub(r"\s", "", plain_whole)
    return parts


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@PROPERTY
@given(
    lang=st.sampled_from(LANGUAGES),
    shown=st.lists(passages(), min_size=1, max_size=4),
    topic=st.booleans(),
    role=st.sampled_from([None, "young"]),
    question=st.sampled_from(["What is the budget?", "Hvem er kontakt?", "Vad är det?", "a b"]),
)
def test_answers_built_from_any_text_fit_telegram(
    renderer: Renderer,
    lang: str,
    shown: list[Passage],
    topic: bool,
    role: str | None,
    question: str,
) -> None:
    passages = [replace(p, excerpt=excerpt(p.segments, EXCERPT_CHARS)) for p in shown]
    answer = Answer("id", 1, question, lang, True, passages, role=role, question=question)
    answer.lead = choose_lead(question, passages, lang)
    helplines = helplines_for(lang) if topic else None
    assert_fits_telegram(reply_html(renderer, answer, explained=set(), helplines=helplines))
    numbered = list(enumerate(passages, start=1))
    assert_fits_telegram(renderer.render("answer_full", lang, passages=numbered))
    assert_fits_telegram(renderer.render("answer_more", lang, passages=numbered, gist_at=None))


@PROPERTY
@given(
    lang=st.sampled_from(LANGUAGES),
    role=st.sampled_from([None, "young", "practitioner"]),
    topic=st.booleans(),
    command=ANY_TEXT.filter(lambda t: "\x00" not in t),
)
def test_refusals_and_unknown_commands_fit_telegram(
    renderer: Renderer, lang: str, role: str | None, topic: bool, command: str
) -> None:
    helplines = helplines_for(lang) if topic else None
    assert_fits_telegram(renderer.render("no_answer", lang, role=role, helplines=helplines))
    # The handler names back the first word of the message, at most 40 characters.
    word = ("/" + command).split()[0][:40]
    [part] = assert_fits_telegram(renderer.render("unknown_command", lang, command=word))
    plain, _ = parse_html(part)
    assert word.strip() in plain
