"""Documents as admins manage them (list, remove with summaries, refuse while catalogs depend on
one, put back after a failed rebuild), the daily counts behind the /stats chart and the chart."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.knowledge import load_knowledge
from bot.services import charts, documents
from bot.services.uploads import install_document, prepare_upload
from bot.storage import DailyQuestions, Storage
from tests.conftest import KNOWLEDGE

TODAY = date(2026, 11, 30)


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    root = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, root)
    return root


def _add(knowledge: Path, name: str, text: str) -> str:
    prepared = prepare_upload(name, text.encode(), max_bytes=100_000, today=TODAY)
    return install_document(prepared, knowledge).document.id


def test_listing_shows_source_and_date_newest_first(knowledge: Path) -> None:
    _add(knowledge, "Harbour work.txt", "Harbour work\n\nCranes in Tallinn for young people.")
    listed = documents.list_documents(load_knowledge(knowledge))
    first = listed[0]
    assert (first.id, first.title, first.language) == ("harbour-work", "Harbour work", "en")
    assert (first.source, first.added) == ("Harbour work.txt", TODAY)
    seed = next(info for info in listed if info.id == "neo")
    assert seed.added is None
    assert seed.source.startswith("Seed document")  # the provenance stands in
    assert [info.id for info in listed[1:]] == sorted(info.id for info in listed[1:])


def test_removal_takes_the_summaries_along_and_can_be_undone(knowledge: Path) -> None:
    doc_id = _add(knowledge, "note.txt", "A note\n\nAbout apprenticeships in the harbour.")
    summary = knowledge / "summaries" / f"{doc_id}.sv.md"
    summary.write_text(
        f"---\nsummary_of: {doc_id}\nlanguage: sv\ntitle: En notis\n---\nOm lärlingar.\n",
        encoding="utf-8",
    )
    assert not load_knowledge(knowledge).problems
    removed = documents.remove_document(knowledge, doc_id)
    assert sorted(path.name for path in removed.files) == [f"{doc_id}.md", f"{doc_id}.sv.md"]
    kb = load_knowledge(knowledge)
    assert doc_id not in kb.documents
    assert not kb.problems  # no orphaned summary left behind
    documents.restore(removed)
    assert doc_id in load_knowledge(knowledge).documents
    assert summary.is_file()


def test_a_document_that_catalogs_use_is_not_removed(knowledge: Path) -> None:
    with pytest.raises(documents.DocumentError) as caught:
        documents.remove_document(knowledge, "atwork4neets")
    assert caught.value.reason == "in_use"
    assert "project:atwork4neets" in str(caught.value.values["users"])
    assert (knowledge / "documents" / "atwork4neets.md").is_file()


@pytest.mark.parametrize("doc_id", ["no-such-document", "../catalogs/projects", ""])
def test_unknown_documents_are_refused(knowledge: Path, doc_id: str) -> None:
    with pytest.raises(documents.DocumentError) as caught:
        documents.remove_document(knowledge, doc_id)
    assert caught.value.reason == "unknown"


# --- /stats chart ------------------------------------------------------------------------------


async def test_daily_questions_per_language(tmp_path: Path) -> None:
    async with await Storage.open(tmp_path / "db.sqlite3") as storage:
        for language, answered, day in [
            ("en", True, TODAY),
            ("en", False, TODAY),
            ("sv", True, TODAY - timedelta(days=1)),
            ("da", True, TODAY - timedelta(days=40)),  # outside the window
        ]:
            await storage.record_question(language=language, answered=answered, day=day)
        rows = await storage.daily_questions(since=TODAY - timedelta(days=29))
    assert rows == [
        DailyQuestions(TODAY - timedelta(days=1), "sv", 1, 1),
        DailyQuestions(TODAY, "en", 2, 1),
    ]


def test_chart_data_fills_every_day() -> None:
    since = TODAY - timedelta(days=29)
    rows = [DailyQuestions(TODAY, "en", 4, 3), DailyQuestions(TODAY, "da", 4, 1)]
    data = charts.chart_data(rows, since, TODAY)
    assert len(data.days) == 30
    assert data.per_language["en"][-1] == 4
    assert data.per_language["sv"] == [0] * 30
    assert data.share[-1] == 0.5
    assert data.share[0] is None  # no questions, no share
    assert data.total == 8


@pytest.mark.parametrize("lang", ["en", "sv", "da"])
def test_the_chart_is_a_png(lang: str) -> None:
    since = TODAY - timedelta(days=29)
    rows = [
        DailyQuestions(since + timedelta(days=n), "en" if n % 2 else "sv", n % 5 + 1, n % 3)
        for n in range(30)
    ]
    png = charts.render_stats_chart(charts.chart_data(rows, since, TODAY), lang)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 5_000


def test_an_empty_month_still_draws() -> None:
    data = charts.chart_data([], TODAY - timedelta(days=29), TODAY)
    assert charts.render_stats_chart(data, "en").startswith(b"\x89PNG")
