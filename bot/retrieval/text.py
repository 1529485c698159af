"""Text processing shared by chunking and BM25: sentences, tokens, and stemming that works across
English, Swedish and Danish.

Every token is stemmed by all three Snowball stemmers and contributes each distinct stem, so a
Danish "budgettet", a Swedish "budgeten" and an English "budget" meet on the same term without
first having to guess which language a short question is in.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

_STEMMERS = {
    lang: Stemmer.Stemmer(name)
    for lang, name in (("en", "english"), ("sv", "swedish"), ("da", "danish"))
}

STOPWORDS: frozenset[str] = frozenset(
    [
        "handlar",  # sv/da "handlar om" / "handler om": "is about"
        "handler",
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "about",
        "any",
        "there's",
        "what's",
        "it's",
        "also",
        "all",
        "more",
        "most",
        "some",
        "other",
        "s",
        "t",
        "och",
        "att",
        "det",
        "som",
        "en",
        "ett",
        "är",
        "på",
        "för",
        "med",
        "av",
        "till",
        "den",
        "de",
        "om",
        "har",
        "inte",
        "var",
        "vi",
        "jag",
        "ni",
        "du",
        "han",
        "hon",
        "sig",
        "man",
        "men",
        "så",
        "kan",
        "ska",
        "skall",
        "vill",
        "hur",
        "vad",
        "när",
        "var",
        "vem",
        "vilka",
        "vilken",
        "vilket",
        "där",
        "här",
        "från",
        "eller",
        "också",
        "mot",
        "efter",
        "under",
        "över",
        "vid",
        "sin",
        "sitt",
        "sina",
        "mitt",
        "min",
        "mina",
        "din",
        "dina",
        "era",
        "er",
        "oss",
        "dem",
        "deras",
        "hans",
        "hennes",
        "finns",
        "fanns",
        "blir",
        "blev",
        "bli",
        "vara",
        "varit",
        "ha",
        "hade",
        "något",
        "några",
        "allt",
        "alla",
        "og",
        "at",
        "det",
        "som",
        "en",
        "et",
        "er",
        "på",
        "for",
        "med",
        "af",
        "til",
        "den",
        "de",
        "om",
        "har",
        "ikke",
        "var",
        "vi",
        "jeg",
        "i",
        "du",
        "han",
        "hun",
        "sig",
        "man",
        "men",
        "så",
        "kan",
        "skal",
        "vil",
        "hvordan",
        "hvad",
        "hvornår",
        "hvor",
        "hvem",
        "hvilke",
        "hvilken",
        "hvilket",
        "der",
        "her",
        "fra",
        "eller",
        "også",
        "mod",
        "efter",
        "under",
        "over",
        "ved",
        "sin",
        "sit",
        "sine",
        "mit",
        "min",
        "mine",
        "din",
        "dine",
        "jeres",
        "os",
        "dem",
        "deres",
        "hans",
        "hendes",
        "findes",
        "fandtes",
        "bliver",
        "blev",
        "blive",
        "være",
        "været",
        "have",
        "havde",
        "noget",
        "nogle",
        "alt",
        "alle",
    ]
)

_ZERO_WIDTH = dict.fromkeys(
    map(
        ord,
        "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f"
        "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    )
)
_NUMBER_RE = re.compile(r"(?<!\w)\d{1,3}(?:[ ,.\u00a0\u202f]\d{3})+(?!\d)")
_TOKEN_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
# Sentence ends: . ! ? followed by space and a capital/digit/quote/dash, or a line break.
_SENTENCE_RE = re.compile(r"(?<=[.!?…])\s+(?=[\"'“”«(–—-]?[A-ZÅÄÖÆØÉÜ0-9])|\n+")


def normalise(text: str) -> str:
    """NFKC, drop invisible control characters, collapse whitespace: what people type varies."""
    # invisible characters go first, so a combining mark after one still joins its letter
    text = unicodedata.normalize("NFKC", text.translate(_ZERO_WIDTH))
    return re.sub(r"\s+", " ", text).strip()


def sentences(text: str) -> list[str]:
    """Sentence-ish units; list lines (partner lists, fact sheets) count as sentences too."""
    return [s for s, _ in sentence_units(text)]


def sentence_units(text: str) -> list[tuple[str, str]]:
    """Sentences with the separator that followed each ("\n" or " "), so passages rebuilt from
    them keep the source's line structure (fact sheets stay readable)."""
    units: list[tuple[str, str]] = []
    position = 0
    for match in _SENTENCE_RE.finditer(text):
        piece = text[position : match.start()].strip()
        if piece:
            units.append((piece, "\n" if "\n" in match.group() else " "))
        position = match.end()
    tail = text[position:].strip()
    if tail:
        units.append((tail, ""))
    return units


def words(text: str) -> list[str]:
    """Lowercased word tokens; numbers lose their thousand separators (1,427,499 -> 1427499)."""
    text = normalise(text).casefold()
    text = _NUMBER_RE.sub(lambda m: re.sub(r"\D", "", m.group()), text)
    return [w.replace("’", "'") for w in _TOKEN_RE.findall(text)]


@lru_cache(maxsize=200_000)
def stems(word: str) -> tuple[str, ...]:
    """The distinct stems of one word across the supported languages."""
    found: list[str] = []
    for stemmer in _STEMMERS.values():
        stem = stemmer.stemWord(word)
        if stem not in found:
            found.append(stem)
    return tuple(found)


def terms(text: str) -> list[str]:
    """BM25 terms: content words, each expanded to its stems in every supported language."""
    result: list[str] = []
    for word in words(text):
        if word in STOPWORDS or (len(word) == 1 and not word.isdigit()):
            continue
        result.extend(stems(word))
    return result


@lru_cache(maxsize=20_000)
def passage_terms(text: str) -> tuple[str, ...]:
    """`terms` of a passage or sentence that many questions meet again (the same hits come up
    for many questions): tokenising and stemming it every time was most of a search's and an
    answer's Python work."""
    return tuple(terms(text))


@lru_cache(maxsize=20_000)
def passage_term_set(text: str) -> frozenset[str]:
    return frozenset(passage_terms(text))


def content_words(text: str) -> list[str]:
    """The words of a question that carry meaning (used to judge how well a passage covers it)."""
    return [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
