"""The knowledge loader: the shipped knowledge loads cleanly and keeps the seed texts verbatim,
and every kind of broken file is reported as `path:line: message` while the rest still loads."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.knowledge import load_knowledge
from bot.knowledge.loader import MAX_FILE_BYTES, knowledge_checksum
from bot.knowledge.models import LANGUAGES, FuzzyDate, KnowledgeBase

REPO = Path(__file__).resolve().parent.parent
KNOWLEDGE = REPO / "knowledge"
SEEDS = Path("/work/shared/seeds")
SEED_DOCUMENTS = {
    "000": "integrate-neets-working-groups",
    "001": "hostens-regionala-konferenser",
    "002": "atwork4neets",
    "003": "bags4youth",
    "004": "neo",
}


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# --- the shipped knowledge ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo_kb() -> KnowledgeBase:
    return load_knowledge(KNOWLEDGE)


def test_repository_knowledge_loads_without_problems(repo_kb: KnowledgeBase) -> None:
    assert [str(p) for p in repo_kb.problems] == []
    assert sorted(repo_kb.documents) == sorted(SEED_DOCUMENTS.values())
    assert len(repo_kb.summaries) == 15
    assert len(repo_kb.projects) == 5
    assert len(repo_kb.meetings) == 8
    assert repo_kb.takeaways
    assert repo_kb.factors
    for doc_id in repo_kb.documents:
        for lang in LANGUAGES:
            assert repo_kb.summary(doc_id, lang) is not None, f"no {lang} summary of {doc_id}"


def test_document_paths_are_repository_relative(repo_kb: KnowledgeBase) -> None:
    for doc in repo_kb.documents.values():
        assert doc.path == f"knowledge/documents/{doc.id}.md"
        assert (REPO / doc.path).is_file()


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed documents are not available here")
@pytest.mark.parametrize(("prefix", "document_id"), sorted(SEED_DOCUMENTS.items()))
def test_document_keeps_every_line_of_its_seed(
    repo_kb: KnowledgeBase, prefix: str, document_id: str
) -> None:
    (seed,) = SEEDS.glob(f"{prefix}_*.txt")
    body = _squash(repo_kb.documents[document_id].body)
    missing = [
        line
        for line in seed.read_text(encoding="utf-8").splitlines()
        if line.strip() and _squash(line) not in body
    ]
    assert missing == [], f"{document_id} lost or reworded {len(missing)} line(s) of {seed.name}"


def test_no_meeting_date_guesses_a_year(repo_kb: KnowledgeBase) -> None:
    checked = 0
    for meeting in repo_kb.meetings.values():
        source = repo_kb.documents[meeting.source].body
        if re.search(r"\b(?:19|20)\d{2}\b", source):
            continue  # the source names a year somewhere; nothing to assert
        assert meeting.date.year is None, f"{meeting.id}: year {meeting.date.year} is a guess"
        checked += 1
    assert checked == len(repo_kb.meetings)
    # The ones with a day keep it, without a year: "10 June", not "10 June 2025".
    follow_up = repo_kb.meetings["thematic-groups-follow-up"].date
    assert follow_up == FuzzyDate(None, 6, 10)
    assert follow_up.as_date() is None


# --- a small knowledge base to break ------------------------------------------------------------

BASE_FILES: dict[str, str] = {
    "documents/alpha.md": """\
---
id: alpha
title: Alpha project
language: en
kind: project
project: alpha
provenance: test
---
Alpha helps young people into work. It runs in Malmö and Copenhagen.
""",
    "documents/beta.md": """\
---
id: beta
title: Betas nyheter
language: sv
kind: news
---
Beta är en nyhet om unga i Göteborg.
""",
    "summaries/alpha.en.md": """\
---
summary_of: alpha
language: en
title: Alpha (summary)
---
Alpha helps young people into work.
""",
    "summaries/alpha.sv.md": """\
---
summary_of: alpha
language: sv
title: Alpha (sammanfattning)
---
Alpha hjälper unga till arbete.
""",
    "summaries/alpha.da.md": """\
---
summary_of: alpha
language: da
title: Alpha (resumé)
---
Alpha hjælper unge i arbejde.
""",
    "catalogs/projects.yaml": """\
projects:
  - id: alpha
    name: Alpha
    kind: project
    source: alpha
    aims: {en: Jobs for the young, sv: Jobb för unga, da: Job til unge}
    partners:
      - name: City of Malmö
        country: SE
        role: Lead
    countries: [SE, DK]
    period: {start: 2023-03-01, end: 2024-02-28}
    budget: "€100"
  - id: alpha-group
    name: Alpha working group
    kind: working-group
    parent: alpha
    source: alpha
    aims: {en: Meet, sv: Träffas, da: Mødes}
""",
    "catalogs/meetings.yaml": """\
meetings:
  - id: kickoff
    title: {en: Kick-off, sv: Uppstart, da: Opstart}
    date: "--10-03"
    time: "09:00"
    place: Malmö
    country: SE
    status: held
    project: alpha
    description: {en: The start., sv: Starten., da: Starten.}
    source: alpha
""",
    "catalogs/takeaways.yaml": """\
takeaways:
  - id: start-early
    meetings: [kickoff]
    quote: "Start early."
    text: {en: Start early., sv: Börja tidigt., da: Start tidligt.}
    source: alpha
""",
    "catalogs/success_factors.yaml": """\
success_factors:
  - id: teams
    title: {en: Teams, sv: Team, da: Teams}
    text: {en: Work in teams., sv: Arbeta i team., da: Arbejd i teams.}
    quote: "Teams."
    projects: [alpha]
    source: alpha
""",
}

MEETING_TEMPLATE = """\
  - id: {id}
    title: {{en: Extra, sv: Extra, da: Ekstra}}
    date: {date}
    status: planned
    description: {{en: More., sv: Mer., da: Mere.}}
    source: alpha
"""


def write_base(root: Path) -> Path:
    for rel, text in BASE_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def kb_root(tmp_path: Path) -> Path:
    return write_base(tmp_path / "knowledge")


def _counts(kb: KnowledgeBase) -> dict[str, set[str]]:
    return {
        "documents": set(kb.documents),
        "summaries": {f"{s.document_id}.{s.language}" for s in kb.summaries},
        "projects": set(kb.projects),
        "meetings": set(kb.meetings),
        "takeaways": {t.id for t in kb.takeaways},
        "factors": {f.id for f in kb.factors},
    }


def test_small_knowledge_base_loads_cleanly(kb_root: Path) -> None:
    kb = load_knowledge(kb_root)
    assert kb.problems == ()
    assert _counts(kb) == {
        "documents": {"alpha", "beta"},
        "summaries": {"alpha.en", "alpha.sv", "alpha.da"},
        "projects": {"alpha", "alpha-group"},
        "meetings": {"kickoff"},
        "takeaways": {"start-early"},
        "factors": {"teams"},
    }
    meeting = kb.meetings["kickoff"]
    assert meeting.date == FuzzyDate(None, 10, 3)
    assert meeting.time == "09:00"
    assert kb.projects["alpha"].partners[0].country == "SE"


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the n-th line containing `needle`."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in the test file"
    return hits[occurrence - 1]


@dataclass
class Case:
    """Files to add or append to (relative to the knowledge dir), and the one problem expected."""

    files: dict[str, str | bytes]
    path: str  # the file the problem names
    needle: str | int  # text on the expected line, or the line number itself
    message: str  # a fragment of the message
    append: bool = False  # append text files to the existing file instead of replacing it
    occurrence: int = 1


def _meetings_with(**entries: str) -> str:
    return "".join(MEETING_TEMPLATE.format(id=ident, date=date) for ident, date in entries.items())


DOC_HEAD = "---\nid: gamma\ntitle: Gamma\nlanguage: en\nkind: news\n---\n"

CASES: dict[str, Case] = {
    "bad YAML in front matter": Case(
        {"documents/gamma.md": "---\nid: gamma\ntitle: a: b\nlanguage: en\n---\nText.\n"},
        "documents/gamma.md",
        "title: a: b",
        "bad YAML in front matter",
    ),
    "bad YAML in a catalog": Case(
        {"catalogs/more.yaml": "meetings:\n  - id: extra\n    title: a: b\n"},
        "catalogs/more.yaml",
        "title: a: b",
        "bad YAML",
    ),
    "missing front matter": Case(
        {"documents/gamma.md": "Gamma has no front matter.\n"},
        "documents/gamma.md",
        1,
        "missing front matter",
    ),
    "missing title in a document": Case(
        {"documents/gamma.md": "---\nid: gamma\nlanguage: en\nkind: news\n---\nText.\n"},
        "documents/gamma.md",
        "id: gamma",
        "missing required field 'title'",
    ),
    "missing aims in a project": Case(
        {
            "catalogs/projects.yaml": (
                "  - id: gamma\n    name: Gamma\n    kind: project\n    source: alpha\n"
            )
        },
        "catalogs/projects.yaml",
        "id: gamma",
        "missing required field 'aims'",
        append=True,
    ),
    "id differs from the file name": Case(
        {"documents/gamma.md": DOC_HEAD.replace("id: gamma", "id: delta") + "Text.\n"},
        "documents/gamma.md",
        "id: delta",
        "must equal the file name 'gamma'",
    ),
    "unknown document language": Case(
        {"documents/gamma.md": DOC_HEAD.replace("language: en", "language: de") + "Text.\n"},
        "documents/gamma.md",
        "language: de",
        "unknown language 'de'",
    ),
    "unknown summary language": Case(
        {
            "summaries/alpha.fi.md": (
                "---\nsummary_of: alpha\nlanguage: fi\ntitle: Alpha\n---\nAlpha auttaa.\n"
            )
        },
        "summaries/alpha.fi.md",
        "language: fi",
        "unknown language 'fi'",
    ),
    "unknown language in a text map": Case(
        {
            "catalogs/meetings.yaml": MEETING_TEMPLATE.format(id="extra", date="unknown").replace(
                "da: Ekstra", "de: Extra"
            )
        },
        "catalogs/meetings.yaml",
        "de: Extra",
        "unknown language 'de' in 'title'",
        append=True,
    ),
    "impossible month in a quoted period": Case(
        {
            "catalogs/projects.yaml": (
                "  - id: gamma\n    name: Gamma\n    kind: project\n    source: alpha\n"
                "    aims: {en: A, sv: B, da: C}\n    period: {start: '2023-13-01'}\n"
            )
        },
        "catalogs/projects.yaml",
        "2023-13-01",
        "'start' is not a valid date",
        append=True,
    ),
    "impossible month in an unquoted period": Case(
        {
            "catalogs/projects.yaml": (
                "  - id: gamma\n    name: Gamma\n    kind: project\n    source: alpha\n"
                "    aims: {en: A, sv: B, da: C}\n    period: {start: 2023-13-01}\n"
            )
        },
        "catalogs/projects.yaml",
        "2023-13-01",
        "2023-13-01",
        append=True,
    ),
    "impossible meeting day": Case(
        {"catalogs/meetings.yaml": _meetings_with(extra='"--02-30"')},
        "catalogs/meetings.yaml",
        "--02-30",
        "not a real date",
        append=True,
    ),
    "meeting date in words": Case(
        {"catalogs/meetings.yaml": _meetings_with(extra="next week")},
        "catalogs/meetings.yaml",
        "next week",
        "must be YYYY-MM-DD, --MM-DD (year not given) or unknown",
        append=True,
    ),
    "period ends before it starts": Case(
        {
            "catalogs/projects.yaml": (
                "  - id: gamma\n    name: Gamma\n    kind: project\n    source: alpha\n"
                "    aims: {en: A, sv: B, da: C}\n"
                "    period: {start: 2023-03-01, end: 2022-01-01}\n"
            )
        },
        "catalogs/projects.yaml",
        "end: 2022-01-01",
        "ends before it starts",
        append=True,
    ),
    "impossible time": Case(
        {
            "catalogs/meetings.yaml": _meetings_with(extra="unknown").replace(
                "    status:", '    time: "25:00"\n    status:'
            )
        },
        "catalogs/meetings.yaml",
        "25:00",
        "time must be HH:MM",
        append=True,
    ),
    "country name instead of a code": Case(
        {
            "catalogs/meetings.yaml": _meetings_with(extra="unknown").replace(
                "    status:", "    country: Sweden\n    status:"
            )
        },
        "catalogs/meetings.yaml",
        "country: Sweden",
        "2-letter code",
        append=True,
    ),
    "lowercase partner country": Case(
        {
            "catalogs/projects.yaml": (
                "  - id: gamma\n    name: Gamma\n    kind: project\n    source: alpha\n"
                "    aims: {en: A, sv: B, da: C}\n"
                "    partners:\n      - name: Somebody\n        country: se\n"
            )
        },
        "catalogs/projects.yaml",
        "country: se",
        "2-letter code",
        append=True,
    ),
    "duplicate meeting id across two catalog files": Case(
        {"catalogs/more-meetings.yaml": "meetings:\n" + _meetings_with(kickoff="unknown")},
        "catalogs/more-meetings.yaml",
        "id: kickoff",
        "duplicate meeting id 'kickoff' (first at knowledge/catalogs/meetings.yaml:2)",
    ),
    "project with an unknown source document": Case(
        {
            "catalogs/projects.yaml": (
                "  - id: gamma\n    name: Gamma\n    kind: project\n    source: nowhere\n"
                "    aims: {en: A, sv: B, da: C}\n"
            )
        },
        "catalogs/projects.yaml",
        "id: gamma",
        "unknown source document 'nowhere'",
        append=True,
    ),
    "project with an unknown parent": Case(
        {
            "catalogs/projects.yaml": (
                "  - id: gamma\n    name: Gamma\n    kind: working-group\n    parent: nobody\n"
                "    source: alpha\n    aims: {en: A, sv: B, da: C}\n"
            )
        },
        "catalogs/projects.yaml",
        "id: gamma",
        "unknown parent project 'nobody'",
        append=True,
    ),
    "takeaway from an unknown meeting": Case(
        {
            "catalogs/takeaways.yaml": (
                "  - id: gamma\n    meetings: [kickoff, no-such-meeting]\n    quote: Q.\n"
                "    text: {en: A, sv: B, da: C}\n    source: alpha\n"
            )
        },
        "catalogs/takeaways.yaml",
        "id: gamma",
        "unknown meeting 'no-such-meeting'",
        append=True,
    ),
    "success factor of an unknown project": Case(
        {
            "catalogs/success_factors.yaml": (
                "  - id: gamma\n    title: {en: A, sv: B, da: C}\n    text: {en: A, sv: B, da: C}\n"
                "    quote: Q.\n    projects: [no-such-project]\n    source: alpha\n"
            )
        },
        "catalogs/success_factors.yaml",
        "id: gamma",
        "unknown project 'no-such-project'",
        append=True,
    ),
    "summary of an unknown document": Case(
        {"summaries/nowhere.en.md": "---\nsummary_of: nowhere\nlanguage: en\ntitle: N\n---\nN.\n"},
        "summaries/nowhere.en.md",
        "summary_of: nowhere",
        "unknown document in summary_of 'nowhere'",
    ),
    "not UTF-8": Case(
        {"documents/gamma.md": DOC_HEAD.encode() + b"Line one.\nLine two.\nCaf\xe9 latin-1.\n"},
        "documents/gamma.md",
        "Caf",
        "not UTF-8",
    ),
    "binary file": Case(
        {"documents/gamma.md": DOC_HEAD.encode() + b"\x89PNG\x00\x00\x00\rIHDR"},
        "documents/gamma.md",
        1,
        "binary",
    ),
    "too large": Case(
        {"documents/gamma.md": DOC_HEAD + "x" * (MAX_FILE_BYTES + 1)},
        "documents/gamma.md",
        1,
        "too large",
    ),
    "wrong extension": Case(
        {"documents/gamma.txt": DOC_HEAD + "Text.\n"},
        "documents/gamma.txt",
        1,
        "must end in .md",
    ),
    "empty body": Case(
        {"documents/gamma.md": DOC_HEAD + "\n   \n"},
        "documents/gamma.md",
        7,
        "no text after the front matter",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_broken_file_is_reported_with_its_line_and_the_rest_loads(
    kb_root: Path, name: str
) -> None:
    case = CASES[name]
    for rel, content in case.files.items():
        path = kb_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif case.append:
            path.write_text(path.read_text(encoding="utf-8") + content, encoding="utf-8")
        else:
            path.write_text(content, encoding="utf-8")
    target = kb_root / case.path
    if isinstance(case.needle, int):
        line = case.needle
    else:
        text = target.read_bytes().decode("utf-8", errors="replace")
        line = line_of(text, case.needle, case.occurrence)

    kb = load_knowledge(kb_root)

    reported = [str(p) for p in kb.problems]
    assert len(reported) == 1, reported
    prefix = f"knowledge/{case.path}:{line}: "
    assert reported[0].startswith(prefix), f"expected {prefix!r}, got {reported[0]!r}"
    assert case.message in reported[0]
    # Nothing else is lost: everything in the base still loads.
    assert _counts(kb) == _counts(load_knowledge(write_base(kb_root.parent / "clean")))


def test_several_broken_files_are_all_reported(kb_root: Path) -> None:
    (kb_root / "documents/gamma.md").write_text("no front matter\n", encoding="utf-8")
    (kb_root / "documents/delta.md").write_bytes(b"\x00\x01")
    with (kb_root / "catalogs/meetings.yaml").open("a", encoding="utf-8") as out:
        out.write(_meetings_with(bad="next week", good='"2024-05-06"'))
    kb = load_knowledge(kb_root)
    assert sorted(p.path for p in kb.problems) == [
        "knowledge/catalogs/meetings.yaml",
        "knowledge/documents/delta.md",
        "knowledge/documents/gamma.md",
    ]
    assert set(kb.meetings) == {"kickoff", "good"}
    assert kb.meetings["good"].date == FuzzyDate(2024, 5, 6)


def test_unquoted_clock_time_is_read_as_a_time(kb_root: Path) -> None:
    """`time: 14:00` without quotes is how people write it; YAML 1.1 would make it 840."""
    meetings = kb_root / "catalogs/meetings.yaml"
    meetings.write_text(
        meetings.read_text(encoding="utf-8").replace('time: "09:00"', "time: 14:00"),
        encoding="utf-8",
    )
    kb = load_knowledge(kb_root)
    assert [str(p) for p in kb.problems] == []
    assert kb.meetings["kickoff"].time == "14:00"


def test_missing_knowledge_directory_is_one_problem(tmp_path: Path) -> None:
    kb = load_knowledge(tmp_path / "knowledge")
    assert len(kb.problems) == 1
    assert "does not exist" in kb.problems[0].message
    assert kb.documents == {}


def test_hidden_files_are_ignored_silently(kb_root: Path) -> None:
    (kb_root / "documents/.alpha.md.swp").write_bytes(b"\x00editor swap")
    assert load_knowledge(kb_root).problems == ()


# --- the checksum --------------------------------------------------------------------------------


def test_checksum_is_stable_and_follows_content(tmp_path: Path, kb_root: Path) -> None:
    first = knowledge_checksum(kb_root)
    assert knowledge_checksum(kb_root) == first
    assert load_knowledge(kb_root).checksum == first
    # A copy elsewhere has the same fingerprint (tests and deployments copy the knowledge).
    copy = tmp_path / "elsewhere" / "knowledge"
    shutil.copytree(kb_root, copy)
    assert knowledge_checksum(copy) == first

    doc = kb_root / "documents/beta.md"
    original = doc.read_text(encoding="utf-8")
    doc.write_text(original + "En mening till.\n", encoding="utf-8")
    changed = knowledge_checksum(kb_root)
    assert changed != first
    doc.write_text(original, encoding="utf-8")
    assert knowledge_checksum(kb_root) == first

    (kb_root / "summaries/beta.en.md").write_text(
        "---\nsummary_of: beta\nlanguage: en\ntitle: B\n---\nBeta news.\n", encoding="utf-8"
    )
    assert knowledge_checksum(kb_root) not in {first, changed}


def test_checksum_tells_a_renamed_file_apart(kb_root: Path) -> None:
    first = knowledge_checksum(kb_root)
    (kb_root / "catalogs/meetings.yaml").rename(kb_root / "catalogs/meetings2.yaml")
    assert knowledge_checksum(kb_root) != first
