"""Plain-word explanations of jargon (NEET, UVAS, ESF…) for young people.

The knowledge base is written by and for practitioners. A young person reading "NEETs" or
"ESF-program" in a reply gets the word explained in their own language the first time a reply
in their chat uses it (the chat's explained terms are kept in memory with its conversation,
never on disk). The explanations live in one small data file per language
(`bot/glossary/<lang>.yaml`) so they can be read and corrected without touching code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from bot.knowledge.models import LANGUAGES

GLOSSARY_DIR = Path(__file__).resolve().parent.parent / "glossary"
#: At most this many explanations in one reply: a reply is not a dictionary.
MAX_PER_REPLY = 3


@dataclass(frozen=True)
class Term:
    term: str
    patterns: tuple[re.Pattern[str], ...]
    text: str

    def found_in(self, text: str) -> int | None:
        """Where the term first occurs in `text`, if it does."""
        positions = [m.start() for p in self.patterns if (m := p.search(text))]
        return min(positions) if positions else None


@cache
def glossary(lang: str) -> tuple[Term, ...]:
    """The terms of one language, in file order."""
    lang = lang if lang in LANGUAGES else "en"
    data = yaml.safe_load((GLOSSARY_DIR / f"{lang}.yaml").read_text(encoding="utf-8"))
    return tuple(
        Term(
            str(entry["term"]),
            tuple(re.compile(str(pattern)) for pattern in entry["match"]),
            str(entry["text"]),
        )
        for entry in data["terms"]
    )


def explain(texts: Iterable[str], lang: str, explained: set[str]) -> list[Term]:
    """The terms the texts use that this chat has not had explained yet, in reading order;
    they are added to `explained`."""
    joined = "\n".join(texts)
    found = [(at, term) for term in glossary(lang) if (at := term.found_in(joined)) is not None]
    fresh = [term for _, term in sorted(found, key=lambda pair: pair[0])]
    fresh = [term for term in fresh if term.term not in explained][:MAX_PER_REPLY]
    explained.update(term.term for term in fresh)
    return fresh
