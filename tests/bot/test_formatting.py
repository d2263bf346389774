"""Rendering to Telegram HTML and Discord markdown, splitting, and the text of every alert."""

from __future__ import annotations

import random
import re

import pytest

from bot.errors import InvalidButton
from bot.messages import (
    CALLBACK_DATA_LIMIT,
    DISCORD_LIMIT,
    TELEGRAM_LIMIT,
    Button,
    Line,
    alert_buttons,
    bold,
    code,
    discord_messages,
    format_alert,
    format_duration,
    format_prices,
    italic,
    line,
    plain_text,
    render_chunks,
    render_discord,
    render_line_telegram,
    render_telegram,
    split_message,
    telegram_messages,
    text_length,
)
from detector.signals import Signal, SignalStrength, SignalType
from tests.bot.factories import T0, arbitrage, other

HOSTILE = "<script>alert('x')</script> & *bold* _it_ [a](http://x) ~s~ `c` |sp| @everyone <@1> #h"
_TAG = re.compile(r"</?([a-z]+)[^>]*>")


def test_telegram_escapes_everything_and_uses_only_its_own_tags() -> None:
    text = (line(HOSTILE, bold(HOSTILE)), line(italic(HOSTILE), code(HOSTILE)))
    html = render_telegram(text)
    assert "<script>" not in html
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; *bold*" in html
    assert set(_TAG.findall(html)) == {"b", "i", "code"}
    assert html.count("<b>") == html.count("</b>") == 1
    # Unescaping gives back exactly the text.
    stripped = _TAG.sub("", html).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert stripped == plain_text(text)


@pytest.mark.parametrize(
    ("raw", "rendered"),
    [
        ("*_[]", r"\*\_\[\]"),
        ("a*b_c~d`e|f", r"a\*b\_c\~d\`e\|f"),
        ("> quote", r"\> quote"),
        ("# head", r"\# head"),
        ("- item", r"\- item"),
        ("12. item", r"12\. item"),
        ("@everyone hi", "@\u200beveryone hi"),
        ("<@123>", "\\<@\u200b123\\>"),
        (r"back\slash", r"back\\slash"),
        ("0.15 % (net)", "0.15 % (net)"),
    ],
)
def test_discord_escapes_markdown_and_mentions(raw: str, rendered: str) -> None:
    assert render_discord((line(raw),)) == rendered


def test_discord_styles_and_code_spans_cannot_be_broken_out_of() -> None:
    rendered = render_discord((line(bold("a*b"), " ", italic("x_y"), " ", code("x`y @here")),))
    assert rendered == "**a\\*b** _x\\_y_ `x\u02cby @\u200bhere`"


def test_buttons_respect_the_callback_data_limit() -> None:
    assert Button("ok", "x" * CALLBACK_DATA_LIMIT).data
    with pytest.raises(InvalidButton) as info:
        Button("too long", "é" * 33)  # 66 bytes
    assert info.value.limit == 64


# -- splitting -------------------------------------------------------------------------------------


def test_split_message_keeps_whole_lines_within_the_limit() -> None:
    rng = random.Random(7)
    lines = ["x" * rng.randint(0, 120) for _ in range(400)]
    text = "\n".join(lines)
    for limit in (TELEGRAM_LIMIT, DISCORD_LIMIT, 500):
        chunks = split_message(text, limit)
        assert all(text_length(chunk) <= limit for chunk in chunks)
        assert "\n".join(chunks) == text  # lines kept whole and in order
        assert len(chunks) == len(split_message(text, limit))
    assert split_message("short", 100) == ["short"]


def test_split_message_cuts_one_over_long_line_at_spaces_and_never_in_an_entity() -> None:
    words = " ".join(f"word{i}" for i in range(1000))
    chunks = split_message(words, 300)
    assert all(len(chunk) <= 300 for chunk in chunks)
    assert "".join(chunks) == words
    assert all(chunk.endswith(" ") for chunk in chunks[:-1])  # cut after a space
    entities = "&amp;" * 200  # one line, no spaces
    for chunk in split_message(entities, 103):
        assert len(chunk) <= 103
        assert chunk.count("&") == chunk.count(";")  # no entity cut in half
    emoji = "🚀" * 3000  # two UTF-16 units each
    assert all(text_length(chunk) <= 4096 for chunk in split_message(emoji, 4096))


def test_render_chunks_splits_neutral_text_so_markup_stays_balanced() -> None:
    # One line whose escaping grows it past the limit: "&" renders as "&amp;".
    text = (line("start"), line(bold("&" * 1000), " tail ", code("<" * 500)), line("end"))
    chunks = render_chunks(text, render_line_telegram, 1000)
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk) <= 1000
        assert chunk.count("<b>") == chunk.count("</b>")
        assert chunk.count("<code>") == chunk.count("</code>")
        assert chunk.count("&") == chunk.count(";")
    joined = "".join(chunks).replace("</b><b>", "").replace("</code><code>", "")
    assert joined.count("&amp;") == 1000 and joined.count("&lt;") == 500
    big: tuple[Line, ...] = tuple(line(f"line {i} ", bold("*_" * 30)) for i in range(300))
    assert all(len(chunk) <= DISCORD_LIMIT for chunk in discord_messages(big))
    assert all(len(chunk) <= TELEGRAM_LIMIT for chunk in telegram_messages(big))


# -- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        ((64123.5, 64400.0), ["64,123.5", "64,400.0"]),
        ((3120.55, 3124.4), ["3,120.55", "3,124.40"]),
        ((0.6512, 0.65), ["0.6512", "0.6500"]),
        ((0.00001234,), ["0.00001234"]),
        ((100.0,), ["100"]),
    ],
)
def test_prices_use_the_decimals_they_need(prices: tuple[float, ...], expected: list[str]) -> None:
    assert format_prices(*prices) == expected


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (850, "850 ms"),
        (4_200, "4.2 s"),
        (185_000, "3 min 5 s"),
        (7_500_000, "2 h 5 min"),
        (3_600_000, "1 h"),
        (97_200_000, "1 d 3 h"),
    ],
)
def test_durations(ms: int, text: str) -> None:
    assert format_duration(ms) == text


# -- alerts ----------------------------------------------------------------------------------------


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
            [
                "BTCUSDT funding rate divergence · ▲ WEAK",
                "Binance 0.0100 % / 8 h · Bybit 0.0450 %",
                "(difference -0.0350 points)",
                "Idea: short Bybit, long Binance",
                "Next funding: Binance 08:06 UTC · Bybit 08:06 UTC",
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
            arbitrage(0.5, direction="buy_bybit_sell_binance"),
            ["Buy Bybit", "sell Binance", "STRONG"],
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
