"""The whole Telegram path: the real PTB Application against FakeTelegram, the real detector
against the loopback simulator, the real store, router and outbox.

Every wait is bounded and waits for a condition; nothing asserts a wall-clock duration.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from matplotlib.image import imread
from pydantic import SecretStr

from bot.app import App, now_ms
from bot.commands import CommandHandler, Reply
from bot.commands.charts import GapPoint, render_gap_chart
from bot.config import Settings
from bot.errors import AlreadyRunning, FrontendError
from bot.messages import line, text_length
from bot.pacing import Limits
from bot.platforms.telegram_frontend import TelegramFrontend
from bot.store import Platform, Store
from detector.clients.backoff import Backoff
from detector.models import Exchange
from detector.simulator.scenarios import ArbitrageWindow, Scenario
from detector.simulator.server import SimulatorServer
from tests.bot.factories import arbitrage, closed
from tests.bot.fakes.fake_telegram import CHANNEL_ID, FakeTelegram, SentMessage
from tests.bot.fakes.fake_telegram_rules import MAX_CAPTION
from tests.bot.harness import Harness, quiet_market
from tests.bot.waits import until

TOKEN = "123456:SECRET-e2e-token"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
FAST_BACKOFF = Backoff(initial_s=0.05, max_s=0.2)
WAIT_S = 20.0  # bound on every wait


def make_settings(tmp_path: Path, fake: FakeTelegram, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        symbols=SYMBOLS,
        stale_after_s=2.0,
        database_path=tmp_path / "arbwatch.db",
        telegram_bot_token=SecretStr(TOKEN),
        telegram_api_url=fake.base_url,
        **extra,
    )


def is_alert(message: SentMessage) -> bool:
    return message.method == "sendMessage" and "arbitrage</b>" in (message.text or "")


def reply_to(chat_id: int) -> Callable[[SentMessage], bool]:
    """A new message to ``chat_id`` (not an alert's closing edit, which may come any time)."""
    return lambda m: m.chat_id == chat_id and m.method == "sendMessage"


def is_photo(chat_id: int) -> Callable[[SentMessage], bool]:
    return lambda m: m.chat_id == chat_id and m.method == "sendPhoto"


def decoded_size(photo: SentMessage) -> tuple[int, int]:
    """Width and height of the uploaded PNG, decoded (not read from its header)."""
    assert photo.photo is not None
    pixels = imread(io.BytesIO(photo.photo), format="png")
    return pixels.shape[1], pixels.shape[0]


def alerts(fake: FakeTelegram, chat_id: int | None = None) -> list[SentMessage]:
    return [
        m
        for m in fake.sent
        if m.method == "sendMessage" and is_alert(m) and (chat_id is None or m.chat_id == chat_id)
    ]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        yield server


async def test_subscribe_then_a_live_window_alerts_only_those_below_it(
    tmp_path: Path, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(tmp_path, fake)
    # The simulator cannot open a window on demand: it opens at 10 s, ample time for the bot
    # to start and take both subscriptions (checked below, so a very slow machine fails clearly).
    window = ArbitrageWindow(10.0, 4.0, "BTCUSDT", sell_on=Exchange.BYBIT, net_pct=0.2)
    scenario = Scenario("e2e", "one arbitrage window", 60.0, (window,))
    async with SimulatorServer(scenario, symbols=SYMBOLS, seed=5) as server:
        app = App(
            settings,
            settings.detector_config(),
            server.urls.feed_urls(),
            console=False,
            detector_options={"ws_options": {"backoff": FAST_BACKOFF}},
            poll_timeout_s=0.5,
        )
        async with app:
            assert [c["command"] for c in fake.commands_set[0]["commands"]][:2] == [
                "start",
                "help",
            ]
            fake.send_user_message(1001, "/subscribe BTCUSDT 0.15", first_name="Ann")
            fake.send_user_message(1002, "/subscribe BTCUSDT 0.5", first_name="Bob")
            ann = await fake.wait_for(lambda m: m.chat_id == 1001, WAIT_S)
            bob = await fake.wait_for(lambda m: m.chat_id == 1002, WAIT_S)
            assert "Subscribed to BTCUSDT" in (ann.text or "")
            assert "0.500" in (bob.text or "") or "0.5" in (bob.text or "")
            # Precondition, not a timing claim: the subscriptions were in before the window opened.
            assert now_ms() < server.start_ms + 10_000, "the bot took over 10 s to subscribe"
            # Telegram's flood control answers the alert's first attempt with a 429.
            fake.fail_next("sendMessage", 429, retry_after=1, chat_id=1001)

            alert = await fake.wait_for(lambda m: m.chat_id == 1001 and is_alert(m), WAIT_S)
            text = alert.text or ""
            assert "BTCUSDT" in text and "Binance" in text and "Bybit" in text
            # The window ramps up to 0.2 % net: its first alert may catch it just below.
            net = re.search(r"Net <b>([0-9.]+) %</b>", text)
            assert net is not None and 0.15 <= float(net.group(1)) <= 0.25
            assert alert.parse_mode == "HTML"
            assert alert.callback_data == ["/mute BTCUSDT 1h", "/mute 1h"]
            assert [r.status for r in fake.rejected if r.chat_id == 1001] == [429]

            # Bob's threshold (0.5 %) is above the window: nothing was queued for him.
            rows = app.store.db.rows(
                "SELECT u.chat_id, d.status FROM deliveries d JOIN users u ON u.id = d.user"
            )
            assert {r["chat_id"] for r in rows} == {"1001"}

            # /stats answers with what the store recorded about the window: text, then a chart.
            since = len(fake.sent)
            fake.send_user_message(1001, "/stats BTCUSDT")
            stats = await fake.wait_for(reply_to(1001), WAIT_S, since=since)
            stats_text = stats.text or ""
            assert stats.method == "sendMessage"
            assert "Arbitrage opportunities</b>: 1" in stats_text
            assert "Your alerts</b>: 1 delivered" in stats_text
            assert "Detection latency" in stats_text and "p50" in stats_text
            assert "chart appears" not in stats_text
            photo = await fake.wait_for(is_photo(1001), WAIT_S, since=since)
            assert decoded_size(photo) == (1000, 560)
            assert (photo.text or "").startswith("Arbitrage opportunities opened per ")
            assert "for BTCUSDT" in (photo.text or "") and "1 opportunity;" in (photo.text or "")
            assert photo.parse_mode is None and not photo.disable_notification

            # Pressing the alert's button mutes the symbol.
            since = len(fake.sent)
            fake.press_button(1001, alert.message_id or 0, "/mute BTCUSDT 1h")
            await fake.wait_for(
                lambda m: m.chat_id == 1001 and m.method == "sendMessage", WAIT_S, since=since
            )
            user = app.store.find_user(Platform.TELEGRAM, "1001")
            assert user is not None and user.muted(now_ms(), "BTCUSDT")

            # When the window closes, the analyzer's final figures reach the store: /stats then
            # shows the opportunity's real duration.
            async with asyncio.timeout(WAIT_S):
                while not app.store.db.rows(  # noqa: ASYNC110 - the store is written by a thread
                    "SELECT id FROM opportunities WHERE closed_ms IS NOT NULL"
                ):
                    await asyncio.sleep(0.05)
            # Ann's alert is edited to say the window closed, how long it lasted, its peak.
            edited = await fake.wait_for(
                lambda m: m.method == "editMessageText" and m.message_id == alert.message_id,
                WAIT_S,
            )
            peak = re.search(r"<i>Closed after .+ · peak net ([0-9.]+) %</i>", edited.text or "")
            assert peak is not None and float(net.group(1)) <= float(peak.group(1)) <= 0.25
            assert edited.callback_data == ["/mute BTCUSDT 1h", "/mute 1h"]  # buttons kept
            since = len(fake.sent)
            fake.send_user_message(1001, "/stats BTCUSDT")
            closed = await fake.wait_for(reply_to(1001), WAIT_S, since=since)
            assert "longest" in (closed.text or "")
            await fake.wait_for(is_photo(1001), WAIT_S, since=since)

            # /chart draws the window's stored signals: a line of text, then the picture.
            since = len(fake.sent)
            fake.send_user_message(1001, "/chart BTCUSDT")
            heading = await fake.wait_for(reply_to(1001), WAIT_S, since=since)
            assert heading.text == "📈 <b>BTCUSDT gap</b>, last 24 h"
            gap = await fake.wait_for(is_photo(1001), WAIT_S, since=since)
            assert decoded_size(gap) == (1000, 560)
            assert (gap.text or "").startswith("BTCUSDT: cross-exchange price gap")
            assert "1 arbitrage opportunity window" in (gap.text or "")
        assert alerts(fake, 1002) == []
    assert TOKEN not in caplog.text


def harness(
    settings: Settings,
    *,
    owner: str,
    limits: Limits | None = None,
    clock: Callable[[], int] = now_ms,
) -> Harness:
    """The Telegram frontend with store and outbox, without the detector."""

    def telegram(handler: CommandHandler) -> TelegramFrontend:
        return TelegramFrontend(settings, handler, poll_timeout_s=0.5)

    return Harness(settings, telegram, owner=owner, limits=limits, clock=clock)


class Ahead:
    """The wall clock plus an offset a test moves forward (to reach a digest's end at once)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return now_ms() + self.offset_ms


async def test_a_user_who_blocked_the_bot_becomes_inactive(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    settings = make_settings(tmp_path, fake)
    async with harness(settings, owner="one") as bot:
        bot.add_users([2001, 2002])
        fake.block(2001)
        assert bot.alert() == 2
        await fake.wait_for(lambda m: m.chat_id == 2002, WAIT_S)
        await until(lambda: bot.statuses() == {"sent": 1, "skipped": 1})
        user = bot.store.find_user(Platform.TELEGRAM, "2001")
        assert user is not None and not user.active and user.blocked_at is not None
        # Later alerts skip them; the others still get theirs.
        assert bot.alert() == 1
        await until(lambda: len(alerts(fake, 2002)) == 2)
    assert alerts(fake, 2001) == []
    assert [r.status for r in fake.rejected] == [403]


async def test_chart_on_an_empty_database_is_text_only(tmp_path: Path, fake: FakeTelegram) -> None:
    settings = make_settings(tmp_path, fake)
    async with harness(settings, owner="one"):
        fake.send_user_message(4001, "/chart BTCUSDT")
        reply = await fake.wait_for(lambda m: m.chat_id == 4001, WAIT_S)
        assert "No BTCUSDT signals in the last 24 h yet" in (reply.text or "")
        # Updates are handled one at a time: once /help is answered, /chart was answered whole.
        fake.send_user_message(4001, "/help")
        await fake.wait_for(lambda m: "Commands" in (m.text or ""), WAIT_S)
    assert fake.calls["sendPhoto"] == 0
    assert [m.method for m in fake.sent] == ["sendMessage", "sendMessage"]


async def test_a_chart_that_cannot_be_sent_is_explained_and_a_429_waited_out(
    tmp_path: Path, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, fake)
    async with harness(settings, owner="one") as bot:
        opened = now_ms() - 60_000
        bot.store.history.record_signal(arbitrage(0.3, timestamp=opened, opened_ms=opened), opened)

        fake.fail_next("sendPhoto", 400, description="Bad Request: IMAGE_PROCESS_FAILED")
        fake.send_user_message(4101, "/chart BTCUSDT")
        failed = await fake.wait_for(lambda m: "could not be sent" in (m.text or ""), WAIT_S)
        assert failed.chat_id == 4101 and failed.method == "sendMessage"
        assert "chart failed: BadRequest: Image_process_failed" in caplog.text  # as PTB words it

        since = len(fake.sent)
        fake.fail_next("sendPhoto", 429, retry_after=1, chat_id=4101)
        fake.send_user_message(4101, "/chart BTCUSDT 1h")
        photo = await fake.wait_for(is_photo(4101), WAIT_S, since=since)
        assert decoded_size(photo) == (1000, 560)
    assert [(r.method, r.status) for r in fake.rejected] == [("sendPhoto", 400), ("sendPhoto", 429)]
    assert sum("could not be sent" in (m.text or "") for m in fake.sent) == 1
    assert TOKEN not in caplog.text


async def test_after_stop_receiving_sends_and_replies_still_go_out(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    settings = make_settings(tmp_path, fake)
    async with harness(settings, owner="one") as bot:
        bot.add_users([5001])
        fake.send_user_message(5002, "/start")
        await fake.wait_for(lambda m: m.chat_id == 5002, WAIT_S)

        await bot.frontend.stop_receiving()
        await bot.frontend.stop_receiving()  # safe to repeat
        polls = fake.calls["getUpdates"]
        unread = fake.send_user_message(5003, "/help")

        # The outbox still delivers (as it does while the process flushes before close) ...
        assert bot.alert() == 1
        await until(lambda: bot.statuses() == {"sent": 1})
        assert len(alerts(fake, 5001)) == 1
        # ... and a reply with a chart still goes out, its caption cut to Telegram's limit.
        points = [GapPoint(now_ms() - 60_000 * i, 0.1, None) for i in range(5)]
        chart = render_gap_chart(points, "BTCUSDT", now_ms() - 3_600_000, now_ms() + 1)
        assert chart is not None
        long_chart = dataclasses.replace(chart, caption="\U0001d538" * 2000)  # 2 UTF-16 units each
        await bot.frontend.reply("5004", Reply((line("late"),), image=long_chart))
        photo = await fake.wait_for(is_photo(5004), WAIT_S)
        caption = photo.text or ""
        assert caption.endswith("…") and text_length(caption) <= MAX_CAPTION
        assert photo.params.get("parse_mode") is None

        # No command was fetched after stop_receiving.
        assert fake.calls["getUpdates"] == polls
        assert [u["update_id"] for u in fake.pending_updates] == [unread]
    assert not [m for m in fake.sent if m.chat_id == 5003]


async def test_stopping_a_frontend_that_never_started_is_a_no_op(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    settings = make_settings(tmp_path, fake)
    with Store(settings.database_path) as store:
        handler = CommandHandler(store, settings, settings.symbols)
        frontend = TelegramFrontend(settings, handler)
        await frontend.stop_receiving()
        await frontend.close()
        await frontend.stop()
    assert sum(fake.calls.values()) == 0


async def test_a_restart_in_a_burst_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # Telegram's limits, enforced: 1 message/s per chat, 10/s overall (the outbox is told 10/s).
    async with FakeTelegram(TOKEN, per_chat_per_s=1, global_per_s=10) as fake:
        settings = make_settings(tmp_path, fake)
        limits = Limits(global_per_s=10)
        chats = list(range(3001, 3011))
        async with harness(settings, owner="first", limits=limits) as first:
            first.add_users(chats)
            assert first.alert(episodes=3) == 30  # 3 alerts for each of 10 chats
            await until(lambda: len(alerts(fake)) >= 12)
        stopped_at = len(alerts(fake))
        assert stopped_at < 30  # stopped mid-burst
        async with harness(settings, owner="second", limits=limits) as second:
            await until(lambda: second.statuses() == {"sent": 30})
        texts = [(m.chat_id, m.text) for m in alerts(fake)]
        assert len(set(texts)) == 30  # no alert twice
        assert {chat for chat, _ in texts} == set(chats)
        assert fake.rate_limited == 0


async def test_delivery_rate_within_telegram_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Measures (prints) messages/s against a fake enforcing 30/s overall and 1/s per chat."""
    users = 150
    async with FakeTelegram(TOKEN, per_chat_per_s=1, global_per_s=30) as fake:
        settings = make_settings(tmp_path, fake)
        async with harness(settings, owner="rate") as bot:
            bot.add_users(list(range(10_001, 10_001 + users)))
            started = time.monotonic()
            assert bot.alert(episodes=2) == 2 * users
            await until(lambda: len(alerts(fake)) == 2 * users, 60.0)
            elapsed = time.monotonic() - started
        sent = alerts(fake)
        span = sent[-1].time - sent[0].time
        with capsys.disabled():
            print(
                f"\ndelivery: {len(sent)} alerts to {users} chats in {elapsed:.2f} s, "
                f"{(len(sent) - 1) / span:.1f} msg/s between first and last; "
                f"429s received: {fake.rate_limited}"
            )
        assert fake.rate_limited == 0
        assert len({(m.chat_id, m.text) for m in sent}) == 2 * users


async def test_a_rejected_token_is_a_clear_error_that_never_shows_the_token(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    settings = make_settings(tmp_path, fake)
    settings.telegram_bot_token = SecretStr("999:SECRET-wrong")
    with Store(settings.database_path) as store:
        handler = CommandHandler(store, settings, settings.symbols)
        frontend = TelegramFrontend(settings, handler)
        with pytest.raises(FrontendError) as info:
            await frontend.start()
    assert "telegram: cannot start: InvalidToken" in str(info.value)
    assert "SECRET" not in str(info.value)
    assert not info.value.retry  # a rejected token is final


async def test_a_platform_that_fails_to_start_for_a_passing_reason_is_retried(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    settings = make_settings(tmp_path, fake)
    fake.fail_next("getMe", 502, times=2)  # Telegram's gateway, down for two attempts
    err = io.StringIO()
    async with quiet_market(SYMBOLS) as make_app:
        app = make_app(
            settings, console=False, err=err, poll_timeout_s=0.5, start_backoff=FAST_BACKOFF
        )
        async with app:
            assert app.frontend_states[Platform.TELEGRAM].startswith("retrying: NetworkError")
            await until(lambda: app.frontend_states[Platform.TELEGRAM] == "connected", WAIT_S)
            assert Platform.TELEGRAM in app.outboxes
            fake.send_user_message(6001, "/start")  # the fresh frontend answers
            await fake.wait_for(reply_to(6001), WAIT_S)
    assert fake.calls["getMe"] == 3
    assert "trying again in the background" in err.getvalue()
    assert "telegram connected" in err.getvalue()


async def test_a_rejected_token_is_not_retried(tmp_path: Path, fake: FakeTelegram) -> None:
    settings = make_settings(tmp_path, fake)
    settings.telegram_bot_token = SecretStr("999:SECRET-wrong")
    async with quiet_market(SYMBOLS) as make_app:
        app = make_app(settings, console=False, err=io.StringIO(), start_backoff=FAST_BACKOFF)
        async with app:
            assert app.frontend_states[Platform.TELEGRAM].startswith("failed: InvalidToken")
            assert app._retries == [] and app.outboxes == {}  # no attempt is scheduled


async def test_without_a_token_alerts_stay_on_the_console(console_settings: Settings) -> None:
    settings = console_settings
    out, err = io.StringIO(), io.StringIO()
    window = ArbitrageWindow(0.5, 3.0, "BTCUSDT", net_pct=0.2)
    scenario = Scenario("console", "one window", 60.0, (window,))
    async with SimulatorServer(scenario, symbols=SYMBOLS, seed=5) as server:
        app = App(settings, settings.detector_config(), server.urls.feed_urls(), out=out, err=err)
        async with app:
            assert app.telegram is None and not app.outboxes
            await until(lambda: " arbitrage new · " in out.getvalue() and app.routed > 0)
    assert err.getvalue().count("alerts go to the console only") == 1
    with Store(settings.database_path) as store:  # recorded for /stats all the same
        assert store.history.opportunity_stats(0, now_ms() + 1).count >= 1


async def test_a_second_instance_on_the_same_database_refuses_to_start(
    console_settings: Settings,
) -> None:
    settings = console_settings
    async with quiet_market(SYMBOLS) as make_app:
        first = make_app(settings, out=io.StringIO(), err=io.StringIO())
        async with first:
            second = make_app(settings, out=io.StringIO(), err=io.StringIO())
            with pytest.raises(AlreadyRunning) as info:
                await second.start()
            assert info.value.holder == first.owner
            assert str(settings.database_path) in str(info.value)
        # Once the first has stopped, the database is free again.
        third = make_app(settings, out=io.StringIO(), err=io.StringIO())
        async with third:
            assert third.detector.feeds


async def test_in_a_group_only_its_administrators_change_it(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    group, ann, bob = -100777, 11, 12
    fake.make_admin(group, ann)

    def say(text: str, user: int) -> None:
        fake.send_user_message(group, text, user_id=user, chat_type="supergroup")

    async with harness(make_settings(tmp_path, fake), owner="groups") as bot:
        say("/subscribe ALL 0.2", bob)
        refused = await fake.wait_for(reply_to(group), WAIT_S)
        assert refused.text == "Only this group's administrators can change its alerts."
        assert bot.store.find_user(Platform.TELEGRAM, str(group)) is None

        say("/subscribe ALL 0.2", ann)
        await fake.wait_for(lambda m: reply_to(group)(m) and "Subscribed" in (m.text or ""))
        user = bot.store.find_user(Platform.TELEGRAM, str(group))
        assert user is not None and (user.user_id, user.name) == (str(group), f"Chat {group}")

        # A member pressing the alert's mute button is refused, as for the command.
        bot.alert(0.25)
        alert = await fake.wait_for(lambda m: is_alert(m) and m.chat_id == group, WAIT_S)
        since = len(fake.sent)
        assert alert.message_id is not None
        fake.press_button(group, alert.message_id, "/mute 1h", user_id=bob)
        pressed = await fake.wait_for(reply_to(group), WAIT_S, since=since)
        assert "Only this group's administrators" in (pressed.text or "")
        assert not bot.store.user(user.id).muted(now_ms())

        # Another bot's command is not ours to run; the next reply is /list's.
        since = len(fake.sent)
        say("/unsubscribe@other_bot ALL", ann)
        say("/list@arbwatch_test_bot", bob)  # reading needs no rights
        listing = await fake.wait_for(reply_to(group), WAIT_S, since=since)
        assert "Your subscriptions" in (listing.text or "")
        assert [s.symbol for s in bot.store.subscriptions(user.id)] == ["ALL"]
        assert fake.calls["getChatMember"] >= 3


async def test_a_429_on_one_chat_never_holds_up_another(tmp_path: Path, fake: FakeTelegram) -> None:
    """One rate limiter, the outbox's: a 429 pauses its own chat only."""
    async with harness(make_settings(tmp_path, fake), owner="429") as bot:
        bot.add_users([3001, 3002])
        fake.fail_next("sendMessage", 429, retry_after=3, chat_id=3001)
        bot.alert(0.25)
        await fake.wait_for(lambda m: is_alert(m) and m.chat_id == 3002, WAIT_S)
        assert [r.status for r in fake.rejected] == [429]
        bot.alert(0.35)  # a second episode while 3001 waits out its retry_after
        await until(lambda: len(alerts(fake, 3001)) == 2, WAIT_S)
        order = [m.chat_id for m in alerts(fake)]
        # 3002 got both alerts while 3001 was paused; 3001 got them once its pause ended.
        assert order == [3002, 3002, 3001, 3001]
        assert fake.rate_limited == 1


async def test_replies_during_a_burst_go_first_within_the_limits(tmp_path: Path) -> None:
    """Replies share the outbox's windows with priority: none waits for the burst, none is lost,
    and the platform never answers 429."""
    async with FakeTelegram(TOKEN, global_per_s=30, per_chat_per_s=1) as fake:
        async with harness(make_settings(tmp_path, fake), owner="burst") as bot:
            chats = list(range(4001, 4091))  # 90 chats: three seconds of alerts at 30 msg/s
            bot.add_users(chats)
            asking = chats[-5:]  # the alert reaches them last, if at all, before they ask
            bot.alert(0.25)
            await until(lambda: len(alerts(fake)) >= 10, WAIT_S)
            for chat in asking:
                fake.send_user_message(chat, "/list")
            await until(lambda: len(alerts(fake)) == len(chats), WAIT_S)
            replies = [m for m in fake.sent if m.method == "sendMessage" and not is_alert(m)]
            assert sorted(m.chat_id for m in replies) == asking  # every reply, once
            last_alert = max(m.time for m in alerts(fake))
            assert all(m.time < last_alert for m in replies)  # before the burst was through
        assert fake.rate_limited == 0 and fake.rejected == []


async def test_alerts_to_a_channel_its_administrator_names(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    ann, bob = 7101, 7102
    bot_id = int(TOKEN.split(":", 1)[0])
    async with harness(make_settings(tmp_path, fake), owner="channel") as bot:
        bot.add_users([ann, bob])
        # The bot is not an administrator of the channel yet: it says so.
        fake.send_user_message(ann, "/alerts @signals")
        first = await fake.wait_for(reply_to(ann), WAIT_S)
        assert "I can't post in @signals" in (first.text or "")
        fake.make_admin(CHANNEL_ID, bot_id)
        fake.make_admin(CHANNEL_ID, ann)
        since = len(fake.sent)
        fake.send_user_message(bob, "/alerts @signals")  # Bob does not administer it
        refused = await fake.wait_for(reply_to(bob), WAIT_S, since=since)
        assert "Only that channel's administrators" in (refused.text or "")
        since = len(fake.sent)
        fake.send_user_message(ann, "/alerts @signals")
        done = await fake.wait_for(reply_to(ann), WAIT_S, since=since)
        assert "Your alerts now go to @signals" in (done.text or "")

        signal = arbitrage(0.25, timestamp=now_ms(), opened_ms=now_ms())
        bot.router.dispatch(signal, now_ms())
        bot.outbox.wake()
        posted = await fake.wait_for(lambda m: is_alert(m) and m.chat_id == CHANNEL_ID, WAIT_S)
        assert posted.reply_markup is None  # no buttons acting for the channel's readers
        await fake.wait_for(lambda m: is_alert(m) and m.chat_id == bob, WAIT_S)
        assert alerts(fake, ann) == []
        rows = bot.store.db.rows("SELECT message_id FROM deliveries WHERE status = 'sent'")
        assert f"{CHANNEL_ID}:{posted.message_id}" in [r["message_id"] for r in rows]
        # The opportunity closes: the channel's post is edited in place, still without buttons.
        bot.store.history.record_opportunity(closed(signal))
        bot.outbox.wake()
        edited = await fake.wait_for(
            lambda m: m.method == "editMessageText" and m.chat_id == CHANNEL_ID, WAIT_S
        )
        assert edited.message_id == posted.message_id and edited.reply_markup is None
        assert "Closed after 4.2 s" in (edited.text or "")

        since = len(fake.sent)
        fake.send_user_message(ann, "/alerts dm")
        await fake.wait_for(reply_to(ann), WAIT_S, since=since)
        bot.alert(0.35)
        await fake.wait_for(lambda m: is_alert(m) and m.chat_id == ann, WAIT_S)


async def test_a_digest_is_one_message_after_its_period_instead_of_each_alert(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    ann, bob = 7201, 7202
    clock = Ahead()
    async with harness(make_settings(tmp_path, fake), owner="digest", clock=clock) as bot:
        bot.add_users([ann, bob])
        fake.send_user_message(ann, "/digest 5m")
        on = await fake.wait_for(reply_to(ann), WAIT_S)
        assert "Digest every 5 min" in (on.text or "")
        assert bot.alert(0.25, episodes=3) == 3  # Bob's three alerts; Ann's wait
        await until(lambda: len(alerts(fake, bob)) == 3)
        ann_user = bot.store.find_user(Platform.TELEGRAM, str(ann))
        assert ann_user is not None and bot.store.digests.waiting(ann_user.id) == 3
        assert alerts(fake, ann) == []
        clock.offset_ms = 5 * 60_000  # the period is over
        bot.outbox.wake()
        digest = await fake.wait_for(lambda m: m.chat_id == ann and "signals" in (m.text or ""))
        text = digest.text or ""
        assert "3 signals" in text and text.count("BTCUSDT arbitrage") == 3
        assert digest.reply_markup is None
        await until(lambda: bot.statuses().get("sent") == 4)  # Bob's three and Ann's digest
        assert [m for m in fake.sent if m.chat_id == ann and m is not on] == [digest]
