"""A local stand-in for the Telegram Bot API, for end-to-end tests of the bot.

The point of this module is fidelity where bots usually break in production: HTML that
Telegram refuses, texts that are too long once entities are decoded, callback data over 64
bytes, "message is not modified" on repeated edits, flood control and blocked users. The
server speaks the real wire protocol (``/bot<token>/<method>``, form, multipart or JSON
bodies, Telegram-shaped JSON answers), so the bot under test runs unmodified with only
``base_url``/``base_file_url`` pointed here.

HTML is parsed by TDLib itself (the PyPI package ``tdjson``, synchronous ``parseTextEntities``),
which is what the Bot API server runs, so error descriptions and byte offsets are Telegram's.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import mimetypes
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import aiohttp
import tdjson
from aiohttp import web

__all__ = [
    "ApiErrorRecord",
    "CallbackAnswer",
    "EntityParseError",
    "InjectedFault",
    "Request",
    "Sent",
    "StoredMessage",
    "StubTimeoutError",
    "TelegramStub",
    "UploadedFile",
    "parse_html",
    "utf16_len",
]

JSON = dict[str, Any]

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024

TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
BLOCKED_PRIVATE = "Forbidden: bot was blocked by the user"
BLOCKED_GROUP = "Forbidden: bot was kicked from the group chat"

# Methods whose success puts a new message in a chat; `next_reply` looks only at these.
NEW_MESSAGE_METHODS = frozenset(
    {
        "sendMessage",
        "sendDocument",
        "sendPhoto",
        "sendAudio",
        "sendVideo",
        "sendVoice",
        "sendAnimation",
        "sendSticker",
    }
)

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

# Checked in this order by the Bot API server; the first one present wins.
BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "callback_game",
    "pay",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "login_url",
    "web_app",
    "copy_text",
)

COMMAND_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)

# Form-encoded requests carry these as JSON strings (that is how PTB serialises them).
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "reply_parameters",
        "link_preview_options",
        "commands",
        "scope",
        "allowed_updates",
        "message_ids",
        "menu_button",
    }
)
_INT_PARAMS = frozenset(
    {
        "message_id",
        "offset",
        "limit",
        "cache_time",
        "max_connections",
        "message_thread_id",
        "reply_to_message_id",
        "user_id",
        "duration",
        "width",
        "height",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "show_alert",
        "drop_pending_updates",
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "disable_content_type_detection",
        "has_spoiler",
        "show_caption_above_media",
    }
)

# Keys under which a Message carries a file, and the folder getFile reports for it.
_MEDIA_FOLDERS = {
    "document": "documents",
    "photo": "photos",
    "audio": "music",
    "video": "videos",
    "voice": "voice",
    "animation": "animations",
    "sticker": "stickers",
}
_MEDIA_DEFAULT_MIME = {
    "document": "application/octet-stream",
    "photo": "image/jpeg",
    "audio": "audio/mpeg",
    "video": "video/mp4",
    "voice": "audio/ogg",
    "animation": "video/mp4",
    "sticker": "image/webp",
}


# --------------------------------------------------------------------------------------
# HTML entity parsing: TDLib's own parser, through the tdjson bindings
# --------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """Raised with TDLib's own wording, so the stub's 400s read exactly like Telegram's."""


def utf16_len(text: str) -> int:
    """Telegram measures lengths and entity offsets in UTF-16 code units, not code points."""
    return len(text.encode("utf-16-le")) // 2


def _td_execute(request: JSON) -> JSON:
    """A synchronous TDLib request (no client, no network): the parsers are pure functions."""
    answer = tdjson.td_execute(json.dumps(request).encode("utf-8"))
    if answer is None:
        raise RuntimeError(f"TDLib gave no answer to {request['@type']}")
    result: JSON = json.loads(answer)
    return result


# TDLib logs to stderr at verbosity 5 by default; the tests want a quiet parser.
_td_execute({"@type": "setLogVerbosityLevel", "new_verbosity_level": 0})

_PARSE_ERROR_PREFIX = "Can't parse entities: "
#: TDLib's parseTextEntities answers "Text is too long" for longer input (measured, tdjson 1.8).
TDLIB_MAX_TEXT = 65536
# A bare "&" that starts no entity: Telegram keeps it, but it means the text was not escaped.
_BARE_AMPERSAND = re.compile(r"&(?![A-Za-z][A-Za-z0-9]*;|#[0-9]+;|#[xX][0-9A-Fa-f]+;)")
# TDLib's textEntityType -> the Bot API's MessageEntity (type, and the field that carries its
# argument). textEntityTypeDateTime (<tg-time>) is accepted but not modelled, as before.
_BOT_API_TYPES: dict[str, tuple[str, str | None, str | None]] = {
    "textEntityTypeBold": ("bold", None, None),
    "textEntityTypeItalic": ("italic", None, None),
    "textEntityTypeUnderline": ("underline", None, None),
    "textEntityTypeStrikethrough": ("strikethrough", None, None),
    "textEntityTypeSpoiler": ("spoiler", None, None),
    "textEntityTypeCode": ("code", None, None),
    "textEntityTypePre": ("pre", None, None),
    "textEntityTypePreCode": ("pre", "language", "language"),
    "textEntityTypeTextUrl": ("text_link", "url", "url"),
    "textEntityTypeMentionName": ("text_mention", "user_id", "user"),
    "textEntityTypeCustomEmoji": ("custom_emoji", "custom_emoji_id", "custom_emoji_id"),
    "textEntityTypeBlockQuote": ("blockquote", None, None),
    "textEntityTypeExpandableBlockQuote": ("expandable_blockquote", None, None),
}


def _bot_api_entity(entity: JSON) -> JSON | None:
    kind = entity["type"]
    known = _BOT_API_TYPES.get(kind["@type"])
    if known is None:
        return None
    name, td_field, bot_field = known
    result: JSON = {"type": name, "offset": entity["offset"], "length": entity["length"]}
    if td_field is not None and bot_field is not None:
        value = kind[td_field]
        if bot_field == "user":
            result["user"] = {"id": int(value), "is_bot": False, "first_name": ""}
        elif value:
            result[bot_field] = value
    return result


def parse_html(text: str, *, strict_ampersand: bool = False) -> tuple[str, list[JSON]]:
    """Decode Telegram HTML into (plain text, Bot API entities) with TDLib, or raise.

    This is ``parseTextEntities`` with ``textParseModeHTML``, the code the Bot API server runs,
    so what it refuses Telegram refuses, in the same words. Exposed so formatting code can be
    unit-tested against Telegram's rules without a bot. ``strict_ampersand`` is the stub's own
    extra: it rejects a bare "&" that is not an entity; Telegram keeps such an "&" literally,
    but it is a sign the text was not escaped.
    """
    if strict_ampersand:
        bare = _BARE_AMPERSAND.search(text)
        if bare is not None:
            offset = len(text[: bare.start()].encode("utf-8"))
            raise EntityParseError(f'Unescaped "&" at byte offset {offset} (stub strict mode)')
    parsed = _td_execute(
        {
            "@type": "parseTextEntities",
            "text": text,
            "parse_mode": {"@type": "textParseModeHTML"},
        }
    )
    if parsed["@type"] == "error":
        message = str(parsed["message"])
        raise EntityParseError(message.removeprefix(_PARSE_ERROR_PREFIX))
    entities = [_bot_api_entity(entity) for entity in parsed["entities"]]
    return str(parsed["text"]), [entity for entity in entities if entity is not None]


def _checked_link(url: str) -> str | None:
    """TDLib's check of a link (LinkManager::get_checked_link, as used for <a href>): the
    normalised link, or None where Telegram would drop it."""
    if not url:
        return None
    try:
        _, entities = parse_html(f'<a href="{html.escape(url, quote=True)}">x</a>')
    except EntityParseError:
        return None
    links = [entity["url"] for entity in entities if entity["type"] == "text_link"]
    return str(links[0]) if links else None


_TRIM_CHARS = " \t\r\n"


def _trim(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Telegram strips surrounding whitespace; entity offsets must follow the shift."""
    stripped_left = text.lstrip(_TRIM_CHARS)
    shift = utf16_len(text) - utf16_len(stripped_left)
    result = stripped_left.rstrip(_TRIM_CHARS)
    total = utf16_len(result)
    fixed: list[JSON] = []
    for entity in entities:
        start = max(0, entity["offset"] - shift)
        end = min(total, entity["offset"] + entity["length"] - shift)
        if end > start:
            fixed.append({**entity, "offset": start, "length": end - start})
    return result, fixed


def _bot_command_entities(text: str) -> list[JSON]:
    """Telegram clients mark /commands; PTB's CommandHandler relies on that entity."""
    result: list[JSON] = []
    for match in re.finditer(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?", text):
        before = text[match.start() - 1] if match.start() else ""
        after = text[match.end()] if match.end() < len(text) else ""
        if before and (before.isalnum() or before in "_/<>"):
            continue
        if after and (after.isalnum() or after in "_/<>@"):
            continue
        result.append(
            {
                "type": "bot_command",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return result


# --------------------------------------------------------------------------------------
# Records the tests look at
# --------------------------------------------------------------------------------------


@dataclass
class UploadedFile:
    """A multipart file part, kept whole so tests can compare the exact bytes the bot sent."""

    filename: str | None
    data: bytes
    content_type: str | None = None

    def __repr__(self) -> str:  # keep request logs readable
        return f"UploadedFile({self.filename!r}, {len(self.data)} bytes, {self.content_type!r})"


class Request(NamedTuple):
    method: str
    params: JSON


@dataclass
class ApiErrorRecord:
    """Kept so a test can assert that the bot never provoked a 4xx without noticing."""

    method: str
    params: JSON
    status: int
    description: str
    injected: bool = False


@dataclass
class InjectedFault:
    method: str
    status: int
    description: str
    retry_after: int | None
    times: int
    chat_id: int | str | None
    delay: float


@dataclass
class Sent:
    """One successful bot output that changes what a user sees (send, edit or delete)."""

    method: str
    chat_id: int
    message_id: int | None
    text: str | None = None  # plain text (or caption) as the user sees it
    html: str | None = None  # the raw text as sent, when parse_mode was HTML
    raw_text: str | None = None  # the raw text as sent, whatever the parse_mode
    parse_mode: str | None = None
    entities: list[JSON] = field(default_factory=list)
    reply_markup: JSON | None = None
    media_type: str | None = None
    document_name: str | None = None
    document_bytes: bytes | None = None
    document_mime: str | None = None
    file_id: str | None = None
    params: JSON = field(default_factory=dict)
    message: JSON | None = None  # the Message object returned to the bot
    timestamp: float = field(default_factory=time.time)

    @property
    def buttons(self) -> list[tuple[str, str | None]]:
        return TelegramStub.buttons(self)


@dataclass
class StoredMessage:
    """The current state of one message in a chat, as a client would render it after edits."""

    chat_id: int
    message_id: int
    from_bot: bool
    kind: str  # "text" or a media key such as "document"
    base: JSON  # Message fields that edits do not touch
    text: str | None = None  # text, or caption for media
    raw_text: str | None = None
    html: str | None = None
    entities: list[JSON] = field(default_factory=list)
    reply_markup: JSON | None = None  # any markup sent; only inline keyboards are echoed
    edit_date: int | None = None
    deleted: bool = False
    file_id: str | None = None

    @property
    def inline_markup(self) -> JSON | None:
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            return self.reply_markup
        return None

    def to_json(self) -> JSON:
        message = dict(self.base)
        if self.kind == "text":
            message["text"] = self.text or ""
            if self.entities:
                message["entities"] = self.entities
        elif self.text:
            message["caption"] = self.text
            if self.entities:
                message["caption_entities"] = self.entities
        if self.inline_markup is not None:
            message["reply_markup"] = self.inline_markup
        if self.edit_date is not None:
            message["edit_date"] = self.edit_date
        return message

    @property
    def buttons(self) -> list[tuple[str, str | None]]:
        return TelegramStub.buttons(self)


@dataclass
class CallbackAnswer:
    query_id: str
    update_id: int
    callback_data: str | None
    chat_id: int | None
    message_id: int | None
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    timestamp: float = field(default_factory=time.time)


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes | None
    file_name: str | None
    mime_type: str | None


class StubTimeoutError(AssertionError):
    """An AssertionError so pytest shows the context message instead of a bare timeout."""


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _bad(message: str) -> _ApiError:
    # The Bot API lower-cases the first letter unless the message is an upper-case code.
    if len(message) > 1 and message[0].isupper() and not message[1].isupper():
        message = message[0].lower() + message[1:]
    return _ApiError(400, f"Bad Request: {message}")


_Handler = Callable[[JSON], Any]


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


class TelegramStub:
    """A Telegram Bot API server on 127.0.0.1 with Telegram's validation and test hooks.

    Use as ``async with TelegramStub() as stub`` and point PTB at ``stub.base_url`` and
    ``stub.base_file_url``. Test-side helpers play the users; ``sent``/``wait_for`` observe
    the bot. Chats must be known (a user wrote first, or ``register_user``) before the bot can
    send to them, as on Telegram, unless ``strict_chats=False``.
    """

    def __init__(
        self,
        *,
        bot_id: int | None = None,
        bot_username: str = "brobygger_test_bot",
        bot_first_name: str = "Brobygger",
        strict_html: bool = True,
        strict_buttons: bool = True,
        strict_chats: bool = True,
    ) -> None:
        """``strict_*`` flags make the stub stricter than Telegram where laxness hides bugs.

        strict_html: reject a bare "&" in HTML (Telegram keeps it literally).
        strict_buttons: reject inline buttons with several actions (Telegram uses the first).
        strict_chats: sending to a chat no user has opened is "chat not found".
        """
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.strict_html = strict_html
        self.strict_buttons = strict_buttons
        self.strict_chats = strict_chats

        self.sent: list[Sent] = []
        self.requests: list[Request] = []
        self.errors: list[ApiErrorRecord] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.unhandled: list[Request] = []
        self.webhook: JSON | None = None
        self.webhook_deliveries: list[tuple[int, int]] = []  # (update_id, HTTP status)
        self.bot_settings: dict[str, dict[str, Any]] = {}

        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._event = asyncio.Event()
        self._cursor = 0
        self._consumed: set[int] = set()  # indexes into self.sent already returned by wait_for

        self._users: dict[int, JSON] = {}
        self._chats: dict[int, JSON] = {}
        self._messages: dict[int, dict[int, StoredMessage]] = {}
        self._next_message_id: dict[int, int] = {}
        self._files: dict[str, _StoredFile] = {}
        self._file_paths: dict[str, str] = {}
        self._file_counter = itertools.count(1)
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._blocked: set[int] = set()
        self._faults: list[InjectedFault] = []

        self._updates: list[JSON] = []
        self._next_update_id = 1
        self._confirmed_below = 0  # update ids below this were acknowledged via offset/webhook
        self._allowed_updates: list[str] = []
        self._poll_generation = 0
        self._callback_queries: dict[str, tuple[int, str | None, int, int]] = {}
        self._answered_queries: set[str] = set()
        self._webhook_task: asyncio.Task[None] | None = None
        self._client: aiohttp.ClientSession | None = None

        self._handlers: dict[str, tuple[str, _Handler]] = {}
        for name, handler in {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setMyDescription": self._setting_setter("description"),
            "getMyDescription": self._setting_getter("description"),
            "setMyShortDescription": self._setting_setter("short_description"),
            "getMyShortDescription": self._setting_getter("short_description"),
            "setMyName": self._setting_setter("name"),
            "getMyName": self._setting_getter("name"),
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._send_chat_action,
            "getFile": self._get_file,
            "getChat": self._get_chat,
        }.items():
            self._handlers[name.lower()] = (name, handler)
        for media in _MEDIA_FOLDERS:
            name = "send" + media.capitalize()
            self._handlers[name.lower()] = (name, self._media_sender(media))

    # ---- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> TelegramStub:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._webhook_task = asyncio.create_task(self._webhook_loop())

    async def close(self) -> None:
        self._closing = True
        self._notify()  # release long polls so shutdown does not wait for their timeout
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("TelegramStub is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ---- HTTP plumbing ---------------------------------------------------------------

    @staticmethod
    def _error_response(
        status: int, description: str, parameters: JSON | None = None
    ) -> web.Response:
        body: JSON = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    async def _handle_api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if not TOKEN_RE.match(token):
            return self._error_response(401, "Unauthorized")
        if self.bot_id is None:
            self.bot_id = int(token.split(":", 1)[0])
        raw_method = request.match_info["method"]
        method, handler = self._handlers.get(raw_method.lower(), (raw_method, None))
        try:
            params = await self._read_params(request)
        except _ApiError as exc:
            self.errors.append(ApiErrorRecord(method, {}, exc.status, exc.description))
            return self._error_response(exc.status, exc.description)
        self.requests.append(Request(method, params))

        fault = self._take_fault(method, params)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                parameters = {"retry_after": fault.retry_after} if fault.retry_after else None
                self.errors.append(
                    ApiErrorRecord(method, params, fault.status, fault.description, injected=True)
                )
                return self._error_response(fault.status, fault.description, parameters)

        if handler is None:
            self.unhandled.append(Request(method, params))
            return self._error_response(404, "Not Found")
        try:
            result = await handler(params)
        except _ApiError as exc:
            transport = request.transport
            if transport is not None and not transport.is_closing():
                # Only errors the bot can see: an abandoned long poll ended by the next
                # getUpdates (PTB does this on stop) is not the bot's mistake.
                self.errors.append(ApiErrorRecord(method, params, exc.status, exc.description))
            return self._error_response(exc.status, exc.description, exc.parameters)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if not TOKEN_RE.match(request.match_info["token"]):
            return self._error_response(401, "Unauthorized")
        file_id = self._file_paths.get(request.match_info["path"])
        stored = self._files.get(file_id) if file_id else None
        if stored is None or stored.data is None:
            return self._error_response(404, "Not Found")
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    async def _read_params(self, request: web.Request) -> JSON:
        raw: dict[str, Any] = dict(request.query)
        if request.content_length and request.content_length > MAX_UPLOAD_BYTES:
            raise _ApiError(413, "Request Entity Too Large")
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _bad("can't parse JSON encoded request body") from None
            if isinstance(body, dict):
                raw.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    raw[key] = UploadedFile(value.filename, value.file.read(), value.content_type)
                else:
                    raw[key] = value
        return self._coerce(raw)

    @staticmethod
    def _coerce(raw: Mapping[str, Any]) -> JSON:
        params: JSON = {}
        for key, value in raw.items():
            if isinstance(value, str):
                if key in _JSON_PARAMS:
                    try:
                        value = json.loads(value)
                    except ValueError:
                        what = "reply keyboard markup" if key == "reply_markup" else key
                        raise _bad(f"can't parse {what} JSON object") from None
                elif key in _INT_PARAMS:
                    try:
                        value = int(value)
                    except ValueError:
                        raise _bad(f"invalid {key} specified") from None
                elif key in _BOOL_PARAMS:
                    value = value.strip().lower() in {"true", "1", "yes"}
                elif key == "timeout":
                    try:
                        value = float(value)
                    except ValueError:
                        raise _bad("invalid timeout specified") from None
                elif key == "chat_id" and re.fullmatch(r"-?\d+", value.strip()):
                    value = int(value)
            params[key] = value
        return params

    def _take_fault(self, method: str, params: JSON) -> InjectedFault | None:
        for fault in self._faults:
            if fault.method not in ("*", method.lower()):
                continue
            if fault.chat_id is not None and params.get("chat_id") != fault.chat_id:
                continue
            fault.times -= 1
            if fault.times <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def _notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def _wait_until(self, condition: Callable[[], bool], within: float) -> bool:
        """Wakes on every state change; single-threaded, so no notification can be missed."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            event = self._event
            if condition():
                return True
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or self._closing:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    # ---- chats, users, messages ------------------------------------------------------

    def _bot_user(self) -> JSON:
        return {
            "id": self.bot_id or 0,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def register_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> JSON:
        """Opens the private chat without a message, for tests of bot-initiated sends."""
        user = self._users.get(user_id) or {
            "id": user_id,
            "is_bot": False,
            "first_name": f"User{user_id}",
            "language_code": "en",
        }
        if first_name is not None:
            user["first_name"] = first_name
        if last_name is not None:
            user["last_name"] = last_name
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        self._users[user_id] = user
        chat: JSON = {"id": user_id, "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat[key] = user[key]
        self._chats[user_id] = chat
        return user

    def _group_chat(self, chat_id: int | None, chat_type: str, title: str | None) -> JSON:
        if chat_id is None:
            raise ValueError("chat_id is required for non-private chats")
        if chat_type not in ("group", "supergroup", "channel"):
            raise ValueError(f"unknown chat_type {chat_type!r}")
        chat = self._chats.get(chat_id) or {"id": chat_id, "type": chat_type}
        chat["title"] = title or chat.get("title") or f"Chat {chat_id}"
        self._chats[chat_id] = chat
        return chat

    def _resolve_chat_id(self, params: JSON) -> int:
        value = params.get("chat_id")
        if value is None or value == "":
            raise _bad("chat_id is empty")
        if isinstance(value, str):
            name = value.lstrip("@").lower()
            for chat in self._chats.values():
                if str(chat.get("username", "")).lower() == name:
                    return int(chat["id"])
            raise _bad("chat not found")
        chat_id = int(value)
        if chat_id not in self._chats:
            if self.strict_chats:
                raise _bad("chat not found")
            self._chats[chat_id] = {
                "id": chat_id,
                "type": "private" if chat_id > 0 else "group",
                **({"first_name": f"User{chat_id}"} if chat_id > 0 else {"title": "Chat"}),
            }
        return chat_id

    def _check_not_blocked(self, chat_id: int) -> None:
        if chat_id in self._blocked:
            private = self._chats.get(chat_id, {}).get("type", "private") == "private"
            raise _ApiError(403, BLOCKED_PRIVATE if private else BLOCKED_GROUP)

    def _new_message(
        self,
        chat_id: int,
        *,
        from_user: JSON,
        kind: str,
        text: str | None,
        raw_text: str | None = None,
        html: str | None = None,
        entities: list[JSON] | None = None,
        reply_markup: JSON | None = None,
        extra: JSON | None = None,
        file_id: str | None = None,
    ) -> StoredMessage:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        base: JSON = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": dict(self._chats[chat_id]),
            "from": dict(from_user),
        }
        base.update(extra or {})
        stored = StoredMessage(
            chat_id=chat_id,
            message_id=message_id,
            from_bot=bool(from_user.get("is_bot")),
            kind=kind,
            base=base,
            text=text,
            raw_text=raw_text if raw_text is not None else text,
            html=html,
            entities=entities or [],
            reply_markup=reply_markup,
            file_id=file_id,
        )
        self._messages.setdefault(chat_id, {})[message_id] = stored
        return stored

    def _find_message(self, chat_id: int, message_id: Any, not_found: str) -> StoredMessage:
        if message_id is None:
            raise _bad("message identifier is not specified")
        stored = self._messages.get(chat_id, {}).get(int(message_id))
        if stored is None or stored.deleted:
            raise _bad(not_found)
        return stored

    def _format(
        self, raw: str | None, parse_mode: Any, entities: Any, *, caption: bool
    ) -> tuple[str, list[JSON], str | None]:
        """Apply parse_mode and Telegram's length rules; returns (plain, entities, html)."""
        raw = raw or ""
        mode = str(parse_mode or "").strip().lower()
        html: str | None = None
        if mode == "html":
            try:
                plain, parsed = parse_html(raw, strict_ampersand=self.strict_html)
            except EntityParseError as exc:
                raise _bad(f"can't parse entities: {exc}") from None
            html = raw
        elif mode in ("", "markdown", "markdownv2"):
            # Markdown is passed through unvalidated; the bot uses HTML.
            plain = raw
            parsed = (
                [e for e in entities if isinstance(e, dict)]
                if mode == "" and isinstance(entities, list)
                else []
            )
        else:
            raise _bad("unsupported parse_mode")
        plain, parsed = _trim(plain, parsed)
        for entity in parsed:
            user = self._users.get(entity.get("user", {}).get("id"))
            if entity.get("type") == "text_mention" and user is not None:
                entity["user"] = dict(user)
        if caption:
            if utf16_len(plain) > MAX_CAPTION_LENGTH:
                raise _bad("message caption is too long")
        else:
            if not plain:
                raise _bad("message text is empty")
            if utf16_len(plain) > MAX_MESSAGE_LENGTH:
                raise _bad("message is too long")
        return plain, parsed, html

    def _check_markup(self, markup: Any) -> JSON | None:
        """Validate like the Bot API and return the markup as Telegram would echo it."""
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise _bad("Object expected as reply markup")
        if "inline_keyboard" not in markup:
            return dict(markup)
        keyboard = markup["inline_keyboard"]
        if not isinstance(keyboard, list):
            raise _bad('Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
        rows: list[list[JSON]] = []
        for row in keyboard:
            if not isinstance(row, list):
                raise _bad(
                    'Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
                )
            rows.append([self._check_button(button) for button in row])
        return {"inline_keyboard": rows}

    def _check_button(self, button: Any) -> JSON:
        prefix = "can't parse inline keyboard button: "
        if not isinstance(button, dict):
            raise _bad(prefix + "InlineKeyboardButton must be an Object")
        if "text" not in button:
            raise _bad(prefix + 'Can\'t find field "text"')
        if not isinstance(button["text"], str):
            raise _bad(prefix + 'Field "text" must be of type String')
        present = [
            key
            for key in BUTTON_ACTIONS
            if key in button and not (key in ("url", "callback_data") and button[key] in ("", None))
        ]
        if not present:
            raise _bad(prefix + "Text buttons are unallowed in the inline keyboard")
        if len(present) > 1 and self.strict_buttons:
            raise _bad(
                prefix + f"exactly one of the optional fields must be used, got {present} "
                "(stub strict mode: Telegram would silently use the first)"
            )
        action = present[0]
        value = button[action]
        if action == "callback_data":
            if not isinstance(value, str) or len(value.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                raise _bad("BUTTON_DATA_INVALID")
        elif action == "url":
            checked = _checked_link(value) if isinstance(value, str) else None
            if checked is None:
                raise _bad("BUTTON_URL_INVALID")
            value = checked
        return {"text": button["text"], action: value}

    def _reply_to(self, chat_id: int, params: JSON) -> JSON | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict) and reply.get("message_id") is not None:
            target_chat = reply.get("chat_id", chat_id)
            message_id = int(reply["message_id"])
            allow = bool(reply.get("allow_sending_without_reply"))
        elif params.get("reply_to_message_id") is not None:
            target_chat, message_id = chat_id, int(params["reply_to_message_id"])
            allow = bool(params.get("allow_sending_without_reply"))
        else:
            return None
        if isinstance(target_chat, str) and re.fullmatch(r"-?\d+", target_chat):
            target_chat = int(target_chat)
        stored = self._messages.get(target_chat, {}).get(message_id)
        if stored is None or stored.deleted:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return stored.to_json()

    def _record(self, sent: Sent) -> Sent:
        self.sent.append(sent)
        self._notify()
        return sent

    def _sent_from(self, method: str, stored: StoredMessage, params: JSON, **extra: Any) -> Sent:
        return Sent(
            method=method,
            chat_id=stored.chat_id,
            message_id=stored.message_id,
            text=stored.text,
            html=stored.html,
            raw_text=stored.raw_text,
            parse_mode=params.get("parse_mode"),
            entities=list(stored.entities),
            reply_markup=stored.reply_markup,
            params=params,
            message=stored.to_json(),
            file_id=stored.file_id,
            **extra,
        )

    # ---- files -----------------------------------------------------------------------

    def _store_file(
        self, media: str, data: bytes | None, file_name: str | None, mime_type: str | None
    ) -> _StoredFile:
        number = next(self._file_counter)
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        elif mime_type:
            suffix = mimetypes.guess_extension(mime_type) or ""
        stored = _StoredFile(
            file_id=f"STUB{media[:3].upper()}{number:06d}AgADBAAD",
            file_unique_id=f"AgAD{number:06d}",
            file_path=f"{_MEDIA_FOLDERS[media]}/file_{number}{suffix}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        self._file_paths[stored.file_path] = stored.file_id
        return stored

    @staticmethod
    def _media_object(media: str, stored: _StoredFile, params: JSON | None = None) -> Any:
        params = params or {}
        size = len(stored.data) if stored.data is not None else 0
        obj: JSON = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        if size:
            obj["file_size"] = size
        if media == "photo":
            width, height = int(params.get("width", 800)), int(params.get("height", 600))
            return [{**obj, "width": width, "height": height}]
        if media in ("document", "audio", "video", "animation") and stored.file_name:
            obj["file_name"] = stored.file_name
        if media != "sticker" and stored.mime_type:
            obj["mime_type"] = stored.mime_type
        if media in ("audio", "video", "voice", "animation"):
            obj["duration"] = int(params.get("duration", 1))
        if media in ("video", "animation"):
            obj["width"], obj["height"] = (
                int(params.get("width", 640)),
                int(params.get("height", 480)),
            )
        if media == "sticker":
            obj.update(
                type="regular",
                width=512,
                height=512,
                is_animated=False,
                is_video=False,
                emoji=params.get("emoji", "👍"),
            )
        return obj

    def file_bytes(self, file_id: str) -> bytes | None:
        stored = self._files.get(file_id)
        return stored.data if stored else None

    # ---- Bot API methods -------------------------------------------------------------

    async def _true(self, params: JSON) -> bool:
        return True

    async def _get_me(self, params: JSON) -> JSON:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: JSON) -> list[JSON]:
        if self.webhook is not None:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        # A newer getUpdates terminates an older one, as on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()

        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]
        if offset > 0:
            self._confirm_below(offset)
        elif offset < 0:
            keep = self._updates[offset:]
            if keep:
                self._confirm_below(keep[0]["update_id"])

        def batch() -> list[JSON]:
            return [u for u in self._updates if self._is_allowed(u)][:limit]

        terminated = False

        def ready() -> bool:
            nonlocal terminated
            terminated = self._poll_generation != generation
            return terminated or bool(batch())

        await self._wait_until(ready, timeout)
        if terminated:
            raise _ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot "
                "instance is running",
            )
        return batch()

    def _is_allowed(self, update: JSON) -> bool:
        if not self._allowed_updates:
            return True
        return any(kind in update for kind in self._allowed_updates)

    def _confirm_below(self, update_id: int) -> None:
        if update_id > self._confirmed_below:
            self._confirmed_below = update_id
            self._updates = [u for u in self._updates if u["update_id"] >= update_id]
            self._notify()

    async def _set_webhook(self, params: JSON) -> bool:
        url = str(params.get("url") or "")
        if params.get("drop_pending_updates"):
            self._drop_pending()
        if not url:
            self.webhook = None
            return True
        if urlsplit(url).scheme not in ("http", "https"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "max_connections": int(params.get("max_connections") or 40),
            "allowed_updates": params.get("allowed_updates"),
        }
        if isinstance(params.get("allowed_updates"), list):
            self._allowed_updates = [str(kind) for kind in params["allowed_updates"]]
        self._poll_generation += 1  # a pending getUpdates ends with a conflict
        self._notify()
        return True

    async def _delete_webhook(self, params: JSON) -> bool:
        if params.get("drop_pending_updates"):
            self._drop_pending()
        self.webhook = None
        return True

    def _drop_pending(self) -> None:
        if self._updates:
            self._confirm_below(self._updates[-1]["update_id"] + 1)

    async def _get_webhook_info(self, params: JSON) -> JSON:
        info: JSON = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
            if self.webhook.get("last_error_date"):
                info["last_error_date"] = self.webhook["last_error_date"]
                info["last_error_message"] = self.webhook["last_error_message"]
        return info

    async def _webhook_loop(self) -> None:
        """Push queued updates to a webhook, one at a time, keeping them until a 2xx."""
        while not self._closing:
            event = self._event
            if self.webhook is None or not self._updates:
                await event.wait()
                continue
            update = self._updates[0]
            if not self._is_allowed(update):
                self._confirm_below(update["update_id"] + 1)
                continue
            url = self.webhook["url"]
            headers = {"Content-Type": "application/json"}
            if self.webhook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.webhook["secret_token"])
            if self._client is None:
                self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            try:
                async with self._client.post(url, data=json.dumps(update), headers=headers) as r:
                    status = r.status
                    await r.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, error = 0, f"Connection error: {exc}"
            else:
                error = f"Wrong response from the webhook: {status}"
            self.webhook_deliveries.append((update["update_id"], status))
            if 200 <= status < 300:
                self._confirm_below(update["update_id"] + 1)
            else:
                if self.webhook is not None:
                    self.webhook["last_error_date"] = int(time.time())
                    self.webhook["last_error_message"] = error
                await asyncio.sleep(0.2)

    @staticmethod
    def _scope_key(scope: Any) -> str:
        if scope in (None, ""):
            scope = {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in COMMAND_SCOPES:
            raise _bad("unsupported bot command scope type specified")
        normalized: JSON = {"type": scope["type"]}
        for key in ("chat_id", "user_id"):
            if key in scope:
                value = scope[key]
                normalized[key] = int(value) if re.fullmatch(r"-?\d+", str(value)) else value
        return json.dumps(normalized, sort_keys=True)

    async def _set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        cleaned: list[JSON] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand: expected an Object")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name.lstrip("/")):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name.lstrip("/"), "description": description})
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        return True

    async def _get_my_commands(self, params: JSON) -> list[JSON]:
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        return list(self._commands.get(key, []))

    async def _delete_my_commands(self, params: JSON) -> bool:
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self._commands.pop(key, None)
        return True

    def _setting_setter(self, name: str) -> _Handler:
        async def handler(params: JSON) -> bool:
            self.bot_settings.setdefault(name, {})[str(params.get("language_code") or "")] = (
                params.get(name) or ""
            )
            return True

        return handler

    def _setting_getter(self, name: str) -> _Handler:
        async def handler(params: JSON) -> JSON:
            values = self.bot_settings.get(name, {})
            value = values.get(str(params.get("language_code") or ""), "")
            if name == "name" and not value:
                value = self.bot_first_name
            return {name: value}

        return handler

    async def _set_chat_menu_button(self, params: JSON) -> bool:
        self.bot_settings.setdefault("menu_button", {})[str(params.get("chat_id") or "")] = (
            params.get("menu_button") or {"type": "default"}
        )
        return True

    async def _get_chat_menu_button(self, params: JSON) -> JSON:
        buttons = self.bot_settings.get("menu_button", {})
        return dict(buttons.get(str(params.get("chat_id") or ""), {"type": "commands"}))

    async def _send_message(self, params: JSON) -> JSON:
        chat_id = self._resolve_chat_id(params)
        self._check_not_blocked(chat_id)
        raw = params.get("text")
        if raw is None or raw == "":
            raise _bad("message text is empty")
        plain, entities, html = self._format(
            str(raw), params.get("parse_mode"), params.get("entities"), caption=False
        )
        markup = self._check_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat_id, params)
        stored = self._new_message(
            chat_id,
            from_user=self._bot_user(),
            kind="text",
            text=plain,
            raw_text=str(raw),
            html=html,
            entities=entities,
            reply_markup=markup,
            extra={"reply_to_message": reply_to} if reply_to else None,
        )
        self._record(self._sent_from("sendMessage", stored, params))
        return stored.to_json()

    def _media_sender(self, media: str) -> _Handler:
        async def handler(params: JSON) -> JSON:
            return await self._send_media(media, params)

        return handler

    def _resolve_input_file(
        self, media: str, params: JSON
    ) -> tuple[_StoredFile, bytes | None, str | None]:
        value = params.get(media)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value[len("attach://") :])
        if isinstance(value, UploadedFile):
            if not value.data:
                raise _bad("file must be non-empty")
            name = value.filename
            mime = (
                (mimetypes.guess_type(name)[0] if name else None)
                or (
                    value.content_type if value.content_type != "application/octet-stream" else None
                )
                or _MEDIA_DEFAULT_MIME[media]
            )
            return self._store_file(media, value.data, name, mime), value.data, name
        if isinstance(value, str) and value:
            if value in self._files:
                stored = self._files[value]
                return stored, stored.data, stored.file_name
            if urlsplit(value).scheme in ("http", "https"):
                # The stub is offline: keep the URL's file name, without content.
                name = unquote(urlsplit(value).path.rsplit("/", 1)[-1]) or None
                mime = (mimetypes.guess_type(name)[0] if name else None) or _MEDIA_DEFAULT_MIME[
                    media
                ]
                return self._store_file(media, None, name, mime), None, name
            raise _bad("wrong file identifier/HTTP URL specified")
        raise _bad(f"there is no {media} in the request")

    async def _send_media(self, media: str, params: JSON) -> JSON:
        method = "send" + media.capitalize()
        chat_id = self._resolve_chat_id(params)
        self._check_not_blocked(chat_id)
        stored_file, data, name = self._resolve_input_file(media, params)
        caption = params.get("caption")
        plain: str | None = None
        entities: list[JSON] = []
        html: str | None = None
        if caption not in (None, "") and media != "sticker":
            plain, entities, html = self._format(
                str(caption),
                params.get("parse_mode"),
                params.get("caption_entities"),
                caption=True,
            )
        markup = self._check_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat_id, params)
        extra: JSON = {media: self._media_object(media, stored_file, params)}
        if reply_to:
            extra["reply_to_message"] = reply_to
        stored = self._new_message(
            chat_id,
            from_user=self._bot_user(),
            kind=media,
            text=plain or None,
            raw_text=str(caption) if caption not in (None, "") else None,
            html=html,
            entities=entities,
            reply_markup=markup,
            extra=extra,
            file_id=stored_file.file_id,
        )
        self._record(
            self._sent_from(
                method,
                stored,
                params,
                media_type=media,
                document_name=name,
                document_bytes=data,
                document_mime=stored_file.mime_type,
            )
        )
        return stored.to_json()

    def _editable(
        self, params: JSON, not_found: str = "message to edit not found"
    ) -> StoredMessage:
        if params.get("inline_message_id"):
            raise _bad("inline messages are not supported by the stub")
        chat_id = self._resolve_chat_id(params)
        self._check_not_blocked(chat_id)
        stored = self._find_message(chat_id, params.get("message_id"), not_found)
        if not stored.from_bot:
            raise _bad("message can't be edited")
        return stored

    async def _edit_message_text(self, params: JSON) -> JSON:
        stored = self._editable(params)
        if stored.kind != "text":
            raise _bad("there is no text in the message to edit")
        raw = params.get("text")
        if raw is None or raw == "":
            raise _bad("message text is empty")
        plain, entities, html = self._format(
            str(raw), params.get("parse_mode"), params.get("entities"), caption=False
        )
        markup = self._check_markup(params.get("reply_markup"))
        if (plain, entities, markup) == (stored.text, stored.entities, stored.inline_markup):
            raise _bad(NOT_MODIFIED)
        stored.text, stored.entities, stored.html, stored.raw_text = plain, entities, html, str(raw)
        stored.reply_markup = markup
        stored.edit_date = int(time.time())
        self._record(self._sent_from("editMessageText", stored, params))
        return stored.to_json()

    async def _edit_message_caption(self, params: JSON) -> JSON:
        stored = self._editable(params)
        if stored.kind == "text":
            raise _bad("there is no caption in the message to edit")
        raw = params.get("caption")
        plain: str | None = None
        entities: list[JSON] = []
        html: str | None = None
        if raw not in (None, ""):
            plain, entities, html = self._format(
                str(raw), params.get("parse_mode"), params.get("caption_entities"), caption=True
            )
        markup = self._check_markup(params.get("reply_markup"))
        if (plain or None, entities, markup) == (
            stored.text,
            stored.entities,
            stored.inline_markup,
        ):
            raise _bad(NOT_MODIFIED)
        stored.text, stored.entities, stored.html = plain or None, entities, html
        stored.raw_text = str(raw) if raw not in (None, "") else None
        stored.reply_markup = markup
        stored.edit_date = int(time.time())
        self._record(self._sent_from("editMessageCaption", stored, params))
        return stored.to_json()

    async def _edit_message_reply_markup(self, params: JSON) -> JSON:
        stored = self._editable(params)
        markup = self._check_markup(params.get("reply_markup"))
        if markup == stored.inline_markup:
            raise _bad(NOT_MODIFIED)
        stored.reply_markup = markup
        stored.edit_date = int(time.time())
        self._record(self._sent_from("editMessageReplyMarkup", stored, params))
        return stored.to_json()

    async def _delete_message(self, params: JSON) -> bool:
        chat_id = self._resolve_chat_id(params)
        stored = self._find_message(
            chat_id, params.get("message_id"), "message to delete not found"
        )
        if not stored.from_bot and self._chats[chat_id].get("type") != "private":
            raise _bad("message can't be deleted")
        stored.deleted = True
        self._record(self._sent_from("deleteMessage", stored, params))
        return True

    async def _delete_messages(self, params: JSON) -> bool:
        chat_id = self._resolve_chat_id(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad("message_ids must be a non-empty array of up to 100 identifiers")
        for message_id in ids:
            stored = self._messages.get(chat_id, {}).get(int(message_id))
            if stored is not None and not stored.deleted:
                stored.deleted = True
                self._record(self._sent_from("deleteMessages", stored, params))
        return True

    async def _answer_callback_query(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        query = self._callback_queries.get(query_id)
        if query is None or query_id in self._answered_queries:
            raise _bad(QUERY_TOO_OLD)
        if len(str(params.get("text") or "")) > 200:
            raise _bad("MESSAGE_TOO_LONG")  # the documented limit is 0-200 characters
        self._answered_queries.add(query_id)
        update_id, data, chat_id, message_id = query
        self.callback_answers.append(
            CallbackAnswer(
                query_id=query_id,
                update_id=update_id,
                callback_data=data,
                chat_id=chat_id,
                message_id=message_id,
                text=params.get("text"),
                show_alert=bool(params.get("show_alert")),
                url=params.get("url"),
                cache_time=params.get("cache_time"),
            )
        )
        self._notify()
        return True

    async def _send_chat_action(self, params: JSON) -> bool:
        chat_id = self._resolve_chat_id(params)
        self._check_not_blocked(chat_id)
        action = str(params.get("action") or "")
        if action not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat_id, action))
        return True

    async def _get_file(self, params: JSON) -> JSON:
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise _bad("invalid file_id")
        result: JSON = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        if stored.data is not None:
            if len(stored.data) > MAX_DOWNLOAD_BYTES:
                raise _bad("file is too big")
            result["file_size"] = len(stored.data)
            result["file_path"] = stored.file_path
        return result

    async def _get_chat(self, params: JSON) -> JSON:
        chat = self._chats.get(self._resolve_chat_id(params))
        assert chat is not None
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    # ---- test side: users ------------------------------------------------------------

    def _user_and_chat(
        self,
        user_id: int,
        *,
        language_code: str | None,
        chat_type: str,
        chat_id: int | None,
        chat_title: str | None,
        first_name: str | None,
        last_name: str | None,
        username: str | None,
    ) -> tuple[JSON, int]:
        user = self.register_user(
            user_id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )
        if chat_type == "private":
            if chat_id not in (None, user_id):
                raise ValueError("a private chat's id is the user's id")
            return user, user_id
        return user, int(self._group_chat(chat_id, chat_type, chat_title)["id"])

    def _queue(self, kind: str, payload: JSON) -> int:
        """User actions auto-mark, so `next_reply` means "the reply to this action"."""
        self.mark()
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append({"update_id": update_id, kind: payload})
        self._notify()
        return update_id

    async def send_text(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
        chat_title: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        entities: list[JSON] | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:
        """Queue a text message from a user; /commands get bot_command entities like clients."""
        user, chat = self._user_and_chat(
            user_id,
            language_code=language_code,
            chat_type=chat_type,
            chat_id=chat_id,
            chat_title=chat_title,
            first_name=first_name,
            last_name=last_name,
            username=username,
        )
        extra: JSON = {}
        if reply_to_message_id is not None:
            extra["reply_to_message"] = self._find_test_message(chat, reply_to_message_id).to_json()
        stored = self._new_message(
            chat,
            from_user=user,
            kind="text",
            text=text,
            entities=entities if entities is not None else _bot_command_entities(text),
            extra=extra,
        )
        return self._queue("message", stored.to_json())

    async def _send_user_media(
        self,
        media: str,
        user_id: int,
        data: bytes | None,
        *,
        file_name: str | None,
        mime_type: str | None,
        caption: str | None,
        media_params: JSON,
        user_kwargs: JSON,
    ) -> int:
        user, chat = self._user_and_chat(user_id, **user_kwargs)
        mime = mime_type or (mimetypes.guess_type(file_name)[0] if file_name else None)
        stored_file = self._store_file(media, data, file_name, mime or _MEDIA_DEFAULT_MIME[media])
        stored = self._new_message(
            chat,
            from_user=user,
            kind=media,
            text=caption,
            extra={media: self._media_object(media, stored_file, media_params)},
            file_id=stored_file.file_id,
        )
        return self._queue("message", stored.to_json())

    async def send_document(
        self,
        user_id: int,
        file_name: str,
        data: bytes,
        *,
        mime_type: str | None = None,
        caption: str | None = None,
        language_code: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
        chat_title: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
    ) -> int:
        """The bytes stay downloadable through getFile, like a real upload."""
        return await self._send_user_media(
            "document",
            user_id,
            data,
            file_name=file_name,
            mime_type=mime_type,
            caption=caption,
            media_params={},
            user_kwargs={
                "language_code": language_code,
                "chat_type": chat_type,
                "chat_id": chat_id,
                "chat_title": chat_title,
                "first_name": first_name,
                "last_name": last_name,
                "username": username,
            },
        )

    async def send_photo(
        self,
        user_id: int,
        data: bytes = b"\xff\xd8\xff\xe0stub-jpeg",
        *,
        caption: str | None = None,
        width: int = 800,
        height: int = 600,
        language_code: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> int:
        return await self._send_user_media(
            "photo",
            user_id,
            data,
            file_name=None,
            mime_type="image/jpeg",
            caption=caption,
            media_params={"width": width, "height": height},
            user_kwargs=self._minimal_user_kwargs(language_code, chat_type, chat_id),
        )

    async def send_voice(
        self,
        user_id: int,
        data: bytes = b"OggSstub-voice",
        *,
        duration: int = 2,
        language_code: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> int:
        return await self._send_user_media(
            "voice",
            user_id,
            data,
            file_name=None,
            mime_type="audio/ogg",
            caption=None,
            media_params={"duration": duration},
            user_kwargs=self._minimal_user_kwargs(language_code, chat_type, chat_id),
        )

    async def send_sticker(
        self,
        user_id: int,
        *,
        emoji: str = "👍",
        language_code: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> int:
        return await self._send_user_media(
            "sticker",
            user_id,
            b"RIFFstub-webp",
            file_name=None,
            mime_type="image/webp",
            caption=None,
            media_params={"emoji": emoji},
            user_kwargs=self._minimal_user_kwargs(language_code, chat_type, chat_id),
        )

    @staticmethod
    def _minimal_user_kwargs(
        language_code: str | None, chat_type: str, chat_id: int | None
    ) -> JSON:
        return {
            "language_code": language_code,
            "chat_type": chat_type,
            "chat_id": chat_id,
            "chat_title": None,
            "first_name": None,
            "last_name": None,
            "username": None,
        }

    def _find_test_message(self, chat_id: int, message_id: int) -> StoredMessage:
        stored = self._messages.get(chat_id, {}).get(message_id)
        if stored is None or stored.deleted:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        return stored

    async def edit_message(
        self, user_id: int, message_id: int, text: str, *, chat_id: int | None = None
    ) -> int:
        """A user editing their own earlier message produces an edited_message update."""
        chat = user_id if chat_id is None else chat_id
        stored = self._find_test_message(chat, message_id)
        if stored.from_bot or stored.base["from"]["id"] != user_id:
            raise ValueError("users can only edit their own messages")
        stored.text = stored.raw_text = text
        stored.entities = _bot_command_entities(text) if stored.kind == "text" else []
        stored.edit_date = int(time.time())
        return self._queue("edited_message", stored.to_json())

    async def press_button(
        self,
        user_id: int,
        message: Sent | StoredMessage | int,
        callback_data: str | None = None,
        *,
        text: str | None = None,
        chat_id: int | None = None,
    ) -> int:
        """Press a button that is currently on the message, found by callback_data or label.

        Pressing a button the message no longer shows (after an edit) fails, as in a client.
        """
        if isinstance(message, int):
            chat, message_id = (user_id if chat_id is None else chat_id), message
        else:
            chat, message_id = message.chat_id, int(message.message_id or 0)
        stored = self._find_test_message(chat, message_id)
        buttons = [
            button
            for row in (stored.inline_markup or {}).get("inline_keyboard", [])
            for button in row
        ]
        match = next(
            (
                b
                for b in buttons
                if "callback_data" in b
                and (callback_data is None or b["callback_data"] == callback_data)
                and (text is None or b["text"] == text)
            ),
            None,
        )
        if match is None or (callback_data is None and text is None):
            shown = [(b["text"], b.get("callback_data") or b.get("url")) for b in buttons]
            raise LookupError(
                f"no callback button data={callback_data!r} text={text!r} on message "
                f"{message_id} in chat {chat}; it shows {shown}"
            )
        user, _ = self._user_and_chat(
            user_id,
            language_code=None,
            chat_type=self._chats[chat]["type"],
            chat_id=chat,
            chat_title=None,
            first_name=None,
            last_name=None,
            username=None,
        )
        update_id = self._next_update_id
        query_id = str(4_200_000_000_000_000 + update_id)
        self._callback_queries[query_id] = (update_id, match["callback_data"], chat, message_id)
        return self._queue(
            "callback_query",
            {
                "id": query_id,
                "from": user,
                "message": stored.to_json(),
                "chat_instance": str(abs(hash(("chat", chat))) % 10**18),
                "data": match["callback_data"],
            },
        )

    # ---- test side: faults -----------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int = 500,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        times: int = 1,
        chat_id: int | str | None = None,
        delay: float = 0.0,
    ) -> InjectedFault:
        """Make the next ``times`` calls of ``method`` ("*" = any) fail like Telegram does.

        ``status=0`` with ``delay`` only slows the call down, for client timeout tests.
        """
        defaults = {
            400: "Bad Request",
            403: BLOCKED_PRIVATE,
            409: "Conflict: terminated by other getUpdates request; make sure that only one "
            "bot instance is running",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if status == 429
                else defaults.get(status, f"Error {status}")
            )
        fault = InjectedFault(
            method=method.lower() if method != "*" else "*",
            status=status,
            description=description,
            retry_after=retry_after,
            times=times,
            chat_id=chat_id,
            delay=delay,
        )
        self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self._faults.clear()

    def block_user(self, chat_id: int) -> None:
        """Every later send/edit to the chat answers 403, like a user who blocked the bot."""
        self._blocked.add(chat_id)

    def unblock_user(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    # ---- test side: observing the bot ------------------------------------------------

    def mark(self) -> int:
        """Later waits only consider outputs recorded after this point."""
        self._cursor = len(self.sent)
        return self._cursor

    async def wait_for(
        self,
        predicate: Callable[[Sent], bool] | None = None,
        *,
        timeout: float = 10.0,
        since: int | None = None,
    ) -> Sent:
        """The first not-yet-returned output after the mark matching ``predicate``.

        Returned outputs are consumed, so consecutive waits walk through the replies.
        """
        start = self._cursor if since is None else since
        found: list[int] = []

        def condition() -> bool:
            for index in range(start, len(self.sent)):
                if index not in self._consumed and (
                    predicate is None or predicate(self.sent[index])
                ):
                    found.append(index)
                    return True
            return False

        if not await self._wait_until(condition, timeout):
            raise StubTimeoutError(
                self._timeout_report(f"no matching bot output within {timeout}s", start)
            )
        self._consumed.add(found[0])
        return self.sent[found[0]]

    async def next_reply(self, chat_id: int, *, timeout: float = 10.0) -> Sent:
        """The next new message the bot put into ``chat_id`` (edits and deletes are skipped)."""
        return await self.wait_for(
            lambda s: s.chat_id == chat_id and s.method in NEW_MESSAGE_METHODS, timeout=timeout
        )

    async def expect_no_reply(self, chat_id: int, *, within: float = 0.3) -> None:
        """Fail if the bot sends anything new to ``chat_id`` in the next ``within`` seconds."""
        start = self._cursor
        await asyncio.sleep(within)
        late = [s for s in self.sent[start:] if s.chat_id == chat_id]
        if late:
            raise AssertionError(f"unexpected bot output in chat {chat_id}: {late}")

    async def wait_for_callback_answer(
        self,
        update_id: int | None = None,
        *,
        timeout: float = 10.0,
    ) -> CallbackAnswer:
        def find() -> CallbackAnswer | None:
            for answer in self.callback_answers:
                if update_id is None or answer.update_id == update_id:
                    return answer
            return None

        if not await self._wait_until(lambda: find() is not None, timeout):
            raise StubTimeoutError(
                self._timeout_report("callback query was not answered", self._cursor)
            )
        result = find()
        assert result is not None
        return result

    async def wait_consumed(self, update_id: int, *, timeout: float = 10.0) -> None:
        """Wait until the bot acknowledged the update (next getUpdates offset or webhook 2xx)."""
        if not await self._wait_until(lambda: self._confirmed_below > update_id, timeout):
            raise StubTimeoutError(
                self._timeout_report(f"update {update_id} not consumed", self._cursor)
            )

    def _timeout_report(self, headline: str, start: int) -> str:
        lines = [headline, "bot outputs since mark:"]
        lines += [
            f"  {s.method} chat={s.chat_id} id={s.message_id} text={s.text!r}"
            for s in self.sent[start:]
        ]
        if self.errors:
            lines.append("API errors (latest last):")
            lines += [f"  {e.method}: {e.status} {e.description}" for e in self.errors[-5:]]
        if self.unhandled:
            lines.append(
                f"methods the stub does not implement: {sorted({r.method for r in self.unhandled})}"
            )
        return "\n".join(lines)

    def messages_in(
        self, chat_id: int, *, include_deleted: bool = False, from_bot: bool | None = None
    ) -> list[StoredMessage]:
        """The chat as a client shows it now, oldest first."""
        return [
            m
            for _, m in sorted(self._messages.get(chat_id, {}).items())
            if (include_deleted or not m.deleted) and (from_bot is None or m.from_bot == from_bot)
        ]

    def message(self, chat_id: int, message_id: int) -> StoredMessage:
        return self._find_test_message(chat_id, message_id)

    @staticmethod
    def buttons(obj: Sent | StoredMessage | JSON | None) -> list[tuple[str, str | None]]:
        """Inline buttons as (label, callback_data or url), row by row."""
        markup = obj.reply_markup if isinstance(obj, (Sent, StoredMessage)) else obj
        if not markup:
            return []
        result: list[tuple[str, str | None]] = []
        for row in markup.get("inline_keyboard", []):
            for button in row:
                value = button.get("callback_data", button.get("url"))
                result.append((button.get("text", ""), value))
        return result

    def calls(self, method: str) -> list[JSON]:
        """Parameters of every request for ``method`` (case-insensitive), oldest first."""
        return [r.params for r in self.requests if r.method.lower() == method.lower()]

    def commands(self, language_code: str = "", scope: JSON | None = None) -> list[JSON]:
        """The command list stored for exactly this scope and language."""
        return list(self._commands.get((self._scope_key(scope), language_code), []))

    def commands_for(
        self, chat_id: int, *, language_code: str = "", user_id: int | None = None
    ) -> list[JSON]:
        """The commands a client would show, resolving scopes in Telegram's documented order."""
        chat = self._chats.get(chat_id, {"type": "private" if chat_id > 0 else "group"})
        scopes: list[JSON]
        if chat.get("type") == "private":
            scopes = [{"type": "chat", "chat_id": chat_id}, {"type": "all_private_chats"}]
        else:
            scopes = []
            if user_id is not None:
                scopes.append({"type": "chat_member", "chat_id": chat_id, "user_id": user_id})
            scopes += [{"type": "chat", "chat_id": chat_id}, {"type": "all_group_chats"}]
        scopes.append({"type": "default"})
        for scope in scopes:
            for language in dict.fromkeys([language_code, ""]):
                found = self._commands.get((self._scope_key(scope), language))
                if found:
                    return list(found)
        return []

    @property
    def pending_updates(self) -> list[JSON]:
        return list(self._updates)

    def api_errors(self, *, include_injected: bool = False) -> list[ApiErrorRecord]:
        return [e for e in self.errors if include_injected or not e.injected]
