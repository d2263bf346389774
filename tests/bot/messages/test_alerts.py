"""The text of every alert: what a trader needs, for every signal type, whatever is missing."""

from __future__ import annotations

import pytest

from bot.messages import (
    DISCORD_LIMIT,
    TELEGRAM_LIMIT,
    alert_buttons,
    format_alert,
    plain_text,
    render_discord,
    render_telegram,
)
from detector.signals import Signal, SignalStrength, SignalType
from tests.bot.factories import T0, arbitrage, funding, momentum, other


def test_an_arbitrage_alert_shows_everything_a_trader_needs() -> None:
    signal = arbitrage(0.15, reason="regrowth")
    text = plain_text(format_alert(signal, T0 + 1_200))
    assert text.splitlines() == [
        "💱 BTCUSDT arbitrage · ▲ WEAK (grew)",
        "Buy Binance at 64,123.5 → sell Bybit at 64,287.0",
        "Net 0.150 % after fees (gross 0.255 %)",
        "Max volume 0.5 BTC (≈ 32,062 USDT) · expected profit 12.50 USDT",
        "Confidence 88 % · 1.2 s ago",
    ]
    closed = format_alert(signal, T0 + 9_000, closed_after_ms=8_000, peak_net_pct=0.31)
    assert plain_text(closed).endswith("Closed after 8.0 s · peak net 0.310 %")


@pytest.mark.parametrize(
    ("signal", "fragments"),
    [
        (
            other(SignalType.SPREAD_ANOMALY, SignalStrength.MODERATE),
            [
                "spread anomaly on Bybit · ▲▲ MODERATE",
                "Spread 12.4 bps, usually 3.1 ± 1.2 bps (z 7.8)",
                "Bid 3,120.55 · ask 3,124.42",
            ],
        ),
        (
            other(SignalType.VOLUME_SPIKE, SignalStrength.STRONG),
            [
                "volume spike on Binance · ▲▲▲ STRONG (upgraded)",
                "1,234,567 USDT traded in 5 s",
                "16.2x the usual 76,200",
                "Buys 800,000 · sells 434,567 · 312 trades · last 143.215",
            ],
        ),
        (
            other(SignalType.FUNDING_RATE_DIVERGENCE),
            [  # a signal stored before N venues: two rates, no lower_exchange
                "BTCUSDT funding rate divergence · ▲ WEAK",
                "Funding per 8 h: Bybit 0.0450 % · Binance 0.0100 %",
                "Highest Bybit, lowest Binance: 0.0350 points apart",
                "Idea: short Bybit, long Binance",
                "Next funding: Bybit 08:06 UTC · Binance 08:06 UTC",
            ],
        ),
        (
            other(SignalType.MOMENTUM_BREAKOUT, SignalStrength.MODERATE),
            [
                "momentum breakout on Binance",
                "Mid 64,500 is 0.42 % above the prior high 64,230",
                "(60 x 1 s range)",
                "Bybit mid 64,480",
            ],
        ),
        (
            momentum("okx", {"binance": 64_480.0, "bybit": 64_495.5}),
            ["momentum breakout on OKX", "Binance mid 64,480.0 · Bybit mid 64,495.5"],
        ),
        (
            momentum("bybit", {}),  # no other venue had a live mid
            ["momentum breakout on Bybit", "(60 x 1 s range)\nConfidence"],
        ),
        (
            arbitrage(0.5, direction="buy_bybit_sell_binance"),
            ["Buy Bybit", "sell Binance", "STRONG"],
        ),
        (
            other(SignalType.VOLUME_SPIKE, exchange="okx"),
            ["BTCUSDT volume spike on OKX · ▲ WEAK"],
        ),
    ],
)
def test_every_signal_type_renders(signal: Signal, fragments: list[str]) -> None:
    text = format_alert(signal, T0 + 500)
    plain = plain_text(text)
    for fragment in fragments:
        assert fragment in plain
    assert plain.endswith("500 ms ago")
    assert len(render_telegram(text)) < TELEGRAM_LIMIT
    assert len(render_discord(text)) < DISCORD_LIMIT


def test_an_okx_arbitrage_alert_names_okx() -> None:
    signal = arbitrage(0.25, direction="buy_okx_sell_binance")
    assert plain_text(format_alert(signal, T0 + 1_200)).splitlines() == [
        "💱 BTCUSDT arbitrage · ▲▲ MODERATE",
        "Buy OKX at 64,123.5 → sell Binance at 64,351.1",
        "Net 0.250 % after fees (gross 0.355 %)",
        "Max volume 0.5 BTC (≈ 32,062 USDT) · expected profit 12.50 USDT",
        "Confidence 88 % · 1.2 s ago",
    ]


def test_a_funding_alert_lists_every_venues_rate_and_names_the_highest_and_lowest() -> None:
    signal = funding({"binance": 0.01, "bybit": 0.03, "okx": 0.0625}, SignalStrength.MODERATE)
    assert plain_text(format_alert(signal, T0 + 500)).splitlines() == [
        "💸 BTCUSDT funding rate divergence · ▲▲ MODERATE",
        "Funding per 8 h: OKX 0.0625 % · Bybit 0.0300 % · Binance 0.0100 %",
        "Highest OKX, lowest Binance: 0.0525 points apart",
        "Idea: short OKX, long Binance",
        "Next funding: OKX 08:06 UTC · Bybit 08:06 UTC · Binance 08:06 UTC",
        "Confidence 70 % · 500 ms ago",
    ]


@pytest.mark.parametrize("kind", list(SignalType))
def test_alerts_survive_missing_details(kind: SignalType) -> None:
    signal = other(kind) if kind is not SignalType.ARBITRAGE else arbitrage()
    bare = Signal(kind, "XUSDT", SignalStrength.WEAK, 0.5, T0, T0 + 1, "k", {})
    assert "XUSDT" in plain_text(format_alert(bare, T0))
    assert plain_text(format_alert(signal, T0))


def test_alert_buttons_are_commands_that_fit() -> None:
    ((symbol_mute, all_mute),) = alert_buttons(arbitrage(symbol="1000PEPEUSDT"))
    assert symbol_mute.data == "/mute 1000PEPEUSDT 1h"
    assert all_mute.data == "/mute 1h"
