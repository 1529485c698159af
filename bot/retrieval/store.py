"""The index on disk: a directory per build, swapped in atomically.

    index/
      current -> builds/20261122T160000Z-1a2b3c   (a symlink, replaced with one rename)
      builds/<stamp>/ {meta.json, chunks.jsonl, dense.faiss, bm25/, vocabulary.json}

A build writes into a hidden temporary directory and only a finished build is renamed into
place, so a build that fails or is killed halfway leaves the served index as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import bm25s
import faiss

from bot.errors import IndexBuildError, IndexMismatchError, IndexNotReadyError
from bot.knowledge.models import KnowledgeBase
from bot.retrieval.cache import EmbeddingCache
from bot.retrieval.chunks import Chunk, chunk_knowledge
from bot.retrieval.embedder import Embedder, Vectors
from bot.retrieval.query import Vocabulary, corpus_vocabulary
from bot.retrieval.text import terms

FORMAT_VERSION = 3  # 2: the embedding backend is recorded; 3: the query vocabulary is saved
VOCABULARY = "vocabulary.json"
CURRENT = "current"
BUILDS = "builds"

#: Called as progress(stage, done, total) while building, e.g. to edit a Telegram message.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class IndexMeta:
    format_version: int
    model: str
    backend: str
    dimension: int
    chunks: int
    documents: int
    knowledge_checksum: str
    built_at: str
    dense_index: str
    build_seconds: float

    @classmethod
    def read(cls, path: Path) -> IndexMeta:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format_version") != FORMAT_VERSION:
                raise IndexMismatchError(
                    f"the index in {path.parent} has format {data.get('format_version')}, this "
                    f"version reads {FORMAT_VERSION}: run `brobygger reindex`"
                )
            return cls(**{key: data[key] for key in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise IndexNotReadyError(
                f"the index metadata {path} is unreadable ({error}): run `brobygger reindex`"
            ) from None


@dataclass
class LoadedIndex:
    """One build, fully in memory: queries against it never see a half-swapped index."""

    path: Path
    meta: IndexMeta
    chunks: list[Chunk]
    dense: Any  # faiss.Index
    vectors: Vectors | None  # kept for exact scoring when the dense index is exact
    lexical: bm25s.BM25
    vocabulary: Vocabulary | None = None  # typo repair and idf weights (saved since format 3)

    @cached_property
    def chunk_map(self) -> dict[str, Chunk]:
        """Chunks by id, to swap a catalog card for the same card in the reader's language."""
        return {chunk.id: chunk for chunk in self.chunks}


def current_build(index_dir: Path) -> Path | None:
    link = index_dir / CURRENT
    if not link.exists():
        return None
    return link.resolve()


def _dense_index(vectors: Vectors, approximate_above: int) -> Any:
    dimension = vectors.shape[1]
    index: Any
    if len(vectors) > approximate_above:
        index = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    else:
        index = faiss.IndexFlatIP(dimension)
    index.add(vectors)
    return index


def build_index(
    kb: KnowledgeBase,
    embedder: Embedder,
    index_dir: Path,
    *,
    approximate_above: int = 50_000,
    progress: Progress | None = None,
    chunks: list[Chunk] | None = None,
) -> IndexMeta:
    """Build from `kb` (or ready-made `chunks`) and swap it in; raise IndexBuildError on failure."""
    started = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    chunks = chunk_knowledge(kb) if chunks is None else chunks
    if not chunks:
        raise IndexBuildError("nothing to index: the knowledge base has no valid document")
    builds = index_dir / BUILDS
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    tmp = builds / f".tmp-{stamp}-{os.getpid()}"
    try:
        builds.mkdir(parents=True, exist_ok=True)
        for stale in builds.glob(".tmp-*"):  # leftovers of builds that were killed
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
        # Only new or changed passages are encoded; the rest come from the embedding cache.
        cache = EmbeddingCache.for_index(index_dir)
        vectors = cache.encode_passages(embedder, [c.text for c in chunks], report)
        report("indexing", 0, 2)
        faiss.write_index(_dense_index(vectors, approximate_above), str(tmp / "dense.faiss"))
        lexical = bm25s.BM25()
        lexical.index([terms(c.title + " " + c.text) for c in chunks], show_progress=False)
        lexical.save(str(tmp / "bm25"), show_progress=False)
        corpus_vocabulary(chunks).save(tmp / VOCABULARY)
        report("indexing", 1, 2)
        with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as out:
            for chunk in chunks:
                out.write(json.dumps(chunk.to_json(), ensure_ascii=False) + "\n")
        meta = IndexMeta(
            format_version=FORMAT_VERSION,
            model=embedder.name,
            backend=embedder.backend,
            dimension=int(vectors.shape[1]),
            chunks=len(chunks),
            documents=len({c.document for c in chunks}),
            knowledge_checksum=kb.checksum,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            dense_index="hnsw" if len(chunks) > approximate_above else "flat",
            build_seconds=round(time.perf_counter() - started, 3),
        )
        (tmp / "meta.json").write_text(json.dumps(meta.__dict__, indent=2), encoding="utf-8")
        final = builds / stamp
        tmp.rename(final)
        _swap_current(index_dir, final)
        report("indexing", 2, 2)
    except IndexBuildError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except (OSError, RuntimeError, ValueError, MemoryError) as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise IndexBuildError(
            f"building the index failed, the old index is still served: {error}"
        ) from error
    _remove_old_builds(index_dir, keep=final)
    return meta


def _swap_current(index_dir: Path, build: Path) -> None:
    """Point `current` at `build` with a single rename: readers see the old or the new, never
    neither."""
    tmp_link = index_dir / f".{CURRENT}.{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(build.relative_to(index_dir))
    os.replace(tmp_link, index_dir / CURRENT)


def _remove_old_builds(index_dir: Path, keep: Path) -> None:
    for build in (index_dir / BUILDS).iterdir():
        if build.resolve() != keep.resolve() and not build.name.startswith(".tmp-"):
            shutil.rmtree(build, ignore_errors=True)


def load_index(index_dir: Path, model: str, backend: str | None = None) -> LoadedIndex:
    """The current build, checked against the model (and backend) the settings name: vectors
    of another model are meaningless to this one's queries."""
    path = current_build(index_dir)
    if path is None:
        raise IndexNotReadyError(f"there is no index in {index_dir}: run `brobygger reindex`")
    meta = IndexMeta.read(path / "meta.json")
    if meta.format_version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index in {index_dir} has format {meta.format_version}, this version reads "
            f"{FORMAT_VERSION}: run `brobygger reindex`"
        )
    if meta.model != model or (backend is not None and meta.backend != backend):
        raise IndexMismatchError(
            f"the index was built with the model {meta.model!r} ({meta.backend}) but "
            f"EMBEDDING_MODEL is {model!r}: run `brobygger reindex`"
        )
    try:
        with (path / "chunks.jsonl").open(encoding="utf-8") as lines:
            chunks = [Chunk.from_json(json.loads(line)) for line in lines]
        dense = faiss.read_index(str(path / "dense.faiss"))
        lexical = bm25s.BM25.load(str(path / "bm25"), show_progress=False)
        vocabulary = Vocabulary.load(path / VOCABULARY)
    except (OSError, ValueError, RuntimeError, TypeError) as error:
        raise IndexNotReadyError(
            f"the index in {path} is damaged ({error}): run `brobygger reindex`"
        ) from None
    if len(chunks) != meta.chunks or dense.ntotal != meta.chunks:
        raise IndexNotReadyError(f"the index in {path} is incomplete: run `brobygger reindex`")
    vectors = None
    if meta.dense_index == "flat":
        vectors = dense.reconstruct_n(0, dense.ntotal)
    return LoadedIndex(path, meta, chunks, dense, vectors, lexical, vocabulary)
