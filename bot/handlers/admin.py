"""Admin commands: rebuild the index, add documents by sending them, usage figures and the
questions the bot could not answer.

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

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot.errors import BrobyggerError
from bot.handlers.common import NO_PREVIEW, Context, Who, get_services, send, who
from bot.i18n import translate
from bot.knowledge.models import LANGUAGES
from bot.render import language_name, split_html
from bot.services import uploads
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


async def upload_document(update: Update, context: Context) -> None:
    """A .md or .txt file from an admin: check it, add it to knowledge/documents/, rebuild."""
    message = update.effective_message
    if message is None or message.document is None:
        return
    me = await _admin(update, context)
    if me is None:
        return
    services = get_services(context)
    settings = services.settings
    name = message.document.file_name or ""
    status: Message | None = None
    try:
        uploads.check_announced(name, message.document.file_size, settings.max_upload_bytes)
        status = await send(context, me.chat_id, "admin_upload_checking", me.lang, name=name)
        data = await _download(context, message.document.file_id)
        prepared = await asyncio.to_thread(
            uploads.prepare_upload,
            name,
            data,
            max_bytes=settings.max_upload_bytes,
            today=_today(services),
            caption=message.caption,
        )
        async with _knowledge_lock(context):
            installed = await asyncio.to_thread(
                uploads.install_document, prepared, settings.knowledge_dir
            )
            result = await _rebuild(context, me, status, name)
    except UploadError as refusal:
        await _audit(services, me, "upload", f"refused {name!r}: {refusal.reason}")
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
        return
    document = installed.document
    verb = "replaced" if installed.replaced else "added"
    if not isinstance(result, ReindexReport):
        await _audit(
            services, me, "upload", f"{verb} {document.id} from {name!r}; rebuild failed: {result}"
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
    await _audit(services, me, "upload", f"{verb} {document.id} from {name!r}; chunks={chunks}")
    await _show(
        context,
        me.chat_id,
        status,
        "admin_upload_done",
        me.lang,
        document=document,
        replaced=installed.replaced,
        converted=prepared.converted,
        language_given=prepared.language_given,
        document_chunks=chunks,
        documents=result.meta.documents,
        chunks=result.meta.chunks,
        seconds=_seconds(result.seconds, me.lang),
        other_languages=[
            language_name(code, me.lang) for code in LANGUAGES if code != document.language
        ],
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
