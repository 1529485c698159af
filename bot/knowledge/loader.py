"""Load and validate `knowledge/`: every problem is reported with file and line, and one bad file
or entry is skipped without taking the rest down."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bot.knowledge.models import (
    LANGUAGES,
    Contact,
    Document,
    FuzzyDate,
    KnowledgeBase,
    Meeting,
    Partner,
    Problem,
    Project,
    SuccessFactor,
    Summary,
    Takeaway,
    Text,
)

MAX_FILE_BYTES = 2_000_000
# 48 characters keeps every button's callback data ("meet:unsub:<id>") under Telegram's 64 bytes.
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_FUZZY_DATE_RE = re.compile(r"^(?:(\d{4})|-)-(\d{2})-(\d{2})$")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
KNOWLEDGE_SUFFIXES = (".md", ".yaml", ".yml")

T = TypeVar("T")


class _EntryError(Exception):
    """One entry (or field) is unusable; carries the line so the report can point at it."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Node(dict[str, Any]):
    """A YAML mapping that remembers its own line and the line of each key."""

    line: int = 1
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that keeps line numbers, so errors can name the exact line of a bad field."""

    line_offset = 0

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        mapping = _Node({str(k): v for k, v in super().construct_mapping(node, deep=deep).items()})
        mapping.line = node.start_mark.line + 1 + self.line_offset
        mapping.key_lines = {
            str(key.value): key.start_mark.line + 1 + self.line_offset for key, _ in node.value
        }
        return mapping


def _timestamp_or_text(loader: _LineLoader, node: yaml.ScalarNode) -> Any:
    """An impossible unquoted date (2023-13-01) stays text, so validation can name its line
    instead of PyYAML raising a bare ValueError."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)
_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _LineLoader.construct_mapping,
)


def _parse_yaml(text: str, line_offset: int = 0) -> Any:
    loader = _LineLoader(text)
    loader.line_offset = line_offset
    try:
        return loader.get_single_data()
    except RecursionError:  # PyYAML recurses per nesting level: "[[[[..." runs out of stack
        raise yaml.MarkedYAMLError(
            problem="nested too deeply", problem_mark=loader.get_mark()
        ) from None
    except (ValueError, IndexError, TypeError, OverflowError) as error:
        # PyYAML's own scalar constructors fail on odd values ("0b", "09", "1_>"): still a
        # problem in this file, never a crash of the whole load
        raise yaml.MarkedYAMLError(
            problem=f"a value cannot be read ({error})", problem_mark=loader.get_mark()
        ) from None
    finally:
        loader.dispose()


# --- field readers ----------------------------------------------------------------------------


class _Fields:
    """Typed access to one YAML mapping; each failure names the line of the offending key."""

    def __init__(self, node: Any, line: int) -> None:
        if not isinstance(node, dict):
            raise _EntryError(line, f"expected a mapping of fields, got {type(node).__name__}")
        self.node = node
        self.line = getattr(node, "line", line)

    def line_of(self, key: str) -> int:
        lines: dict[str, int] = getattr(self.node, "key_lines", {})
        return lines.get(key, self.line)

    def has(self, key: str) -> bool:
        return self.node.get(key) is not None

    def string(self, key: str, *, required: bool = True) -> str | None:
        value = self.node.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise _EntryError(self.line, f"missing required field '{key}'")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _EntryError(
                self.line_of(key), f"'{key}' must be text, got {type(value).__name__}"
            )
        return str(value).strip()

    def req(self, key: str) -> str:
        value = self.string(key)
        assert value is not None
        return value

    def id(self, key: str = "id", *, required: bool = True) -> str | None:
        value = self.string(key, required=required)
        if value is not None and not _ID_RE.match(value):
            raise _EntryError(
                self.line_of(key), f"'{key}' must be lowercase a-z, 0-9 and '-', got {value!r}"
            )
        return value

    def language(self, key: str = "language") -> str:
        value = self.req(key)
        if value not in LANGUAGES:
            raise _EntryError(
                self.line_of(key),
                f"unknown language {value!r} in '{key}' (expected one of {', '.join(LANGUAGES)})",
            )
        return value

    def text(self, key: str, *, required: bool = True) -> Text:
        value = self.node.get(key)
        if value is None:
            if required:
                raise _EntryError(self.line, f"missing required field '{key}'")
            return {}
        if not isinstance(value, dict) or not value:
            raise _EntryError(
                self.line_of(key), f"'{key}' must map languages to text, e.g. {{en: ..., sv: ...}}"
            )
        inner = _Fields(value, self.line_of(key))
        result: Text = {}
        for lang in value:
            if lang not in LANGUAGES:
                raise _EntryError(
                    inner.line_of(str(lang)),
                    f"unknown language {lang!r} in '{key}' "
                    f"(expected one of {', '.join(LANGUAGES)})",
                )
            result[lang] = inner.req(lang)
        return result

    def ids(self, key: str) -> tuple[str, ...]:
        value = self.node.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _EntryError(self.line_of(key), f"'{key}' must be a list of ids")
        return tuple(v.strip() for v in value)

    def date(self, key: str) -> date | None:
        value = self.node.get(key)
        if value is None:
            return None
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise _EntryError(
                self.line_of(key), f"'{key}' is not a valid date (YYYY-MM-DD): {value!r}"
            ) from None


def _fuzzy_date(fields: _Fields, key: str) -> FuzzyDate:
    raw = fields.node.get(key)
    line = fields.line_of(key)
    if raw is None:
        raise _EntryError(
            fields.line, f"missing required field '{key}' (use 'unknown' if not given)"
        )
    if isinstance(raw, date):
        return FuzzyDate(raw.year, raw.month, raw.day)
    text = str(raw).strip()
    if text == "unknown":
        return FuzzyDate(None, None, None)
    match = _FUZZY_DATE_RE.match(text)
    if not match:
        raise _EntryError(
            line, f"'{key}' must be YYYY-MM-DD, --MM-DD (year not given) or unknown, got {text!r}"
        )
    year = int(match.group(1)) if match.group(1) else None
    month, day = int(match.group(2)), int(match.group(3))
    try:
        date(year or 2000, month, day)  # 2000 is a leap year, so --02-29 stays valid
    except ValueError:
        raise _EntryError(line, f"'{key}' is not a real date: {text!r}") from None
    return FuzzyDate(year, month, day)


# --- files ------------------------------------------------------------------------------------


class _Report:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root.parent).as_posix()
        except ValueError:
            return path.as_posix()

    def add(self, path: Path, line: int, message: str) -> None:
        self.problems.append(Problem(self.rel(path), line, message))


def read_text_file(path: Path) -> str:
    """Bytes to text with the checks every knowledge file needs; raises _EntryError(line 1)."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _EntryError(1, f"file is too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})")
    data = path.read_bytes()
    if b"\x00" in data:
        raise _EntryError(1, "file is binary, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise _EntryError(
            line, f"file is not UTF-8 text (bad byte at offset {error.start})"
        ) from None
    return text.replace("\r\n", "\n")


def _split_front_matter(text: str) -> tuple[_Fields, str, int]:
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        raise _EntryError(1, "missing front matter: the file must start with a '---' YAML block")
    try:
        meta = _parse_yaml(match.group(1), line_offset=1)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        raise _EntryError(
            line, f"bad YAML in front matter: {getattr(error, 'problem', error)}"
        ) from None
    body_line = text[: match.end()].count("\n") + 1
    return _Fields(meta, 2), text[match.end() :], body_line


def _tidy(body: str) -> str:
    lines = [line.rstrip() for line in body.strip().split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _load_document(path: Path, report: _Report) -> Document:
    fields, body, body_line = _split_front_matter(read_text_file(path))
    doc_id = fields.id()
    assert doc_id is not None
    if doc_id != path.stem:
        raise _EntryError(
            fields.line_of("id"), f"id {doc_id!r} must equal the file name {path.stem!r}"
        )
    kind = fields.req("kind")
    if kind not in {"project", "news", "conference"}:
        raise _EntryError(
            fields.line_of("kind"), f"unknown kind {kind!r} (expected project, news or conference)"
        )
    language = fields.language()
    text = _tidy(body)
    if not text:
        raise _EntryError(body_line, "the document has no text after the front matter")
    return Document(
        id=doc_id,
        title=fields.req("title"),
        language=language,
        kind=kind,
        body=text,
        path=report.rel(path),
        project=fields.id("project", required=False),
        provenance=fields.string("provenance", required=False) or "",
        source=fields.string("source", required=False) or "",
        added=fields.date("added"),
    )


def _load_summary(path: Path, report: _Report) -> Summary:
    fields, body, body_line = _split_front_matter(read_text_file(path))
    text = _tidy(body)
    if not text:
        raise _EntryError(body_line, "the summary has no text after the front matter")
    document_id = fields.id("summary_of")
    assert document_id is not None
    language = fields.language()
    expected = f"{document_id}.{language}"
    if path.stem != expected:
        raise _EntryError(
            2, f"a summary of {document_id!r} in {language!r} must be named {expected}.md"
        )
    return Summary(document_id, language, fields.req("title"), text, report.rel(path))


def _project(f: _Fields) -> Project:
    kind = f.req("kind")
    if kind not in {"project", "platform", "working-group"}:
        raise _EntryError(f.line_of("kind"), f"unknown project kind {kind!r}")
    partners = []
    raw_partners = f.node.get("partners") or []
    if not isinstance(raw_partners, list):
        raise _EntryError(f.line_of("partners"), "'partners' must be a list")
    for raw in raw_partners:
        p = _Fields(raw, f.line_of("partners"))
        country = p.string("country", required=False)
        if country is not None and not _COUNTRY_RE.match(country):
            raise _EntryError(
                p.line_of("country"), f"country must be a 2-letter code, got {country!r}"
            )
        partners.append(Partner(p.req("name"), country, p.string("role", required=False)))
    countries = f.ids("countries")
    for country in countries:
        if not _COUNTRY_RE.match(country):
            raise _EntryError(
                f.line_of("countries"), f"country must be a 2-letter code: {country!r}"
            )
    period = _Fields(f.node.get("period") or {}, f.line_of("period"))
    start, end = period.date("start"), period.date("end")
    if start and end and end < start:
        raise _EntryError(f.line_of("period"), "the period ends before it starts")
    contact = None
    if f.has("contact"):
        c = _Fields(f.node["contact"], f.line_of("contact"))
        contact = Contact(
            c.string("name", required=False),
            c.string("phone", required=False),
            c.string("organisation", required=False),
        )
    website = f.string("website", required=False)
    if website is not None and (" " in website or "." not in website):
        raise _EntryError(
            f.line_of("website"), f"website does not look like an address: {website!r}"
        )
    return Project(
        id=f.id() or "",
        name=f.req("name"),
        kind=kind,
        source=f.id("source") or "",
        aims=f.text("aims"),
        parent=f.id("parent", required=False),
        themes=f.ids("themes"),
        partners=tuple(partners),
        countries=countries,
        period_start=start,
        period_end=end,
        budget=f.string("budget", required=False),
        funding=f.text("funding", required=False),
        website=website,
        contact=contact,
    )


def _meeting(f: _Fields) -> Meeting:
    status = f.req("status")
    if status not in {"planned", "held"}:
        raise _EntryError(f.line_of("status"), f"status must be planned or held, got {status!r}")
    raw_time = f.node.get("time")
    if isinstance(raw_time, int) and not isinstance(raw_time, bool) and 0 <= raw_time < 24 * 60:
        # YAML 1.1 reads an unquoted 14:00 as the sexagesimal number 840
        f.node["time"] = f"{raw_time // 60:02d}:{raw_time % 60:02d}"
    time = f.string("time", required=False)
    if time is not None and not _TIME_RE.match(time):
        raise _EntryError(f.line_of("time"), f"time must be HH:MM, got {time!r}")
    country = f.string("country", required=False)
    if country is not None and not _COUNTRY_RE.match(country):
        raise _EntryError(f.line_of("country"), f"country must be a 2-letter code, got {country!r}")
    return Meeting(
        id=f.id() or "",
        title=f.text("title"),
        date=_fuzzy_date(f, "date"),
        status="planned" if status == "planned" else "held",
        description=f.text("description"),
        source=f.id("source") or "",
        time=time,
        place=f.string("place", required=False),
        country=country,
        project=f.id("project", required=False),
        organiser=f.string("organiser", required=False),
    )


def _takeaway(f: _Fields) -> Takeaway:
    return Takeaway(
        id=f.id() or "",
        meetings=f.ids("meetings"),
        quote=f.req("quote"),
        text=f.text("text"),
        source=f.id("source") or "",
    )


def _factor(f: _Fields) -> SuccessFactor:
    return SuccessFactor(
        id=f.id() or "",
        title=f.text("title"),
        text=f.text("text"),
        quote=f.req("quote"),
        source=f.id("source") or "",
        projects=f.ids("projects"),
    )


_CATALOGS: dict[str, tuple[str, Callable[[_Fields], Any]]] = {
    "projects": ("projects", _project),
    "meetings": ("meetings", _meeting),
    "takeaways": ("takeaways", _takeaway),
    "success_factors": ("success_factors", _factor),
}


def _load_catalog(path: Path, report: _Report) -> tuple[str, list[tuple[int, Any]]]:
    """Entries of one catalog file, each with its line; a bad entry is reported and skipped."""
    try:
        data = _parse_yaml(read_text_file(path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise _EntryError(line, f"bad YAML: {getattr(error, 'problem', error)}") from None
    if not isinstance(data, dict) or len(data) != 1:
        raise _EntryError(
            1, f"a catalog holds one key ({', '.join(_CATALOGS)}) with a list of entries"
        )
    ((key, entries),) = data.items()
    if key not in _CATALOGS:
        raise _EntryError(1, f"unknown catalog {key!r} (expected one of {', '.join(_CATALOGS)})")
    if not isinstance(entries, list):
        raise _EntryError(getattr(data, "line", 1), f"'{key}' must hold a list of entries")
    _, build = _CATALOGS[key]
    loaded: list[tuple[int, Any]] = []
    for raw in entries:
        line = getattr(raw, "line", 1)
        try:
            loaded.append((line, build(_Fields(raw, line))))
        except _EntryError as invalid:
            report.add(path, invalid.line, invalid.message)
    return key, loaded


def knowledge_files(root: Path) -> Iterator[Path]:
    """Every file the knowledge base consists of, in a stable order (the checksum relies on it)."""
    for folder in ("documents", "summaries", "catalogs"):
        directory = root / folder
        if directory.is_dir():
            yield from sorted(p for p in directory.rglob("*") if p.is_file())


def knowledge_checksum(root: Path) -> str:
    """A fingerprint of the knowledge files, so a stale index can be told from a fresh one."""
    digest = hashlib.sha256()
    for path in knowledge_files(root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _unique(
    items: list[tuple[Path, int, T]], key: Callable[[T], str], report: _Report, what: str
) -> dict[str, tuple[Path, int, T]]:
    seen: dict[str, tuple[Path, int, T]] = {}
    for path, line, item in items:
        ident = key(item)
        if ident in seen:
            first_path, first_line, _ = seen[ident]
            report.add(
                path,
                line,
                f"duplicate {what} id {ident!r} (first at {report.rel(first_path)}:{first_line})",
            )
            continue
        seen[ident] = (path, line, item)
    return seen


def load_knowledge(root: Path) -> KnowledgeBase:
    """Load everything that is valid; collect a problem for everything that is not."""
    report = _Report(root)
    if not root.is_dir():
        report.problems.append(
            Problem(report.rel(root), 0, "the knowledge directory does not exist")
        )
    docs: list[tuple[Path, int, Document]] = []
    summaries: list[tuple[Path, int, Summary]] = []
    catalog_entries: dict[str, list[tuple[Path, int, Any]]] = {key: [] for key in _CATALOGS}
    for path in knowledge_files(root):
        folder = path.relative_to(root).parts[0]
        expected = (".md",) if folder != "catalogs" else (".yaml", ".yml")
        if path.suffix not in expected:
            if not path.name.startswith("."):
                report.add(
                    path, 1, f"ignored: files in {folder}/ must end in {' or '.join(expected)}"
                )
            continue
        try:
            if folder == "documents":
                docs.append((path, 1, _load_document(path, report)))
            elif folder == "summaries":
                summaries.append((path, 1, _load_summary(path, report)))
            else:
                key, entries = _load_catalog(path, report)
                catalog_entries[key].extend((path, line, entry) for line, entry in entries)
        except _EntryError as invalid:
            report.add(path, invalid.line, invalid.message)
        except OSError as error:
            report.add(path, 1, f"cannot read the file: {error.strerror or error}")

    documents_found = _unique(docs, lambda d: d.id, report, "document")
    documents = {ident: doc for ident, (_, _, doc) in documents_found.items()}
    projects_found = _unique(catalog_entries["projects"], lambda p: p.id, report, "project")
    meetings_found = _unique(catalog_entries["meetings"], lambda m: m.id, report, "meeting")

    def linked(path: Path, line: int, ids: dict[str, Any], ident: str | None, what: str) -> bool:
        if ident is None or ident in ids:
            return True
        report.add(path, line, f"unknown {what} {ident!r}")
        return False

    projects: dict[str, Project] = {}
    for ident, (path, line, project) in projects_found.items():
        ok = linked(path, line, documents, project.source, "source document")
        ok &= linked(path, line, projects_found, project.parent, "parent project")
        if ok:
            projects[ident] = project
    for path, _, doc in documents_found.values():
        if doc.project is not None and doc.project not in projects:
            report.add(path, 2, f"unknown project {doc.project!r}")
    meetings: dict[str, Meeting] = {}
    for ident, (path, line, meeting) in meetings_found.items():
        if linked(path, line, documents, meeting.source, "source document") and linked(
            path, line, projects, meeting.project, "project"
        ):
            meetings[ident] = meeting
    takeaways: list[Takeaway] = []
    for _, (path, line, takeaway) in _unique(
        catalog_entries["takeaways"], lambda t: t.id, report, "takeaway"
    ).items():
        ok = linked(path, line, documents, takeaway.source, "source document")
        for meeting_id in takeaway.meetings:
            ok &= linked(path, line, meetings, meeting_id, "meeting")
        if ok:
            takeaways.append(takeaway)
    factors: list[SuccessFactor] = []
    for _, (path, line, factor) in _unique(
        catalog_entries["success_factors"], lambda f: f.id, report, "success factor"
    ).items():
        ok = linked(path, line, documents, factor.source, "source document")
        for project_id in factor.projects:
            ok &= linked(path, line, projects, project_id, "project")
        if ok:
            factors.append(factor)
    kept_summaries: list[Summary] = []
    for _, (path, _, summary) in _unique(
        summaries, lambda s: f"{s.document_id}.{s.language}", report, "summary"
    ).items():
        if linked(path, 2, documents, summary.document_id, "document in summary_of"):
            kept_summaries.append(summary)

    return KnowledgeBase(
        documents=documents,
        summaries=tuple(kept_summaries),
        projects=projects,
        meetings=meetings,
        takeaways=tuple(takeaways),
        factors=tuple(factors),
        problems=tuple(report.problems),
        checksum=knowledge_checksum(root) if root.is_dir() else "",
    )


def check_document(path: Path, root: Path) -> tuple[Document | None, list[Problem]]:
    """One document file judged by exactly the rules `load_knowledge` applies, so an upload can
    be refused with line numbers before it ever touches the knowledge directory."""
    report = _Report(root)
    try:
        return _load_document(path, report), report.problems
    except _EntryError as invalid:
        report.add(path, invalid.line, invalid.message)
    except OSError as error:
        report.add(path, 1, f"cannot read the file: {error.strerror or error}")
    return None, report.problems
