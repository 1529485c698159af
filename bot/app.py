"""The Telegram application: built by one factory (tests build the very same one) and started by
`brobygger run`."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from bot.handlers import admin, errors, meetings, privacy, projects, questions, start, takeaways
from bot.request import AnswersFirstRateLimiter, RetryingRequest
from bot.safety import default_rules
from bot.services.container import Services
from bot.settings import Settings

log = logging.getLogger(__name__)
REMINDER_SWEEP_SECONDS = 60.0
#: HTTP connections to the Bot API. Telegram takes 30 calls a second, so a few dozen in flight is
#: plenty even at half a second per call; and httpcore's pool checks every connection against
#: every other on each request (quadratic), which with PTB's default of 256 cost the bot more CPU
#: than answering when 100 people asked at once (issue 10, benchmarks/load.py).
CONNECTIONS = 32


def register_handlers(app: Application[Any, Any, Any, Any, Any, Any], settings: Settings) -> None:
    """Every handler, in one visible place. Order matters where noted: the first match wins."""
    admins = filters.User(user_id=list(settings.admin_ids)) if settings.admin_ids else None
    private_or_addressed = filters.ChatType.PRIVATE | filters.Entity("mention") | filters.REPLY

    app.add_handler(CommandHandler("start", start.start))
    app.add_handler(CommandHandler("help", start.help_command))
    app.add_handler(CommandHandler("language", start.choose_language))
    app.add_handler(CommandHandler("projects", projects.list_projects))
    app.add_handler(CommandHandler("meetings", meetings.upcoming_meetings))
    app.add_handler(CommandHandler("takeaways", takeaways.list_takeaways))
    app.add_handler(CommandHandler("factors", takeaways.list_factors))
    app.add_handler(CommandHandler("privacy", privacy.privacy))
    app.add_handler(CommandHandler("forget", privacy.forget))
    # Admin commands exist only for ADMIN_IDS: for anyone else they fall through to "unknown".
    if admins is not None:
        app.add_handler(CommandHandler("reindex", admin.reindex, filters=admins, block=False))
        app.add_handler(CommandHandler("stats", admin.stats, filters=admins))
        app.add_handler(CommandHandler("gaps", admin.gaps, filters=admins))
        app.add_handler(CommandHandler("documents", admin.list_documents, filters=admins))
        app.add_handler(CommandHandler("add", admin.add_url, filters=admins, block=False))
        app.add_handler(
            MessageHandler(filters.Document.ALL & admins, admin.upload_document, block=False)
        )
    # Anyone else who sends a file is told kindly that only admins add documents.
    app.add_handler(
        MessageHandler(
            filters.Document.ALL & filters.ChatType.PRIVATE, admin.document_from_non_admin
        )
    )

    app.add_handler(CallbackQueryHandler(start.language_button, pattern=r"^lang:"))
    app.add_handler(CallbackQueryHandler(start.role_button, pattern=r"^role:"))
    app.add_handler(CallbackQueryHandler(questions.feedback_button, pattern=r"^fb:"))
    app.add_handler(CallbackQueryHandler(questions.more_button, pattern=r"^more:"))
    app.add_handler(CallbackQueryHandler(questions.full_button, pattern=r"^full:"))
    app.add_handler(CallbackQueryHandler(questions.suggestion_button, pattern=r"^sg:"))
    app.add_handler(CallbackQueryHandler(projects.project_button, pattern=r"^proj:"))
    app.add_handler(CallbackQueryHandler(meetings.meeting_button, pattern=r"^meet:"))
    app.add_handler(CallbackQueryHandler(takeaways.takeaway_button, pattern=r"^tk:"))
    app.add_handler(CallbackQueryHandler(privacy.forget_button, pattern=r"^forget:"))
    app.add_handler(CallbackQueryHandler(admin.documents_button, pattern=r"^doc:", block=False))
    app.add_handler(CallbackQueryHandler(start.unknown_button))  # stale or forged data

    # Free text is a question (in groups only when the bot is addressed); must follow commands.
    # An edited question is answered again, as a new question: the edit is what the person meant.
    app.add_handler(
        MessageHandler(
            filters.TEXT
            & ~filters.COMMAND
            & private_or_addressed
            & (filters.UpdateType.MESSAGE | filters.UpdateType.EDITED_MESSAGE),
            questions.ask,
            block=False,
        )
    )
    app.add_handler(
        MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE, start.unknown_command)
    )
    app.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE
            & filters.UpdateType.MESSAGE
            & ~filters.TEXT
            & ~filters.COMMAND,
            start.unsupported_message,
        )
    )
    app.add_error_handler(errors.on_error)


def build_application(
    settings: Settings,
    services: Services | None = None,
    *,
    rate_limiter: bool = True,
    request: BaseRequest | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The application with all handlers. Pass `services` to share an already loaded model
    (tests do); otherwise they are created in post_init and closed in post_shutdown."""
    default_rules()  # a broken crisis phrase file stops the bot here, before any message

    async def post_init(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        if "services" not in app.bot_data:
            app.bot_data["services"] = await Services.create(settings)
        await start.publish_commands(app)
        if app.job_queue is not None:
            app.job_queue.run_repeating(
                meetings.send_due_reminders,
                interval=REMINDER_SWEEP_SECONDS,
                first=1.0,
                name="reminders",
            )
            app.job_queue.run_repeating(
                privacy.purge_old_questions, interval=6 * 3600, first=5.0, name="retention"
            )

    async def post_shutdown(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        existing = app.bot_data.get("services")
        if isinstance(existing, Services) and services is None:
            await existing.close()

    builder = (
        ApplicationBuilder()
        .token(settings.require_token())
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_api_base_file_url)
        .concurrent_updates(True)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
    )
    if request is not None:  # the console answers Bot API calls in-process
        builder = builder.request(request).get_updates_request(request)
    else:  # transient network errors and 5xx are retried (bot/request.py explains the limits)
        builder = builder.request(
            RetryingRequest(
                connection_pool_size=CONNECTIONS, connect_timeout=10.0, read_timeout=30.0
            )
        )
    if rate_limiter:
        # Telegram's limits, spent on answers first (chat actions yield: bot/request.py)
        limiter: Any = AnswersFirstRateLimiter(max_retries=3)  # PTB types it for defaults only
        builder = builder.rate_limiter(limiter)
    app = builder.build()
    if services is not None:
        app.bot_data["services"] = services
    register_handlers(app, settings)
    return app


def run_bot(settings: Settings) -> int:
    """Long polling by default; a webhook when WEBHOOK_URL is set (secret checked by PTB)."""
    app = build_application(settings)
    if settings.webhook_url:
        log.info(
            "starting in webhook mode on %s:%s", settings.webhook_listen, settings.webhook_port
        )
        app.run_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path="telegram",
            webhook_url=settings.webhook_url,
            secret_token=settings.webhook_secret,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        log.info("starting with long polling")
        app.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0
