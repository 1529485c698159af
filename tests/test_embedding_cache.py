"""The embedding cache: a rebuild encodes only new or changed passages, the vectors it hands back
are the ones encoding gives, and the index guarantees (atomic swap, a failed build leaves the old
index serving) hold with it. A deterministic stand-in embedder counts what is encoded; it has only
the protocol members (`name`, `dimension`, `encode_queries`, `encode_passages`)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.errors import IndexBuildError
from bot.knowledge import load_knowledge
from bot.retrieval.cache import EmbeddingCache
from bot.retrieval.chunks import Chunk, chunk_knowledge
from bot.retrieval.embedder import Vectors
from bot.retrieval.store import build_index, current_build, load_index
from tests.conftest import KNOWLEDGE

NEW_DOC = """---
id: harbour-apprentices
title: Harbour apprentices
language: en
kind: news
---
Young people train as crane operators in the harbour of Tallinn for nine months.

The apprenticeship is paid, and most apprentices are hired afterwards.
"""


class CountingEmbedder:
    """Vectors from a hash of the text: deterministic, normalised, and counted."""

    backend = "test"

    def __init__(self, name: str = "test:hash-8", dimension: int = 8) -> None:
        self.name = name
        self.dimension = dimension
        self.encoded: list[str] = []
        self.fail_after: int | None = None

    def _vectors(self, texts: Sequence[str]) -> Vectors:
        rows = []
        for text in texts:
            digest = hashlib.sha256((self.name + text).encode()).digest()
            rows.append(np.frombuffer(digest[: self.dimension * 4], dtype=np.uint32) % 1000)
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension) + 1
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self._vectors(texts)

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        if self.fail_after is not None and len(self.encoded) + len(texts) > self.fail_after:
            raise RuntimeError("the model ran out of memory")
        self.encoded.extend(texts)
        return self._vectors(texts)


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    root = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, root)
    return root


def _build(knowledge: Path, index_dir: Path, embedder: CountingEmbedder) -> None:
    build_index(load_knowledge(knowledge), embedder, index_dir)  # type: ignore[arg-type]


def test_a_rebuild_encodes_only_new_passages(tmp_path: Path, knowledge: Path) -> None:
    index_dir = tmp_path / "index"
    embedder = CountingEmbedder()
    _build(knowledge, index_dir, embedder)
    total = len(chunk_knowledge(load_knowledge(knowledge)))
    assert len(embedder.encoded) == total  # a cold cache encodes everything

    embedder.encoded.clear()
    _build(knowledge, index_dir, embedder)
    assert embedder.encoded == []  # nothing changed, nothing encoded

    (knowledge / "documents" / "harbour-apprentices.md").write_text(NEW_DOC, encoding="utf-8")
    _build(knowledge, index_dir, embedder)
    new_passages = [
        c.text
        for c in chunk_knowledge(load_knowledge(knowledge))
        if c.document == "harbour-apprentices"
    ]
    assert sorted(embedder.encoded) == sorted(new_passages)
    assert load_index(index_dir, embedder.name).meta.chunks == total + len(new_passages)


def test_a_changed_passage_is_encoded_again(tmp_path: Path, knowledge: Path) -> None:
    index_dir = tmp_path / "index"
    embedder = CountingEmbedder()
    target = knowledge / "documents" / "harbour-apprentices.md"
    target.write_text(NEW_DOC, encoding="utf-8")
    _build(knowledge, index_dir, embedder)
    embedder.encoded.clear()
    target.write_text(NEW_DOC.replace("nine months", "ten months"), encoding="utf-8")
    _build(knowledge, index_dir, embedder)
    assert embedder.encoded == [
        "Young people train as crane operators in the harbour of Tallinn for ten months.\n"
        "The apprenticeship is paid, and most apprentices are hired afterwards."
    ]


def test_cached_vectors_equal_fresh_ones(tmp_path: Path, knowledge: Path) -> None:
    index_dir = tmp_path / "index"
    embedder = CountingEmbedder()
    _build(knowledge, index_dir, embedder)
    _build(knowledge, index_dir, embedder)  # served entirely from the cache
    loaded = load_index(index_dir, embedder.name)
    assert loaded.vectors is not None
    fresh = embedder.encode_passages([c.text for c in loaded.chunks])
    np.testing.assert_array_equal(loaded.vectors, fresh)


def test_models_do_not_share_vectors(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    one, other = CountingEmbedder("model-a"), CountingEmbedder("model-b")
    cache.encode_passages(one, ["same text"])  # type: ignore[arg-type]
    cache.encode_passages(other, ["same text"])  # type: ignore[arg-type]
    assert other.encoded == ["same text"]


def test_repeated_texts_are_encoded_once_and_order_is_kept(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    embedder = CountingEmbedder()
    texts = ["b", "a", "b", "c", "a"]
    vectors = cache.encode_passages(embedder, texts, step=2)  # type: ignore[arg-type]
    assert sorted(embedder.encoded) == ["a", "b", "c"]
    np.testing.assert_array_equal(vectors, embedder.encode_queries(texts))
    assert (cache.last.passages, cache.last.cached, cache.last.encoded) == (5, 0, 3)


def test_the_cache_keeps_only_the_last_builds_passages(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    embedder = CountingEmbedder()
    cache.encode_passages(embedder, ["one", "two", "three"])  # type: ignore[arg-type]
    cache.encode_passages(embedder, ["one", "four"])  # type: ignore[arg-type]
    assert cache.count() == 2
    assert cache.last.cached == 1


def test_a_damaged_cache_costs_time_not_the_build(tmp_path: Path, knowledge: Path) -> None:
    index_dir = tmp_path / "index"
    embedder = CountingEmbedder()
    _build(knowledge, index_dir, embedder)
    cache_file = EmbeddingCache.for_index(index_dir).path
    for leftover in cache_file.parent.iterdir():
        leftover.unlink()
    cache_file.write_bytes(b"this is not a database" * 100)
    embedder.encoded.clear()
    _build(knowledge, index_dir, embedder)
    assert len(embedder.encoded) == load_index(index_dir, embedder.name).meta.chunks


def test_a_failed_build_keeps_the_old_index_and_a_usable_cache(
    tmp_path: Path, knowledge: Path
) -> None:
    index_dir = tmp_path / "index"
    embedder = CountingEmbedder()
    _build(knowledge, index_dir, embedder)
    served = current_build(index_dir)
    kb = load_knowledge(knowledge)
    many = chunk_knowledge(kb) + [
        Chunk(f"x#{n}", "document", "harbour", "en", "X", f"Passage {n} about the harbour.")
        for n in range(600)
    ]
    embedder.encoded.clear()
    embedder.fail_after = 300  # the first batch of 256 goes through, the next one fails
    with pytest.raises(IndexBuildError, match="old index is still served"):
        build_index(kb, embedder, index_dir, chunks=many)  # type: ignore[arg-type]
    assert current_build(index_dir) == served
    encoded_before_failure = list(embedder.encoded)
    assert encoded_before_failure

    embedder.fail_after = None
    embedder.encoded.clear()
    build_index(kb, embedder, index_dir, chunks=many)  # type: ignore[arg-type]
    # what was encoded before the failure is not encoded again
    assert len(embedder.encoded) == 600 - len(encoded_before_failure)
    assert not set(encoded_before_failure) & set(embedder.encoded)
    assert load_index(index_dir, embedder.name).meta.chunks == len(many)
