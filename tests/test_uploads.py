"""Uploads by admins: names that cannot escape knowledge/documents/, refusals that say why, .txt
conversion with language detection, and installing without ever leaving the knowledge broken."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from bot.knowledge.loader import load_knowledge
from bot.retrieval.chunks import Chunk
from bot.services.uploads import (
    PreparedDocument,
    UploadError,
    caption_language,
    check_announced,
    decode_text,
    document_chunks,
    install_document,
    name_from_url,
    prepare_upload,
    safe_slug,
)

REPO = Path(__file__).resolve().parents[1]
TODAY = date(2025, 6, 2)
LIMIT = 10_000
VALID_MD = """---
id: fresh-news
title: Fresh news
language: en
kind: news
provenance: "Test"
---
Something new happened in Gävle.
"""


def prepare(name: str, data: bytes | str, caption: str | None = None) -> PreparedDocument:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return prepare_upload(name, raw, max_bytes=LIMIT, today=TODAY, caption=caption)


def refusal(name: str, data: bytes | str, caption: str | None = None) -> UploadError:
    with pytest.raises(UploadError) as caught:
        prepare(name, data, caption)
    return caught.value


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    root = tmp_path / "knowledge"
    shutil.copytree(REPO / "knowledge", root)
    return root


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("../../etc/passwd.md", "passwd"),
        ("..\\..\\windows\\system.ini.txt", "system-ini"),
        ("/abs/path/Report 2025.txt", "report-2025"),
        ("ÅÄÖ fil.txt", "aao-fil"),
        ("Ærø og Øst.txt", "aero-og-ost"),
        (".hidden.md", "hidden"),
        ("...txt", ""),
        ("..", ""),
        ("日本語.txt", ""),
        ("a" * 100 + ".txt", "a" * 48),  # the loader's id limit
        ("--weird__name--.md", "weird-name"),
    ],
)
def test_slug_is_a_safe_id_never_a_path(name: str, slug: str) -> None:
    result = safe_slug(name)
    assert result == slug
    assert "/" not in result
    assert "\\" not in result
    assert ".." not in result


def test_path_traversal_upload_stays_inside_documents(knowledge: Path) -> None:
    text = "Traversal attempt\n\nJust some text about work and study."
    prepared = prepare("../../etc/passwd.txt", text)
    assert prepared.id == "passwd"
    install_document(prepared, knowledge)
    assert (knowledge / "documents" / "passwd.md").is_file()
    assert not (knowledge.parent / "etc").exists()


def test_name_without_usable_letters_takes_the_id_from_the_title() -> None:
    assert prepare("日本語.txt", "Some text\n\nMore.").id == "some-text"
    assert refusal("日本語.txt", "日本語").reason == "bad_name"


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["report.pdf", "notes.docx", "README", "image.PNG", "x.md.exe"])
def test_names_are_not_judged_before_download(name: str) -> None:
    """The bytes decide what a file is; only the announced size is refused up front."""
    check_announced(name, 10, LIMIT)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("image.PNG", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image"),
        ("x.md.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "binary"),
        ("archive.bin", b"PK\x05\x06" + bytes(18), "wrong_type"),
        ("notes.docx", b"Plain words pretending to be Word.", "mismatch"),
    ],
)
def test_what_is_not_a_document_is_refused_after_reading(
    name: str, data: bytes, reason: str
) -> None:
    assert refusal(name, data).reason == reason


def test_too_big_is_refused_from_announced_and_real_size() -> None:
    with pytest.raises(UploadError) as caught:
        check_announced("big.txt", LIMIT + 1, LIMIT)
    assert caught.value.reason == "too_big"
    assert caught.value.values == {"size_kb": 10, "limit_kb": 9}
    check_announced("unknown-size.txt", None, LIMIT)  # Telegram may omit the size
    assert refusal("big.txt", "x" * (LIMIT + 1)).reason == "too_big"


def test_not_utf8_names_the_line() -> None:
    error = refusal("latin1.txt", "rad ett\nrad två\nrad tre med ö".encode("latin-1"))
    assert error.reason == "not_utf8"
    assert error.values == {"line": 2}


def test_utf16_is_not_utf8() -> None:
    assert refusal("wide.txt", "hello".encode("utf-16")).reason == "not_utf8"


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        bytes(range(1, 32)) * 10 + b"text",
    ],
)
def test_binary_is_refused(data: bytes) -> None:
    assert refusal("photo.txt", data).reason in {"binary", "mismatch"}


def test_empty_file_is_refused() -> None:
    assert refusal("empty.txt", " \n\t\n").reason == "empty"


def test_decode_keeps_text_and_normalises_line_ends() -> None:
    assert decode_text("\ufeffTitel\r\nText\ttab".encode()) == "Titel\nText\ttab"


def test_markdown_without_front_matter_is_refused_at_line_1() -> None:
    error = refusal("plain.md", "# Just a heading\n\nNo front matter here.\n")
    assert error.reason == "invalid"
    [problem] = error.problems
    assert (problem.path, problem.line) == ("plain.md", 1)
    assert "front matter" in problem.message


def test_bad_front_matter_names_the_line() -> None:
    text = VALID_MD.replace("kind: news", "kind: rumour")
    [problem] = refusal("fresh-news.md", text).problems
    assert str(problem) == (
        "fresh-news.md:5: unknown kind 'rumour' (expected project, news or conference)"
    )


def test_bad_language_in_front_matter_names_the_line() -> None:
    [problem] = refusal("x.md", VALID_MD.replace("language: en", "language: de")).problems
    assert problem.line == 4
    assert "unknown language 'de'" in problem.message


def test_missing_title_is_reported() -> None:
    [problem] = refusal("x.md", VALID_MD.replace("title: Fresh news\n", "")).problems
    assert "missing required field 'title'" in problem.message


def test_markdown_is_named_after_its_front_matter_id() -> None:
    prepared = prepare("Fresh News (final v2).md", VALID_MD)
    assert (prepared.id, prepared.title, prepared.language) == ("fresh-news", "Fresh news", "en")
    assert not prepared.converted
    assert prepared.content == VALID_MD


def test_invalid_front_matter_id_is_reported() -> None:
    [problem] = refusal("x.md", VALID_MD.replace("id: fresh-news", "id: Fresh News")).problems
    assert problem.line == 2
    assert "'id' must be lowercase" in problem.message


# --- .txt conversion ---------------------------------------------------------------------------


def test_txt_becomes_a_news_document_with_provenance() -> None:
    text = "\n\n  Nytt möte i Gävle  \nVi träffas i höst för att prata om unga och arbete.\n"
    prepared = prepare("Möte i Gävle.txt", text)
    assert prepared.converted
    assert (prepared.id, prepared.title, prepared.language, prepared.kind) == (
        "mote-i-gavle",
        "Nytt möte i Gävle",
        "sv",
        "news",
    )
    assert "provenance: Uploaded by an admin on 2025-06-02" in prepared.content
    assert prepared.content.endswith("Vi träffas i höst för att prata om unga och arbete.\n")


def test_txt_title_with_yaml_characters_is_quoted() -> None:
    prepared = prepare("odd.txt", "key: value # not a comment\nbody text here")
    assert prepared.title == "key: value # not a comment"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Unge og beskæftigelse\nVi mødes på jobcentret og taler om uddannelse.", "da"),
        ("Unga och arbete\nVi träffas på kontoret och pratar om utbildning.", "sv"),
        ("Young people and work\nWe meet at the job centre and talk about the training.", "en"),
    ],
)
def test_txt_language_is_detected(text: str, language: str) -> None:
    assert prepare("note.txt", text).language == language


def test_caption_overrides_the_detected_language() -> None:
    prepared = prepare("note.txt", "Young people and work\nWe meet.", caption="lang=sv")
    assert prepared.language == "sv"
    assert prepared.language_given
    assert caption_language("Language: DA please") == "da"
    assert caption_language("no override here") is None


def test_unknown_caption_language_is_refused() -> None:
    error = refusal("note.txt", "Some text", caption="lang=de")
    assert error.reason == "bad_language"
    assert error.values["value"] == "de"


# --- installing --------------------------------------------------------------------------------


def test_install_adds_a_loadable_document(knowledge: Path) -> None:
    installed = install_document(prepare("fresh.md", VALID_MD), knowledge)
    assert not installed.replaced
    assert installed.document.path == "knowledge/documents/fresh-news.md"
    kb = load_knowledge(knowledge)
    assert "fresh-news" in kb.documents
    assert not [p for p in kb.problems if "fresh-news" in p.path]
    assert not [p for p in (knowledge / "documents").iterdir() if p.name.startswith(".")]


def test_install_replaces_an_existing_document(knowledge: Path) -> None:
    original = (knowledge / "documents" / "neo.md").read_text(encoding="utf-8")
    replacement = original.replace("kind: project", "kind: news", 1)
    installed = install_document(prepare("neo.md", replacement), knowledge)
    assert installed.replaced
    assert (knowledge / "documents" / "neo.md").read_text(encoding="utf-8") == replacement


def test_install_restores_the_previous_file_when_the_whole_base_objects(knowledge: Path) -> None:
    """An unknown project passes the single-file check but not the whole loader."""
    target = knowledge / "documents" / "neo.md"
    before = target.read_bytes()
    broken = VALID_MD.replace("id: fresh-news", "id: neo").replace(
        "kind: news", "kind: news\nproject: no-such-project"
    )
    prepared = prepare("neo.md", broken)
    with pytest.raises(UploadError) as caught:
        install_document(prepared, knowledge)
    assert caught.value.reason == "invalid"
    assert [str(p) for p in caught.value.problems] == [
        "neo.md:2: unknown project 'no-such-project'"
    ]
    assert target.read_bytes() == before


def test_install_removes_a_new_file_that_breaks_the_base(knowledge: Path) -> None:
    broken = VALID_MD.replace("kind: news", "kind: news\nproject: no-such-project")
    with pytest.raises(UploadError):
        install_document(prepare("fresh.md", broken), knowledge)
    assert not (knowledge / "documents" / "fresh-news.md").exists()


def test_document_chunks_counts_only_the_documents_own_passages() -> None:
    chunks = [
        Chunk("a", "document", "neo", "en", "NEO", "one"),
        Chunk("b", "document", "neo", "en", "NEO", "two", position=1),
        Chunk("c", "summary", "neo", "sv", "NEO", "kort"),
        Chunk("d", "document", "other", "en", "Other", "three"),
    ]
    assert document_chunks(chunks, "neo") == 2


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://example.org/apprenticeships", "apprenticeships.html"),
        ("https://example.org/files/report.pdf", "report.html"),  # served as HTML: fetch checked
        ("https://www.kommun.se/", "kommun.se.html"),
        ("https://example.org/a/index.html", "example.org.html"),
        ("https://example.org/news/article.php?id=3", "article.html"),
        ("https://example.org/Unga%20i%20arbete/", "Unga i arbete.html"),
    ],
)
def test_fetched_pages_are_named_as_html(url: str, name: str) -> None:
    assert name_from_url(url) == name


def test_a_page_whose_address_ends_in_pdf_is_not_called_a_liar() -> None:
    page = b"<!doctype html><html><body><article><h1>Report</h1><p>Text of the report.</p>"
    prepared = prepare_upload(
        name_from_url("https://example.org/report.pdf"),
        page + b"</article></body></html>",
        max_bytes=LIMIT,
        today=TODAY,
        source="https://example.org/report.pdf",
    )
    assert (prepared.id, prepared.format) == ("report", "html")
    assert "source: https://example.org/report.pdf" in prepared.content
