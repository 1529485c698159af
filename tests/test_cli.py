"""The command line **contract** (DESIGN.md): `ask --json` prints one JSON object per question
with stable keys, `reindex` prints counts, `chat` talks through the bot's own handlers, and every
error is one line on stderr with a non-zero exit — never a traceback."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot import cli
from bot.console import console_session
from bot.retrieval.embedder import Embedder
from bot.services import search as search_module
from bot.services.search import SearchService
from tests.conftest import copy_index

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
KNOWLEDGE = REPO / "knowledge"
SETTINGS_VARIABLES = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE_URL",
    "TELEGRAM_API_BASE_FILE_URL",
    "ADMIN_IDS",
    "DATA_DIR",
    "KNOWLEDGE_DIR",
    "INDEX_DIR",
    "EMBEDDING_MODEL",
    "TIMEZONE",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "LOG_LEVEL",
    "QUESTIONS_PER_MINUTE",
    "APPROXIMATE_INDEX_ABOVE",
)
RESULT_KEYS = {"rank", "score", "document", "title", "lang", "text"}


def tiny_knowledge(root: Path) -> Path:
    """Only NEO (Danish) and its summaries: a real document, indexed in about a second."""
    (root / "documents").mkdir(parents=True)
    (root / "summaries").mkdir()
    text = (KNOWLEDGE / "documents" / "neo.md").read_text(encoding="utf-8")
    (root / "documents" / "neo.md").write_text(text.replace("project: neo\n", ""), encoding="utf-8")
    for summary in (KNOWLEDGE / "summaries").glob("neo.*.md"):
        shutil.copy(summary, root / "summaries" / summary.name)
    return root


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder, session_index: Path
) -> Path:
    """A project directory of its own: knowledge and index copies, settings via the environment,
    and the session's model instead of loading a second copy per command."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(KNOWLEDGE, tmp_path / "knowledge")
    copy_index(session_index, tmp_path / "index")
    monkeypatch.setenv("KNOWLEDGE_DIR", str(tmp_path / "knowledge"))
    monkeypatch.setenv("INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .env is read

    real = search_module.load_embedder

    def shared(name: str = embedder.name, **kwargs: Any) -> Embedder:
        return embedder if name == embedder.name else real(name, **kwargs)

    monkeypatch.setattr(search_module, "load_embedder", shared)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_object(out: str) -> dict[str, Any]:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


# --- ask --json ----------------------------------------------------------------------------------


def test_ask_json_prints_one_object_with_the_contract_keys(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "ask", "--json", "Hvad er budgettet for atWork4NEETs?")
    assert code == 0, err
    data = _one_object(out)
    assert set(data) == {"query", "lang", "answered", "results"}
    assert data["query"] == "Hvad er budgettet for atWork4NEETs?"
    assert data["lang"] == "da"
    assert data["answered"] is True
    assert [r["rank"] for r in data["results"]] == [1, 2, 3, 4, 5]
    for result in data["results"]:
        assert set(result) == RESULT_KEYS
        assert isinstance(result["score"], float)
        assert result["lang"] in {"en", "sv", "da"}
        assert result["title"]
        assert result["text"]
        assert result["document"].startswith("knowledge/documents/")
        assert result["document"].endswith(".md")
        assert (REPO / result["document"]).is_file()
    top = data["results"][0]
    assert top["document"] == "knowledge/documents/atwork4neets.md"
    assert "1,427,499" in top["text"]


def test_ask_json_names_the_source_document_of_summaries_and_cards(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "ask", "--json", "--top-k", "10", "Vilka partner har NEO?")
    assert code == 0
    results = _one_object(out)["results"]
    assert results[0]["document"] == "knowledge/documents/neo.md"
    # Cards ("NEO. Mål: ...") and summaries point at the document they were drawn from.
    assert any(r["text"].startswith("NEO. ") for r in results)
    assert all(not r["document"].startswith("knowledge/catalogs") for r in results)
    assert all("summaries" not in r["document"] for r in results)


def test_ask_json_top_k_and_lang(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ask", "--json", "--top-k", "3", "--lang", "sv", "NEO budget")
    assert code == 0
    data = _one_object(out)
    assert data["lang"] == "sv"
    assert len(data["results"]) == 3
    assert "868 744" in data["results"][0]["text"]


def test_ask_json_unrelated_question_is_not_answered(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "ask", "--json", "What's the weather in Madrid?")
    assert code == 0
    assert _one_object(out)["answered"] is False


def test_ask_questions_file_prints_one_object_per_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = ["NEO budget", "Vilka partner har NEO?", "Hvad handler atWork4NEETs om?"]
    path = env / "questions.txt"
    path.write_text("\n".join([questions[0], "", questions[1], "   ", questions[2]]) + "\n")
    code, out, err = run(capsys, "ask", "--json", "--top-k", "2", "--questions", str(path))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 3
    objects = [json.loads(line) for line in lines]
    assert [o["query"] for o in objects] == questions
    assert all(len(o["results"]) == 2 for o in objects)
    assert [o["lang"] for o in objects] == ["en", "sv", "da"]


def test_ask_questions_from_stdin(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("NEO budget\nWho coordinates atWork4NEETs?\n"))
    code, out, _ = run(capsys, "ask", "--json", "--questions", "-")
    assert code == 0
    objects = [json.loads(line) for line in out.strip().splitlines()]
    assert [o["query"] for o in objects] == ["NEO budget", "Who coordinates atWork4NEETs?"]
    assert objects[0]["results"][0]["document"] == "knowledge/documents/neo.md"


# --- ask for people ------------------------------------------------------------------------------


def test_ask_prints_a_readable_answer(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ask", "--top-k", "2", "Hvad er budgettet for atWork4NEETs?")
    assert code == 0
    assert out.startswith("Question (da): Hvad er budgettet for atWork4NEETs?")
    assert "1. " in out
    assert "2. " in out
    assert "3. " not in out
    assert "knowledge/documents/atwork4neets.md" in out
    assert "1,427,499" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_ask_says_so_when_it_has_no_answer(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ask", "Hur lagar man köttbullar?")
    assert code == 0
    assert "could not find a good answer" in out


# --- building the index ------------------------------------------------------------------------


def test_reindex_prints_counts(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    knowledge = tiny_knowledge(env / "tiny")
    monkeypatch.setenv("KNOWLEDGE_DIR", str(knowledge))
    monkeypatch.setenv("INDEX_DIR", str(env / "tiny-index"))
    code, out, err = run(capsys, "reindex")
    assert code == 0, err
    meta = json.loads((env / "tiny-index" / "current" / "meta.json").read_text(encoding="utf-8"))
    assert f"Indexed 1 documents as {meta['chunks']} chunks" in out
    assert "bundled:multilingual-e5-small" in out
    assert "384 dimensions" in out
    assert err == ""


def test_reindex_reports_knowledge_problems(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    knowledge = tiny_knowledge(env / "tiny")
    (knowledge / "documents" / "broken.md").write_text("no front matter\n", encoding="utf-8")
    monkeypatch.setenv("KNOWLEDGE_DIR", str(knowledge))
    monkeypatch.setenv("INDEX_DIR", str(env / "tiny-index"))
    code, out, err = run(capsys, "reindex")
    assert code == 0
    assert err.splitlines() == [
        "warning: tiny/documents/broken.md:1: missing front matter: the file must start with "
        "a '---' YAML block"
    ]
    assert "1 problem(s)" in out
    assert "Indexed 1 documents" in out


def test_ask_builds_the_index_when_missing(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KNOWLEDGE_DIR", str(tiny_knowledge(env / "knowledge-tiny")))
    monkeypatch.setenv("INDEX_DIR", str(env / "no-index-yet"))
    code, out, err = run(capsys, "ask", "--json", "NEO budget")
    assert code == 0
    assert "Built the index" in err
    assert "missing" in err
    data = _one_object(out)
    assert data["answered"] is True
    assert "868 744" in data["results"][0]["text"]
    # and the second time it is simply used
    code, out, err = run(capsys, "ask", "--json", "NEO budget")
    assert (code, err) == (0, "")


def test_ask_rebuilds_a_stale_index(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    knowledge = tiny_knowledge(env / "knowledge-tiny")
    monkeypatch.setenv("KNOWLEDGE_DIR", str(knowledge))
    monkeypatch.setenv("INDEX_DIR", str(env / "tiny-index"))
    assert run(capsys, "reindex")[0] == 0
    doc = knowledge / "documents" / "neo.md"
    doc.write_text(
        doc.read_text(encoding="utf-8") + "\nMødet om Brobygger-modellen er i Malmø.\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "ask", "--json", "--top-k", "1", "Brobygger-modellen Malmø")
    assert code == 0
    assert "changed" in err
    assert "rebuilding" in err
    assert "Brobygger-modellen" in _one_object(out)["results"][0]["text"]


# --- errors: one line, non-zero exit, no traceback ---------------------------------------------


@pytest.mark.parametrize(
    ("argv", "environment", "fragment"),
    [
        (["ask", ""], {}, "the question is empty"),
        (["ask", "   "], {}, "the question is empty"),
        (["ask"], {}, "ask needs a QUESTION"),
        (["ask", "--top-k", "0", "NEO"], {}, "--top-k must be between 1 and 50"),
        (["ask", "--top-k", "51", "NEO"], {}, "--top-k must be between 1 and 50"),
        (["ask", "--questions", "no-such-file.txt"], {}, "no-such-file.txt"),
        (["ask", "NEO budget"], {"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        (["ask", "NEO budget"], {"ADMIN_IDS": "abc"}, "ADMIN_IDS"),
        (["reindex"], {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_errors_are_one_line_on_stderr(
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    environment: dict[str, str],
    fragment: str,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(capsys, *argv)
    assert code != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("brobygger: error: ")
    assert fragment in err
    assert "Traceback" not in err


def test_model_mismatch_is_one_clear_line(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = env / "models" / "no-such-model"
    monkeypatch.setenv("EMBEDDING_MODEL", str(other))
    code, out, err = run(capsys, "ask", "--json", "NEO budget")
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "EMBEDDING_MODEL" in err
    assert str(other) in err
    assert "cannot load the embedding model" in err  # checked before the index is rebuilt
    assert (env / "index" / "current").exists()  # the old index is still there


def test_missing_model_on_reindex_is_one_clear_line(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDDING_MODEL", str(env / "models" / "no-such-model"))
    code, _, err = run(capsys, "reindex")
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert "cannot load the embedding model" in err
    # the index built with the right model is untouched and still answers
    monkeypatch.delenv("EMBEDDING_MODEL")
    code, out, err = run(capsys, "ask", "--json", "NEO budget")
    assert (code, err) == (0, "")
    assert _one_object(out)["answered"] is True


def test_every_command_has_help() -> None:
    parser = cli.build_parser()
    help_text = parser.format_help()
    commands = {"reindex", "ask", "chat", "run", "eval", "add", "documents", "remove"}
    for command in commands:
        assert command in help_text
    assert set(cli.COMMANDS) == commands


# --- the installed console script ---------------------------------------------------------------


def test_console_script_answers_in_json(env: Path) -> None:
    script = REPO / ".venv" / "bin" / "brobygger"
    if not script.exists():
        script = Path(sys.executable).with_name("brobygger")
    environment = {
        **{k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES},
        "KNOWLEDGE_DIR": str(env / "knowledge"),
        "INDEX_DIR": str(env / "index"),
        "DATA_DIR": str(env / "data"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    done = subprocess.run(
        [str(script), "ask", "--json", "--top-k", "2", "NEO budget"],
        cwd=env,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    data = _one_object(done.stdout)
    assert data["answered"] is True
    assert data["results"][0]["document"] == "knowledge/documents/neo.md"
    assert "868 744" in data["results"][0]["text"]


# --- chat ----------------------------------------------------------------------------------------


async def test_chat_runs_commands_answers_and_buttons(search_service: SearchService) -> None:
    out = io.StringIO()
    try:
        # A session that waits on a task that never ends (e.g. the encoder's worker) must fail,
        # not hang the suite.
        await asyncio.wait_for(
            console_session(
                search_service.settings,
                search_service,
                ["/help", "NEO budget", "#1", "#9"],
                out,
                language="en",
            ),
            timeout=120,
        )
    finally:
        await search_service.close()
    text = out.getvalue()
    assert "What I can do" in text  # /help
    assert "/projects" in text
    assert "868 744" in text  # the answer
    assert "[#1] 👍" in text  # its buttons
    assert "Thank you for the feedback!" in text  # #1 pressed 👍
    assert "(no such button)" in text  # #9 does not exist
    assert "<b>" not in text  # Telegram HTML is turned into terminal text
