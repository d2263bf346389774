"""What a digest says: a line per episode, within both platforms' limits, golden text."""

from __future__ import annotations

from bot.messages import (
    DIGEST_LINES,
    TELEGRAM_LIMIT,
    format_digest,
    plain_text,
    telegram_messages,
)
from bot.platforms.discord_embeds import DESCRIPTION_LIMIT, digest_embed
from detector.signals import SignalStrength, SignalType
from tests.bot.factories import T0, arbitrage, funding, momentum, other

START = T0 - T0 % 300_000


def test_a_digest_reads_as_one_line_per_episode() -> None:
    signals = [
        arbitrage(0.21, timestamp=START + 63_000),
        other(SignalType.VOLUME_SPIKE, SignalStrength.MODERATE, timestamp=START + 130_000),
        other(SignalType.MOMENTUM_BREAKOUT, timestamp=START + 200_000),
    ]
    text = plain_text(format_digest(START, START + 300_000, signals, caught=4))
    assert text.splitlines() == [
        "🗞 Digest 07:05-07:10 UTC · 4 signals",
        "07:06:03 💱 BTCUSDT arbitrage ▲▲ · net 0.210 % · buy Binance → sell Bybit",
        "07:07:10 📊 BTCUSDT volume spike ▲▲ · Binance 16.2x the usual volume",
        "07:08:20 🚀 BTCUSDT momentum breakout ▲ · Binance 0.42 % above the prior high",
        "Alerts as they happen again: /digest off",
    ]


def test_digest_lines_name_the_venues_of_each_episode() -> None:
    signals = [
        arbitrage(0.3, timestamp=START + 1_000, direction="buy_okx_sell_bybit"),
        funding({"binance": 0.01, "bybit": 0.03, "okx": 0.06}, timestamp=START + 2_000),
        other(SignalType.FUNDING_RATE_DIVERGENCE, timestamp=START + 3_000),  # stored before OKX
        other(SignalType.SPREAD_ANOMALY, timestamp=START + 4_000, exchange="okx"),
        momentum("okx", {"binance": 64_480.0}, timestamp=START + 5_000),
    ]
    lines = plain_text(format_digest(START, START + 300_000, signals, caught=5)).splitlines()
    assert lines[1:-1] == [
        "07:05:01 💱 BTCUSDT arbitrage ▲▲ · net 0.300 % · buy OKX → sell Bybit",
        "07:05:02 💸 BTCUSDT funding rate divergence ▲ · funding 0.0500 points apart,"
        " OKX above Binance",
        "07:05:03 💸 BTCUSDT funding rate divergence ▲ · funding 0.0350 points apart,"
        " Bybit above Binance",
        "07:05:04 ↔️ BTCUSDT spread anomaly ▲ · OKX spread 12.4 bps, usually 3.1",
        "07:05:05 🚀 BTCUSDT momentum breakout ▲ · OKX 0.42 % above the prior high",
    ]


def test_a_long_digest_lists_the_first_episodes_and_counts_the_rest() -> None:
    signals = [
        arbitrage(0.2 + n / 1000, timestamp=START + n, opened_ms=START + n, symbol=f"A{n}USDT")
        for n in range(DIGEST_LINES + 7)
    ]
    digest = format_digest(START, START + 300_000, signals, caught=len(signals))
    assert "… and 7 more; /stats has the whole period" in plain_text(digest)
    (message,) = telegram_messages(digest)  # one message, never split
    assert len(message) < TELEGRAM_LIMIT
    embed = digest_embed(START, START + 300_000, signals, len(signals))
    assert embed.title.startswith("🗞 Digest") and len(embed.description) < DESCRIPTION_LIMIT
    assert "… and 7 more" in embed.description


def test_a_digest_over_midnight_names_both_dates() -> None:
    day = 86_400_000
    midnight = T0 - T0 % day + day
    title = plain_text(format_digest(midnight - 300_000, midnight, [], caught=0)).splitlines()[0]
    assert title == "🗞 Digest 2026-08-06 23:55 - 2026-08-07 00:00 UTC · 0 signals"
