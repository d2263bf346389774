"""The whole Discord path: the real discord.py client against FakeDiscord on 127.0.0.1, the real
detector against the loopback simulator, the real store, router and outbox.

Every wait is bounded and waits for a condition; nothing asserts a wall-clock duration.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from matplotlib.image import imread
from pydantic import SecretStr

from bot.app import App, now_ms
from bot.commands import CommandHandler
from bot.config import Settings
from bot.errors import FrontendError
from bot.messages import VENUES
from bot.platforms.discord_embeds import CLOSED_COLOR, STRENGTH_COLORS
from bot.platforms.discord_frontend import DiscordFrontend
from bot.store import Platform, Store
from detector.clients.backoff import Backoff
from detector.models import Exchange
from detector.signals import SignalStrength, SignalType
from detector.simulator.scenarios import ArbitrageWindow, Scenario
from detector.simulator.server import SimulatorServer
from tests.bot.fakes.fake_discord import DiscordMessage, FakeDiscord
from tests.bot.harness import Harness, quiet_market
from tests.bot.waits import until

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.SECRET-e2e-discord-token-0123456789"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
FAST_BACKOFF = Backoff(initial_s=0.05, max_s=0.2)
WAIT_S = 20.0  # bound on every wait
ANN, BOB = 410_000_000_000_000_001, 410_000_000_000_000_002
GUILD, CHANNEL = 420_000_000_000_000_001, 420_000_000_000_000_002
MANAGE_GUILD = 1 << 5


def make_settings(tmp_path: Path, fake: FakeDiscord, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        symbols=SYMBOLS,
        stale_after_s=2.0,
        database_path=tmp_path / "arbwatch.db",
        discord_bot_token=SecretStr(TOKEN),
        **{"discord_api_url": fake.api_url, "discord_gateway_url": fake.gateway_url, **extra},
    )


def is_alert(message: DiscordMessage) -> bool:
    return message.kind == "channel" and any(
        "arbitrage" in (e.get("title") or "") for e in message.embeds
    )


def fields(message: DiscordMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0].get("fields", [])}


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(TOKEN) as server:
        yield server


async def test_slash_subscribe_then_a_live_window_sends_an_embed_by_dm(
    tmp_path: Path, fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(tmp_path, fake)
    window = ArbitrageWindow(10.0, 4.0, "BTCUSDT", sell_on=Exchange.BYBIT, net_pct=0.2)
    scenario = Scenario("e2e", "one arbitrage window", 60.0, (window,))
    async with SimulatorServer(scenario, symbols=SYMBOLS, seed=5) as server:
        app = App(
            settings,
            settings.detector_config(),
            server.urls.feed_urls(),
            console=False,
            detector_options={"ws_options": {"backoff": FAST_BACKOFF}},
        )
        async with app:
            assert app.frontend_states == {Platform.DISCORD: "connected"}
            registered = {c["name"]: c for c in fake.commands}
            assert {"subscribe", "unsubscribe", "list", "types", "mute", "stats", "chart"} <= set(
                registered
            )
            # The admins' commands are hidden from server members without Administrator (8).
            hidden = {n for n, c in registered.items() if c.get("default_member_permissions")}
            assert hidden == {"users", "broadcast"}
            assert int(registered["users"]["default_member_permissions"]) == 8
            options = {o["name"]: o for o in registered["subscribe"]["options"]}
            assert options["symbol"]["type"] == 3 and options["symbol"]["autocomplete"]
            assert options["threshold"]["type"] == 10  # a number, within a Range
            assert (options["threshold"]["min_value"], options["threshold"]["max_value"]) == (
                0.001,
                100.0,
            )
            assert [c["value"] for c in options["strength"]["choices"]] == [
                "weak",
                "moderate",
                "strong",
            ]

            # Autocomplete offers the watched symbols matching what was typed.
            choices = await fake.autocomplete("subscribe", {"symbol": "bt"}, "symbol", user_id=ANN)
            assert [c["value"] for c in choices] == ["BTCUSDT"]
            choices = await fake.autocomplete("subscribe", {"symbol": ""}, "symbol", user_id=ANN)
            assert [c["value"] for c in choices] == ["ALL", "BTCUSDT", "ETHUSDT"]

            status = await fake.slash("status", user_id=ANN)
            (health,) = await status.wait_messages(1)
            assert not health.ephemeral  # feed health concerns everyone in the channel
            assert "**Chat platforms**: discord connected" in (health.content or "")

            sub = await fake.slash(
                "subscribe", {"symbol": "BTCUSDT", "threshold": 0.15}, user_id=ANN, user_name="Ann"
            )
            (reply,) = await sub.wait_messages(1)
            assert reply.ephemeral and "Subscribed to BTCUSDT" in (reply.content or "")
            high = await fake.slash(
                "subscribe", {"symbol": "BTCUSDT", "threshold": 0.5}, user_id=BOB, user_name="Bob"
            )
            await high.wait_messages(1)
            # Precondition, not a timing claim: both were in before the window opened.
            assert now_ms() < server.start_ms + 10_000, "the bot took over 10 s to subscribe"

            alert = await fake.wait_for(is_alert, WAIT_S)
            assert alert.channel_id == str(fake.dm_channels[ANN])
            embed = alert.embeds[0]
            # The window ramps up to 0.2 % net: its first alert may catch it just below, weak.
            got = fields(alert)
            net = float(got["Net after fees"].removesuffix(" %"))
            assert 0.15 <= net <= 0.25  # from Ann's threshold to a little over the window's
            strength = SignalStrength.MODERATE if net >= 0.2 else SignalStrength.WEAK
            marks = "▲▲" if strength is SignalStrength.MODERATE else "▲"
            title = f"💱 BTCUSDT arbitrage · {marks} {strength.value.upper()}"
            if embed["title"] == f"{title} (upgraded)":
                # Ann's first alert is the window's upgrade only if she was never sent its
                # weak one: it stayed below her 0.15 %, or the upgrade superseded it in the queue.
                weak_sent = app.store.db.scalar(
                    "SELECT count(*) FROM deliveries d JOIN signals s ON s.id = d.signal"
                    " WHERE s.type = 'arbitrage' AND s.strength = 'weak' AND d.status = 'sent'"
                )
                assert strength is SignalStrength.MODERATE and weak_sent == 0
            else:
                assert embed["title"] == title
            assert embed["color"] == STRENGTH_COLORS[strength]
            assert got["Direction"] == "Binance → Bybit"
            assert {"Buy", "Sell", "Gross", "Max volume", "Expected profit", "Age"} <= set(got)
            assert not alert.content  # a DM mentions nobody
            custom_ids = [c["custom_id"] for row in alert.components for c in row["components"]]
            assert custom_ids == ["/mute BTCUSDT 1h", "/mute 1h"]
            # Bob's threshold (0.5 %) is above the window: nothing was queued for him.
            assert BOB not in fake.dm_channels

            # The alert's button mutes the symbol.
            press = await fake.press("/mute BTCUSDT 1h", message=alert, user_id=ANN)
            (muted,) = await press.wait_messages(1)
            assert "BTCUSDT alerts muted" in (muted.content or "")
            user = app.store.find_user(Platform.DISCORD, str(ANN))
            assert user is not None and user.muted(now_ms(), "BTCUSDT")

            # Once the window closed, the alert is edited to say so, and /stats answers in
            # public with text and a chart.
            await until(
                lambda: bool(
                    app.store.db.rows("SELECT id FROM opportunities WHERE closed_ms IS NOT NULL")
                )
            )
            edited = await fake.wait_for(lambda m: m.kind == "edit" and m.id == alert.id)
            closed_embed = edited.embeds[0]
            assert closed_embed["title"] == embed["title"] + " · CLOSED"
            assert closed_embed["color"] == CLOSED_COLOR
            ending = fields(edited)["Closed"]
            after, _, peak = ending.partition(" · peak net ")
            assert after.startswith("after ") and net <= float(peak.removesuffix(" %")) <= 0.25
            assert edited.custom_ids == custom_ids  # the mute buttons stay
            stats = await fake.slash("stats", {"symbol": "BTCUSDT"}, user_id=ANN)
            answered = await stats.answered()
            assert answered["type"] == 5  # deferred: rendering may take longer than 3 s
            (text,) = await stats.wait_messages(1)
            assert not text.ephemeral
            assert "Arbitrage opportunities" in (text.content or "")
            ((name, png),) = text.files
            assert name.endswith(".png")
            assert imread(io.BytesIO(png)).shape[:2] == (560, 1000)
            assert text.embeds[0]["image"]["url"] == f"attachment://{name}"
        assert fake.rejected == []
    assert TOKEN not in caplog.text
    assert "SECRET" not in caplog.text


def harness(settings: Settings, clock: Callable[[], int] = now_ms) -> Harness:
    """The Discord frontend with store and outbox, without the detector."""

    def discord(handler: CommandHandler) -> DiscordFrontend:
        return DiscordFrontend(settings, handler)

    return Harness(settings, discord, clock=clock)


async def test_a_user_who_refuses_dms_is_deactivated_not_retried(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    async with harness(make_settings(tmp_path, fake)) as bot:
        bot.add_user(ANN)
        bot.add_user(BOB)
        fake.refuse_dms(ANN)
        assert bot.alert(0.25) == 2
        await fake.wait_for(lambda m: m.channel_id == str(fake.dm_channels.get(BOB)), WAIT_S)
        await until(lambda: bot.statuses() == {"sent": 1, "skipped": 1})
        user = bot.store.find_user(Platform.DISCORD, str(ANN))
        assert user is not None and not user.active and user.blocked_at is not None
        # The next alert skips Ann without another attempt.
        attempts = len(fake.rejected)
        assert bot.alert(0.3) == 1
        await until(lambda: bot.statuses().get("sent") == 2)
        assert len(fake.rejected) == attempts == 1
        assert fake.rejected[0][1]["code"] == 50007
        # Ann comes back (e.g. after allowing DMs again): any command reactivates her.
        back = await fake.slash("alerts", {"to": "dm"}, user_id=ANN)
        await back.wait_messages(1)
        user = bot.store.find_user(Platform.DISCORD, str(ANN))
        assert user is not None and user.active and user.blocked_at is None


async def test_server_admins_route_alerts_to_a_channel_and_weak_ones_mention_nobody(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    async with harness(make_settings(tmp_path, fake)) as bot:
        ann_id = bot.add_user(ANN)
        where = {"guild_id": GUILD, "channel_id": CHANNEL}
        refused = await fake.slash("alerts", {"to": "here"}, user_id=ANN, permissions=0, **where)
        (no,) = await refused.wait_messages(1)
        assert no.ephemeral and "Only server admins" in (no.content or "")
        assert bot.store.user(ann_id).channel_id is None

        ok = await fake.slash(
            "alerts", {"to": "here"}, user_id=ANN, permissions=MANAGE_GUILD, **where
        )
        (yes,) = await ok.wait_messages(1)
        assert "now go to" in (yes.content or "")
        assert bot.store.user(ann_id).channel_id == str(CHANNEL)

        bot.alert(0.25)  # moderate: mentions Ann, and only Ann
        moderate = await fake.wait_for(lambda m: is_alert(m) and m.channel_id == str(CHANNEL))
        assert moderate.content == f"<@{ANN}>"
        assert moderate.allowed_mentions is not None
        assert moderate.allowed_mentions.get("users") == [ANN]
        assert not moderate.silent
        bot.alert(0.12)  # weak: silent, and nobody is mentioned
        weak = await fake.wait_for(
            lambda m: is_alert(m) and m.channel_id == str(CHANNEL) and m is not moderate
        )
        assert not weak.content and weak.silent
        assert weak.allowed_mentions is not None and weak.allowed_mentions.get("parse") == []
        assert weak.embeds[0]["color"] == STRENGTH_COLORS[SignalStrength.WEAK]

        back = await fake.slash("alerts", {"to": "dm"}, user_id=ANN)
        await back.wait_messages(1)
        assert bot.store.user(ann_id).channel_id is None


async def test_unsubscribe_completes_with_the_users_own_subscriptions(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    async with harness(make_settings(tmp_path, fake)):
        sub = await fake.slash("subscribe", {"symbol": "ETHUSDT", "threshold": 0.2}, user_id=ANN)
        await sub.wait_messages(1)
        choices = await fake.autocomplete("unsubscribe", {"symbol": ""}, "symbol", user_id=ANN)
        assert [c["value"] for c in choices] == ["ETHUSDT", "ALL"]
        # Bad input gets the command layer's own clear answer, ephemeral.
        bad = await fake.slash("subscribe", {"symbol": "BTCUSD", "threshold": 0.2}, user_id=ANN)
        (answer,) = await bad.wait_messages(1)
        assert answer.ephemeral and "BTCUSDT" in (answer.content or "")  # a suggestion


async def test_chart_with_no_data_is_text_and_with_data_an_image(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    async with harness(make_settings(tmp_path, fake)) as bot:
        empty = await fake.slash("chart", {"symbol": "BTCUSDT"}, user_id=ANN)
        (text,) = await empty.wait_messages(1)
        assert "No BTCUSDT signals" in (text.content or "") and not text.files
        bot.add_user(ANN)
        bot.alert(0.25)
        await until(lambda: bot.statuses().get("sent") == 1)
        chart = await fake.slash("chart", {"symbol": "BTCUSDT", "period": "1h"}, user_id=ANN)
        (picture,) = await chart.wait_messages(1)
        ((_, png),) = picture.files
        assert imread(io.BytesIO(png)).shape[:2] == (560, 1000)


async def test_after_stop_receiving_commands_are_declined_and_alerts_still_go_out(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    async with harness(make_settings(tmp_path, fake)) as bot:
        bot.add_user(ANN)
        await bot.frontend.stop_receiving()
        late = await fake.slash("list", user_id=ANN)
        (answer,) = await late.wait_messages(1)
        assert "restarting" in (answer.content or "")
        bot.alert(0.25)
        await fake.wait_for(is_alert, WAIT_S)


async def test_a_rejected_token_is_reported_and_the_rest_keeps_running(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    fake.reject_token()
    settings = make_settings(tmp_path, fake)
    err = io.StringIO()
    async with quiet_market(SYMBOLS) as make_app:
        app = make_app(settings, console=False, err=err)
        async with app:
            assert app.outboxes == {}
            state = app.frontend_states[Platform.DISCORD]
            assert state.startswith("failed: DISCORD_BOT_TOKEN was rejected")
            await until(lambda: all(b.healthy for b in app.detector.health().books))  # runs on
    assert "discord: cannot start: DISCORD_BOT_TOKEN was rejected" in err.getvalue()
    assert "running without discord" in err.getvalue()
    assert "SECRET" not in err.getvalue()


async def test_an_unreachable_api_is_a_clear_start_error(tmp_path: Path) -> None:
    async with FakeDiscord(TOKEN) as gone:
        settings = make_settings(tmp_path, gone)
    with Store(settings.database_path) as store:
        handler = CommandHandler(store, settings, settings.symbols)
        frontend = DiscordFrontend(settings, handler, ready_timeout_s=5.0)
        with pytest.raises(FrontendError) as info:
            await frontend.start()
    assert "discord: cannot start: cannot reach http://127.0.0.1:" in str(info.value)


async def test_the_gateway_asking_to_reconnect_is_resumed_transparently(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    async with harness(make_settings(tmp_path, fake)) as bot:
        assert bot.frontend.status == "connected"
        await fake.reconnect()  # op 7, as Discord does on gateway restarts
        listed = await fake.slash("list", user_id=ANN)
        (answer,) = await listed.wait_messages(1)
        assert "No subscriptions yet" in (answer.content or "")
        assert bot.frontend.status == "connected" and fake.resumes == 1
    assert bot.frontend.status == "stopped"


async def test_an_unreachable_gateway_is_a_clear_start_error(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    async with FakeDiscord(TOKEN) as gone:
        dead_gateway = gone.gateway_url
    settings = make_settings(tmp_path, fake, discord_gateway_url=dead_gateway)
    with Store(settings.database_path) as store:
        handler = CommandHandler(store, settings, settings.symbols)
        frontend = DiscordFrontend(settings, handler)
        with pytest.raises(FrontendError) as info:
            await frontend.start()
    assert f"cannot connect to the gateway {dead_gateway}: ClientConnectorError" in str(info.value)
    assert frontend.status == "stopped"


async def test_types_choices_and_an_admin_broadcast_reach_the_command_layer(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    settings = make_settings(tmp_path, fake, admin_user_ids=(f"discord:{ANN}",))
    async with harness(settings) as bot:
        bob = bot.add_user(BOB)
        chosen = await fake.slash(
            "types", {"type": "arbitrage", "type2": "volume_spike"}, user_id=BOB
        )
        (answer,) = await chosen.wait_messages(1)
        assert "You receive: arbitrage, volume spike" in (answer.content or "")
        assert bot.store.user(bob).types == {SignalType.ARBITRAGE, SignalType.VOLUME_SPIKE}

        refused = await fake.slash("broadcast", {"text": "hello"}, user_id=BOB)
        (no,) = await refused.wait_messages(1)
        assert no.ephemeral and "for arbwatch admins only" in (no.content or "")

        sent = await fake.slash(
            "broadcast", {"text": "Maintenance at 12:00 @everyone"}, user_id=ANN
        )
        (queued,) = await sent.wait_messages(1)
        assert "Queued for 1 active users" in (queued.content or "")
        news = await fake.wait_for(
            lambda m: m.kind == "channel" and m.embeds[0].get("title") == "📣 Announcement"
        )
        assert news.channel_id == str(fake.dm_channels[BOB])
        assert "@everyone" not in news.embeds[0]["description"]  # defused


async def test_venues_by_slash_choices_keep_okx_alerts_away(
    tmp_path: Path, fake: FakeDiscord
) -> None:
    async with harness(make_settings(tmp_path, fake)) as bot:
        registered = {c["name"]: c for c in fake.commands}
        options = {o["name"]: o for o in registered["venues"]["options"]}
        assert [c["value"] for c in options["venue"]["choices"]] == ["all", *VENUES]
        assert [c["name"] for c in options["venue2"]["choices"]] == ["Binance", "Bybit", "OKX"]
        assert not any(o.get("required") for o in options.values())  # alone: shows the choice
        chart = {o["name"]: o for o in registered["chart"]["options"]}
        assert [c["value"] for c in chart["venue2"]["choices"]] == list(VENUES)

        ann = bot.add_user(ANN)
        shown = await fake.slash("venues", user_id=ANN)
        (answer,) = await shown.wait_messages(1)
        assert "You trade on: all venues" in (answer.content or "")
        chosen = await fake.slash("venues", {"venue": "binance", "venue2": "bybit"}, user_id=ANN)
        (answer,) = await chosen.wait_messages(1)
        assert "You trade on: Binance and Bybit" in (answer.content or "")
        assert bot.store.user(ann).venues == {"binance", "bybit"}
        twice = await fake.slash("venues", {"venue": "okx", "venue2": "okx"}, user_id=ANN)
        (refused,) = await twice.wait_messages(1)
        assert refused.ephemeral and "Give each venue once" in (refused.content or "")
        assert bot.store.user(ann).venues == {"binance", "bybit"}

        assert bot.alert(0.25, direction="buy_okx_sell_binance") == 0  # no OKX alert for Ann
        assert bot.alert(0.3, direction="buy_bybit_sell_binance") == 1
        alert = await fake.wait_for(is_alert, WAIT_S)
        assert fields(alert)["Direction"] == "Bybit → Binance"

        pair = await fake.slash(
            "chart", {"symbol": "BTCUSDT", "venue": "okx", "venue2": "binance"}, user_id=ANN
        )
        (picture,) = await pair.wait_messages(1)
        assert "BTCUSDT gap Binance - OKX" in (picture.content or "") and picture.files


async def test_a_command_that_fails_unexpectedly_still_gets_an_answer(
    tmp_path: Path,
    fake: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with harness(make_settings(tmp_path, fake)) as bot:
        bot.add_user(ANN)
        bot.alert(0.25)
        alert = await fake.wait_for(is_alert, WAIT_S)

        def broken(text: str, ctx: object) -> object:
            raise RuntimeError("a bug in the command layer")

        # Stands in for a bug: there is no honest way to make the real layer raise.
        monkeypatch.setattr(bot.frontend.handler, "handle", broken)
        slash = await fake.slash("list", user_id=ANN)
        press = await fake.press("/mute 1h", message=alert, user_id=ANN)
        for interaction in (slash, press):
            (answer,) = await interaction.wait_messages(1)
            assert answer.ephemeral and "Something went wrong" in (answer.content or "")
    assert caplog.text.count("a bug in the command layer") >= 2


async def test_a_digest_arrives_as_one_embed(tmp_path: Path, fake: FakeDiscord) -> None:
    offset = [0]
    async with harness(make_settings(tmp_path, fake), lambda: now_ms() + offset[0]) as bot:
        bot.add_user(ANN)
        on = await fake.slash("digest", {"period": "10m"}, user_id=ANN)
        (answer,) = await on.wait_messages(1)
        assert "Digest every 10 min" in (answer.content or "")
        bot.alert(0.25, episodes=2)
        offset[0] = 10 * 60_000
        bot.outbox.wake()
        digest = await fake.wait_for(
            lambda m: bool(m.embeds) and m.embeds[0]["title"].startswith("🗞 Digest")
        )
        assert digest.embeds[0]["title"].endswith("· 2 signals")
        assert digest.embeds[0]["description"].count("BTCUSDT arbitrage") == 2
        assert digest.channel_id == str(fake.dm_channels.get(ANN))
        assert not any(is_alert(m) for m in fake.messages)
