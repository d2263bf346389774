"""The console: each signal type's lines (golden text), the close line, and health that tells."""
# ruff: noqa: RUF001 (the golden text has the multiplication sign the console prints)

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, timedelta, timezone
from typing import Any

import orjson
import pytest

from bot.console import (
    HEADLINE_LIMIT,
    HealthWatch,
    feed_hosts,
    format_closed,
    format_health,
    format_signal,
    format_time,
    health_changes,
    signal_printer,
)
from detector.analyzer import CloseReason
from detector.config import FeedUrls
from detector.engine import BookHealth, ExchangeHealth, Health
from detector.feeds import FeedHealth
from detector.models import Exchange
from detector.signals import Signal, SignalStrength, SignalType
from tests.bot.factories import T0, arbitrage, closed, funding, momentum, other

CET = timezone(timedelta(hours=1), "CET")
BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT


def with_details(signal: Signal, confidence: float | None = None, **changes: Any) -> Signal:
    details = {**signal.details, **changes}
    return replace(signal, details=details, confidence=confidence or signal.confidence)


# -- signals --------------------------------------------------------------------------------

GOLDEN = [
    (
        arbitrage(),
        "07:06:40.000 UTC  WEAK     BTCUSDT arbitrage new · net 0.150 % · buy Binance 64,123.5"
        " → sell Bybit 64,287.0\n"
        "    up to 0.5 BTC (≈ 32,062 USDT) · expected profit 12.50 USDT · gross 0.255 %"
        " · confidence 0.88",
    ),
    (
        with_details(arbitrage(0.3, reason="regrowth"), peak_net_profit_percentage=0.34),
        "07:06:40.000 UTC  MODERATE BTCUSDT arbitrage grown · net 0.300 % · buy Binance 64,123.5"
        " → sell Bybit 64,383.2\n"
        "    up to 0.5 BTC (≈ 32,062 USDT) · expected profit 12.50 USDT · gross 0.405 %"
        " · peak net 0.340 % · confidence 0.88",
    ),
    (
        arbitrage(0.45, reason="upgrade", direction="buy_bybit_sell_binance"),
        "07:06:40.000 UTC  STRONG   BTCUSDT arbitrage upgrade · net 0.450 % · buy Bybit 64,123.5"
        " → sell Binance 64,479.4\n"
        "    up to 0.5 BTC (≈ 32,062 USDT) · expected profit 12.50 USDT · gross 0.555 %"
        " · confidence 0.88",
    ),
    (
        other(SignalType.SPREAD_ANOMALY, SignalStrength.STRONG, symbol="ETHUSDT"),
        "07:06:40.000 UTC  STRONG   ETHUSDT spread anomaly on Bybit new · 12.4 bps,"
        " usually 3.1 ± 1.2 (z 7.8)",
    ),
    (
        other(SignalType.VOLUME_SPIKE, SignalStrength.MODERATE, symbol="SOLUSDT"),
        "07:06:40.000 UTC  MODERATE SOLUSDT volume spike on Binance upgrade · 1,234,567 USDT"
        " in 5 s, 16.2× the usual 76,200",
    ),
    (
        other(SignalType.FUNDING_RATE_DIVERGENCE, symbol="ETHUSDT"),
        "07:06:40.000 UTC  WEAK     ETHUSDT funding rate divergence new · Bybit 0.0450 %"
        " vs Binance 0.0100 % per 8 h",
    ),
    (
        with_details(other(SignalType.FUNDING_RATE_DIVERGENCE), reason="sign_flip"),
        "07:06:40.000 UTC  WEAK     BTCUSDT funding rate divergence flipped · Bybit 0.0450 %"
        " vs Binance 0.0100 % per 8 h",
    ),
    (
        other(SignalType.MOMENTUM_BREAKOUT),
        "07:06:40.000 UTC  WEAK     BTCUSDT momentum breakout on Binance new · mid 64,500,"
        " 0.42 % above the 1 min high",
    ),
    (
        with_details(
            other(SignalType.MOMENTUM_BREAKOUT),
            direction="down",
            mid=63_700.0,
            reference=63_900.0,
            break_pct=0.313,
            window_bars=10,
            bar_s=0.5,
        ),
        "07:06:40.000 UTC  WEAK     BTCUSDT momentum breakout on Binance new · mid 63,700,"
        " 0.31 % below the 5 s low",
    ),
]


@pytest.mark.parametrize(("signal", "text"), GOLDEN, ids=[s.type.value for s, _ in GOLDEN])
def test_each_signal_type_reads_as_its_golden_text(signal: Signal, text: str) -> None:
    assert format_signal(signal, tz=UTC) == text


WIDE = {
    SignalType.SPREAD_ANOMALY: "    bid 3,120.55 · ask 3,124.42 · baseline of 120 samples"
    " · confidence 0.70 (thin top of book)",
    SignalType.VOLUME_SPIKE: "    buys 800,000 · sells 434,567 USDT · 312 trades · last 143.215"
    " · confidence 0.70",
    SignalType.FUNDING_RATE_DIVERGENCE: "    idea: short Bybit, long Binance · confidence 0.70",
    SignalType.MOMENTUM_BREAKOUT: "    breakout level 64,230 · prior range 63,900 to 64,230"
    " (60 × 1 s bars) · Bybit mid 64,480 · confidence 0.70",
}


@pytest.mark.parametrize("kind", list(WIDE))
def test_wide_adds_the_details_line(kind: SignalType) -> None:
    signal = other(kind)
    headline = format_signal(signal, tz=UTC)
    assert format_signal(signal, tz=UTC, wide=True) == f"{headline}\n{WIDE[kind]}"


def test_a_doubtful_signal_says_why_without_wide() -> None:
    signal = with_details(
        other(SignalType.MOMENTUM_BREAKOUT),
        confidence=0.3,
        other_exchange_mid=None,
        confidence_factors={"age": 0.95, "depth": 0.5, "confirmation": 0.6},
    )
    details = format_signal(signal, tz=UTC).splitlines()[1]
    assert details == (
        "    breakout level 64,230 · prior range 63,900 to 64,230 (60 × 1 s bars)"
        " · no live Bybit mid · confidence 0.30 (thin top of book,"
        " not confirmed on another venue)"
    )


def test_funding_on_another_interval_than_8_h_says_so() -> None:
    signal = with_details(other(SignalType.FUNDING_RATE_DIVERGENCE), binance_interval_hours=4)
    assert format_signal(signal, tz=UTC, wide=True).endswith(
        "idea: short Bybit, long Binance · Binance funds every 4 h · confidence 0.70"
    )


# Signals of the N-venue detector: OKX legs, three funding rates, the other venues' mids.
GOLDEN_VENUES = [
    (
        arbitrage(0.25, direction="buy_okx_sell_binance"),
        "07:06:40.000 UTC  MODERATE BTCUSDT arbitrage new · net 0.250 % · buy OKX 64,123.5"
        " → sell Binance 64,351.1\n"
        "    up to 0.5 BTC (≈ 32,062 USDT) · expected profit 12.50 USDT · gross 0.355 %"
        " · confidence 0.88",
    ),
    (
        funding({"binance": 0.01, "bybit": 0.03, "okx": 0.06}, interval_hours={"okx": 4}),
        "07:06:40.000 UTC  WEAK     BTCUSDT funding rate divergence new · OKX 0.0600 %"
        " vs Binance 0.0100 % per 8 h\n"
        "    idea: short OKX, long Binance · Bybit 0.0300 % per 8 h · OKX funds every 4 h"
        " · confidence 0.70",
    ),
    (
        momentum("okx", {"binance": 64_480.0, "bybit": 64_495.5}),
        "07:06:40.000 UTC  WEAK     BTCUSDT momentum breakout on OKX new · mid 64,500.0,"
        " 0.42 % above the 1 min high\n"
        "    breakout level 64,230.0 · prior range 63,900.0 to 64,230.0 (60 × 1 s bars)"
        " · Binance mid 64,480.0 · Bybit mid 64,495.5 · confidence 0.70",
    ),
    (
        momentum("bybit", {}),
        "07:06:40.000 UTC  WEAK     BTCUSDT momentum breakout on Bybit new · mid 64,500,"
        " 0.42 % above the 1 min high\n"
        "    breakout level 64,230 · prior range 63,900 to 64,230 (60 × 1 s bars)"
        " · no live mid on another venue · confidence 0.70",
    ),
]


@pytest.mark.parametrize(
    ("signal", "text"), GOLDEN_VENUES, ids=[s.type.value for s, _ in GOLDEN_VENUES]
)
def test_signals_of_every_venue_read_as_their_golden_text(signal: Signal, text: str) -> None:
    assert format_signal(signal, tz=UTC, wide=True) == text


def every_variant() -> Iterator[Signal]:
    """Each type, strength and event, on a long symbol and wide prices."""
    for symbol in ("BTCUSDT", "1000PEPEUSDT"):
        for strength in SignalStrength:
            for reason in ("new", "upgrade", "regrowth", "sign_flip"):
                yield arbitrage(0.45, symbol=symbol, strength=strength, reason=reason)
                for kind in WIDE:
                    yield with_details(other(kind, strength, symbol=symbol), reason=reason)
    for signal, _ in GOLDEN_VENUES:
        yield replace(signal, symbol="1000PEPEUSDT")


@pytest.mark.parametrize("wide", [False, True])
def test_every_headline_fits_in_120_characters(wide: bool) -> None:
    for signal in every_variant():
        headline = format_signal(signal, tz=CET, wide=wide).splitlines()[0]
        assert len(headline) <= HEADLINE_LIMIT, headline
        # Figures are rounded: no epoch milliseconds, no long float tails.
        assert str(T0) not in headline and "0000000" not in headline, headline


def test_times_are_local_with_the_zone_named() -> None:
    signal = arbitrage(timestamp=T0 + 129)
    assert format_signal(signal, tz=CET).startswith("08:06:40.129 CET  WEAK     BTCUSDT ")
    assert format_signal(signal, tz=UTC).startswith("07:06:40.129 UTC  ")
    assert format_time(T0, CET, millis=False) == "08:06:40 CET"


@pytest.fixture
def eastern(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone set to a POSIX rule (no tz database needed), then restored."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("eastern")
def test_without_a_zone_the_local_one_is_used() -> None:
    assert format_time(T0 + 5) == "02:06:40.005 EST"


def test_a_closed_opportunity_says_how_long_how_high_and_why() -> None:
    tracked = closed(arbitrage(), duration_ms=4_200, peak_net=0.31)
    assert format_closed(tracked, SignalStrength.MODERATE, tz=UTC) == (
        "07:06:44.200 UTC  MODERATE BTCUSDT arbitrage closed after 4.2 s · peak net 0.310 %"
        " · below the threshold"
    )
    stale = replace(tracked, close_reason=CloseReason.STALE)
    assert format_closed(stale, SignalStrength.WEAK, tz=CET).endswith(
        "08:06:44.200 CET  WEAK     BTCUSDT arbitrage closed after 4.2 s · peak net 0.310 %"
        " · a book went stale"
    )


def test_the_printer_tells_the_close_of_what_it_announced_only() -> None:
    out = io.StringIO()
    printer = signal_printer(False, out, tz=UTC)
    announced = arbitrage(opened_ms=T0)
    printer(announced)
    printer.closed(closed(arbitrage(opened_ms=T0 - 60_000)))  # never printed: no line
    printer.closed(replace(closed(announced), close_reason=CloseReason.UNSYNCED))
    printer.closed(closed(announced))  # told once
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("07:06:40.000 UTC  WEAK     BTCUSDT arbitrage new · net 0.150 %")
    assert lines[2] == (
        "07:06:44.200 UTC  WEAK     BTCUSDT arbitrage closed after 4.2 s · peak net 0.150 %"
        " · a book lost sync"
    )


def test_json_output_is_the_signal_dict_and_nothing_else() -> None:
    out = io.StringIO()
    printer = signal_printer(True, out, wide=True, tz=CET)
    signals = [arbitrage(), other(SignalType.VOLUME_SPIKE)]
    for signal in signals:
        printer(signal)
    printer.closed(closed(signals[0]))
    expected = b"".join(orjson.dumps(s.to_dict()) + b"\n" for s in signals)
    assert out.getvalue().encode() == expected


# -- health ---------------------------------------------------------------------------------


def feed(exchange: Exchange, **changes: Any) -> ExchangeHealth:
    values: dict[str, Any] = {
        "exchange": exchange,
        "connected": True,
        "connects": 1,
        "reconnects": 0,
        "last_message_ms": T0,
        "repairs": 0,
        "rest_errors": 0,
        "last_error": None,
    }
    frame_errors = changes.pop("frame_errors", 0)
    values.update(changes)
    return ExchangeHealth(
        feed=FeedHealth(**values),
        frames=1000,
        frames_per_s=412.4 if exchange is BINANCE else 380.0,
        last_frame_age_ms=40,
        gaps=0,
        resyncs=0,
        frame_errors=frame_errors,
    )


def book(exchange: Exchange, symbol: str, **changes: Any) -> BookHealth:
    values: dict[str, Any] = {
        "state": "synced",
        "healthy": True,
        "age_ms": 80,
        "gaps": 0,
        "resyncs": 0,
        "stale": 0,
    }
    values.update(changes)
    return BookHealth(exchange=exchange, symbol=symbol, **values)


SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def health(
    books: dict[tuple[Exchange, str], dict[str, Any]] | None = None,
    now_ms: int = T0,
    **feeds: dict[str, Any],
) -> Health:
    """A snapshot: both feeds up and six live books, but for the changes given."""
    books = books or {}
    return Health(
        now_ms=now_ms,
        exchanges={ex: feed(ex, **feeds.get(ex.value, {})) for ex in (BINANCE, BYBIT)},
        books=[
            book(ex, symbol, **books.get((ex, symbol), {}))
            for symbol in SYMBOLS
            for ex in (BINANCE, BYBIT)
        ],
        latency_p50_ms=1.0,
        latency_p99_ms=3.2,
        signals=4,
        internal_errors=0,
        symbol_problems=[],
    )


FIRST = {"connected": False, "connects": 0, "last_message_ms": None}
DNS = "connect failed: gaierror(-3, 'Temporary failure in name resolution')"
DROPPED = "connection closed: no close frame received or sent"
STALE = {"healthy": False, "age_ms": 6_200, "stale": 1}
NOW = "07:06:40 UTC  "

CHANGES = [
    ("steady", health(), health(), []),
    (
        "feed down, with its error",
        health(),
        health(bybit={"connected": False, "last_error": DROPPED}),
        [f"{NOW}bybit: feed down — {DROPPED}"],
    ),
    (
        "feed up again",
        health(bybit={"connected": False, "last_error": DROPPED}),
        health(bybit={"connects": 2, "reconnects": 1}),
        [f"{NOW}bybit: feed up again"],
    ),
    (
        "reconnected between two looks",
        health(),
        health(binance={"connects": 2, "reconnects": 1}),
        [f"{NOW}binance: feed reconnected"],
    ),
    (
        "no network",
        health(binance=FIRST),
        health(binance={**FIRST, "last_error": DNS}),
        [
            f"{NOW}binance: no network (cannot reach fstream.binance.com) — check the connection,"
            " or try `arbwatch demo`"
        ],
    ),
    (
        "no network is said once",
        health(binance={**FIRST, "last_error": DNS}),
        health(binance={**FIRST, "last_error": DNS.replace("-3", "-2")}),
        [],
    ),
    (
        "another failure to connect",
        health(bybit=FIRST),
        health(bybit={**FIRST, "last_error": "connect failed: InvalidStatus(403)"}),
        [f"{NOW}bybit: cannot connect to stream.bybit.com — connect failed: InvalidStatus(403)"],
    ),
    (
        "connected after failing",
        health(binance={**FIRST, "last_error": DNS}),
        health(),
        [f"{NOW}binance: connected"],
    ),
    ("a first connection is no news", health(binance=FIRST), health(), []),
    (
        "gap",
        health(),
        health({(BINANCE, "ETHUSDT"): {"state": "awaiting_snapshot", "healthy": False, "gaps": 1}}),
        [f"{NOW}binance ETHUSDT: book broke (sequence gap), resyncing"],
    ),
    (
        "resync",
        health({(BINANCE, "ETHUSDT"): {"state": "awaiting_snapshot", "healthy": False, "gaps": 1}}),
        health({(BINANCE, "ETHUSDT"): {"gaps": 1, "resyncs": 1}}),
        [f"{NOW}binance ETHUSDT: book resynced"],
    ),
    (
        "gap and resync between two looks",
        health(),
        health({(BYBIT, "BTCUSDT"): {"gaps": 1, "resyncs": 1}}),
        [f"{NOW}bybit BTCUSDT: book resynced after a sequence gap"],
    ),
    (
        "books stale, grouped by exchange",
        health(),
        health({(BYBIT, s): {**STALE, "age_ms": 5_100 + i} for i, s in enumerate(SYMBOLS)}),
        [f"{NOW}bybit BTCUSDT, ETHUSDT, SOLUSDT: books stale (no update for 5.1 s)"],
    ),
    (
        "fresh again",
        health({(BYBIT, "SOLUSDT"): STALE}),
        health({(BYBIT, "SOLUSDT"): {"stale": 1}}),
        [f"{NOW}bybit SOLUSDT: book fresh again"],
    ),
    (
        "a stall shorter than the look",
        health(),
        health({(BYBIT, "SOLUSDT"): {"stale": 1}}),
        [f"{NOW}bybit SOLUSDT: book went stale and came back"],
    ),
    (
        "out of sync",
        health(),
        health({(BINANCE, "BTCUSDT"): {"state": "awaiting_snapshot", "healthy": False}}),
        [f"{NOW}binance BTCUSDT: book out of sync, resyncing"],
    ),
    (
        "crossed",
        health(),
        health({(BINANCE, "BTCUSDT"): {"healthy": False}}),
        [f"{NOW}binance BTCUSDT: book crossed (best bid at or above best ask)"],
    ),
    (
        "bad frames",
        health(),
        health(bybit={"frame_errors": 2}),
        [f"{NOW}bybit: 2 bad frames skipped (see the log)"],
    ),
    (
        "feed down and its books stale, feeds first",
        health(),
        health(
            {(BINANCE, "BTCUSDT"): STALE},
            binance={"connected": False, "last_error": DROPPED},
        ),
        [
            f"{NOW}binance: feed down — {DROPPED}",
            f"{NOW}binance BTCUSDT: book stale (no update for 6.2 s)",
        ],
    ),
]


@pytest.mark.parametrize(
    ("previous", "current", "lines"),
    [case[1:] for case in CHANGES],
    ids=[case[0] for case in CHANGES],
)
def test_each_change_of_health_is_one_line(
    previous: Health, current: Health, lines: list[str]
) -> None:
    hosts = feed_hosts(FeedUrls())
    assert health_changes(previous, current, tz=UTC, hosts=hosts) == lines


def test_the_start_tells_only_of_trouble() -> None:
    hosts = feed_hosts(FeedUrls())
    assert health_changes(None, health(binance=FIRST, bybit=FIRST), tz=UTC, hosts=hosts) == []
    assert health_changes(None, health(binance={**FIRST, "last_error": DNS}), tz=UTC) == [
        f"{NOW}binance: no network ({DNS}) — check the connection, or try `arbwatch demo`"
    ]


def test_the_watch_says_no_network_once_over_many_looks() -> None:
    watch = HealthWatch(tz=CET, hosts=feed_hosts(FeedUrls()))
    offline = {**FIRST, "last_error": DNS}
    waiting = {"state": "awaiting_snapshot", "healthy": False, "age_ms": None}
    books = {(ex, symbol): waiting for ex in (BINANCE, BYBIT) for symbol in SYMBOLS}
    said = [
        watch.update(health(books, now_ms=T0 + i * 1000, binance=offline, bybit=offline))
        for i in range(30)
    ]
    assert said[0] == [
        "08:06:40 CET  binance: no network (cannot reach fstream.binance.com) — check the"
        " connection, or try `arbwatch demo`",
        "08:06:40 CET  bybit: no network (cannot reach stream.bybit.com) — check the"
        " connection, or try `arbwatch demo`",
    ]
    assert all(lines == [] for lines in said[1:])
    assert format_health(watch.previous or health(), tz=CET) == (
        "health 08:07:09 CET · binance no network · bybit no network · books 0/6 · p99 3 ms"
        " · 4 signals"
    )


def test_the_periodic_line_is_short() -> None:
    text = format_health(health(), tz=CET)
    assert text == (
        "health 08:06:40 CET · binance up 412 f/s · bybit up 380 f/s · books 6/6 · p99 3 ms"
        " · 4 signals"
    )
    troubled = replace(
        health({(BYBIT, "BTCUSDT"): STALE}, bybit={"connected": False}),
        internal_errors=1,
    )
    assert format_health(troubled, tz=UTC) == (
        "health 07:06:40 UTC · binance up 412 f/s · bybit DOWN · books 5/6 · p99 3 ms"
        " · 4 signals · 1 internal error"
    )
    # The whole market: counts, never lists; quarantined books (two coins, one name) apart.
    collided = replace(health(), quarantined=["binance XUSDT", "bybit XUSDT"])
    assert " · books 6/6 · quarantined 2 · p99 3 ms" in format_health(collided, tz=UTC)
