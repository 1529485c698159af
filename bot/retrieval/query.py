"""Make a chat-style question meet the corpus: fix typos against the corpus's own vocabulary,
join split names ("bags 4 youth", "atwork for neets"), split Scandinavian compounds
("höstkonferenserna" -> "höst" + "konferenserna"), and notice words the corpus has never seen.

Everything is derived from the indexed text itself, so new documents bring their own names and
words along without any list to maintain.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from bot.retrieval.text import STOPWORDS, stems, words

if TYPE_CHECKING:
    from bot.retrieval.chunks import Chunk

#: Bumped when the saved vocabulary's layout changes (the index's FORMAT_VERSION follows it).
VOCABULARY_VERSION = 1

_RAW_WORD_RE = re.compile(r"[^\W_]+")
_DIGIT_WORDS = {"for": "4", "four": "4", "fyra": "4", "fire": "4", "to": "2", "two": "2"}
_LINKING = ("", "s", "e")  # Swedish/Danish compounds join parts with nothing, -s- or -e-
_MIN_PART = 4  # shorter parts split ordinary words ("att-ended", "dan-mark")


_FOLD = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "ä": "a", "ö": "o", "é": "e", "ü": "u"})


def fold(word: str) -> str:
    """Scandinavian letters to plain ASCII-ish letters, as people type on foreign keyboards."""
    return word.translate(_FOLD)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or limit + 1 when it exceeds `limit` (rapidfuzz, in C++)."""
    return int(Levenshtein.distance(a, b, score_cutoff=limit))


@dataclass(frozen=True)
class AnalysedQuery:
    words: tuple[str, ...]  # the words searched for, after repairs
    unknown: tuple[str, ...]  # content words the corpus has never seen, even after repairs
    content: int  # number of content words in the question

    @property
    def unknown_share(self) -> float:
        return len(self.unknown) / self.content if self.content else 1.0


class Vocabulary:
    """The corpus's words and stems: what typo repair, compound splitting and the idf weights
    need. Built once with the index (`corpus_vocabulary`, saved beside it by
    bot/retrieval/store.py), because counting 100 000 chunks' stems takes tens of seconds and
    the served index never changes underneath it."""

    def __init__(self, texts: Iterable[str] = (), names_from: Iterable[str] = ()) -> None:
        self.words: set[str] = set()
        self.document_frequency: Counter[str] = Counter()
        occurrences: Counter[str] = Counter()
        capitalised: Counter[str] = Counter()
        count = 0
        for text in texts:
            count += 1
            found = set(words(text))
            self.words.update(found)
            self.document_frequency.update({s for w in found for s in stems(w)})
        for text in names_from:
            for raw in _RAW_WORD_RE.findall(text):
                lowered = raw.casefold()
                occurrences[lowered] += 1
                capitalised[lowered] += raw[0].isupper() or any(c.isdigit() for c in raw)
        self.size = max(count, 1)
        # Names (projects, places, organisations) are the words the corpus writes capitalised
        # nearly every time: "NEO", "BAGS4YOUTH", "Gävle" — but not "job" or "conference".
        self.name_stems: set[str] = {
            s
            for word, n in occurrences.items()
            if n >= 2 and capitalised[word] >= 0.8 * n and word not in STOPWORDS
            for s in stems(word)
        }
        self._index()

    def _index(self) -> None:
        """The look-up tables derived from the words: typo candidates by folded first letter
        and length (a typo within two edits changes the length by at most two), and folded
        spellings. Words are visited in sorted order, so the corpus spelling `unfold` returns
        for a folded form shared by several words is the same in every process."""
        self.stems: set[str] = set(self.document_frequency)
        by_key: defaultdict[tuple[str, int], tuple[list[str], list[str]]] = defaultdict(
            lambda: ([], [])
        )
        self._folded: dict[str, str] = {}
        for word in sorted(self.words):
            if len(word) >= 3 and not word.isdigit():
                folded = fold(word)
                bucket = by_key[(folded[0], len(folded))]
                bucket[0].append(folded)
                bucket[1].append(word)
                self._folded.setdefault(folded, word)
        self._candidates = dict(by_key)

    # --- saved with the index ------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VOCABULARY_VERSION,
            "size": self.size,
            "words": sorted(self.words),
            "document_frequency": dict(sorted(self.document_frequency.items())),
            "name_stems": sorted(self.name_stems),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vocabulary:
        if data.get("version") != VOCABULARY_VERSION:
            raise ValueError(f"vocabulary version {data.get('version')!r}")
        vocabulary = cls()
        vocabulary.size = int(data["size"])
        vocabulary.words = set(data["words"])
        vocabulary.document_frequency = Counter(
            {str(k): int(v) for k, v in data["document_frequency"].items()}
        )
        vocabulary.name_stems = set(data["name_stems"])
        vocabulary._index()
        return vocabulary

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        """Raises OSError or ValueError when the file is missing or not a vocabulary."""
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{os.fspath(path)} is not a vocabulary: {error}") from None

    def names_in(self, query_words: Iterable[str]) -> list[str]:
        """The query words that name something (a project, a place, a meeting)."""
        return [w for w in query_words if any(s in self.name_stems for s in stems(w))]

    def weight(self, word: str) -> float:
        """How telling a word is (BM25-style idf of its rarest stem): a project name outweighs
        "budget" when judging whether a passage is about what was asked."""
        df = min((self.document_frequency.get(s, 0) for s in stems(word)), default=0)
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def term_weight(self, term: str) -> float:
        """The same idf for an already stemmed BM25 term."""
        df = self.document_frequency.get(term, 0)
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def known(self, word: str) -> bool:
        return word in self.words or any(s in self.stems for s in stems(word))

    def unfold(self, word: str) -> str | None:
        """The corpus spelling of a word typed without å/ä/ö/æ/ø ("ostersund" -> "östersund")."""
        return self._folded.get(fold(word))

    def correct(self, word: str) -> str | None:
        """The closest corpus word within a typo or two (longer words tolerate more), sharing
        the first letter; ties go to the alphabetically first. rapidfuzz compares a word with
        a whole bucket in C++: at 100 000 passages the vocabulary has 100 000 words, and the
        Python scan this replaces took 40-140 ms per question."""
        limit = 1 if len(word) <= 6 else 2
        target = fold(word)
        best: tuple[int, str] | None = None
        for length in range(len(target) - limit, len(target) + limit + 1):
            bucket = self._candidates.get((target[0], length))
            if bucket is None:
                continue
            folded, originals = bucket
            for _, distance, position in process.extract(
                target,
                folded,
                scorer=Levenshtein.distance,
                score_cutoff=limit,
                limit=None,
            ):
                found = (int(distance), originals[position])
                if best is None or found < best:
                    best = found
        return best[1] if best is not None else None

    def split(self, word: str) -> tuple[str, str] | None:
        """A compound as a known modifier and a known head. The shortest modifier wins: in
        Scandinavian compounds the last part carries the meaning (höst|konferenserna)."""
        for cut in range(_MIN_PART, len(word) - _MIN_PART + 1):
            head, tail = word[:cut], word[cut:]
            for link in _LINKING:
                if link and not head.endswith(link):
                    continue
                stem = head[: len(head) - len(link)] if link else head
                if len(stem) >= _MIN_PART and self.known(stem) and self.known(tail):
                    return stem, tail
        return None


class QueryAnalyser:
    """Repairs questions against one index's vocabulary; cached per question text."""

    def __init__(
        self,
        vocabulary: Vocabulary,
        *,
        fuzzy: bool = True,
        join: bool = True,
        decompound: bool = True,
    ) -> None:
        self.vocabulary = vocabulary
        self.fuzzy = fuzzy
        self.join = join
        self.decompound = decompound
        self.analyse = lru_cache(maxsize=4096)(self._analyse)

    def _joined(self, tokens: list[str]) -> list[str]:
        """Names written apart: adjacent words whose concatenation is a corpus word."""
        found = []
        for size in (2, 3):
            for start in range(len(tokens) - size + 1):
                parts = tokens[start : start + size]
                for variant in ("".join(parts), "".join(_DIGIT_WORDS.get(p, p) for p in parts)):
                    if variant in self.vocabulary.words:
                        found.append(variant)
                        break
        return found

    def _repair(self, word: str) -> list[str]:
        vocab = self.vocabulary
        unfolded = vocab.unfold(word)
        if unfolded is not None:
            return [unfolded]
        digits = re.sub("|".join(_DIGIT_WORDS), lambda m: _DIGIT_WORDS[m.group()], word)
        if digits != word and digits in vocab.words:
            return [digits]
        # short words are too often real words the corpus lacks ("söker" is not "sker")
        if self.fuzzy and len(word) >= 6 and not word.isdigit():
            corrected = vocab.correct(word)
            if corrected is not None:
                return [corrected]
        if self.decompound and len(word) >= 2 * _MIN_PART:
            parts = vocab.split(word)
            if parts is not None:
                return list(parts)
        return []

    def _analyse(self, question: str) -> AnalysedQuery:
        tokens = words(question)
        content = [t for t in tokens if t not in STOPWORDS and (len(t) > 1 or t.isdigit())]
        result: list[str] = []
        unknown: list[str] = []
        for word in content:
            if self.vocabulary.known(word):
                result.append(word)
                continue
            repaired = self._repair(word)
            if repaired:
                result.extend(repaired)
            else:
                unknown.append(word)
        if self.join:
            joined = self._joined(tokens)
            result.extend(joined)
            # parts of a recognised name are not "unknown" ("bags 4 youth")
            unknown = [u for u in unknown if not any(u in name for name in joined)]
        return AnalysedQuery(tuple(result), tuple(unknown), len(content))


def corpus_vocabulary(chunks: Iterable[Chunk]) -> Vocabulary:
    """The query vocabulary of an index's chunks: every chunk's title and text; names are
    learnt from prose, not from catalog cards' "Date:"/"Budget:" labels."""
    chunks = list(chunks)
    return Vocabulary(
        (c.title + " " + c.text for c in chunks),
        names_from=(c.text for c in chunks if c.kind in {"document", "summary"}),
    )
