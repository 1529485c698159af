"""Make a chat-style question meet the corpus: fix typos against the corpus's own vocabulary,
join split names ("bags 4 youth", "atwork for neets"), split Scandinavian compounds
("höstkonferenserna" -> "höst" + "konferenserna"), and notice words the corpus has never seen.

Everything is derived from the indexed text itself, so new documents bring their own names and
words along without any list to maintain.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from bot.retrieval.text import STOPWORDS, stems, words

_RAW_WORD_RE = re.compile(r"[^\W_]+")
_DIGIT_WORDS = {"for": "4", "four": "4", "fyra": "4", "fire": "4", "to": "2", "two": "2"}
_LINKING = ("", "s", "e")  # Swedish/Danish compounds join parts with nothing, -s- or -e-
_MIN_PART = 4  # shorter parts split ordinary words ("att-ended", "dan-mark")


_FOLD = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "ä": "a", "ö": "o", "é": "e", "ü": "u"})


def fold(word: str) -> str:
    """Scandinavian letters to plain ASCII-ish letters, as people type on foreign keyboards."""
    return word.translate(_FOLD)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, giving up (returning limit + 1) as soon as it must exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        best = current[0]
        for j, char_b in enumerate(b, start=1):
            current[j] = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)
            )
            best = min(best, current[j])
        if best > limit:
            return limit + 1
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class AnalysedQuery:
    words: tuple[str, ...]  # the words searched for, after repairs
    unknown: tuple[str, ...]  # content words the corpus has never seen, even after repairs
    content: int  # number of content words in the question

    @property
    def unknown_share(self) -> float:
        return len(self.unknown) / self.content if self.content else 1.0


class Vocabulary:
    """The corpus's words, bucketed by first letter for quick typo look-ups."""

    def __init__(self, texts: Iterable[str], names_from: Iterable[str] = ()) -> None:
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
        self.stems: set[str] = set(self.document_frequency)
        # Names (projects, places, organisations) are the words the corpus writes capitalised
        # nearly every time: "NEO", "BAGS4YOUTH", "Gävle" — but not "job" or "conference".
        self.name_stems: set[str] = {
            s
            for word, n in occurrences.items()
            if n >= 2 and capitalised[word] >= 0.8 * n and word not in STOPWORDS
            for s in stems(word)
        }
        self._by_initial: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
        self._folded: dict[str, str] = {}
        for word in self.words:
            if len(word) >= 3 and not word.isdigit():
                folded = fold(word)
                self._by_initial[folded[0]].append((folded, word))
                self._folded.setdefault(folded, word)

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
        """The closest corpus word within a typo or two (longer words tolerate more)."""
        limit = 1 if len(word) <= 6 else 2
        best, best_distance = None, limit + 1
        target = fold(word)
        for folded, candidate in self._by_initial.get(target[0], ()):
            if abs(len(folded) - len(target)) > limit:
                continue
            distance = edit_distance(target, folded, limit)
            if distance < best_distance or (
                distance == best_distance and best is not None and candidate < best
            ):
                best, best_distance = candidate, distance
        return best

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
