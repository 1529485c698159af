"""Logging for the process: one format, quiet libraries, and no secret ever written to a log.

The bot token is part of every Bot API URL (``https://api.telegram.org/bot<TOKEN>/sendMessage``),
and URLs turn up in library log lines and in the text of network exceptions. Anyone who can read
the logs could then run the bot, so every record is scrubbed before any handler writes it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import TextIO

REDACTED = "<redacted>"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Libraries that log every HTTP request (with the token in the URL) or progress bars at INFO.
NOISY_LOGGERS = ("httpx", "httpcore", "sentence_transformers", "transformers", "bm25s", "faiss")
#: A token inside a Bot API URL (``.../bot123456:ABC-def/getMe``), whatever token it is.
_URL_TOKEN = re.compile(r"bot\d{3,15}:[A-Za-z0-9_-]{10,}")
#: A bare token in BotFather's shape (digits, colon, 35 characters), e.g. in a pasted config.
_BARE_TOKEN = re.compile(r"(?<![\w:])\d{6,15}:[A-Za-z0-9_-]{30,}(?![\w-])")
_HANDLER_NAME = "brobygger"


class RedactingFilter(logging.Filter):
    """Replace secrets in a record's message, arguments, exception text and stack.

    The message is formatted here (``getMessage``) and the arguments dropped, because a secret can
    hide in any argument's ``str()``. The exception is rendered to ``exc_text`` and ``exc_info``
    cleared, so no later formatter renders the raw exception again with the secret in it.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = _URL_TOKEN.sub("bot" + REDACTED, text)
        return _BARE_TOKEN.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call; keep the template, not the args
            message = str(record.msg)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_redaction(redactor: RedactingFilter, logger: logging.Logger | None = None) -> None:
    """Put `redactor` on every handler of `logger` (the root logger by default).

    Handlers, not loggers: a logger's filters only see records logged on that very logger, while
    a handler's filters see everything that propagates to it.
    """
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(redactor)


def setup_logging(
    level: str, secrets: Iterable[str | None] = (), *, stream: TextIO | None = None
) -> RedactingFilter:
    """Our loggers at the configured level; chatty libraries only when something is wrong; every
    root handler scrubbed of `secrets` and of anything shaped like a bot token. Idempotent."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)  # a later call may log elsewhere; the old stream may be closed
    ours = logging.StreamHandler(stream or sys.stderr)
    ours.set_name(_HANDLER_NAME)
    ours.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(ours)
    root.setLevel(logging.WARNING)
    logging.getLogger("bot").setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    redactor = RedactingFilter(secrets)
    for handler in root.handlers:  # a filter from an earlier call may know fewer secrets
        for stale in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(stale)
    install_redaction(redactor, root)
    return redactor
