"""Admin commands: rebuild the index, add documents (files sent to the bot, web pages with /add),
list and remove them (/documents), usage figures as text and a chart, and the questions the bot
could not answer.

These handlers are registered only for ADMIN_IDS (bot/app.py); each still checks the sender
itself, so a registration mistake cannot open them to everyone, and each action is audited.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from telegram import InputFile, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot.errors import BrobyggerError
from bot.handlers.common import (
    NO_PREVIEW,
    Context,
    Who,
    answer_callback,
    callback_args,
    edit,
    get_services,
    outdated,
    send,
    who,
)
from bot.i18n import translate
from bot.knowledge.fetch import FetchError, fetch_page
from bot.knowledge.models import LANGUAGES
from bot.render import language_name, split_html
from bot.services import charts, documents, uploads
from bot.services.container import Services
from bot.services.search import ReindexReport
from bot.services.uploads import UploadError

log = logging.getLogger(__name__)

#: Telegram allows about one edit per second in a chat; progress stays comfortably below that.
PROGRESS_INTERVAL = 1.5
PROGRESS_STAGES = ("embedding", "indexing")
MAX_PROBLEMS_SHOWN = 30
STATS_PERIODS = (7, 30)
GAPS_DAYS = 30
GAPS_SHOWN = 20
CHART_DAYS = 30
DOCUMENTS_PER_PAGE = 8
#: bot_data key of the lock held while the knowledge base or the index changes.
KNOWLEDGE_LOCK = "admin.knowledge_lock"


def _knowledge_lock(context: Context) -> asyncio.Lock:
    """One knowledge change or rebuild at a time. /reindex checks it to say that a rebuild is
    already running (instead of queueing a second one silently); uploads wait for it."""
    lock = context.application.bot_data.setdefault(KNOWLEDGE_LOCK, asyncio.Lock())
    assert isinstance(lock, asyncio.Lock)
    return lock


def _today(services: Services) -> date:
    return services.clock().astimezone(services.settings.tz).date()


async def _admin(update: Update, context: Context) -> Who | None:
    """The sender, if an admin. Others never get here through app.py's filter; if they do, the
    request is dropped without a reply or an audit entry (it was no admin action)."""
    me = await who(update, context)
    if not me.is_admin:
        log.warning("admin command from non-admin user %s ignored", me.user_id)
        return None
    return me


async def _audit(services: Services, me: Who, action: str, detail: str = "") -> None:
    await services.storage.audit(
        admin_id=me.user_id, action=action, detail=detail, at=services.clock()
    )


async def _show(
    context: Context,
    chat_id: int,
    message: Message | None,
    template: str,
    lang: str,
    *,
    resend: bool = True,
    **values: Any,
) -> None:
    """Replace the text of the bot's own status message; long results continue in new
    messages. With `resend`, a result whose message is gone (deleted meanwhile) is sent anew,
    so the admin always learns the outcome."""
    if message is None:
        await send(context, chat_id, template, lang, **values)
        return
    parts = split_html(get_services(context).renderer.render(template, lang, **values))
    try:
        await message.edit_text(
            parts[0], parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
        )
    except BadRequest as error:
        if "not modified" in str(error).lower():
            pass
        elif resend:
            log.info("could not edit the status message (%s); sending the result anew", error)
            await send(context, chat_id, template, lang, **values)
            return
        else:
            raise
    for part in parts[1:]:
        await context.bot.send_message(
            chat_id, part, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
        )


class _Progress:
    """The `progress(stage, done, total)` callback of a rebuild. The build calls it from its
    worker thread, so it only schedules an edit on the event loop; edits are throttled (Telegram
    limits edits per chat) and run one after the other, so an older state never lands last."""

    def __init__(
        self,
        context: Context,
        me: Who,
        message: Message | None,
        file_name: str | None,
        *,
        interval: float = PROGRESS_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._context = context
        self._me = me
        self._message = message
        self._file_name = file_name
        self._interval = interval
        self._monotonic = monotonic
        self._loop = asyncio.get_running_loop()
        self._edits = asyncio.Lock()
        self._guard = threading.Lock()
        self._last = -math.inf
        self._closed = False
        self._pending: list[concurrent.futures.Future[None]] = []

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self._monotonic()
        with self._guard:
            if self._closed or self._message is None or now - self._last < self._interval:
                return
            self._last = now
            self._pending.append(
                asyncio.run_coroutine_threadsafe(self._edit(stage, done, total), self._loop)
            )

    async def _edit(self, stage: str, done: int, total: int) -> None:
        lang = self._me.lang
        label = translate(lang, f"admin.stage_{stage}") if stage in PROGRESS_STAGES else stage
        async with self._edits:
            try:
                await _show(
                    self._context,
                    self._me.chat_id,
                    self._message,
                    "admin_reindex_progress",
                    lang,
                    resend=False,
                    file_name=self._file_name,
                    stage=label,
                    done=done,
                    total=total,
                )
            except TelegramError as error:  # progress is a courtesy; the result still comes
                log.warning("could not show rebuild progress: %s", error)

    async def settle(self) -> None:
        """Let scheduled edits finish, so none of them overwrites the final result."""
        with self._guard:
            self._closed = True
            pending = list(self._pending)
        await asyncio.gather(*(asyncio.wrap_future(f) for f in pending), return_exceptions=True)


async def _rebuild(
    context: Context, me: Who, message: Message | None, file_name: str | None = None
) -> ReindexReport | BrobyggerError:
    """Rebuild in the background with live progress; the old index answers meanwhile."""
    progress = _Progress(context, me, message, file_name)
    try:
        return await get_services(context).search.reindex(progress)
    except BrobyggerError as error:
        log.error("rebuilding the index failed: %s", error)
        return error
    finally:
        await progress.settle()


def _seconds(value: float, lang: str) -> str:
    text = f"{value:.1f}"
    return text if lang == "en" else text.replace(".", ",")


async def reindex(update: Update, context: Context) -> None:
    """/reindex: rebuild the search index from knowledge/, showing progress in one message."""
    me = await _admin(update, context)
    if me is None:
        return
    services = get_services(context)
    lock = _knowledge_lock(context)
    if lock.locked():
        await _audit(services, me, "reindex", "refused: a rebuild is already running")
        await send(context, me.chat_id, "admin_reindex_busy", me.lang)
        return
    async with lock:
        message = await send(context, me.chat_id, "admin_reindex_started", me.lang)
        result = await _rebuild(context, me, message)
    if isinstance(result, ReindexReport):
        problems = [str(problem) for problem in result.problems]
        await _audit(
            services,
            me,
            "reindex",
            f"documents={result.meta.documents} "
            f"chunks={result.meta.chunks} problems={len(problems)}",
        )
        await _show(
            context,
            me.chat_id,
            message,
            "admin_reindex_done",
            me.lang,
            documents=result.meta.documents,
            chunks=result.meta.chunks,
            seconds=_seconds(result.seconds, me.lang),
            problems=problems,
            max_problems=MAX_PROBLEMS_SHOWN,
        )
    else:
        await _audit(services, me, "reindex", f"failed: {result}")
        await _show(
            context, me.chat_id, message, "admin_reindex_failed", me.lang, error=str(result)
        )


async def _download(context: Context, file_id: str) -> bytes:
    try:
        file = await context.bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())
    except TelegramError as error:
        log.warning("could not download an uploaded document: %s", error)
        raise UploadError("download_failed") from error


async def _refused(
    context: Context, me: Who, status: Message | None, name: str, refusal: UploadError
) -> None:
    await _audit(get_services(context), me, "upload", f"refused {name!r}: {refusal.reason}")
    await _show(
        context,
        me.chat_id,
        status,
        "admin_upload_refused",
        me.lang,
        name=name,
        reason=refusal.reason,
        values=refusal.values,
        problems=[str(problem) for problem in refusal.problems],
        max_problems=MAX_PROBLEMS_SHOWN,
    )


async def _add(
    context: Context,
    me: Who,
    status: Message | None,
    name: str,
    data: bytes,
    *,
    caption: str | None = None,
    source: str | None = None,
) -> None:
    """Read a document (in a worker thread: a large PDF takes seconds of CPU), show the admin
    what it is before indexing it, then install it and rebuild. Shared by files and /add."""
    services = get_services(context)
    settings = services.settings
    try:
        prepared = await asyncio.to_thread(
            uploads.prepare_upload,
            name,
            data,
            max_bytes=settings.max_upload_bytes,
            today=_today(services),
            caption=caption,
            source=source,
        )
        await _show(
            context,
            me.chat_id,
            status,
            "admin_upload_read",
            me.lang,
            name=name,
            prepared=prepared,
            source=source,
        )
        async with _knowledge_lock(context):
            installed = await asyncio.to_thread(
                uploads.install_document, prepared, settings.knowledge_dir
            )
            result = await _rebuild(context, me, status, name)
    except UploadError as refusal:
        await _refused(context, me, status, name, refusal)
        return
    document = installed.document
    verb = "replaced" if installed.replaced else "added"
    origin = f"{name!r}" + (f" ({source})" if source and source != name else "")
    if not isinstance(result, ReindexReport):
        await _audit(
            services, me, "upload", f"{verb} {document.id} from {origin}; rebuild failed: {result}"
        )
        await _show(
            context,
            me.chat_id,
            status,
            "admin_upload_not_indexed",
            me.lang,
            document_id=document.id,
            error=str(result),
        )
        return
    chunks = uploads.document_chunks(services.search.searcher.index.chunks, document.id)
    await _audit(services, me, "upload", f"{verb} {document.id} from {origin}; chunks={chunks}")
    await _show(
        context,
        me.chat_id,
        status,
        "admin_upload_done",
        me.lang,
        document=document,
        prepared=prepared,
        source=source,
        replaced=installed.replaced,
        document_chunks=chunks,
        documents=result.meta.documents,
        chunks=result.meta.chunks,
        seconds=_seconds(result.seconds, me.lang),
        other_languages=[
            language_name(code, me.lang) for code in LANGUAGES if code != document.language
        ],
    )


async def upload_document(update: Update, context: Context) -> None:
    """A file from an admin (PDF, Word, HTML, Markdown, text): read it, add it, rebuild."""
    message = update.effective_message
    if message is None or message.document is None:
        return
    me = await _admin(update, context)
    if me is None:
        return
    settings = get_services(context).settings
    name = message.document.file_name or "document"
    status: Message | None = None
    try:
        uploads.check_announced(name, message.document.file_size, settings.max_upload_bytes)
        status = await send(context, me.chat_id, "admin_upload_checking", me.lang, name=name)
        data = await _download(context, message.document.file_id)
    except UploadError as refusal:
        await _refused(context, me, status, name, refusal)
        return
    await _add(context, me, status, name, data, caption=message.caption)


async def add_url(update: Update, context: Context) -> None:
    """/add ADDRESS [lang=xx]: fetch a web page (checked against private addresses, size and
    time limits) and add its main text like an uploaded file."""
    me = await _admin(update, context)
    if me is None:
        return
    args = list(context.args or [])
    urls = [arg for arg in args if "://" in arg or arg.lower().startswith("www.")]
    if len(urls) != 1:
        await send(context, me.chat_id, "admin_add_usage", me.lang)
        return
    url = urls[0] if "://" in urls[0] else f"https://{urls[0]}"
    caption = " ".join(arg for arg in args if arg != urls[0])
    settings = get_services(context).settings
    status = await send(context, me.chat_id, "admin_fetching", me.lang, url=url)
    try:
        fetched = await fetch_page(
            url,
            max_bytes=settings.max_upload_bytes,
            time_limit=settings.fetch_timeout_seconds,
            allow_private=settings.allow_private_urls,
        )
    except FetchError as error:
        await _refused(context, me, status, url, UploadError.from_extract(error))
        return
    await _add(
        context,
        me,
        status,
        uploads.name_from_url(fetched.final_url),
        fetched.data,
        caption=caption,
        source=url,
    )


async def document_from_non_admin(update: Update, context: Context) -> None:
    """Someone who is not an admin sent a file: not opened, answered kindly."""
    me = await who(update, context)
    await send(context, me.chat_id, "only_admins_add", me.lang)


# --- /documents --------------------------------------------------------------------------------


def _document_buttons(
    lang: str, shown: list[documents.DocumentInfo], page: int, pages: int
) -> list[list[tuple[str, str]]]:
    rows = [
        [(translate(lang, "admin.remove_button", title=_short(doc.title)), f"doc:rm:{doc.id}")]
        for doc in shown
    ]
    paging: list[tuple[str, str]] = []
    if page > 0:
        paging.append((translate(lang, "admin.documents_previous"), f"doc:page:{page - 1}"))
    if page + 1 < pages:
        paging.append((translate(lang, "admin.documents_next"), f"doc:page:{page + 1}"))
    if paging:
        rows.append(paging)
    return rows


def _short(title: str, limit: int = 40) -> str:
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def _documents_page(
    services: Services, lang: str, page: int
) -> tuple[dict[str, Any], list[list[tuple[str, str]]]]:
    listed = documents.list_documents(services.kb)
    pages = max(1, -(-len(listed) // DOCUMENTS_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = listed[page * DOCUMENTS_PER_PAGE : (page + 1) * DOCUMENTS_PER_PAGE]
    values = {
        "documents": shown,
        "total": len(listed),
        "page": page,
        "pages": pages,
        "first": page * DOCUMENTS_PER_PAGE,
    }
    return values, _document_buttons(lang, shown, page, pages)


async def list_documents(update: Update, context: Context) -> None:
    """/documents: what the knowledge base holds, with a remove button per document."""
    me = await _admin(update, context)
    if me is None:
        return
    services = get_services(context)
    values, buttons = _documents_page(services, me.lang, 0)
    await _audit(services, me, "documents", f"shown={len(values['documents'])}")
    await send(context, me.chat_id, "admin_documents", me.lang, buttons, **values)


async def documents_button(update: Update, context: Context) -> None:
    """Paging, the question before a removal, and the removal itself."""
    me = await who(update, context)
    if not me.is_admin:
        await outdated(update, context, me.lang)
        return
    services = get_services(context)
    action, _, arg = "/".join(callback_args(update, "doc:")).partition("/")
    if action == "page" and arg.isdecimal():
        await answer_callback(update)
        values, buttons = _documents_page(services, me.lang, int(arg))
        await edit(update, context, "admin_documents", me.lang, buttons, **values)
        return
    document = services.kb.documents.get(arg)
    if action in ("rm", "del") and document is None:
        await answer_callback(update)
        await edit(
            update, context, "admin_remove_refused", me.lang, reason="unknown", values={"id": arg}
        )
        return
    if action == "rm" and document is not None:
        await answer_callback(update)
        files = documents.file_names(services.kb, document.id)
        await edit(
            update,
            context,
            "admin_remove_confirm",
            me.lang,
            [
                [
                    (translate(me.lang, "admin.remove_yes"), f"doc:del:{document.id}"),
                    (translate(me.lang, "admin.remove_no"), f"doc:keep:{document.id}"),
                ]
            ],
            document=document,
            files=files,
        )
        return
    if action == "keep":
        await answer_callback(update)
        kept = services.kb.documents.get(arg)
        await edit(update, context, "admin_remove_kept", me.lang, title=kept.title if kept else arg)
        return
    if action == "del" and document is not None:
        await answer_callback(update)
        await _remove(update, context, me, document.id, document.title)
        return
    await outdated(update, context, me.lang)


async def _remove(update: Update, context: Context, me: Who, document_id: str, title: str) -> None:
    """Delete the document's files and rebuild, one knowledge change at a time. If the rebuild
    fails, the files go back: the knowledge base always matches the index being served."""
    services = get_services(context)
    query = update.callback_query
    message = query.message if query is not None and isinstance(query.message, Message) else None
    lock = _knowledge_lock(context)
    if lock.locked():
        await _show(
            context, me.chat_id, message, "admin_remove_refused", me.lang, reason="busy", values={}
        )
        return
    async with lock:
        try:
            removed = await asyncio.to_thread(
                documents.remove_document, services.settings.knowledge_dir, document_id
            )
        except documents.DocumentError as refusal:
            await _audit(services, me, "remove", f"refused {document_id}: {refusal.reason}")
            await _show(
                context,
                me.chat_id,
                message,
                "admin_remove_refused",
                me.lang,
                reason=refusal.reason,
                values=refusal.values,
            )
            return
        await _show(
            context, me.chat_id, message, "admin_remove_started", me.lang, document=removed.document
        )
        result = await _rebuild(context, me, message)
        if not isinstance(result, ReindexReport):
            await asyncio.to_thread(documents.restore, removed)
    if not isinstance(result, ReindexReport):
        await _audit(services, me, "remove", f"{document_id} restored; rebuild failed: {result}")
        await _show(
            context,
            me.chat_id,
            message,
            "admin_remove_failed",
            me.lang,
            document=removed.document,
            error=str(result),
        )
        return
    await _audit(
        services,
        me,
        "remove",
        f"removed {document_id} ({title!r}); files={len(removed.files)} "
        f"documents={result.meta.documents} chunks={result.meta.chunks}",
    )
    await _show(
        context,
        me.chat_id,
        message,
        "admin_remove_done",
        me.lang,
        document=removed.document,
        documents=result.meta.documents,
        chunks=result.meta.chunks,
        seconds=_seconds(result.seconds, me.lang),
    )


async def stats(update: Update, context: Context) -> None:
    """/stats: users, questions, answered share and feedback over the last 7 and 30 days."""
    me = await _admin(update, context)
    if me is None:
        return
    services = get_services(context)
    today = _today(services)
    periods = [
        (days, await services.storage.stats(since=today - timedelta(days=days - 1)))
        for days in STATS_PERIODS
    ]
    await _audit(services, me, "stats")
    await send(context, me.chat_id, "admin_stats", me.lang, periods=periods, languages=LANGUAGES)
    await _send_chart(context, me, today)


async def _send_chart(context: Context, me: Who, today: date) -> None:
    """The last 30 days as a picture, drawn in a worker thread. The text has been sent already,
    so a failure here costs the picture only."""
    services = get_services(context)
    since = today - timedelta(days=CHART_DAYS - 1)
    rows = await services.storage.daily_questions(since=since)
    data = charts.chart_data(rows, since, today)
    try:
        png = await asyncio.to_thread(charts.render_stats_chart, data, me.lang)
        caption = services.renderer.render("admin_stats_chart", me.lang, days=CHART_DAYS)
        await context.bot.send_photo(
            me.chat_id,
            photo=InputFile(png, filename="stats.png"),
            caption=caption,
            parse_mode=ParseMode.HTML,
        )
    except (TelegramError, ValueError, RuntimeError) as error:
        log.warning("could not send the /stats chart: %s", error)


async def gaps(update: Update, context: Context) -> None:
    """/gaps: the most frequent questions the bot could not answer, to close knowledge gaps."""
    me = await _admin(update, context)
    if me is None:
        return
    services = get_services(context)
    found = await services.storage.gaps(
        since=_today(services) - timedelta(days=GAPS_DAYS), limit=GAPS_SHOWN
    )
    await _audit(services, me, "gaps", f"shown={len(found)}")
    await send(
        context,
        me.chat_id,
        "admin_gaps",
        me.lang,
        gaps=found,
        days=GAPS_DAYS,
        retention_days=services.settings.unanswered_retention_days,
    )
