"""`brobygger chat`: the real application and handlers, driven from a terminal.

A request class answers the bot's Bot API calls in-process and prints what the bot sends, so the
console exercises exactly the code Telegram users meet — commands, templates and buttons
included — without a token or a network.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar, TextIO

from rich.console import Console as RichConsole
from rich.text import Text
from telegram import Update
from telegram.request import BaseRequest, RequestData

from bot.app import build_application
from bot.i18n import user_language
from bot.retrieval.embedder import BACKGROUND
from bot.services.container import Services
from bot.services.search import SearchService
from bot.settings import Settings
from bot.storage import Storage

CONSOLE_TOKEN = "100000:console-local-chat"
BOT_USER = {"id": 100000, "is_bot": True, "first_name": "Brobygger", "username": "brobygger_bot"}


class TelegramHTML(HTMLParser):
    """Telegram's HTML (the subset bot replies use) as terminal styles: bold, italic,
    underline and strike as such, links as their text with the address after it, quotes and
    expandable quotes indented with a bar, spoilers and code set apart. The console shows
    what a Telegram user sees, not the markup."""

    STYLES: ClassVar[dict[str, str]] = {
        "b": "bold",
        "strong": "bold",
        "i": "italic",
        "em": "italic",
        "u": "underline",
        "ins": "underline",
        "s": "strike",
        "strike": "strike",
        "del": "strike",
        "code": "cyan",
        "pre": "cyan",
        "tg-spoiler": "reverse",
        "span": "reverse",  # <span class="tg-spoiler">
    }
    QUOTE = "  │ "

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = Text()
        self._styles: list[str] = []
        self._links: list[tuple[str, int]] = []  # (address, where its text starts)
        self._quotes = 0
        self._line_start = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "blockquote":
            if not self._line_start:
                self._write("\n")
            self._quotes += 1
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self.text)))
            self._styles.append("underline")
        elif tag in self.STYLES:
            self._styles.append(self.STYLES[tag])

    def handle_endtag(self, tag: str) -> None:
        if tag == "blockquote":
            self._quotes = max(0, self._quotes - 1)
        elif tag == "a" and self._links:
            address, start = self._links.pop()
            if self._styles:
                self._styles.pop()
            shown = self.text.plain[start:]
            if address and address.removeprefix("mailto:") not in shown:
                self._write(f" ({address})")
        elif tag in self.STYLES and self._styles:
            self._styles.pop()

    def handle_data(self, data: str) -> None:
        self._write(data, " ".join(self._styles))

    def _write(self, data: str, style: str = "") -> None:
        for piece in re.split(r"(\n)", data):
            if not piece:
                continue
            if piece == "\n":
                self.text.append("\n")
                self._line_start = True
                continue
            if self._line_start and self._quotes:
                self.text.append(self.QUOTE * self._quotes, style="dim")
            self.text.append(piece, style=style or None)
            self._line_start = False


def html_to_text(html_text: str) -> Text:
    """A reply's Telegram HTML as styled terminal text."""
    parser = TelegramHTML()
    parser.feed(html_text)
    parser.close()
    return parser.text


def html_to_terminal(html_text: str, color: bool) -> str:
    """A reply as a terminal shows it: ANSI styles when `color`, plain text otherwise."""
    out = io.StringIO()
    console = RichConsole(
        file=out,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
        markup=False,
        width=10_000,
    )
    console.print(html_to_text(html_text), end="", soft_wrap=True)
    return out.getvalue()


class ConsoleRequest(BaseRequest):
    """Answers Bot API calls locally and prints the bot's messages and buttons."""

    def __init__(self, out: TextIO, downloads: Path, color: bool) -> None:
        self.out = out
        self.downloads = downloads
        self.color = color
        self.message_ids = itertools.count(1)
        self.keyboards: dict[int, list[tuple[str, str]]] = {}
        self.last_keyboard: int | None = None

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def _message(self, chat_id: int, message_id: int, **fields: Any) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            **fields,
        }

    def _show(self, message_id: int, text: str, markup: Any, edited: bool) -> None:
        prefix = "(edited) " if edited else ""
        self.out.write(f"\n🤖 {prefix}{html_to_terminal(text, self.color)}\n")
        if isinstance(markup, str):
            markup = json.loads(markup)
        buttons = [
            (b.get("text", ""), b.get("callback_data") or "url:" + b.get("url", ""))
            for row in (markup or {}).get("inline_keyboard", [])
            for b in row
        ]
        if buttons:
            self.keyboards[message_id] = buttons
            self.last_keyboard = message_id
            labels = "  ".join(f"[#{n}] {label}" for n, (label, _) in enumerate(buttons, 1))
            self.out.write(f"   {labels}\n")
        self.out.flush()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        api = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(request_data.parameters) if request_data else {}
        result: Any = True
        chat_id = int(params.get("chat_id", 0) or 0)
        if api == "getMe":
            result = BOT_USER
        elif api == "sendMessage":
            message_id = next(self.message_ids)
            self._show(message_id, params.get("text", ""), params.get("reply_markup"), False)
            result = self._message(chat_id, message_id, text=params.get("text", ""))
        elif api in ("editMessageText", "editMessageReplyMarkup"):
            message_id = int(params.get("message_id", 0))
            if api == "editMessageText":
                self._show(message_id, params.get("text", ""), params.get("reply_markup"), True)
            result = self._message(chat_id, message_id, text=params.get("text", ""))
        elif api == "answerCallbackQuery":
            if params.get("text"):
                self.out.write(f"   ({params['text']})\n")
        elif api in ("sendDocument", "sendPhoto"):  # files and the /stats chart land on disk
            # uploaded files travel as multipart parts, not as parameters
            files = request_data.multipart_data if request_data is not None else {}
            part = next(iter(files.values()), None)
            name = (part[0] if part is not None else None) or "file"
            content = part[1] if part is not None else b""
            data = content if isinstance(content, bytes) else content.read()
            self.downloads.mkdir(parents=True, exist_ok=True)
            target = self.downloads / Path(name).name
            target.write_bytes(data)
            self.out.write(f"\n📎 {params.get('caption') or ''} → saved to {target}\n")
            local = {"file_id": "local", "file_unique_id": "local"}
            media: dict[str, Any] = (
                {"document": {**local, "file_name": name}}
                if api == "sendDocument"
                else {"photo": [{**local, "width": 900, "height": 450}]}
            )
            result = self._message(chat_id, next(self.message_ids), **media)
        payload = json.dumps({"ok": True, "result": result}, default=str).encode()
        return 200, payload


class Console:
    """Turns typed lines into Telegram updates for the application."""

    def __init__(self, app: Any, request: ConsoleRequest, user_id: int, language: str) -> None:
        self.app = app
        self.request = request
        self.user_id = user_id
        self.language = language
        self.update_ids = itertools.count(1)
        self.incoming_ids = itertools.count(1_000_000)

    def _user(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "is_bot": False,
            "first_name": "You",
            "language_code": self.language,
        }

    def update_for(self, line: str) -> Update | None:
        chat = {"id": self.user_id, "type": "private"}
        press = re.fullmatch(r"#(\d+)", line.strip())
        if press:
            keyboard = self.request.last_keyboard
            buttons = self.request.keyboards.get(keyboard or -1, [])
            number = int(press.group(1))
            if not 1 <= number <= len(buttons) or buttons[number - 1][1].startswith("url:"):
                self.request.out.write("   (no such button)\n")
                return None
            data = buttons[number - 1][1]
            pressed = self.request._message(self.user_id, keyboard or 0, text="")
            return Update.de_json(
                {
                    "update_id": next(self.update_ids),
                    "callback_query": {
                        "id": str(next(self.update_ids)),
                        "from": self._user(),
                        "chat_instance": "c",
                        "data": data,
                        "message": pressed,
                    },
                },
                self.app.bot,
            )
        message: dict[str, Any] = {
            "message_id": next(self.incoming_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self._user(),
            "text": line,
        }
        if line.startswith("/"):
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(line.split()[0])}
            ]
        return Update.de_json(
            {"update_id": next(self.update_ids), "message": message}, self.app.bot
        )

    async def handle(self, line: str) -> None:
        """Process one line and wait until everything it started has finished."""
        update = self.update_for(line)
        if update is None:
            return
        before = asyncio.all_tasks()
        await self.app.process_update(update)
        while True:
            pending = {t for t in asyncio.all_tasks() - before if not t.done()}
            current = asyncio.current_task()
            if current is not None:
                pending.discard(current)
            pending = {t for t in pending if not t.get_name().startswith(BACKGROUND)}
            if not pending:
                break
            await asyncio.wait(pending, timeout=120)


async def _lines(stream: TextIO, prompt: bool) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    while True:
        if prompt:
            sys.stdout.write("\nyou › ")
            sys.stdout.flush()
        line = await loop.run_in_executor(None, stream.readline)
        if not line:
            return
        yield line.rstrip("\n")


async def console_session(
    settings: Settings,
    search: SearchService,
    lines: AsyncIterator[str] | Iterable[str],
    out: TextIO,
    *,
    user_id: int = 1,
    language: str | None = None,
    color: bool = False,
) -> None:
    """One console conversation with the real application (used by `brobygger chat` and tests)."""
    request = ConsoleRequest(out, settings.data_dir / "downloads", color)
    storage = await Storage.open(settings.database_path)
    services = Services(settings=settings, search=search, storage=storage, owns_search=False)
    if language:  # an explicit --lang wins over what this console user chose before
        await storage.save_user(user_id, language=user_language(language))
    app_settings = replace(settings, telegram_bot_token=CONSOLE_TOKEN)
    app = build_application(app_settings, services, rate_limiter=False, request=request)
    console = Console(app, request, user_id, user_language(language))
    await app.initialize()
    if app.post_init:
        await app.post_init(app)
    await app.start()
    try:
        if isinstance(lines, AsyncIterator):
            async for line in lines:
                if line.strip() in {"/quit", "/exit"}:
                    break
                if line.strip():
                    await console.handle(line)
        else:
            for line in lines:
                if line.strip():
                    await console.handle(line)
    finally:
        await app.stop()
        await app.shutdown()
        await storage.close()


def run_console(
    settings: Settings, search: SearchService, *, user_id: int = 1, language: str | None = None
) -> int:
    interactive = sys.stdin.isatty()
    if interactive:
        print(
            "Brobygger console chat – type a question or a command (/help, /start); "
            "press a button with #1, #2…; /quit or Ctrl-D to leave."
        )
    asyncio.run(
        console_session(
            settings,
            search,
            _lines(sys.stdin, interactive),
            sys.stdout,
            user_id=user_id,
            language=language,
            color=interactive and sys.stdout.isatty(),
        )
    )
    return 0
