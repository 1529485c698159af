"""`brobygger`: reindex, ask, chat, run, eval, doctor, add, documents, remove.

Errors are one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.errors import BrobyggerError
from bot.knowledge.models import LANGUAGES
from bot.logging_setup import setup_logging
from bot.retrieval.search import SearchResult
from bot.settings import Settings, load_settings

log = logging.getLogger("bot")


def _service(settings: Settings, *, build_if_missing: bool, err: TextIO) -> Any:
    from bot.services.search import SearchService

    service = SearchService(settings)
    if service.load(build_if_missing=build_if_missing):
        print(
            f"Built the index in {settings.index_dir} (it was missing, or built with another "
            "model or an older version).",
            file=err,
        )
    elif service.is_stale():
        print("The knowledge changed since the index was built; rebuilding it now.", file=err)
        report = service.rebuild()
        for problem in report.problems:
            print(f"warning: {problem}", file=err)
    return service


def result_json(result: SearchResult, documents: dict[str, str]) -> dict[str, Any]:
    """The `ask --json` contract (DESIGN.md): keep keys and meaning stable."""
    return {
        "query": result.query,
        "lang": result.lang,
        "answered": result.answered,
        "results": [
            {
                "rank": hit.rank,
                "score": round(hit.score, 4),
                "document": documents.get(
                    hit.chunk.document, f"knowledge/documents/{hit.chunk.document}.md"
                ),
                "title": hit.chunk.title,
                "lang": hit.chunk.lang,
                "text": hit.chunk.text,
            }
            for hit in result.hits
        ],
    }


def result_text(result: SearchResult, documents: dict[str, str]) -> str:
    lines = [f"Question ({result.lang}): {result.query}"]
    if not result.answered:
        lines.append(
            "I could not find a good answer to that in the knowledge base. "
            "I know about NEET projects, meetings, conference takeaways and success "
            "factors - try asking about one of those."
        )
        if result.hits:
            lines.append("Closest passages (probably not what you are looking for):")
    for hit in result.hits:
        source = documents.get(hit.chunk.document, hit.chunk.document)
        lines.append(
            f"\n{hit.rank}. {hit.chunk.title} [{hit.chunk.lang}] - {source} (score {hit.score:.2f})"
        )
        lines.extend("   " + line for line in hit.chunk.text.splitlines())
    return "\n".join(lines)


def _questions(source: str) -> list[str]:
    stream: Iterable[str] = (
        sys.stdin if source == "-" else Path(source).read_text(encoding="utf-8").splitlines()
    )
    return [line.strip() for line in stream if line.strip()]


def cmd_reindex(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services.search import SearchService

    service = SearchService(settings)
    started = time.perf_counter()
    report = service.rebuild()
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    meta = report.meta
    print(
        f"Indexed {meta.documents} documents as {meta.chunks} chunks with {meta.model} "
        f"({meta.dimension} dimensions, {meta.dense_index} index) in "
        f"{time.perf_counter() - started:.1f} s -> {settings.index_dir}"
    )
    if report.problems:
        print(f"{len(report.problems)} problem(s) in the knowledge base were skipped (see above).")
    return 0


def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    if not args.questions and not args.question:
        raise BrobyggerError("ask needs a QUESTION, or --questions FILE (- for stdin)")
    questions = _questions(args.questions) if args.questions else [" ".join(args.question)]
    if not args.questions and not questions[0].strip():
        raise BrobyggerError("the question is empty")
    service = _service(settings, build_if_missing=True, err=sys.stderr)
    documents = {doc.id: doc.path for doc in service.knowledge.documents.values()}
    results = service.ask_many(questions, top_k=args.top_k, lang=args.lang)
    for result in results:
        if args.json:
            print(json.dumps(result_json(result, documents), ensure_ascii=False))
        else:
            print(result_text(result, documents) + ("\n" if len(results) > 1 else ""))
    return 0


def _audit(settings: Settings, action: str, detail: str) -> None:
    """Command-line changes go to the same audit log as the bot's (admin id 0: the shell)."""
    import asyncio
    from datetime import UTC, datetime

    from bot.storage import Storage

    async def write() -> None:
        async with await Storage.open(settings.database_path) as storage:
            await storage.audit(
                admin_id=0, action=action, detail=f"{detail} (command line)", at=datetime.now(UTC)
            )

    asyncio.run(write())


def _read_source(settings: Settings, source: str) -> tuple[str, bytes, str]:
    """(name, bytes, source) of a file path or a web address."""
    if "://" in source:
        import asyncio

        from bot.knowledge.fetch import fetch_page
        from bot.services.uploads import name_from_url

        fetched = asyncio.run(
            fetch_page(
                source,
                max_bytes=settings.max_upload_bytes,
                time_limit=settings.fetch_timeout_seconds,
                allow_private=settings.allow_private_urls,
            )
        )
        return name_from_url(fetched.final_url), fetched.data, source
    path = Path(source)
    size = path.stat().st_size
    if size > settings.max_upload_bytes:
        from bot.services.uploads import UploadError

        raise UploadError(
            "too_big", size_kb=-(-size // 1024), limit_kb=settings.max_upload_bytes // 1024
        )
    return path.name, path.read_bytes(), path.name


def _refusal_text(error: BrobyggerError) -> str:
    """An upload refusal in the same words the bot uses (English)."""
    from bot.i18n import translate

    reason = getattr(error, "reason", None)
    if reason is None:
        return str(error)
    values = getattr(error, "values", {})
    try:
        text = translate("en", f"admin.refused_{reason}", **values)
    except KeyError:
        text = str(error)
    problems = getattr(error, "problems", ())
    return " ".join([text, *(str(problem) for problem in problems)])


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date

    from bot.knowledge.extract import ExtractError
    from bot.services import uploads
    from bot.services.search import SearchService

    try:
        name, data, source = _read_source(settings, args.source)
        prepared = uploads.prepare_upload(
            name,
            data,
            max_bytes=settings.max_upload_bytes,
            today=date.today(),
            language=args.lang,
            title=args.title,
            source=source,
        )
    except (uploads.UploadError, ExtractError) as error:
        raise BrobyggerError(f"{args.source} was not added: {_refusal_text(error)}") from None
    how = "given" if prepared.language_given else "detected"
    print(f"Title: {prepared.title}")
    print(f"Language: {prepared.language} ({how})")
    print(f"Format: {prepared.format}; passages: {prepared.passages}")
    for line in prepared.preview:
        print(f"  | {line}")
    try:
        installed = uploads.install_document(prepared, settings.knowledge_dir)
    except uploads.UploadError as error:
        raise BrobyggerError(f"{args.source} was not added: {_refusal_text(error)}") from None
    verb = "Replaced" if installed.replaced else "Added"
    print(f"{verb} {installed.document.path}; rebuilding the index…")
    report = SearchService(settings).rebuild()
    _audit(
        settings,
        "upload",
        f"{verb.lower()} {installed.document.id} from {source!r}; chunks={prepared.passages}",
    )
    print(
        f"Indexed {report.meta.documents} documents as {report.meta.chunks} chunks "
        f"in {report.seconds:.1f} s."
    )
    return 0


def cmd_documents(settings: Settings, args: argparse.Namespace) -> int:
    from bot.knowledge.loader import load_knowledge
    from bot.services.documents import list_documents

    listed = list_documents(load_knowledge(settings.knowledge_dir))
    if args.json:
        for info in listed:
            row = {
                "id": info.id,
                "title": info.title,
                "language": info.language,
                "source": info.source,
                "added": info.added.isoformat() if info.added else None,
                "path": info.path,
            }
            print(json.dumps(row, ensure_ascii=False))
        return 0
    for info in listed:
        added = info.added.isoformat() if info.added else "original"
        print(f"{info.id}\t{info.language}\t{added}\t{info.title}\t{info.source}")
    print(f"{len(listed)} document(s) in {settings.knowledge_dir}", file=sys.stderr)
    return 0


def cmd_remove(settings: Settings, args: argparse.Namespace) -> int:
    from bot.errors import IndexBuildError
    from bot.services import documents
    from bot.services.search import SearchService

    try:
        removed = documents.remove_document(settings.knowledge_dir, args.id)
    except documents.DocumentError as error:
        from bot.i18n import translate

        raise BrobyggerError(
            translate("en", f"admin.remove_{error.reason}", **error.values)
        ) from None
    print(f"Removed {len(removed.files)} file(s) of {args.id}; rebuilding the index…")
    try:
        report = SearchService(settings).rebuild()
    except IndexBuildError as error:
        documents.restore(removed)
        _audit(settings, "remove", f"{args.id} restored; rebuild failed: {error}")
        raise BrobyggerError(f"{args.id} was put back: {error}") from None
    _audit(
        settings,
        "remove",
        f"removed {args.id} ({removed.document.title!r}); files={len(removed.files)} "
        f"documents={report.meta.documents} chunks={report.meta.chunks}",
    )
    print(
        f"Indexed {report.meta.documents} documents as {report.meta.chunks} chunks "
        f"in {report.seconds:.1f} s."
    )
    return 0


def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    from bot.console import run_console

    service = _service(settings, build_if_missing=True, err=sys.stderr)
    return run_console(settings, service, user_id=args.user_id, language=args.lang)


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import run_bot

    settings.require_token()
    return run_bot(settings)


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    from bot.evaluation import VARIANTS, run_evaluation
    from bot.retrieval.embedder import load_embedder
    from bot.settings import BUNDLED_MINILM

    service = _service(settings, build_if_missing=True, err=sys.stderr)
    variants = [
        v
        for v in VARIANTS
        if (v.documents_only or not args.documents_only) and (not v.distractors or args.distractors)
    ]
    previous = load_embedder(BUNDLED_MINILM) if args.previous else None
    status = run_evaluation(
        service,
        Path(args.questions_file),
        output=args.output,
        variants=variants,
        distractors_dir=Path(args.distractors_dir),
        previous=previous,
        benchmarks=Path(args.benchmarks) if args.benchmarks else None,
    )
    if args.dialogues_file:  # conversations and reply lengths: their own section of each file
        from bot.evaluation_dialogues import run_conversation_evaluation

        outputs = [Path(p) for p in (args.output, args.benchmarks) if p]
        run_conversation_evaluation(
            service, Path(args.dialogues_file), Path(args.questions_file), outputs=outputs
        )
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brobygger",
        description="Brobygger: answers about NEET projects, meetings, conference takeaways and "
        "success factors from the documents in knowledge/.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("reindex", help="build the search index from knowledge/ and swap it in")

    ask = sub.add_parser("ask", help="answer a question from the knowledge base")
    ask.add_argument("question", nargs="*", help="the question, in English, Swedish or Danish")
    ask.add_argument("--json", action="store_true", help="print one JSON object per question")
    ask.add_argument("--top-k", type=int, default=5, metavar="K", help="passages to show (1-50)")
    ask.add_argument("--lang", choices=LANGUAGES, help="the question's language (default: guess)")
    ask.add_argument(
        "--questions",
        metavar="FILE",
        help="one question per line; '-' reads stdin; the model loads once",
    )

    chat = sub.add_parser("chat", help="talk to the bot in this terminal (no Telegram needed)")
    chat.add_argument("--lang", choices=LANGUAGES, default=None, help="your language")
    chat.add_argument("--user-id", type=int, default=1, help="pretend to be this Telegram user")

    sub.add_parser("run", help="run the Telegram bot (long polling, or webhook if WEBHOOK_URL)")

    sub.add_parser(
        "doctor",
        help="check settings, knowledge, index, database and Telegram; exit 1 if one fails",
    )

    add = sub.add_parser(
        "add", help="add a document (PDF, Word, HTML, Markdown, text) or a web page, then reindex"
    )
    add.add_argument("source", metavar="FILE|URL", help="a file, or an http(s) address")
    add.add_argument(
        "--lang",
        choices=LANGUAGES,
        help="the document's language (default: detected; a knowledge Markdown file's front "
        "matter names its own)",
    )
    add.add_argument(
        "--title", help="the title (default: the document's metadata or first heading)"
    )

    documents = sub.add_parser("documents", help="list the documents in the knowledge base")
    documents.add_argument("--json", action="store_true", help="one JSON object per document")

    remove = sub.add_parser("remove", help="remove a document and its summaries, then reindex")
    remove.add_argument("id", help="the document id (see `brobygger documents`)")

    evaluation = sub.add_parser("eval", help="measure retrieval quality against the baselines")
    evaluation.add_argument("--questions-file", default="benchmarks/data/questions.yaml")
    evaluation.add_argument("--output", default=None, help="also write the report (Markdown)")
    evaluation.add_argument(
        "--documents-only",
        action="store_true",
        help="only the index of the documents alone (no summaries, no catalog cards)",
    )
    evaluation.add_argument(
        "--distractors",
        action="store_true",
        help="also evaluate with the fictional look-alike documents added",
    )
    evaluation.add_argument("--distractors-dir", default="benchmarks/data/distractors")
    evaluation.add_argument(
        "--previous",
        action="store_true",
        help="also evaluate the previous default (all-MiniLM-L6-v2, v0.1 settings)",
    )
    evaluation.add_argument(
        "--dialogues-file",
        default="benchmarks/data/dialogues.yaml",
        help="two-turn dialogues for the conversation figures ('' to skip them)",
    )
    evaluation.add_argument(
        "--benchmarks",
        default=None,
        metavar="FILE",
        help="also write the retrieval and conversation figures into FILE's sections",
    )
    return parser


COMMANDS = {
    "reindex": cmd_reindex,
    "ask": cmd_ask,
    "chat": cmd_chat,
    "run": cmd_run,
    "eval": cmd_eval,
    "add": cmd_add,
    "documents": cmd_documents,
    "remove": cmd_remove,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "ask" and not 1 <= args.top_k <= 50:
        print("brobygger: error: --top-k must be between 1 and 50", file=sys.stderr)
        return 2
    if args.command == "doctor":
        from bot.doctor import doctor

        return doctor(sys.stdout)  # reports bad settings as a check instead of failing on them
    try:
        settings = load_settings()
        setup_logging(settings.log_level, (settings.telegram_bot_token, settings.webhook_secret))
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault(
            "PTB_TIMEDELTA", "true"
        )  # durations as timedelta (PTB 22 default soon)
        return COMMANDS[args.command](settings, args)
    except BrobyggerError as error:
        print(f"brobygger: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except FileNotFoundError as error:
        print(f"brobygger: error: file not found: {error.filename}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
