"""The command layer on a real store: every command's happy path and every bad input."""

from __future__ import annotations

import io
import re
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from matplotlib.image import imread

from bot.commands import ADMIN_COMMANDS, COMMANDS, CommandContext, CommandHandler, Reply
from bot.commands.charts import Chart, png_size
from bot.commands.handler import MAX_INPUT
from bot.commands.reply import is_admin
from bot.config import Settings
from bot.messages import CALLBACK_DATA_LIMIT, discord_messages, telegram_messages
from bot.store import ALL_SYMBOLS, DeliveryPlan, Platform, Store
from detector.engine import BookHealth, ExchangeHealth, Health
from detector.feeds import FeedHealth
from detector.models import Exchange
from detector.signals import SignalStrength, SignalType
from tests.bot.factories import T0, arbitrage, other

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "1000PEPEUSDT")
HOUR = 3_600_000


def make_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def handler(store: Store) -> CommandHandler:
    return CommandHandler(store, make_settings(admin_user_ids="telegram:1"), SYMBOLS)


def ctx(handler: CommandHandler, user: str = "7", now: int = T0) -> CommandContext:
    return handler.context(Platform.TELEGRAM, user, user, "Ann", now)


def send(handler: CommandHandler, text: str, user: str = "7", now: int = T0) -> Reply:
    return handler.handle(text, ctx(handler, user, now))


def dump(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


def subscriptions(store: Store, user: str = "7") -> dict[str, tuple[float, SignalStrength]]:
    found = store.find_user(Platform.TELEGRAM, user)
    assert found is not None
    return {s.symbol: (s.threshold_pct, s.min_strength) for s in store.subscriptions(found.id)}


# -- bad input: a specific reply, and the database untouched ---------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("/subscribe", ["a symbol and a threshold", "Usage: /subscribe BTCUSDT 0.15"]),
        ("/subscribe BTCUSDT", ["a symbol and a threshold"]),
        ("/subscribe BTC 0.15", ["I don't watch BTC", "Did you mean BTCUSDT?"]),
        ("/subscribe ETHUSD 0.15", ["Did you mean ETHUSDT?"]),
        ("/subscribe DOGEUSDT 0.15", ["I don't watch DOGEUSDT", "Watched (4): BTCUSDT"]),
        ("/subscribe BTCUSDT abc", ["THRESHOLD must be a number", "(got abc)"]),
        ("/subscribe BTCUSDT nan", ["THRESHOLD must be a number"]),
        ("/subscribe BTCUSDT inf", ["THRESHOLD must be a number"]),
        ("/subscribe BTCUSDT 0", ["THRESHOLD must be above 0"]),
        ("/subscribe BTCUSDT -0.2", ["THRESHOLD must be above 0"]),
        ("/subscribe BTCUSDT 75", ["75 % is not a realistic net profit", "the most is 50 %"]),
        ("/subscribe BTCUSDT 0.15 huge", ["Unknown strength huge", "weak, moderate, strong"]),
        ("/subscribe BTCUSDT 0.15 weak extra", ["Too many arguments (4; at most 3)"]),
        ("/unsubscribe", ["Which symbol?"]),
        ("/unsubscribe ETHUSDT", ["You are not subscribed to ETHUSDT", "Yours: ALL, BTCUSDT"]),
        ("/unsubscribe XRPUSDT", ["I don't watch XRPUSDT"]),
        ("/unsubscribe BTCUSDT ETHUSDT", ["Too many arguments (2; at most 1)"]),
        ("/list everything", ["/list takes no arguments"]),
        ("/types foo", ["Unknown signal type foo", "arbitrage, spread_anomaly"]),
        ("/types arbitrage all", ["Give 'all' alone"]),
        ("/types ETHUSDT arbitrage", ["You have no ETHUSDT subscription"]),
        ("/types BTCUSDT", ["Which types for BTCUSDT?"]),
        ("/types DOGEUSDT arbitrage", ["I don't watch DOGEUSDT"]),
        ("/mute 2x", ["I can't read the duration 2x", "30m"]),
        ("/mute 0m", ["at least 1 minute"]),
        ("/mute 31d", ["31d is too long", "the most is 30 d"]),
        ("/mute 1h 2h", ["Give one duration"]),
        ("/mute BTCUSDT ETHUSDT", ["Give one symbol"]),
        ("/mute BTCUSDT 1h more", ["Too many arguments (3; at most 2)"]),
        ("/mute XRPUSDT", ["I don't watch XRPUSDT"]),
        ("/unmute BTCUSDT ETHUSDT", ["Too many arguments"]),
        ("/stats 5y", ["I can't read the duration 5y"]),
        ("/stats 40d", ["too long"]),
        ("/stats BTCUSDT 1h 2h", ["Too many arguments"]),
        ("/stats DOGE", ["I don't watch DOGE"]),
        (
            "/chart",
            [
                "Which symbol?",
                "Usage: /chart BTCUSDT, /chart ETHUSDT 7d or /chart BTCUSDT 24h okx binance",
            ],
        ),
        ("/chart 7d", ["Which symbol?", "Usage: /chart BTCUSDT"]),
        ("/chart ALL", ["/chart draws one symbol, not ALL.", "/stats", "Usage: /chart"]),
        ("/chart 7d all", ["/chart draws one symbol, not ALL."]),
        ("/chart BTC", ["I don't watch BTC", "Did you mean BTCUSDT?", "1000PEPEUSDT."]),
        ("/chart XRPUSDT 1h", ["I don't watch XRPUSDT", "Watched (4)"]),
        ("/chart BTCUSDT 5y", ["I can't read the duration 5y", "Usage: /chart BTCUSDT"]),
        ("/chart BTCUSDT 31d", ["31d is too long", "the most is 30 d"]),
        ("/chart BTCUSDT 0m", ["at least 1 minute"]),
        ("/chart BTCUSDT ETHUSDT", ["Give one symbol", "Usage: /chart"]),
        ("/chart BTCUSDT 1h 2h", ["Too many arguments (3; at most 2)", "Usage: /chart"]),
        ("/chart BTCUSDT okx", ["Give two venues: the chart is the gap between a pair"]),
        ("/chart BTCUSDT okx OKX", ["Give two different venues."]),
        ("/chart BTCUSDT okx binance bybit", ["Give two venues"]),
        ("/chart BTCUSDT 24h kraken binance", ["Unknown venue kraken", "binance, bybit, okx."]),
        ("/chart BTCUSDT bybt binance", ["Unknown venue bybt", "Did you mean bybit?"]),
        ("/chart BTCUSDT 1h okx binance more", ["Too many arguments (5; at most 4)"]),
        ("/chart okx binance", ["Which symbol?"]),
        ("/chart BTC okx binance", ["I don't watch BTC", "Did you mean BTCUSDT?"]),
        ("/venues kraken", ["Unknown venue kraken", "binance, bybit, okx, or all for every one"]),
        ("/venues binance bybt", ["Unknown venue bybt", "Did you mean bybit?"]),
        ("/venues okex", ["Did you mean okx?"]),
        ("/venues binance BINANCE", ["Give each venue once (binance came twice)."]),
        ("/venues binance bybit okx okx", ["Too many arguments (4; at most 3)"]),
        ("/venues okx all", ["Give 'all' alone, or a list of venues."]),
        ("/venues ,", ["Which venues?", "Usage: /venues binance okx"]),
        ("/status BTCUSDT now", ["/status takes one symbol at most"]),
        ("/status BTCUSTD", ["I don't watch BTCUSTD", "BTCUSDT"]),
        ("/users", ["Sorry, /users is for arbwatch admins only."]),
        ("/broadcast hello everyone", ["Sorry, /broadcast is for arbwatch admins only."]),
        ("/subscrib BTCUSDT 0.1", ["I don't know /subscrib", "Did you mean /subscribe?"]),
        ("/frobnicate", ["I don't know /frobnicate", "/help"]),
        ("hello there", ["I understand commands only"]),
        ("", ["I understand commands only"]),
        ("/subscribe BTCUSDT 0.15 " + "x" * MAX_INPUT, ["too long", "at most 200 characters"]),
    ],
)
def test_bad_input_gets_a_specific_reply_and_changes_nothing(
    handler: CommandHandler, store: Store, path: Path, text: str, fragments: list[str]
) -> None:
    send(handler, "/subscribe BTCUSDT 0.15")
    send(handler, "/subscribe ALL 0.3")
    before = dump(path)
    reply = send(handler, text)
    for fragment in fragments:
        assert fragment in reply.text
    assert dump(path) == before
    # A stranger's bad input does not register them either.
    send(handler, text, user="99")
    assert store.find_user(Platform.TELEGRAM, "99") is None


def test_the_cap_on_subscriptions(store: Store, path: Path) -> None:
    handler = CommandHandler(store, make_settings(max_subscriptions_per_user=2), SYMBOLS)
    send(handler, "/subscribe BTCUSDT 0.15")
    send(handler, "/subscribe ALL 0.2")
    before = dump(path)
    reply = send(handler, "/subscribe ETHUSDT 0.2")
    assert "You already have 2 subscriptions" in reply.text
    assert dump(path) == before
    assert "Updated BTCUSDT" in send(handler, "/subscribe BTCUSDT 0.5").text


# -- happy paths ----------------------------------------------------------------------------------


def test_start_registers_and_greets_with_help(handler: CommandHandler, store: Store) -> None:
    reply = handler.handle("/start", handler.context(Platform.TELEGRAM, "5", "5", "<b>Bo</b>", T0))
    assert store.find_user(Platform.TELEGRAM, "5") is not None
    assert reply.text.startswith("Hi <b>Bo</b>! I'm arbwatch.")
    assert "&lt;b&gt;Bo&lt;/b&gt;" in telegram_messages(reply.lines)[0]
    assert "/subscribe" in reply.text and "/users" not in reply.text
    assert "I watch Binance, Bybit and OKX USDT perpetuals" in reply.text
    assert reply.buttons[0][0].data == "/subscribe ALL 0.2"


def test_the_whole_market_found_at_start_is_watched_and_summarised(
    handler: CommandHandler, store: Store
) -> None:
    market = [f"COIN{i:03d}USDT" for i in range(400)]
    handler.watch(market)  # what SYMBOLS=ALL discovered once the detector started
    start = send(handler, "/start").text
    assert "Watching: 400 symbols: COIN000USDT, COIN001USDT," in start
    assert "COIN011USDT (+388 more)" in start and "COIN012USDT" not in start
    assert send(handler, "/subscribe COIN399USDT 0.2").text.startswith("✅")
    assert "COIN399USDT" in subscriptions(store)
    assert send(handler, "/subscribe BTCUSDT 0.2").text.startswith(
        "I don't watch BTCUSDT.\nWatched (400): "
    )


def test_help_lists_admin_commands_to_admins_only(handler: CommandHandler) -> None:
    everyone = send(handler, "/help").text
    admin = send(handler, "/help", user="1").text
    for name, _ in COMMANDS:
        assert f"/{name}" in everyone
    for name, _ in ADMIN_COMMANDS:
        assert f"/{name}" not in everyone and f"/{name}" in admin
    assert "/alerts dm|@CHANNEL" in everyone  # Telegram's own form of /alerts


def test_help_on_discord_lists_its_slash_commands(handler: CommandHandler) -> None:
    text = handler.handle("/help", handler.context(Platform.DISCORD, "9", "9", "Di", T0)).text
    assert "/start" not in text and "/alerts" in text and "/subscribe" in text


def test_subscribe_stores_the_rule_and_resubscribing_updates_it(
    handler: CommandHandler, store: Store
) -> None:
    reply = send(handler, "/subscribe btcusdt 0.15")
    assert "Subscribed to BTCUSDT" in reply.text
    assert "net profit after fees reaches 0.150 %" in reply.text
    assert "Other signals: weak and stronger" in reply.text
    assert subscriptions(store) == {"BTCUSDT": (0.15, SignalStrength.WEAK)}
    reply = send(handler, "/subscribe BTCUSDT 0,25% MODERATE")
    assert "Updated BTCUSDT" in reply.text
    assert subscriptions(store) == {"BTCUSDT": (0.25, SignalStrength.MODERATE)}


def test_all_is_a_default_and_a_symbol_overrides_it(handler: CommandHandler, store: Store) -> None:
    reply = send(handler, "/subscribe ALL 0.3 strong")
    assert "Covers every watched symbol (4)" in reply.text
    reply = send(handler, "/subscribe ETHUSDT 0.15")
    assert "This overrides your ALL default for ETHUSDT." in reply.text
    assert subscriptions(store) == {
        ALL_SYMBOLS: (0.3, SignalStrength.STRONG),
        "ETHUSDT": (0.15, SignalStrength.WEAK),
    }
    reply = send(handler, "/unsubscribe ETHUSDT")
    assert "Removed ETHUSDT" in reply.text
    assert "Your ALL default still covers ETHUSDT" in reply.text


def test_a_threshold_below_what_the_detector_reports_is_explained(handler: CommandHandler) -> None:
    reply = send(handler, "/subscribe BTCUSDT 0.05")
    assert "reports opportunities from 0.100 % net" in reply.text


def test_unsubscribe_all_removes_everything(handler: CommandHandler, store: Store) -> None:
    for text in ("/subscribe ALL 0.2", "/subscribe BTCUSDT 0.1", "/subscribe SOLUSDT 0.1"):
        send(handler, text)
    reply = send(handler, "/unsubscribe all")
    assert "Removed ALL (every watched symbol), BTCUSDT, SOLUSDT" in reply.text
    assert "no more alerts" in reply.text
    assert subscriptions(store) == {}
    assert "You have no subscriptions" in send(handler, "/unsubscribe ALL").text


def test_list_shows_rules_types_and_mutes(handler: CommandHandler) -> None:
    assert "No subscriptions yet" in send(handler, "/list").text
    send(handler, "/subscribe ALL 0.2 moderate")
    send(handler, "/subscribe BTCUSDT 0.15")
    send(handler, "/types BTCUSDT arb volume")
    send(handler, "/mute ETHUSDT 2h")
    text = send(handler, "/list").text
    assert "Your subscriptions (2 of 50)" in text
    assert "ALL: arbitrage from 0.200 % net, others from moderate" in text
    assert (
        "BTCUSDT: arbitrage from 0.150 % net, others from weak; types: arbitrage, volume spike"
        in text
    )
    assert "Types: all types" in text
    assert "ETHUSDT muted until 2026-08-06" in text


def test_types_for_the_user_and_for_one_subscription(handler: CommandHandler, store: Store) -> None:
    assert "You receive: all types" in send(handler, "/types").text
    assert "You receive: arbitrage, volume spike" in send(handler, "/types arbitrage volume").text
    user = store.find_user(Platform.TELEGRAM, "7")
    assert user is not None and user.types == {SignalType.ARBITRAGE, SignalType.VOLUME_SPIKE}
    assert "all types" in send(handler, "/types all").text
    send(handler, "/subscribe BTCUSDT 0.2")
    assert "BTCUSDT: momentum breakout" in send(handler, "/types btcusdt momentum").text
    assert store.subscriptions(user.id)[0].types == {SignalType.MOMENTUM_BREAKOUT}
    assert "your default types" in send(handler, "/types BTCUSDT default").text
    assert store.subscriptions(user.id)[0].types is None


@pytest.mark.parametrize(
    ("text", "symbol", "duration_ms"),
    [
        ("/mute", None, HOUR),
        ("/mute 30m", None, 30 * 60_000),
        ("/mute 90min", None, 90 * 60_000),
        ("/mute 2h", None, 2 * HOUR),
        ("/mute 1d", None, 24 * HOUR),
        ("/mute 30d", None, 30 * 24 * HOUR),
        ("/mute BTCUSDT", "BTCUSDT", HOUR),
        ("/mute 2h btcusdt", "BTCUSDT", 2 * HOUR),
        ("/mute ALL 2h", None, 2 * HOUR),
        ("/mute 1000pepeusdt 1d", "1000PEPEUSDT", 24 * HOUR),
    ],
)
def test_mute_durations(
    handler: CommandHandler, store: Store, text: str, symbol: str | None, duration_ms: int
) -> None:
    reply = send(handler, text)
    assert "muted for" in reply.text
    user = store.find_user(Platform.TELEGRAM, "7")
    assert user is not None
    if symbol is None:
        assert user.muted_until_ms == T0 + duration_ms
    else:
        assert user.muted_symbols == {symbol: T0 + duration_ms}
    undo = "/unmute" if symbol is None else f"/unmute {symbol}"
    assert reply.buttons[0][0].data == undo
    assert "Alerts resumed" in send(handler, undo).text
    assert "Nothing was muted" in send(handler, undo).text


def test_stats_reports_real_figures(handler: CommandHandler, store: Store) -> None:
    send(handler, "/subscribe ALL 0.1")
    user = store.find_user(Platform.TELEGRAM, "7")
    assert user is not None
    history = store.history
    opened = T0 - 2 * HOUR
    first = arbitrage(0.15, timestamp=opened, opened_ms=opened, expected_profit=5.0)
    history.record_signal(first, first.timestamp, DeliveryPlan(first, True, (user.id,)))
    history.record_signal(
        arbitrage(0.42, timestamp=opened + 6_000, opened_ms=opened, expected_profit=30.0), T0
    )
    history.record_signal(
        arbitrage(
            0.2,
            symbol="ETHUSDT",
            timestamp=T0 - 30 * 60_000,
            opened_ms=T0 - 30 * 60_000,
            expected_profit=4.0,
        ),
        T0,
    )
    history.record_signal(
        other(SignalType.VOLUME_SPIKE, SignalStrength.MODERATE, timestamp=T0 - HOUR), T0
    )
    history.record_signal(
        arbitrage(0.3, timestamp=T0 - 3 * 24 * HOUR, opened_ms=T0 - 3 * 24 * HOUR), T0
    )
    (delivery,) = store.deliveries.due(T0)
    store.deliveries.mark_sent(delivery.id, first.timestamp + 1_500)

    text = send(handler, "/stats").text
    assert "Stats for all symbols, last 24 h" in text
    assert "Signals: 4" in text
    assert "arbitrage: 3 (weak 1 · moderate 1 · strong 1)" in text
    assert "volume spike: 1 (moderate 1)" in text
    assert "Arbitrage opportunities: 2 (2 open now)" in text
    assert "Net profit at peak: average 0.310 %, best 0.420 %" in text
    assert "Duration: median 3.0 s, longest 6.0 s" in text
    assert "Expected profit at max volume: 34.00 USDT in total, best 30.00 USDT" in text
    assert "Alert delivery: median 1.5 s" in text
    assert "Your alerts: 1 delivered" in text
    assert "Feeds: health not available" in text

    text = send(handler, "/stats ethusdt 1h").text
    assert "Stats for ETHUSDT, last 1 h" in text
    assert "Signals: 1" in text and "Arbitrage opportunities: 1 (1 open now)" in text
    text = send(handler, "/stats 7d").text
    assert "last 7 d" in text and "Signals: 5" in text and "Arbitrage opportunities: 3" in text


def check_png(chart: Chart | None) -> Chart:
    """A decodable 1000 x 560 PNG whose header agrees with the Chart's size."""
    assert chart is not None
    pixels = imread(io.BytesIO(chart.png), format="png")
    assert pixels.shape in ((560, 1000, 4), (560, 1000, 3))
    assert png_size(chart.png) == (chart.width, chart.height) == (1000, 560)
    return chart


def test_stats_without_opportunities_is_text_saying_when_the_chart_comes(
    handler: CommandHandler,
) -> None:
    reply = send(handler, "/stats")
    assert reply.image is None
    assert "Arbitrage opportunities: 0" in reply.text
    assert reply.text.endswith("\nThe chart appears once opportunities are recorded.")
    assert reply.text.count("chart") == 1


def test_stats_charts_the_opportunities_it_counts(handler: CommandHandler, store: Store) -> None:
    # One opened exactly "now": counted by the text and drawn by the chart alike.
    store.history.record_signal(arbitrage(0.3, timestamp=T0, opened_ms=T0), T0)
    eth = T0 - 5 * HOUR
    store.history.record_signal(arbitrage(0.2, symbol="ETHUSDT", timestamp=eth, opened_ms=eth), T0)

    reply = send(handler, "/stats")
    assert "Arbitrage opportunities: 2" in reply.text
    assert "chart appears" not in reply.text
    chart = check_png(reply.image)
    assert chart.filename == "stats.png"
    assert "for all symbols" in chart.caption and "2 opportunities" in chart.caption
    assert "for ETHUSDT" in check_png(send(handler, "/stats ETHUSDT 7d").image).caption
    # Outside the period, or another symbol: the text alone.
    for text in ("/stats 1h ETHUSDT", "/stats SOLUSDT"):
        reply = send(handler, text)
        assert reply.image is None
        assert "Arbitrage opportunities: 0" in reply.text and "The chart appears" in reply.text


def test_chart_without_signals_says_what_it_needs(handler: CommandHandler, store: Store) -> None:
    # A volume spike carries one exchange's price only: nothing to draw a gap from.
    store.history.record_signal(other(SignalType.VOLUME_SPIKE, timestamp=T0 - HOUR), T0)
    reply = send(handler, "/chart btcusdt")
    assert reply.image is None
    assert reply.text.startswith(
        "No BTCUSDT signals in the last 24 h yet — the chart needs stored arbitrage or momentum"
        " signals"
    )
    assert "Try a longer period: /chart BTCUSDT 7d" in reply.text
    assert "Try a longer period: /chart ETHUSDT 30d" in send(handler, "/chart 7d ETHUSDT").text
    last = send(handler, "/chart BTCUSDT 30d")
    assert "last 30 d" in last.text and "longer period" not in last.text


def test_chart_draws_the_gap_from_stored_signals(handler: CommandHandler, store: Store) -> None:
    opened = T0 - 2 * HOUR
    for k, net in enumerate((0.15, 0.3)):
        reason = "new" if k == 0 else "upgrade"
        signal = arbitrage(net, timestamp=opened + k * 60_000, opened_ms=opened, reason=reason)
        store.history.record_signal(signal, signal.timestamp)
    momentum = other(SignalType.MOMENTUM_BREAKOUT, timestamp=T0 - HOUR, start_ms=T0 - HOUR)
    store.history.record_signal(momentum, T0 - HOUR)

    reply = send(handler, "/chart BTCUSDT")
    assert reply.text == "📈 BTCUSDT gap, last 24 h"
    assert not reply.ephemeral and not reply.buttons
    chart = check_png(reply.image)
    assert chart.filename == "chart.png"
    assert chart.caption.startswith("BTCUSDT: cross-exchange price gap")
    assert "from 3 stored signals" in chart.caption
    assert "1 arbitrage opportunity window" in chart.caption
    # The period counts: 90 minutes hold the momentum signal only, 30 minutes nothing.
    recent = send(handler, "/chart 90m btcusdt")
    assert recent.text == "📈 BTCUSDT gap, last 1.5 h"
    assert "from 1 stored signal" in check_png(recent.image).caption
    assert send(handler, "/chart BTCUSDT 30m").image is None
    assert send(handler, "/chart ETHUSDT").image is None


def test_chart_draws_the_gap_of_the_pair_of_venues_asked_for(
    handler: CommandHandler, store: Store
) -> None:
    opened = T0 - 2 * HOUR
    for direction in ("buy_okx_sell_binance", "buy_binance_sell_okx", "buy_binance_sell_bybit"):
        signal = arbitrage(0.2, timestamp=opened, opened_ms=opened, direction=direction)
        store.history.record_signal(signal, opened)
        opened += 60_000

    default = send(handler, "/chart BTCUSDT")
    assert default.text == "📈 BTCUSDT gap, last 24 h"
    assert "from 1 stored signal;" in check_png(default.image).caption
    # Any order of symbol, period and venues; the gap is the second venue minus the first.
    for text in ("/chart BTCUSDT 24h okx binance", "/chart OKX binance btcusdt"):
        reply = send(handler, text)
        assert reply.text == "📈 BTCUSDT gap Binance - OKX, last 24 h"
        caption = check_png(reply.image).caption
        assert "(Binance - OKX, % of the OKX price)" in caption
        assert "from 2 stored signals" in caption and "2 arbitrage opportunity windows" in caption
        assert "green when Binance quoted higher, red when OKX did" in caption
    empty = send(handler, "/chart BTCUSDT bybit okx")
    assert empty.image is None
    assert empty.text.startswith(
        "No BTCUSDT OKX - Bybit signals in the last 24 h yet — the chart needs stored arbitrage"
        " or momentum signals between Bybit and OKX"
    )
    assert "Try a longer period: /chart BTCUSDT 7d bybit okx" in empty.text


def test_chart_never_suggests_all(handler: CommandHandler) -> None:
    assert "ALL" not in send(handler, "/chart XRPUSDT").text
    assert "or ALL for every one." in send(handler, "/stats XRPUSDT").text


def test_only_stats_and_chart_carry_images(handler: CommandHandler, store: Store) -> None:
    store.history.record_signal(arbitrage(0.3), T0)
    for text in ("/start", "/help", "/list", "/types", "/mute", "/status", "/nope"):
        assert send(handler, text).image is None


def test_commands_fit_telegrams_menu() -> None:
    assert dict(COMMANDS)["chart"].startswith("SYMBOL [PERIOD] [VENUE VENUE]: ")
    assert dict(COMMANDS)["venues"].startswith("VENUE ...|all: ")
    for name, about in COMMANDS + ADMIN_COMMANDS:
        assert re.fullmatch(r"[a-z0-9_]{1,32}", name)
        assert 1 <= len(about) <= 256


def _health() -> Health:
    def exchange(name: Exchange, connected: bool) -> ExchangeHealth:
        feed = FeedHealth(name, connected, 1, 0 if connected else 3, T0 - 100, 0, 0)
        if not connected:
            feed.last_error = "connection refused <oops>"
        return ExchangeHealth(feed, 1000, 42.0, 100, 1, 2, 0)

    return Health(
        now_ms=T0,
        exchanges={
            Exchange.BINANCE: exchange(Exchange.BINANCE, True),
            Exchange.BYBIT: exchange(Exchange.BYBIT, False),
            Exchange.OKX: exchange(Exchange.OKX, True),
        },
        books=[
            BookHealth(Exchange.BINANCE, "BTCUSDT", "synced", True, 100, 0, 0),
            BookHealth(Exchange.BYBIT, "BTCUSDT", "awaiting_snapshot", False, 12_000, 1, 2),
        ],
        latency_p50_ms=12.0,
        latency_p99_ms=85.0,
        signals=7,
        internal_errors=0,
        symbol_problems=["DOGEUSDT is not listed on Bybit"],
    )


def test_status_and_stats_use_the_health_provider(store: Store) -> None:
    plain = CommandHandler(store, make_settings(), SYMBOLS)
    assert "Feed health is not available" in send(plain, "/status").text
    handler = CommandHandler(
        store, make_settings(), SYMBOLS, _health, lambda: {"suppressed_total": 17}
    )
    text = send(handler, "/status").text
    assert "Binance: 🟢 connected" in text and "Bybit: 🔴 disconnected" in text
    assert "OKX: 🟢 connected" in text
    assert "42 frames/s · last frame 100 ms ago · reconnects 3 · gaps 1 · resyncs 2" in text
    assert "last error: connection refused <oops>" in text
    assert "Books: 1/2 healthy" in text
    assert "bybit BTCUSDT: awaiting_snapshot, 12.0 s old" in text
    assert "Latency: p50 12 ms · p99 85 ms" in text
    assert "DOGEUSDT is not listed on Bybit" in text
    stats = send(handler, "/stats").text
    assert "Detection latency: p50 12 ms · p99 85 ms" in stats
    assert "Feeds: Binance up · Bybit DOWN · OKX up · books 1/2 healthy" in stats
    assert "17 repeats suppressed since start" in stats
    assert "Chat platforms" not in text


def test_status_of_one_symbol_and_of_the_whole_market(store: Store) -> None:
    market = [f"COIN{i:03d}USDT" for i in range(400)]
    base = _health()
    books = [
        BookHealth(venue, symbol, "awaiting_snapshot", False, None, 0, 0)
        for symbol in market
        for venue in (Exchange.BINANCE, Exchange.BYBIT)
    ]
    books[0] = BookHealth(Exchange.BINANCE, "COIN000USDT", "synced", True, 250, 1, 2, 3)
    problems = ["Bybit COIN001USDT quarantined: mid 10 against Binance 1: not the same coin"]
    problems += [f"COIN{i:03d}USDT: tradable on Binance only, so not watched" for i in range(20)]
    health = replace(base, books=books, symbol_problems=problems, quarantined=["bybit COIN001USDT"])
    handler = CommandHandler(store, make_settings(), market, lambda: health)
    text = send(handler, "/status").text
    assert "Books: 1/800 healthy · 1 quarantined" in text
    assert "binance COIN000USDT" not in text  # healthy books are not listed
    assert text.count("awaiting_snapshot") == 10
    assert "… and 789 more (/status SYMBOL shows one)" in text
    assert "⚠️ … and 11 more" in text
    one = send(handler, "/status coin000usdt").text
    assert "COIN000USDT:" in one
    assert "• Binance: 🟢 healthy, 250 ms old · gaps 1 · resyncs 2 · stale 3" in one
    assert "• Bybit: 🔴 awaiting_snapshot, no frame yet · gaps 0 · resyncs 0 · stale 0" in one
    assert "COIN001USDT" not in one and "awaiting_snapshot" not in one.split("COIN000USDT:")[0]
    quarantined = send(handler, "/status COIN001USDT").text
    assert "Bybit COIN001USDT quarantined: mid 10 against Binance 1" in quarantined


def test_status_shows_the_chat_platforms(store: Store) -> None:
    summary = "telegram connected · discord failed: DISCORD_BOT_TOKEN was rejected"
    handler = CommandHandler(store, make_settings(), SYMBOLS, chats_provider=lambda: summary)
    assert f"Chat platforms: {summary}" in send(handler, "/status").text


def test_admins_count_users_and_broadcast(handler: CommandHandler, store: Store) -> None:
    send(handler, "/subscribe BTCUSDT 0.2")
    send(handler, "/start", user="8")
    text = send(handler, "/users", user="1").text
    assert "2 in total: 2 active, 0 blocked" in text
    assert "1 subscribed, 1 subscriptions" in text
    long_text = "Maintenance tonight <b>&</b> " + "z" * 300
    reply = send(handler, f"/broadcast {long_text}", user="1")
    assert "Queued for 2 active users" in reply.text and reply.ephemeral
    assert store.deliveries.due(T0)[0].broadcast_text == long_text


def test_is_admin_matches_platform_ids_and_bare_ids() -> None:
    admins = make_settings(admin_user_ids="telegram:7, 42").admin_user_ids
    assert is_admin(admins, Platform.TELEGRAM, "7")
    assert not is_admin(admins, Platform.DISCORD, "7")
    assert is_admin(admins, Platform.DISCORD, "42")
    assert not is_admin((), Platform.TELEGRAM, "7")


def test_commands_addressed_to_the_bot_in_groups(handler: CommandHandler) -> None:
    assert "No subscriptions yet" in send(handler, "/list@arbwatch_bot").text


def test_every_button_fits_telegram_callback_data(handler: CommandHandler) -> None:
    replies = [send(handler, t) for t in ("/start", "/mute 1000PEPEUSDT 30d", "/mute")]
    for reply in replies:
        for row in reply.buttons:
            for button in row:
                assert len(button.data.encode()) <= CALLBACK_DATA_LIMIT


def test_a_list_of_fifty_subscriptions_splits_for_discord(store: Store) -> None:
    symbols = tuple(f"COIN{i:02d}USDT" for i in range(49))
    handler = CommandHandler(store, make_settings(), symbols)
    send(handler, "/subscribe ALL 0.2")
    for symbol in symbols:
        send(handler, f"/subscribe {symbol} 0.25 moderate")
        send(handler, f"/types {symbol} arbitrage volume_spike funding momentum")
    reply = send(handler, "/list")
    assert "Your subscriptions (50 of 50)" in reply.text
    discord = discord_messages(reply.lines)
    telegram = telegram_messages(reply.lines)
    assert len(discord) >= 2 and all(len(chunk) <= 2000 for chunk in discord)
    assert all(len(chunk) <= 4096 for chunk in telegram)
    # Every line is kept, whole, in order.
    assert "\n".join(telegram).count("COIN") == 49
