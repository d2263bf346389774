"""The whole Telegram path: the real PTB Application against FakeTelegram, the real detector
against the loopback simulator, the real store, router and outbox.

Every wait is bounded and waits for a condition; nothing asserts a wall-clock duration.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app import App, now_ms
from bot.commands import CommandHandler
from bot.config import Settings
from bot.errors import AlreadyRunning, FrontendError
from bot.outbox import TELEGRAM_LIMITS, Limits, Outbox
from bot.records import Platform
from bot.routing import Router
from bot.store import Store
from bot.telegram_frontend import TelegramFrontend
from detector.clients.backoff import Backoff
from detector.models import Exchange
from detector.signals import SignalStrength
from detector.simulator.scenarios import ArbitrageWindow, Scenario
from detector.simulator.server import SimulatorServer
from tests.bot.factories import arbitrage
from tests.bot.fake_telegram import FakeTelegram, SentMessage

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


async def until(condition: Callable[[], bool], limit_s: float = WAIT_S) -> None:
    """Wait (bounded) for state changed by other tasks; the bound, not the pace, matters."""
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110 - see the docstring
            await asyncio.sleep(0.02)


def is_alert(message: SentMessage) -> bool:
    return "arbitrage</b>" in (message.text or "")


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
            assert "Net <b>0.2" in text  # the net %, e.g. 0.200 % (the window is at 0.2)
            assert alert.parse_mode == "HTML"
            assert alert.callback_data == ["/mute BTCUSDT 1h", "/mute 1h"]
            assert [r.status for r in fake.rejected if r.chat_id == 1001] == [429]

            # Bob's threshold (0.5 %) is above the window: nothing was queued for him.
            rows = app.store.db.rows(
                "SELECT u.chat_id, d.status FROM deliveries d JOIN users u ON u.id = d.user"
            )
            assert {r["chat_id"] for r in rows} == {"1001"}

            # /stats answers with what the store recorded about the window.
            since = len(fake.sent)
            fake.send_user_message(1001, "/stats BTCUSDT")
            stats = await fake.wait_for(lambda m: m.chat_id == 1001, WAIT_S, since=since)
            stats_text = stats.text or ""
            assert "Arbitrage opportunities</b>: 1" in stats_text
            assert "Your alerts</b>: 1 delivered" in stats_text
            assert "Detection latency" in stats_text and "p50" in stats_text

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
            since = len(fake.sent)
            fake.send_user_message(1001, "/stats BTCUSDT")
            closed = await fake.wait_for(lambda m: m.chat_id == 1001, WAIT_S, since=since)
            assert "longest" in (closed.text or "")
        assert alerts(fake, 1002) == []
    assert TOKEN not in caplog.text


class Harness:
    """Telegram frontend, store and outbox without the detector (alerts are routed by hand)."""

    def __init__(self, settings: Settings, *, owner: str, limits: Limits = TELEGRAM_LIMITS):
        self.store = Store(settings.database_path)
        self.router = Router(self.store, now_ms())
        handler = CommandHandler(self.store, settings, settings.symbols)
        self.frontend = TelegramFrontend(settings, self.store, handler, poll_timeout_s=0.5)
        self.outbox = Outbox(self.store, self.frontend, now_ms, owner=owner, limits=limits)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Harness:
        await self.frontend.start()
        self._task = asyncio.create_task(self.outbox.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.outbox.stop()
        assert self._task is not None
        await self._task
        await self.frontend.stop()
        self.store.close()

    def add_users(self, chat_ids: list[int], threshold: float = 0.1) -> None:
        for chat in chat_ids:
            user = self.store.register(Platform.TELEGRAM, str(chat), str(chat), "u", now_ms())
            self.store.subscribe(
                user.id, "BTCUSDT", threshold, SignalStrength.WEAK, now_ms(), limit=50
            )

    def alert_all(self, episodes: int = 1) -> int:
        """Route ``episodes`` fresh arbitrage episodes; returns the deliveries queued."""
        queued = 0
        for n in range(episodes):
            now = now_ms()
            signal = arbitrage(0.25, timestamp=now, opened_ms=now + n)
            queued += len(self.router.dispatch(signal, now).recipients)
        self.outbox.wake()
        return queued

    def statuses(self) -> dict[str, int]:
        rows = self.store.db.rows("SELECT status, count(*) AS n FROM deliveries GROUP BY status")
        return {r["status"]: r["n"] for r in rows}


async def test_a_user_who_blocked_the_bot_becomes_inactive(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    settings = make_settings(tmp_path, fake)
    async with Harness(settings, owner="one") as bot:
        bot.add_users([2001, 2002])
        fake.block(2001)
        assert bot.alert_all() == 2
        await fake.wait_for(lambda m: m.chat_id == 2002, WAIT_S)
        await until(lambda: bot.statuses() == {"sent": 1, "skipped": 1})
        user = bot.store.find_user(Platform.TELEGRAM, "2001")
        assert user is not None and not user.active and user.blocked_at is not None
        # Later alerts skip them; the others still get theirs.
        assert bot.alert_all() == 1
        await until(lambda: len(alerts(fake, 2002)) == 2)
    assert alerts(fake, 2001) == []
    assert [r.status for r in fake.rejected] == [403]


async def test_a_restart_in_a_burst_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # Telegram's limits, enforced: 1 message/s per chat, 10/s overall (the outbox is told 10/s).
    async with FakeTelegram(TOKEN, per_chat_per_s=1, global_per_s=10) as fake:
        settings = make_settings(tmp_path, fake)
        limits = Limits(global_per_s=10)
        chats = list(range(3001, 3011))
        async with Harness(settings, owner="first", limits=limits) as first:
            first.add_users(chats)
            assert first.alert_all(episodes=3) == 30  # 3 alerts for each of 10 chats
            await until(lambda: len(alerts(fake)) >= 12)
        stopped_at = len(alerts(fake))
        assert stopped_at < 30  # stopped mid-burst
        async with Harness(settings, owner="second", limits=limits) as second:
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
        async with Harness(settings, owner="rate") as bot:
            bot.add_users(list(range(10_001, 10_001 + users)))
            started = time.monotonic()
            assert bot.alert_all(episodes=2) == 2 * users
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
        frontend = TelegramFrontend(settings, store, handler)
        with pytest.raises(FrontendError) as info:
            await frontend.start()
    assert "telegram: cannot start: InvalidToken" in str(info.value)
    assert "SECRET" not in str(info.value)


async def test_without_a_token_alerts_stay_on_the_console(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        symbols=SYMBOLS,
        database_path=tmp_path / "arbwatch.db",
        telegram_bot_token=None,
    )
    out, err = io.StringIO(), io.StringIO()
    window = ArbitrageWindow(0.5, 3.0, "BTCUSDT", net_pct=0.2)
    scenario = Scenario("console", "one window", 60.0, (window,))
    async with SimulatorServer(scenario, symbols=SYMBOLS, seed=5) as server:
        app = App(settings, settings.detector_config(), server.urls.feed_urls(), out=out, err=err)
        async with app:
            assert app.telegram is None and app.outbox is None
            await until(lambda: "ARBITRAGE" in out.getvalue() and app.routed > 0)
    assert err.getvalue().count("TELEGRAM_BOT_TOKEN not set: alerts go to the console only") == 1
    with Store(settings.database_path) as store:  # recorded for /stats all the same
        assert store.history.opportunity_stats(0, now_ms() + 1).count >= 1


async def test_a_second_instance_on_the_same_database_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        symbols=SYMBOLS,
        database_path=tmp_path / "arbwatch.db",
        telegram_bot_token=None,
    )
    scenario = Scenario("quiet", "nothing happens", 60.0, ())
    async with SimulatorServer(scenario, symbols=SYMBOLS, seed=5) as server:

        def new_app() -> App:
            config, urls = settings.detector_config(), server.urls.feed_urls()
            return App(settings, config, urls, out=io.StringIO(), err=io.StringIO())

        first = new_app()
        async with first:
            second = new_app()
            with pytest.raises(AlreadyRunning) as info:
                await second.start()
            assert info.value.holder == first.owner
            assert str(settings.database_path) in str(info.value)
        # Once the first has stopped, the database is free again.
        third = new_app()
        async with third:
            assert third.detector.feeds
