"""A seeded synthetic multilingual corpus for the scale benchmarks.

Sentences in English, Swedish and Danish are recombined from the words of the knowledge base's
documents and summaries in that language, so token lengths, stems and the stemmers' work are
realistic. A small share of tokens become new compounds of two words of the language (as Swedish
and Danish build them), so the vocabulary keeps growing with the corpus like real text does
instead of saturating at the few thousand words of the five source documents.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from bot.knowledge import load_knowledge
from bot.retrieval.chunks import Chunk
from bot.retrieval.embedder import Vectors

from .common import KNOWLEDGE

LANGUAGES = ("en", "sv", "da")
CHUNKS_PER_DOCUMENT = 25
MIN_CHARS, MAX_CHARS = 300, 500
COMPOUND_SHARE = 0.02  # tokens that become a new compound word
_WORD_RE = re.compile(r"[^\W\d_]{2,}", re.UNICODE)


@dataclass(frozen=True)
class Lexicon:
    words: dict[str, tuple[str, ...]]  # per language, with repeats (natural frequencies)


@cache
def lexicon(knowledge_dir: Path = KNOWLEDGE) -> Lexicon:
    kb = load_knowledge(knowledge_dir)
    found: dict[str, list[str]] = {lang: [] for lang in LANGUAGES}
    for doc in kb.documents.values():
        if doc.language in found:
            found[doc.language] += _WORD_RE.findall(doc.body)
    for summary in kb.summaries:
        if summary.language in found:
            found[summary.language] += _WORD_RE.findall(summary.text)
    return Lexicon({lang: tuple(words) for lang, words in found.items() if words})


def _sentence(rng: random.Random, words: tuple[str, ...], lang: str) -> str:
    count = rng.randint(6, 16)
    picked: list[str] = []
    for _ in range(count):
        word = rng.choice(words)
        if rng.random() < COMPOUND_SHARE:
            tail = rng.choice(words).lower()
            word = word + ("s" if lang != "en" and rng.random() < 0.3 else "") + tail
        picked.append(word)
    if rng.random() < 0.15:  # figures and years, as project texts have
        picked.insert(
            rng.randrange(len(picked)),
            str(rng.choice([2019, 2021, 2023, 2026, rng.randint(10, 99_999)])),
        )
    text = " ".join(picked)
    return text[0].upper() + text[1:] + rng.choice([".", ".", ".", "?", "!"])


def synthetic_text(rng: random.Random, lang: str, lex: Lexicon) -> str:
    words = lex.words[lang]
    target = rng.randint(MIN_CHARS, MAX_CHARS)
    sentences: list[str] = []
    size = 0
    while size < target:
        sentence = _sentence(rng, words, lang)
        sentences.append(sentence)
        size += len(sentence) + 1
    return " ".join(sentences)[:MAX_CHARS].rstrip()


def synthetic_chunks(count: int, seed: int = 20261122) -> list[Chunk]:
    """`count` document chunks in en/sv/da (a third each), grouped into documents of 25."""
    rng = random.Random(seed)
    lex = lexicon()
    languages = [lang for lang in LANGUAGES if lang in lex.words]
    chunks: list[Chunk] = []
    for n in range(count):
        lang = languages[n % len(languages)]
        document = f"synthetic-{lang}-{n // (CHUNKS_PER_DOCUMENT * len(languages)):05d}"
        position = (n // len(languages)) % CHUNKS_PER_DOCUMENT
        title = f"Synthetic {lang} document {document[-5:]}"
        chunks.append(
            Chunk(
                f"{document}#{position}",
                "document",
                document,
                lang,
                title,
                synthetic_text(rng, lang, lex),
                position,
            )
        )
    return chunks


def tile_vectors(base: Vectors, count: int, seed: int = 7, sigma: float = 0.03) -> Vectors:
    """`count` unit vectors from `base`: the base rows first, then copies of them with seeded
    Gaussian noise (sigma per component; cos ~0.85 to the source row for 384 dimensions),
    renormalised, so near neighbours are not exact duplicates."""
    rng = np.random.default_rng(seed)
    rows = np.arange(count) % len(base)
    vectors = base[rows].astype(np.float32, copy=True)
    if count > len(base):
        noise = rng.normal(0.0, sigma, size=(count - len(base), base.shape[1])).astype(np.float32)
        vectors[len(base) :] += noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors, dtype=np.float32)
