"""The fake Telegram server, driven by the real python-telegram-bot 22 and by raw HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from tests.bot.fakes.fake_telegram import (
    FakeTelegram,
    SentMessage,
    prepare_ptb_env,
    run_application,
)
from tests.bot.fakes.fake_telegram_rules import ApiError, parse_html

TOKEN = "123:ABC"
WAIT_S = 5.0  # bound on every wait; tests never get near it


class FakeClock:
    """The fake's injected clock; tests move it by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _ptb_env(monkeypatch: pytest.MonkeyPatch) -> None:
    prepare_ptb_env(monkeypatch)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN, clock=clock) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url) as client:
        yield client


@pytest.fixture
async def raw(fake: FakeTelegram) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the fake's method URLs, for what PTB does not show."""
    base = f"{fake.base_url}{TOKEN}/"
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=WAIT_S) as client:
        yield client


def build_app(
    fake: FakeTelegram, token: str = TOKEN, rate_limiter: AIORateLimiter | None = None
) -> Application[Any, Any, Any, Any, Any, Any]:
    chain = ApplicationBuilder().token(token).base_url(fake.base_url)
    chain = chain.base_file_url(fake.base_file_url)
    if rate_limiter is not None:
        chain = chain.rate_limiter(rate_limiter)
    return chain.build()


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def greet(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.effective_user is not None
    name = update.effective_user.first_name
    await update.message.reply_html(f"Welcome, <b>{name}</b>! You said {update.message.text}")


# the real PTB Application, polling in this event loop


@pytest.mark.parametrize(
    ("chat_id", "chat_type", "command"),
    [
        (42, "private", "/start"),
        (-1001234567890, "supergroup", "/start@arbwatch_test_bot"),
    ],
)
async def test_start_command_gets_a_reply(
    fake: FakeTelegram, chat_id: int, chat_type: str, command: str
) -> None:
    app = build_app(fake)
    app.add_handler(CommandHandler("start", greet))
    async with run_application(app) as errors:
        # Addressed to another bot: PTB (which learned its username from getMe) ignores it.
        fake.send_user_message(chat_id, "/start@other_bot", user_id=7, chat_type=chat_type)
        fake.send_user_message(chat_id, command, user_id=7, chat_type=chat_type)
        reply = await fake.wait_for(lambda m: m.chat_id == chat_id, WAIT_S)
    assert reply.method == "sendMessage"
    assert reply.text == f"Welcome, <b>Ann</b>! You said {command}"
    assert reply.parse_mode == "HTML"
    assert errors == []
    assert fake.calls["getMe"] == 1 and fake.calls["deleteWebhook"] == 1
    assert fake.pending_updates == []  # updater.stop() confirmed them with a last offset
    assert fake.rejected == []


async def test_button_press_reaches_callback_query_handler(fake: FakeTelegram) -> None:
    async def offer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        keyboard = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Mute BTC", callback_data="mute:BTC")]]
        )
        await update.message.reply_text("BTC spread 0.4%", reply_markup=keyboard)

    async def mute(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer(f"Muted {query.data}")
        await query.edit_message_text("BTC muted")

    app = build_app(fake)
    app.add_handler(CommandHandler("alerts", offer))
    app.add_handler(CallbackQueryHandler(mute, pattern=r"^mute:"))
    async with run_application(app) as errors:
        fake.send_user_message(5, "/alerts")
        offered = await fake.wait_for(lambda m: m.method == "sendMessage", WAIT_S)
        assert offered.callback_data == ["mute:BTC"]
        assert offered.message_id is not None
        fake.press_button(5, offered.message_id, "mute:BTC")
        answer = await fake.wait_for(lambda m: m.method == "answerCallbackQuery", WAIT_S)
        edit = await fake.wait_for(lambda m: m.method == "editMessageText", WAIT_S)
    assert (answer.chat_id, answer.message_id, answer.text) == (
        5,
        offered.message_id,
        "Muted mute:BTC",
    )
    assert (edit.chat_id, edit.message_id, edit.text) == (5, offered.message_id, "BTC muted")
    assert errors == []
    with pytest.raises(ValueError, match="no button"):  # the edit removed the keyboard
        fake.press_button(5, offered.message_id, "mute:BTC")


async def test_set_my_commands_is_recorded(fake: FakeTelegram) -> None:
    app = build_app(fake)
    async with app:  # initialize (getMe) ... shutdown; post_init would only run in run_polling
        await app.bot.set_my_commands([BotCommand("start", "Subscribe"), ("alerts", "Your alerts")])
        commands = await app.bot.get_my_commands()
    assert fake.commands_set == [
        {
            "commands": [
                {"command": "start", "description": "Subscribe"},
                {"command": "alerts", "description": "Your alerts"},
            ]
        }
    ]
    assert [c.command for c in commands] == ["start", "alerts"]


async def test_invalid_command_name_is_refused(bot: Bot, fake: FakeTelegram) -> None:
    # PTB drops the "Bad Request: " prefix and str.capitalize()s the rest of the description.
    with pytest.raises(BadRequest, match=r"^Bot_command_invalid$"):
        await bot.set_my_commands([("Start-Now", "bad name")])
    assert fake.commands_set == []


async def test_full_run_leaves_no_tasks_behind(clock: FakeClock) -> None:
    async with FakeTelegram(TOKEN, clock=clock) as fake:
        app = build_app(fake)
        app.add_handler(CommandHandler("start", greet))
        async with run_application(app):
            fake.send_user_message(1, "/start")
            await fake.wait_for(lambda m: m.chat_id == 1, WAIT_S)
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_wrong_token_is_an_invalid_token(fake: FakeTelegram) -> None:
    app = build_app(fake, token="999:WRONG")
    with pytest.raises(InvalidToken):
        async with run_application(app):
            pass
    assert fake.calls == {}


# errors as PTB raises them (direct Bot calls)


async def test_429_surfaces_as_retry_after(bot: Bot, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(1, "spread alert")
    assert info.value.retry_after == dtm.timedelta(seconds=7)
    assert fake.rate_limited == 1
    assert fake.rejected[0].description == "Too Many Requests: retry after 7"
    await bot.send_message(1, "spread alert")  # only the next call failed
    assert [m.text for m in fake.sent] == ["spread alert"]


async def test_injected_faults_can_target_one_chat_several_times(
    bot: Bot, fake: FakeTelegram
) -> None:
    fake.fail_next("sendMessage", 500, chat_id=2, times=2)
    await bot.send_message(1, "a")
    for _ in range(2):
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(2, "b")
    await bot.send_message(2, "c")
    assert [(m.chat_id, m.text) for m in fake.sent] == [(1, "a"), (2, "c")]


async def test_blocked_chat_is_forbidden_forever(bot: Bot, fake: FakeTelegram) -> None:
    fake.block(9)
    for _ in range(2):
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(9, "hello?")
    with pytest.raises(Forbidden):
        await bot.send_photo(9, photo=tiny_png())
    await bot.send_message(10, "others still get alerts")
    assert [m.chat_id for m in fake.sent] == [10]
    assert [r.status for r in fake.rejected] == [403, 403, 403]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"text": "x" * 4097}, "message is too long"),
        ({"text": "<b>" + "x" * 4097 + "</b>", "parse_mode": "HTML"}, "message is too long"),
        ({"text": "   "}, "message text is empty"),
        ({"text": "<b>bold", "parse_mode": "HTML"}, "can't parse entities"),
        ({"text": "<b>x</i>", "parse_mode": "HTML"}, "can't parse entities"),
        ({"text": "<h1>title</h1>", "parse_mode": "HTML"}, "can't parse entities"),
        ({"text": "spread < 0.1%", "parse_mode": "HTML"}, "can't parse entities"),
        ({"text": "<a>link</a>", "parse_mode": "HTML"}, "can't parse entities"),
        (
            {
                "text": "pick",
                "reply_markup": InlineKeyboardMarkup(
                    [[InlineKeyboardButton("a", callback_data="d" * 65)]]
                ),
            },
            "BUTTON_DATA_INVALID",
        ),
    ],
    ids=[
        "long",
        "long-after-parsing",
        "empty",
        "unclosed",
        "crossed",
        "unknown-tag",
        "bare-lt",
        "a-no-href",
        "data-65-bytes",
    ],
)
async def test_bad_requests(
    bot: Bot, fake: FakeTelegram, kwargs: dict[str, Any], error: str
) -> None:
    with pytest.raises(
        BadRequest, match=f"(?i){error}"
    ):  # PTB drops "Bad Request: " and capitalises
        await bot.send_message(1, **kwargs)
    assert fake.sent == []
    assert fake.rejected[0].status == 400


async def test_limits_are_inclusive(bot: Bot, fake: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton("a", callback_data="é" * 32)]]
    )  # 64 bytes
    await bot.send_message(1, "x" * 4096, reply_markup=keyboard)
    # 4096 characters once the markup is parsed; "&lt;" is one character.
    await bot.send_message(1, "<b>" + "&lt;" * 4096 + "</b>", parse_mode="HTML")
    await bot.send_photo(1, photo=tiny_png(), caption="c" * 1024)
    assert len(fake.sent) == 3


async def test_long_caption_is_refused(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
        await bot.send_photo(1, photo=tiny_png(), caption="c" * 1025)


async def test_send_photo_records_the_bytes(bot: Bot, fake: FakeTelegram) -> None:
    png = tiny_png(640, 480)
    message = await bot.send_photo(
        3, photo=png, caption="<b>BTC</b> spread", parse_mode="HTML", disable_notification=True
    )
    sent = fake.sent[0]
    assert (sent.method, sent.chat_id, sent.photo, sent.photo_size) == (
        "sendPhoto",
        3,
        png,
        len(png),
    )
    assert (sent.text, sent.disable_notification) == ("<b>BTC</b> spread", True)
    assert (message.photo[-1].width, message.photo[-1].height) == (640, 480)
    assert message.caption == "BTC spread"
    assert [(e.type, e.offset, e.length) for e in message.caption_entities] == [("bold", 0, 3)]


async def test_edits_follow_telegram_rules(bot: Bot, fake: FakeTelegram) -> None:
    sent = await bot.send_message(4, "<i>old</i>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "<i>old</i>", chat_id=4, message_id=sent.message_id, parse_mode="HTML"
        )
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("new", chat_id=4, message_id=sent.message_id + 1)
    edited = await bot.edit_message_text("new", chat_id=4, message_id=sent.message_id)
    assert isinstance(edited, Message)
    assert edited.text == "new" and edited.edit_date is not None
    assert [m.method for m in fake.sent] == ["sendMessage", "editMessageText"]


async def test_callback_query_answers_once(bot: Bot, fake: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="ok")]])
    sent = await bot.send_message(6, "?", reply_markup=keyboard)
    fake.press_button(6, sent.message_id, "ok")
    query_id = fake.pending_updates[0]["callback_query"]["id"]
    assert await bot.answer_callback_query(query_id)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query_id)


# enforced flood limits, on the injected clock


async def test_per_chat_limit_answers_429(clock: FakeClock) -> None:
    async with (
        FakeTelegram(TOKEN, per_chat_per_s=1, clock=clock) as fake,
        Bot(TOKEN, base_url=fake.base_url) as bot,
    ):
        await bot.send_message(1, "first")
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(1, "second, too soon")
        assert info.value.retry_after == dtm.timedelta(seconds=1)
        await bot.send_message(2, "another chat is not limited")
        clock.now += 1.0
        await bot.send_message(1, "after a second")
    assert fake.rate_limited == 1
    assert [m.text for m in fake.sent] == ["first", "another chat is not limited", "after a second"]


async def test_global_limit_answers_429(clock: FakeClock) -> None:
    async with (
        FakeTelegram(TOKEN, global_per_s=2, clock=clock) as fake,
        Bot(TOKEN, base_url=fake.base_url) as bot,
    ):
        await bot.send_message(1, "a")
        await bot.send_message(2, "b")
        with pytest.raises(RetryAfter):
            await bot.send_message(3, "c")
        clock.now += 0.5
        with pytest.raises(RetryAfter):
            await bot.send_message(3, "c")
        clock.now += 0.5
        await bot.send_message(3, "c")
    assert fake.rate_limited == 2


async def test_aio_rate_limiter_works_but_does_not_guard_private_chats(clock: FakeClock) -> None:
    async with FakeTelegram(TOKEN, per_chat_per_s=1, clock=clock) as fake:
        app = build_app(fake, rate_limiter=AIORateLimiter(max_retries=0))
        async with app:
            await app.bot.send_message(1, "through the limiter")
            await app.bot.send_message(-100777, "a group")
            # No per-private-chat limiter in AIORateLimiter: Telegram's 1/s per chat still bites.
            with pytest.raises(RetryAfter):
                await app.bot.send_message(1, "too soon")
            fake.fail_next("sendMessage", 429, retry_after=3)
            with pytest.raises(RetryAfter):  # max_retries=0: nothing is retried
                await app.bot.send_message(2, "flood")
    assert [m.text for m in fake.sent] == ["through the limiter", "a group"]
    assert fake.rate_limited == 2


# the wire protocol, over raw HTTP


async def test_get_updates_holds_until_an_update_and_honours_offset(
    fake: FakeTelegram, raw: httpx.AsyncClient
) -> None:
    poll = asyncio.create_task(raw.post("getUpdates", data={"timeout": "30"}))
    await fake.wait_for_calls("getUpdates", 1, WAIT_S)
    assert not poll.done()
    update_id = fake.send_user_message(8, "hi")
    body = (await asyncio.wait_for(poll, WAIT_S)).json()
    assert body["ok"] and [u["update_id"] for u in body["result"]] == [update_id]
    again = await raw.post("getUpdates", data={"timeout": "0"})
    assert [u["update_id"] for u in again.json()["result"]] == [update_id]  # not yet confirmed
    confirmed = await raw.post("getUpdates", data={"offset": str(update_id + 1), "timeout": "0"})
    assert confirmed.json() == {"ok": True, "result": []}
    assert fake.pending_updates == []


async def test_stop_answers_a_held_poll_at_once(fake: FakeTelegram, raw: httpx.AsyncClient) -> None:
    poll = asyncio.create_task(raw.get("getUpdates", params={"timeout": 30}))
    await fake.wait_for_calls("getUpdates", 1, WAIT_S)
    async with asyncio.timeout(WAIT_S):  # well under the poll's 30 s
        await fake.stop()
        response = await poll
    assert response.json() == {"ok": True, "result": []}


async def test_a_second_poller_gets_the_first_a_conflict(
    fake: FakeTelegram, raw: httpx.AsyncClient
) -> None:
    first = asyncio.create_task(raw.post("getUpdates", json={"timeout": 30}))
    await fake.wait_for_calls("getUpdates", 1, WAIT_S)
    second = await raw.post("getUpdates", json={"timeout": 0})
    answer = await asyncio.wait_for(first, WAIT_S)
    assert answer.status_code == 409 and "Conflict" in answer.json()["description"]
    assert second.json() == {"ok": True, "result": []}


async def test_json_and_query_bodies_are_accepted(
    fake: FakeTelegram, raw: httpx.AsyncClient
) -> None:
    by_json = await raw.post("sendMessage", json={"chat_id": 1, "text": "json"})
    by_query = await raw.get("SENDMESSAGE", params={"chat_id": "1", "text": "query"})
    assert by_json.json()["result"]["text"] == "json"
    assert by_query.json()["result"]["message_id"] == 2
    assert fake.calls["sendMessage"] == 2


@pytest.mark.parametrize(
    ("path", "status", "description"),
    [(f"bot{TOKEN}/noSuchMethod", 404, "Not Found"), ("bot999:WRONG/getMe", 401, "Unauthorized")],
)
async def test_unknown_method_and_wrong_token(
    fake: FakeTelegram, path: str, status: int, description: str
) -> None:
    url = fake.base_url.removesuffix("bot") + path
    async with httpx.AsyncClient(trust_env=False, timeout=WAIT_S) as client:
        response = await client.post(url)
    assert response.status_code == status
    assert response.json() == {"ok": False, "error_code": status, "description": description}


async def test_wait_for_names_what_was_sent_when_nothing_matches(
    bot: Bot, fake: FakeTelegram
) -> None:
    await bot.send_message(1, "hello")
    with pytest.raises(TimeoutError, match="hello"):
        await fake.wait_for(lambda m: m.chat_id == 2, timeout=0)


# the HTML rules, synchronously


@pytest.mark.parametrize(
    ("markup", "text", "entities"),
    [
        ("plain", "plain", []),
        ("<b>BTC</b> &lt;&gt; &amp;", "BTC <> &", [{"type": "bold", "offset": 0, "length": 3}]),
        (
            '<a href="https://x.io">x</a><i>🚀<u>y</u></i>',
            "x🚀y",
            [
                {"type": "text_link", "offset": 0, "length": 1, "url": "https://x.io"},
                {"type": "italic", "offset": 1, "length": 3},  # 🚀 is two UTF-16 units
                {"type": "underline", "offset": 3, "length": 1},
            ],
        ),
        (
            '<pre><code class="language-py">x</code></pre>',
            "x",
            [{"type": "pre", "offset": 0, "length": 1}],
        ),
        (
            '<tg-spoiler>a</tg-spoiler><span class="tg-spoiler">b</span>'
            "<blockquote expandable>c</blockquote>",
            "abc",
            [
                {"type": "spoiler", "offset": 0, "length": 1},
                {"type": "spoiler", "offset": 1, "length": 1},
                {"type": "expandable_blockquote", "offset": 2, "length": 1},
            ],
        ),
        (
            "<s>x</s><strong>y</strong><em>z</em><code>w</code>",
            "xyzw",
            [
                {"type": "strikethrough", "offset": 0, "length": 1},
                {"type": "bold", "offset": 1, "length": 1},
                {"type": "italic", "offset": 2, "length": 1},
                {"type": "code", "offset": 3, "length": 1},
            ],
        ),
    ],
)
def test_parse_html(markup: str, text: str, entities: list[dict[str, Any]]) -> None:
    assert parse_html(markup) == (text, entities)


@pytest.mark.parametrize(
    ("markup", "reason"),
    [
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("é<i>x</b>", 'Unmatched end tag at byte offset 6, expected "</i>", found "</b>"'),
        ("<span>x</span>", 'Unsupported start tag "span" at byte offset 0'),
        ("a <script>", 'Unsupported start tag "script" at byte offset 2'),
        ("1 < 2", "Can't find end of the entity starting at byte offset 2"),
    ],
)
def test_parse_html_refuses_bad_markup(markup: str, reason: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_html(markup)
    assert info.value.status == 400
    assert info.value.description == f"Bad Request: can't parse entities: {reason}"


def test_sent_message_lists_callback_data() -> None:
    keyboard = {
        "inline_keyboard": [
            [{"text": "a", "callback_data": "1"}, {"text": "u", "url": "https://x"}]
        ]
    }
    entry = SentMessage("sendMessage", 1, "t", None, False, keyboard, 1, None, None, 0.0)
    assert entry.callback_data == ["1"]


async def test_get_chat_member_names_the_groups_administrators(fake: FakeTelegram) -> None:
    fake.make_admin(-500, 1, "creator")
    fake.make_admin(-500, 2)
    app = build_app(fake)
    async with app:
        owner = await app.bot.get_chat_member(-500, 1)
        admin = await app.bot.get_chat_member(-500, 2)
        member = await app.bot.get_chat_member(-500, 3)
        elsewhere = await app.bot.get_chat_member(-600, 1)
    assert (owner.status, admin.status) == (ChatMember.OWNER, ChatMember.ADMINISTRATOR)
    assert member.status == elsewhere.status == ChatMember.MEMBER
    assert member.user.id == 3
    with pytest.raises(ValueError, match="not an administrator"):
        fake.make_admin(-500, 4, "member")
