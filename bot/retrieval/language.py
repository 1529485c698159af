"""Which of the bot's languages a question or document is written in.

py3langid (a character n-gram model, restricted to the languages the bot speaks) does the work;
`benchmarks/langid.py` compares it with lingua on short chat questions (docs/langid.md). Two
things are ours: names are masked first, so "What is the weather in Gävle?" stays English and
"Vad hände i København?" stays Swedish, and a guess the model is not sure of (a project name
alone, a number) falls back to the caller's default.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Protocol

from bot.knowledge.models import LANGUAGES

#: Below this probability (among the supported languages) the guess is not trusted. Three equal
#: guesses are 0.33 (a bare "NEO"); a short question typed without accents ("hur lange pagick
#: projektet") is still 0.46.
MIN_CONFIDENCE = 0.45

# A capitalised word that does not start a sentence (a place or a person), or a word with a
# digit in it (BAGS4YOUTH, atWork4NEETs): these say nothing about the language around them.
_NAME_RE = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-ZÀ-ÖØ-Þ][\w-]*|\b\w*\d\w*\b", re.MULTILINE)
_LETTERS_RE = re.compile(r"[^\W\d_]{2,}")


class _Identifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...


@cache
def _identifier() -> _Identifier:
    """Loaded on first use (about a second): only uploads and questions need it."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier  # type: ignore[no-any-return]


def detect_language(text: str, default: str = "en") -> str:
    """The supported language `text` is most likely in, or `default` when it has no words
    other than names or the model is unsure."""
    words = _NAME_RE.sub(" ", text)
    if not _LETTERS_RE.search(words):
        return default
    lang, confidence = _identifier().classify(words)
    if confidence < MIN_CONFIDENCE or lang not in LANGUAGES:
        return default
    return str(lang)
