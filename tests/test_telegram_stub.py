"""The stub is only useful if a real PTB bot cannot tell it from Telegram, so drive it with one."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import hashlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.telegram_stub import EntityParseError, TelegramStub, parse_html, utf16_len

TOKEN = "123456:ABC-DEF_test"
USER = 1001

Action = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[Any]]


@pytest.fixture
async def stub() -> AsyncIterator[TelegramStub]:
    async with TelegramStub() as server:
        yield server


@pytest.fixture
def outcomes() -> asyncio.Queue[Any]:
    """Handlers report results or API exceptions here; PTB would only log them."""
    return asyncio.Queue()


def command(name: str, action: Action, outcomes: asyncio.Queue[Any]) -> CommandHandler[Any, None]:
    async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await outcomes.put(await action(update, context))
        except TelegramError as exc:
            await outcomes.put(exc)

    return CommandHandler(name, callback)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    assert update.message.text is not None
    await update.message.reply_text(f"echo: {update.message.text}")


@contextlib.asynccontextmanager
async def running_bot(
    stub: TelegramStub, *handlers: BaseHandler[Any, Any, Any]
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(stub.base_url)
        .base_file_url(stub.base_file_url)
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


async def outcome(outcomes: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(outcomes.get(), 5)


# ---- the HTML parser on its own: TDLib's, on vectors from its test/message_entities.cpp ---


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("🏟 🏟&lt;<abacaba", "Unclosed start tag at byte offset 13"),
        ("🏟 🏟&lt;<abac aba>", 'Unsupported start tag "abac" at byte offset 13'),
        ("🏟 🏟&lt;<i   =aba>", 'Empty attribute name in the tag "i" at byte offset 13'),
        ("🏟 🏟&lt;<i    aba  =  190azAz-.,", "Unexpected end of name token at byte offset 27"),
        ("🏟 🏟&lt;<b></b></", "Unexpected end tag at byte offset 20"),
        ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
        (
            "🏟 🏟&lt;<i>a</em   >",
            'Unmatched end tag at byte offset 17, expected "</i>", found "</em>"',
        ),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("&#xDFDF;", "Text contains invalid Unicode characters"),
    ],
)
def test_parse_html_errors_match_tdlib(html: str, error: str) -> None:
    with pytest.raises(EntityParseError) as info:
        parse_html(html)
    assert str(info.value).startswith(error)


def test_parse_html_entities_match_tdlib() -> None:
    plain, entities = parse_html("🏟 🏟<i>🏟 &gt;<b aba   =   caba>&lt🏟</b></i>")
    assert plain == "🏟 🏟🏟 ><🏟"
    assert entities == [
        {"type": "italic", "offset": 5, "length": 7},
        {"type": "bold", "offset": 9, "length": 3},
    ]
    plain, entities = parse_html('<pre><code class="language-python">x = 1</code></pre>')
    assert (plain, entities) == (
        "x = 1",
        [{"type": "pre", "offset": 0, "length": 5, "language": "python"}],
    )
    assert parse_html("&lt;&amp;&laquo;&#12345678;")[0] == "<&&laquo;&#12345678;"
    assert parse_html("<a href=telegram.org>t</a>")[1][0]["url"] == "http://telegram.org/"
    with pytest.raises(EntityParseError, match="Unescaped"):
        parse_html("Q&A", strict_ampersand=True)


def test_parse_html_gives_bot_api_entities() -> None:
    """TDLib's textEntityType names come back as the Bot API's MessageEntity types."""
    plain, entities = parse_html(
        '<blockquote expandable>long</blockquote><a href="tg://user?id=42">you</a>'
        '<tg-emoji emoji-id="536832417">👍</tg-emoji><span class="tg-spoiler">s</span>'
        "<s>x</s><u>y</u><code>z</code>"
    )
    assert plain == "longyou👍sxyz"
    assert entities == [
        {"type": "expandable_blockquote", "offset": 0, "length": 4},
        {
            "type": "text_mention",
            "offset": 4,
            "length": 3,
            "user": {"id": 42, "is_bot": False, "first_name": ""},
        },
        {"type": "custom_emoji", "offset": 7, "length": 2, "custom_emoji_id": "536832417"},
        {"type": "spoiler", "offset": 9, "length": 1},
        {"type": "strikethrough", "offset": 10, "length": 1},
        {"type": "underline", "offset": 11, "length": 1},
        {"type": "code", "offset": 12, "length": 1},
    ]


def test_parse_html_accepts_a_date_entity() -> None:
    plain, entities = parse_html('<tg-time unix="1767225600" format="wD">1 Jan</tg-time> &amp;')
    assert (plain, entities) == ("1 Jan &", [])  # the date entity is not modelled by the stub


# ---- end to end with a real PTB Application -------------------------------------------


async def test_echo_round_trip_and_message_ids(stub: TelegramStub) -> None:
    async with running_bot(stub):
        await stub.send_text(USER, "hello", first_name="Ada")
        reply = await stub.next_reply(USER)
        await stub.send_text(USER, "again")
        second = await stub.next_reply(USER)

    assert reply.text == "echo: hello"
    assert reply.message is not None
    assert reply.message["from"]["username"] == "brobygger_test_bot"
    assert [m.message_id for m in stub.messages_in(USER)] == [1, 2, 3, 4]
    assert [m.from_bot for m in stub.messages_in(USER)] == [False, True, False, True]
    assert second.text == "echo: again"
    assert stub.calls("getMe")
    assert stub.api_errors() == []


async def test_command_and_html_entities(stub: TelegramStub, outcomes: asyncio.Queue[Any]) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        assert update.message is not None
        return await update.message.reply_html("<b>Hej</b> &amp; velkommen, <i>Ada</i>")

    async with running_bot(stub, command("start", start, outcomes)):
        await stub.send_text(USER, "/start", language_code="da")
        reply = await stub.next_reply(USER)
        await outcome(outcomes)

    assert reply.text == "Hej & velkommen, Ada"
    assert reply.html == "<b>Hej</b> &amp; velkommen, <i>Ada</i>"
    assert reply.entities == [
        {"type": "bold", "offset": 0, "length": 3},
        {"type": "italic", "offset": 17, "length": 3},
    ]


async def test_bad_html_raises_bad_request(
    stub: TelegramStub, outcomes: asyncio.Queue[Any]
) -> None:
    async def bad(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        assert update.message is not None
        return await update.message.reply_text("<b>unclosed", parse_mode=ParseMode.HTML)

    async def unknown_tag(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        assert update.message is not None
        return await update.message.reply_html("score <3 or <br>")

    async with running_bot(
        stub, command("bad", bad, outcomes), command("tag", unknown_tag, outcomes)
    ):
        await stub.send_text(USER, "/bad")
        first = await outcome(outcomes)
        await stub.send_text(USER, "/tag")
        second = await outcome(outcomes)

    assert isinstance(first, BadRequest)
    assert "can't parse entities" in first.message.lower()
    assert isinstance(second, BadRequest)
    assert 'unsupported start tag "3"' in second.message.lower()
    assert next(e.description for e in stub.errors) == (
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""
    )
    assert stub.messages_in(USER, from_bot=True) == []


async def test_text_limit_counts_utf16_after_entity_parsing(
    stub: TelegramStub, outcomes: asyncio.Queue[Any]
) -> None:
    async def probe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        assert update.message is not None
        results: list[object] = []
        for text, mode in [
            ("&lt;" * 4096, ParseMode.HTML),  # 16384 raw chars, 4096 after parsing
            ("😀" * 2048, None),  # 2048 code points = 4096 UTF-16 units
            ("😀" * 2049, None),
            ("x" * 4097, None),
            ("<b></b>  ", ParseMode.HTML),
        ]:
            try:
                await update.message.reply_text(text, parse_mode=mode)
                results.append("ok")
            except BadRequest as exc:
                results.append(exc.message)
        return results

    async with running_bot(stub, command("probe", probe, outcomes)):
        await stub.send_text(USER, "/probe")
        results = await outcome(outcomes)

    assert results == [
        "ok",
        "ok",
        "Message is too long",
        "Message is too long",
        "Message text is empty",
    ]
    assert utf16_len(stub.messages_in(USER, from_bot=True)[1].text or "") == 4096


async def test_callback_data_over_64_bytes_rejected(
    stub: TelegramStub, outcomes: asyncio.Queue[Any]
) -> None:
    async def keyboard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        assert update.message is not None
        results: list[object] = []
        for data in ["a" * 64, "æ" * 33, "a" * 65]:  # 64 bytes, 66 bytes, 65 bytes
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data=data)]])
            try:
                await update.message.reply_text("pick", reply_markup=markup)
                results.append("ok")
            except BadRequest as exc:
                results.append(exc.message)
        return results

    async with running_bot(stub, command("kb", keyboard, outcomes)):
        await stub.send_text(USER, "/kb")
        results = await outcome(outcomes)

    assert results == ["ok", "Button_data_invalid", "Button_data_invalid"]
    assert stub.errors[-1].description == "Bad Request: BUTTON_DATA_INVALID"


async def test_callback_query_flow(stub: TelegramStub, outcomes: asyncio.Queue[Any]) -> None:
    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        assert update.message is not None
        markup = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton("Ja", callback_data="answer:yes")],
                [InlineKeyboardButton("Docs", url="https://example.org/guide")],
            ]
        )
        return await update.message.reply_text("Vil du fortsætte?", reply_markup=markup)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        assert query.message is not None
        await query.answer("Noteret")
        await query.edit_message_text(f"Du valgte: {query.data}")

    async with running_bot(stub, command("menu", menu, outcomes), CallbackQueryHandler(pressed)):
        await stub.send_text(USER, "/menu")
        shown = await stub.next_reply(USER)
        assert stub.buttons(shown) == [
            ("Ja", "answer:yes"),
            ("Docs", "https://example.org/guide"),
        ]
        update_id = await stub.press_button(USER, shown, "answer:yes")
        answer = await stub.wait_for_callback_answer(update_id)
        edited = await stub.wait_for(lambda s: s.method == "editMessageText")
        with pytest.raises(LookupError):  # the edit removed the keyboard
            await stub.press_button(USER, shown, "answer:yes")

    assert answer.text == "Noteret"
    assert answer.callback_data == "answer:yes"
    assert edited.message_id == shown.message_id
    current = stub.message(USER, shown.message_id or 0)
    assert current.text == "Du valgte: answer:yes"
    assert current.reply_markup is None
    assert current.edit_date is not None


async def test_edit_with_same_content_is_not_modified(
    stub: TelegramStub, outcomes: asyncio.Queue[Any]
) -> None:
    async def twice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        assert update.message is not None
        sent = await update.message.reply_html("<b>Status</b>: ok")
        await sent.edit_text("<b>Status</b>: done", parse_mode=ParseMode.HTML)
        try:
            await sent.edit_text("<b>Status</b>: done", parse_mode=ParseMode.HTML)
        except BadRequest as exc:
            return exc
        return "not raised"

    async with running_bot(stub, command("twice", twice, outcomes)):
        await stub.send_text(USER, "/twice")
        result = await outcome(outcomes)

    assert isinstance(result, BadRequest)
    assert result.message.startswith("Message is not modified")
    assert [s.method for s in stub.sent] == ["sendMessage", "editMessageText"]


async def test_send_document_bytes_received(
    stub: TelegramStub, outcomes: asyncio.Queue[Any]
) -> None:
    payload = "Navn;Kommune\nAda;København\n".encode()

    async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        assert update.message is not None
        return await update.message.reply_document(
            payload, filename="kontakter.csv", caption="<b>Eksport</b>", parse_mode="HTML"
        )

    async with running_bot(stub, command("export", export, outcomes)):
        await stub.send_text(USER, "/export")
        sent = await stub.next_reply(USER)
        message = await outcome(outcomes)

    assert sent.method == "sendDocument"
    assert sent.document_name == "kontakter.csv"
    assert sent.document_bytes == payload
    assert sent.document_mime == "text/csv"
    assert sent.text == "Eksport"
    assert sent.entities == [{"type": "bold", "offset": 0, "length": 7}]
    assert message.document.file_name == "kontakter.csv"
    assert stub.file_bytes(message.document.file_id) == payload


async def test_user_document_downloadable_via_get_file(stub: TelegramStub) -> None:
    data = bytes(range(256)) * 40

    async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        assert update.message.document is not None
        file = await update.message.document.get_file()
        content = await file.download_as_bytearray()
        await update.message.reply_text(
            f"{update.message.document.file_name} {hashlib.sha256(content).hexdigest()}"
        )

    async with running_bot(stub, MessageHandler(filters.Document.ALL, on_document)):
        await stub.send_document(USER, "referral.pdf", data, caption="til dig")
        reply = await stub.next_reply(USER)

    assert reply.text == f"referral.pdf {hashlib.sha256(data).hexdigest()}"
    assert stub.calls("getFile")[0]["file_id"].startswith("STUBDOC")


async def test_set_my_commands_per_language(stub: TelegramStub) -> None:
    async with running_bot(stub) as app:
        await app.bot.set_my_commands([BotCommand("start", "Start"), BotCommand("help", "Help")])
        await app.bot.set_my_commands(
            [BotCommand("start", "Start"), BotCommand("hjaelp", "Hjælp")], language_code="da"
        )
        danish = await app.bot.get_my_commands(language_code="da")
        with pytest.raises(BadRequest, match="Bot_command_invalid"):
            await app.bot.set_my_commands([BotCommand("Hjælp", "x")], language_code="da")
        await app.bot.delete_my_commands(language_code="da")

    assert [c.command for c in danish] == ["start", "hjaelp"]
    assert stub.commands("da") == []
    assert [c["command"] for c in stub.commands()] == ["start", "help"]
    stub.register_user(USER)
    assert [c["command"] for c in stub.commands_for(USER, language_code="sv")] == [
        "start",
        "help",
    ]


async def test_flood_control_surfaces_as_retry_after(
    stub: TelegramStub, outcomes: asyncio.Queue[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without this PTB warns (PTBDeprecationWarning) while building RetryAfter, which
    # filterwarnings=error turns into the exception the bot sees instead of RetryAfter.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")

    async def hello(update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        assert update.message is not None
        return await update.message.reply_text("hej")

    async with running_bot(stub, command("hello", hello, outcomes)):
        stub.fail_next("sendMessage", status=429, retry_after=7)
        await stub.send_text(USER, "/hello")
        flood = await outcome(outcomes)
        stub.fail_next("sendMessage", status=500)
        await stub.send_text(USER, "/hello")
        server_error = await outcome(outcomes)
        stub.block_user(USER)
        await stub.send_text(USER, "/hello")
        blocked = await outcome(outcomes)
        stub.unblock_user(USER)
        await stub.send_text(USER, "/hello")
        await stub.next_reply(USER)

    assert isinstance(flood, RetryAfter)
    assert flood.retry_after == dtm.timedelta(seconds=7)
    assert isinstance(server_error, NetworkError)
    assert isinstance(blocked, Forbidden)
    assert "blocked by the user" in blocked.message
    assert [e.status for e in stub.errors] == [429, 500, 403]
    assert stub.api_errors() == [stub.errors[-1]]  # only the block was not injected


async def test_rejects_malformed_token_and_unknown_method(stub: TelegramStub) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{stub.base_url}not-a-token/getMe") as response:
            assert response.status == 401
            assert await response.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with session.post(f"{stub.base_url}{TOKEN}/sendTelepathy") as response:
            assert response.status == 404
        async with session.post(
            f"{stub.base_url}{TOKEN}/sendmessage", json={"chat_id": 5, "text": "x"}
        ) as response:
            assert (await response.json())["description"] == "Bad Request: chat not found"
    assert [r.method for r in stub.unhandled] == ["sendTelepathy"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_webhook_delivery(stub: TelegramStub) -> None:
    port = free_port()
    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(stub.base_url)
        .base_file_url(stub.base_file_url)
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT, echo))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="hook",
            webhook_url=f"http://127.0.0.1:{port}/hook",
            secret_token="s3cret",
        )
        try:
            update_id = await stub.send_text(USER, "via webhook")
            reply = await stub.next_reply(USER)
            await stub.wait_consumed(update_id)
        finally:
            await app.updater.stop()
            await app.stop()

    assert reply.text == "echo: via webhook"
    assert stub.webhook is not None
    assert stub.webhook["secret_token"] == "s3cret"
    assert stub.webhook_deliveries == [(update_id, 200)]


async def test_group_media_and_edited_updates_parse_in_ptb(
    stub: TelegramStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # durations as timedelta, without the warning
    group = -1001234567890
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def on_any(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        if update.edited_message is not None:
            await seen.put(f"edited:{message.text}")
        elif message.photo:
            await seen.put(f"photo:{message.photo[-1].width}:{message.caption}")
        elif message.voice:
            duration = message.voice.duration
            assert isinstance(duration, dtm.timedelta)
            await seen.put(f"voice:{duration.total_seconds():.0f}")
        elif message.sticker:
            await seen.put(f"sticker:{message.sticker.emoji}")

    async def where(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        assert update.message is not None
        await context.bot.send_chat_action(update.effective_chat.id, "typing")
        chat = await context.bot.get_chat(update.effective_chat.id)
        await update.message.reply_text(f"{chat.type}:{chat.title}", do_quote=True)

    async with running_bot(
        stub,
        CommandHandler("where", where),
        MessageHandler(filters.ALL & ~filters.COMMAND & ~filters.TEXT, on_any),
        MessageHandler(filters.UpdateType.EDITED_MESSAGE, on_any),
    ):
        await stub.send_text(
            USER,
            "/where@brobygger_test_bot",
            chat_type="supergroup",
            chat_id=group,
            chat_title="Ungdomsteam",
        )
        reply = await stub.next_reply(group)
        await stub.send_photo(USER, caption="kort")
        await stub.send_voice(USER, duration=3)
        await stub.send_sticker(USER, emoji="🙂")
        await stub.send_text(USER, "typo")
        await stub.next_reply(USER)
        await stub.edit_message(USER, stub.messages_in(USER)[-2].message_id, "fixed")
        kinds = [await asyncio.wait_for(seen.get(), 5) for _ in range(4)]

    assert reply.text == "supergroup:Ungdomsteam"
    assert reply.message is not None
    assert reply.message["reply_to_message"]["message_id"] == 1
    assert stub.chat_actions == [(group, "typing")]
    assert kinds == ["photo:800:kort", "voice:3", "sticker:🙂", "edited:fixed"]
