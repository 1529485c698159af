"""A person talking to the real application over HTTP: welcome, help, language, questions and
the answer buttons, in English, Swedish and Danish."""

from __future__ import annotations

import pytest

from tests.conftest import Harness

pytestmark = pytest.mark.slow


async def test_start_welcomes_in_telegram_language_and_asks_role_once(bot: Harness) -> None:
    [welcome] = await bot.say(101, "/start", language_code="sv-SE")
    assert "Hej, jag heter Brobygger" in (welcome.text or "")
    assert [label for label, _ in welcome.buttons] == [
        "Jag arbetar med unga",
        "Jag är ung och söker en väg framåt",
    ]
    edits = await bot.press(101, welcome, "role:practitioner", expect=1)
    assert "/projects" in (edits[-1].text or "")
    [again] = await bot.say(101, "/start", language_code="sv-SE")
    assert again.buttons == []  # asked once only
    prefs = await bot.services.storage.get_user(101)
    assert prefs is not None
    assert (prefs.language, prefs.role) == ("sv", "practitioner")


async def test_unsupported_telegram_language_falls_back_to_english(bot: Harness) -> None:
    [welcome] = await bot.say(102, "/start", language_code="de")
    assert "Hi, I'm Brobygger" in (welcome.text or "")


@pytest.mark.parametrize(
    ("code", "expected"),
    [("en", "What I can do"), ("sv", "Det här kan jag"), ("da", "Det kan jeg")],
)
async def test_help_lists_every_user_command_in_the_users_language(
    bot: Harness, code: str, expected: str
) -> None:
    [reply] = await bot.say(103, "/help", language_code=code)
    text = reply.text or ""
    assert expected in text
    for command in (
        "/projects",
        "/meetings",
        "/takeaways",
        "/factors",
        "/language",
        "/privacy",
        "/forget",
        "/help",
    ):
        assert command in text
    assert "/reindex" not in text  # not an admin


async def test_admin_sees_admin_commands_in_help(bot: Harness) -> None:
    [reply] = await bot.say(bot.admin_id, "/help")
    assert "/reindex" in (reply.text or "")
    assert "/gaps" in (reply.text or "")
    assert "/documents – admin: the documents in the knowledge base; remove one" in (
        reply.text or ""
    )
    assert "/add – admin: add a web page" in (reply.text or "")


async def test_command_menu_is_published_per_language(bot: Harness) -> None:
    swedish = bot.stub.commands("sv")
    assert any(c["command"] == "projects" and "projekt" in c["description"] for c in swedish)
    danish = bot.stub.commands("da")
    assert any(c["command"] == "forget" and "slet" in c["description"] for c in danish)


async def test_language_can_be_changed(bot: Harness) -> None:
    [menu] = await bot.say(104, "/language", language_code="en")
    [edited] = await bot.press(104, menu, "lang:da", expect=1)
    assert "dansk" in (edited.text or "")
    [help_reply] = await bot.say(104, "/help", language_code="en")
    assert "Det kan jeg" in (help_reply.text or "")


async def test_danish_question_about_english_document_gets_the_budget(bot: Harness) -> None:
    replies = await bot.say(105, "Hvad er budgettet for atWork4NEETs?", language_code="da")
    text = "\n".join(r.text or "" for r in replies)
    assert "1,427,499" in text
    assert "Det her fandt jeg" in text  # Danish frame around the passage
    labels = [label for label, _ in replies[-1].buttons]
    assert labels[:2] == ["👍", "👎"]


async def test_answer_buttons_feedback_and_more_results(bot: Harness) -> None:
    replies = await bot.say(106, "What did the conferences in Sweden conclude?")
    answer = replies[-1]
    data = dict((label, d) for label, d in answer.buttons)
    await bot.press(106, answer, data["👍"])
    assert bot.last_callback_text() == "Thank you for the feedback!"
    more = await bot.press(106, answer, data["More results"], expect=1)
    assert more
    assert "3." in (more[0].text or "")
    stats = await bot.services.storage.stats(since=bot.now.date())
    assert stats.feedback_up == 1


async def test_unrelated_question_is_refused_honestly(bot: Harness) -> None:
    replies = await bot.say(107, "What is the weather like in Madrid tomorrow?")
    text = replies[-1].text or ""
    assert "couldn't find a good answer" in text
    assert "/projects" in text
    gaps = await bot.services.storage.gaps(since=bot.now.date())
    assert any("madrid" in gap.text for gap in gaps)


async def test_stale_answer_button_after_restart_is_outdated(bot: Harness) -> None:
    replies = await bot.say(108, "NEO budget")
    answer = replies[-1]
    bot.services.answers._answers.clear()  # what a restart does to the in-memory answers
    await bot.press(108, answer, answer.buttons[0][1] or "")
    assert bot.last_callback_text() == "This button is outdated. Please ask again or use the menu."


async def test_unknown_command_and_sticker_get_friendly_replies(bot: Harness) -> None:
    [reply] = await bot.say(109, "/frobnicate now")
    assert "/frobnicate" in (reply.text or "")
    assert "/help" in (reply.text or "")
    mark = bot.stub.mark()
    await bot.stub.send_sticker(109)
    [sticker_reply] = await bot._collect(109, mark, 1, 0.3, 10.0)
    assert "only read text" in (sticker_reply.text or "")


async def test_html_looking_question_is_escaped_not_interpreted(bot: Harness) -> None:
    replies = await bot.say(110, "<b>NEO</b> & <script>budget</script>")
    assert replies  # the stub rejects unparsable HTML, so arriving at all proves escaping
    assert not bot.stub.api_errors()
