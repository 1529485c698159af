"""The index on disk: build and load round trip, atomic swap (a failed or killed build leaves the
served index untouched), clear errors for a missing or mismatched index, stale detection, and the
approximate (HNSW) path. Small knowledge bases, real bundled model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from bot.errors import IndexBuildError, IndexNotReadyError
from bot.knowledge import load_knowledge
from bot.retrieval.cache import CACHE_DIR
from bot.retrieval.chunks import Chunk
from bot.retrieval.embedder import Embedder
from bot.retrieval.search import Searcher
from bot.retrieval.store import (
    BUILDS,
    CURRENT,
    FORMAT_VERSION,
    IndexMeta,
    build_index,
    current_build,
    load_index,
)
from bot.services.search import SearchService
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

DOCUMENTS = {
    "harbour": (
        "en",
        "Harbour Youth",
        "The Harbour Youth project helps young people find apprenticeships in the port of Gdynia. "
        "Shipyards and logistics firms offer placements of six months. "
        "The project is funded with 250,000 euros by the Baltic Fund.\n"
        "Partners:\nPort of Gdynia (PL)\nCity of Gdynia (PL)",
    ),
    "skogen": (
        "sv",
        "Skogsprojektet för unga",
        "Skogsprojektet ger unga i Umeå arbete i skogen under sommaren. "
        "Ungdomarna lär sig röja, plantera och mäta träd tillsammans med skogsägare. "
        "Budgeten är 120 000 kronor och kommer från Älvdalens kommun.",
    ),
    "havet": (
        "da",
        "Havprojektet",
        "Havprojektet i Esbjerg lærer unge om fiskeri og havmiljø. "
        "De unge arbejder på både og i fiskeauktionen. "
        "Budgettet er 90.000 kroner fra Ørestad Fonden.",
    ),
}
SUMMARIES = {
    "harbour": {
        "en": "Apprenticeships for young people in the port of Gdynia.",
        "sv": "Lärlingsplatser för unga i hamnen i Gdynia.",
        "da": "Lærepladser for unge på havnen i Gdynia.",
    },
    "skogen": {
        "en": "Summer jobs in the forest for young people in Umeå.",
        "sv": "Sommarjobb i skogen för unga i Umeå.",
        "da": "Sommerjob i skoven for unge i Umeå.",
    },
    "havet": {
        "en": "Young people in Esbjerg learn about fishing and the sea.",
        "sv": "Unga i Esbjerg lär sig om fiske och havet.",
        "da": "Unge i Esbjerg lærer om fiskeri og havet.",
    },
}


def write_tiny_knowledge(root: Path) -> Path:
    """Three documents (en, sv, da) with summaries in all languages: about 15 chunks."""
    (root / "documents").mkdir(parents=True)
    (root / "summaries").mkdir()
    for ident, (lang, title, body) in DOCUMENTS.items():
        (root / "documents" / f"{ident}.md").write_text(
            f"---\nid: {ident}\ntitle: {title}\nlanguage: {lang}\nkind: project\n---\n{body}\n",
            encoding="utf-8",
        )
        for summary_lang, text in SUMMARIES[ident].items():
            (root / "summaries" / f"{ident}.{summary_lang}.md").write_text(
                f"---\nsummary_of: {ident}\nlanguage: {summary_lang}\ntitle: {title}\n---\n"
                f"{text}\n",
                encoding="utf-8",
            )
    return root


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    return write_tiny_knowledge(tmp_path / "knowledge")


def _builds(index_dir: Path) -> list[str]:
    return sorted(p.name for p in (index_dir / BUILDS).iterdir())


def _ask(index_dir: Path, embedder: Embedder, question: str) -> str:
    searcher = Searcher(load_index(index_dir, embedder.name))
    (vector,) = embedder.encode_queries([question])
    return searcher.search(question, vector, top_k=3).hits[0].chunk.document


# --- build and load ------------------------------------------------------------------------------


def test_build_then_load_round_trip(tmp_path: Path, knowledge: Path, embedder: Embedder) -> None:
    kb = load_knowledge(knowledge)
    assert kb.problems == ()
    index_dir = tmp_path / "index"
    stages: list[tuple[str, int, int]] = []
    meta = build_index(kb, embedder, index_dir, progress=lambda *a: stages.append(a))

    build = current_build(index_dir)
    assert build is not None
    assert (index_dir / CURRENT).is_symlink()
    assert sorted(p.name for p in build.iterdir()) == [
        "bm25",
        "chunks.jsonl",
        "dense.faiss",
        "meta.json",
        "vocabulary.json",
    ]
    on_disk = json.loads((build / "meta.json").read_text(encoding="utf-8"))
    assert on_disk["format_version"] == FORMAT_VERSION
    assert on_disk["model"] == embedder.name
    assert on_disk["dimension"] == 384
    assert on_disk["documents"] == 3
    assert on_disk["knowledge_checksum"] == kb.checksum
    assert on_disk["dense_index"] == "flat"
    assert IndexMeta.read(build / "meta.json") == meta

    raw = (build / "chunks.jsonl").read_bytes()
    text = raw.decode("utf-8")
    assert "Älvdalens" in text
    assert "Ørestad" in text
    assert "lærer" in text
    assert "\\u00" not in text
    lines = text.splitlines()
    assert on_disk["chunks"] == len(lines) == meta.chunks >= 12

    loaded = load_index(index_dir, embedder.name)
    assert loaded.path == build
    assert loaded.meta == meta
    assert [c.to_json() for c in loaded.chunks] == [json.loads(line) for line in lines]
    assert loaded.dense.ntotal == meta.chunks
    assert loaded.vectors is not None
    expected = embedder.encode_passages([c.text for c in loaded.chunks])
    np.testing.assert_allclose(loaded.vectors, expected, atol=1e-4)
    assert stages[-1] == ("indexing", 2, 2)
    assert _ask(index_dir, embedder, "apprenticeships in the port of Gdynia") == "harbour"


def test_a_second_build_swaps_in_and_removes_the_old_one(
    tmp_path: Path, knowledge: Path, embedder: Embedder
) -> None:
    index_dir = tmp_path / "index"
    build_index(load_knowledge(knowledge), embedder, index_dir)
    first = current_build(index_dir)
    (knowledge / "documents" / "skogen.md").unlink()
    meta = build_index(load_knowledge(knowledge), embedder, index_dir)
    second = current_build(index_dir)
    assert second is not None
    assert second != first
    assert _builds(index_dir) == [second.name]
    assert meta.documents == 2
    assert load_index(index_dir, embedder.name).meta.documents == 2
    # no temporary symlink or directory left next to `current` (the embedding cache stays)
    assert sorted(p.name for p in index_dir.iterdir()) == [BUILDS, CACHE_DIR, CURRENT]


# --- failures keep the served index ------------------------------------------------------------


def _served(index_dir: Path, embedder: Embedder) -> tuple[Path | None, int]:
    return current_build(index_dir), load_index(index_dir, embedder.name).meta.chunks


def test_failure_while_embedding_keeps_the_old_index(
    tmp_path: Path, knowledge: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "index"
    kb = load_knowledge(knowledge)
    build_index(kb, embedder, index_dir)
    before = _served(index_dir, embedder)

    calls: list[int] = []
    rng = np.random.default_rng(0)

    def failing_encode(texts: Any) -> np.ndarray:
        calls.append(len(texts))
        if len(calls) > 1:
            raise RuntimeError("the model ran out of memory")
        vectors = rng.normal(size=(len(texts), 384)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    monkeypatch.setattr(embedder, "encode_passages", failing_encode)
    many = [Chunk(f"x#{n}", "document", "harbour", "en", "X", f"Passage {n}.") for n in range(600)]
    with pytest.raises(IndexBuildError, match="old index is still served"):
        build_index(kb, embedder, index_dir, chunks=many)
    monkeypatch.undo()

    assert len(calls) == 2  # it did fail halfway, after the first batch
    assert _served(index_dir, embedder) == before
    assert _builds(index_dir) == [before[0].name]  # type: ignore[union-attr]
    assert _ask(index_dir, embedder, "summer jobs in the forest") == "skogen"


def test_failure_while_writing_keeps_the_old_index(
    tmp_path: Path, knowledge: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "index"
    kb = load_knowledge(knowledge)
    build_index(kb, embedder, index_dir)
    before = _served(index_dir, embedder)

    def disk_full(index: Any, path: str) -> None:
        Path(path).write_bytes(b"partial")
        raise RuntimeError("No space left on device")

    monkeypatch.setattr(faiss, "write_index", disk_full)
    with pytest.raises(IndexBuildError, match="No space left on device"):
        build_index(kb, embedder, index_dir)
    monkeypatch.undo()

    assert _served(index_dir, embedder) == before
    assert _builds(index_dir) == [before[0].name]  # type: ignore[union-attr]


def test_leftovers_of_a_killed_build_are_cleaned_by_the_next(
    tmp_path: Path, knowledge: Path, embedder: Embedder
) -> None:
    index_dir = tmp_path / "index"
    leftover = index_dir / BUILDS / ".tmp-20240101T000000000000Z-99999"
    leftover.mkdir(parents=True)
    (leftover / "dense.faiss").write_bytes(b"half written")
    build_index(load_knowledge(knowledge), embedder, index_dir)
    assert not leftover.exists()
    assert len(_builds(index_dir)) == 1


def test_nothing_to_index_is_a_build_error(tmp_path: Path, embedder: Embedder) -> None:
    kb = load_knowledge(tmp_path / "empty-knowledge")
    with pytest.raises(IndexBuildError, match="nothing to index"):
        build_index(kb, embedder, tmp_path / "index")
    assert current_build(tmp_path / "index") is None


# --- refusing to serve the wrong index ---------------------------------------------------------


def test_missing_index_is_not_ready(tmp_path: Path) -> None:
    with pytest.raises(IndexNotReadyError, match=r"no index in .*brobygger reindex"):
        load_index(tmp_path / "index", "bundled:all-MiniLM-L6-v2")


@pytest.fixture
def built(tmp_path: Path, knowledge: Path, embedder: Embedder) -> Path:
    index_dir = tmp_path / "index"
    build_index(load_knowledge(knowledge), embedder, index_dir)
    return index_dir


def test_model_mismatch_is_a_clear_error(built: Path, embedder: Embedder) -> None:
    with pytest.raises(IndexNotReadyError) as caught:
        load_index(built, "intfloat/multilingual-e5-small")
    message = str(caught.value)
    assert embedder.name in message
    assert "intfloat/multilingual-e5-small" in message
    assert "EMBEDDING_MODEL" in message
    assert "reindex" in message


def test_format_mismatch_is_a_clear_error(built: Path, embedder: Embedder) -> None:
    meta_path = current_build(built) / "meta.json"  # type: ignore[operator]
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["format_version"] = FORMAT_VERSION + 1
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(IndexNotReadyError, match=rf"format {FORMAT_VERSION + 1}.*reindex"):
        load_index(built, embedder.name)


def test_unreadable_meta_is_a_clear_error(built: Path, embedder: Embedder) -> None:
    (current_build(built) / "meta.json").write_text("{not json", encoding="utf-8")  # type: ignore[operator]
    with pytest.raises(IndexNotReadyError, match=r"metadata .* unreadable"):
        load_index(built, embedder.name)


def test_truncated_chunks_are_a_clear_error(built: Path, embedder: Embedder) -> None:
    chunks = current_build(built) / "chunks.jsonl"  # type: ignore[operator]
    lines = chunks.read_text(encoding="utf-8").splitlines(keepends=True)
    chunks.write_text("".join(lines[:-2]), encoding="utf-8")
    with pytest.raises(IndexNotReadyError, match="incomplete"):
        load_index(built, embedder.name)


def test_dangling_current_link_counts_as_no_index(built: Path, embedder: Embedder) -> None:
    target = current_build(built)
    assert target is not None
    os.rename(target, target.with_name("moved-away"))
    assert current_build(built) is None
    with pytest.raises(IndexNotReadyError, match="no index"):
        load_index(built, embedder.name)


# --- stale detection through the service -------------------------------------------------------


def test_editing_knowledge_makes_the_index_stale(
    tmp_path: Path, knowledge: Path, embedder: Embedder
) -> None:
    service = SearchService(make_settings(tmp_path), embedder=embedder)
    assert service.settings.knowledge_dir == knowledge
    with pytest.raises(IndexNotReadyError):
        service.load(build_if_missing=False)
    assert service.load(build_if_missing=True) is True
    assert service.is_stale() is False
    assert service.load() is False  # an existing index is loaded, not rebuilt

    doc = knowledge / "documents" / "havet.md"
    doc.write_text(
        doc.read_text(encoding="utf-8") + "Projektet slutter i december.\n", encoding="utf-8"
    )
    assert service.is_stale() is True
    report = service.rebuild()
    assert report.problems == ()
    assert service.is_stale() is False

    (knowledge / "summaries" / "havet.sv.md").unlink()
    assert service.is_stale() is True


# --- the approximate index ---------------------------------------------------------------------


def test_hnsw_index_builds_loads_and_finds(
    tmp_path: Path, knowledge: Path, embedder: Embedder
) -> None:
    index_dir = tmp_path / "index"
    meta = build_index(load_knowledge(knowledge), embedder, index_dir, approximate_above=10)
    assert meta.chunks > 10
    assert meta.dense_index == "hnsw"
    loaded = load_index(index_dir, embedder.name)
    assert loaded.vectors is None
    assert isinstance(loaded.dense, faiss.IndexHNSWFlat)
    assert loaded.dense.ntotal == meta.chunks
    searcher = Searcher(loaded)
    questions = {
        "apprenticeships in the port of Gdynia": "harbour",
        "Sommarjobb i skogen i Umeå": "skogen",
        "Hvad lærer de unge om fiskeri i Esbjerg?": "havet",
    }
    vectors = embedder.encode_queries(list(questions))
    for (question, document), vector in zip(questions.items(), vectors, strict=True):
        result = searcher.search(question, vector, top_k=3)
        assert result.hits[0].chunk.document == document, question
        assert result.answered, question
        assert result.hits[0].dense > 0.3  # the dense leg really scored through HNSW
