"""ARBITRAGE signals: strength tiers, dedup (upgrade / regrowth), expiry, confidence."""

from __future__ import annotations

import pytest

from detector.aggregator import RealtimeSignalAggregator
from detector.analyzer import CrossExchangeAnalyzer, OpportunityEventKind
from detector.book import SyncedBook
from detector.models import Exchange
from detector.signals.arbitrage import ArbitrageDetector, arbitrage_strength
from detector.signals.signal import Signal, SignalStrength, SignalType
from tests.detector.signals.helpers import book, config, diff, event

OPENED, UPDATED, CLOSED = (
    OpportunityEventKind.OPENED,
    OpportunityEventKind.UPDATED,
    OpportunityEventKind.CLOSED,
)
WEAK, MODERATE, STRONG = SignalStrength.WEAK, SignalStrength.MODERATE, SignalStrength.STRONG
KEY = "arbitrage:BTCUSDT:buy_binance_sell_bybit:0"


def books(now: int = 1000) -> tuple[SyncedBook, SyncedBook]:
    return (
        book(Exchange.BINANCE, [(99.0, 5.0)], [(100.0, 2.0)], now),
        book(Exchange.BYBIT, [(99.0, 5.0)], [(100.0, 2.0)], now),
    )


@pytest.mark.parametrize(
    ("min_profit", "net", "strength"),
    [
        (0.1, 0.1, WEAK),
        (0.1, 0.199, WEAK),
        (0.1, 0.2, MODERATE),  # 2 x min_profit_pct
        (0.1, 0.399, MODERATE),
        (0.1, 0.4, STRONG),  # 4 x min_profit_pct
        (0.05, 0.1, MODERATE),
        (0.05, 0.2, STRONG),
        (0.0, 0.01, WEAK),  # threshold 0: the multiples apply to 0.1 %
        (0.0, 0.2, MODERATE),
        (0.0, 0.4, STRONG),
    ],
)
def test_strength_tiers(min_profit: float, net: float, strength: SignalStrength) -> None:
    assert arbitrage_strength(net, config(min_profit_pct=min_profit)) is strength


def test_dedup_signals_on_open_upgrade_and_regrowth_only() -> None:
    detector = ArbitrageDetector(config())
    binance, bybit = books(0)
    script = [
        (OPENED, 0.15, ("new", WEAK)),
        (UPDATED, 0.18, None),  # grew 0.03 < 0.05 points, same tier
        (UPDATED, 0.20, ("upgrade", MODERATE)),  # 0.20 is 2 x 0.1 (and grew 0.05)
        (UPDATED, 0.24, None),  # 0.04 over the last signalled 0.20
        (UPDATED, 0.25, ("regrowth", MODERATE)),  # 0.05 over 0.20
        (UPDATED, 0.19, None),  # fell back a tier: no signal
        (UPDATED, 0.41, ("upgrade", STRONG)),
        (CLOSED, 0.41, None),
    ]
    for i, (kind, net, expected) in enumerate(script):
        signals = detector.on_events([event(kind, net, ts=i * 100)], (binance, bybit), i * 100)
        got = [(s.details["reason"], s.strength) for s in signals]
        assert got == ([expected] if expected else []), (i, net)
        assert all(s.key == KEY for s in signals)
    assert detector.suppressed == 3
    assert detector.tracking == 0


def test_upgrade_reason_when_tier_rises_without_regrowth() -> None:
    detector = ArbitrageDetector(config())
    binance, bybit = books()
    detector.on_events([event(OPENED, 0.19, 0)], (binance, bybit), 0)
    [signal] = detector.on_events([event(UPDATED, 0.21, 100)], (binance, bybit), 100)
    assert (signal.details["reason"], signal.strength) == ("upgrade", MODERATE)


def test_updated_for_an_unknown_opportunity_signals_once() -> None:
    detector = ArbitrageDetector(config())
    binance, bybit = books()
    assert len(detector.on_events([event(UPDATED, 0.15, 0)], (binance, bybit), 0)) == 1
    assert detector.on_events([event(UPDATED, 0.16, 10)], (binance, bybit), 10) == []


@pytest.mark.parametrize(
    ("reopen_ms", "net", "expected"),
    [
        (5_000, 0.16, None),  # 5 s after the last signal, no better: a flicker
        (5_000, 0.20, ("regrowth", WEAK)),  # 0.05 points over the last signal
        (5_000, 0.45, ("upgrade", STRONG)),
        (30_000, 0.16, ("new", WEAK)),  # arb_reopen_quiet_s (30 s) has passed
    ],
)
def test_reopen_flicker_guard(
    reopen_ms: int, net: float, expected: tuple[str, SignalStrength] | None
) -> None:
    detector = ArbitrageDetector(config(min_profit_pct=0.1, arb_moderate_multiple=2.5))
    binance, bybit = books(0)
    detector.on_events([event(OPENED, 0.15, 0)], (binance, bybit), 0)
    detector.on_events([event(CLOSED, 0.15, 1000)], (binance, bybit), 1000)
    reopened = event(OPENED, net, reopen_ms, opened_ms=reopen_ms)
    signals = detector.on_events([reopened], (binance, bybit), reopen_ms)
    assert [(s.details["reason"], s.strength) for s in signals] == ([expected] if expected else [])
    # Either way, later updates of the re-opened opportunity compare with the last signal.
    later = event(UPDATED, net + 0.01, reopen_ms + 100, opened_ms=reopen_ms)
    assert detector.on_events([later], (binance, bybit), reopen_ms + 100) == []


def test_reopen_guard_can_be_disabled() -> None:
    detector = ArbitrageDetector(config(arb_reopen_quiet_s=0.0))
    binance, bybit = books(0)
    detector.on_events([event(OPENED, 0.15, 0)], (binance, bybit), 0)
    detector.on_events([event(CLOSED, 0.15, 100)], (binance, bybit), 100)
    assert len(detector.on_events([event(OPENED, 0.15, 200, 200)], (binance, bybit), 200)) == 1


def test_details_expiry_and_confidence() -> None:
    binance = book(Exchange.BINANCE, [(99.0, 5.0)], [(100.0, 2.0)], recv_ms=1000, event_ms=990)
    bybit = book(Exchange.BYBIT, [(99.0, 5.0)], [(100.0, 2.0)], recv_ms=1000, event_ms=900)
    detector = ArbitrageDetector(config())
    [signal] = detector.on_events(
        [event(OPENED, 0.3, 2000, max_volume=50.0)], (binance, bybit), 2000
    )
    # age 1000 of 5000 -> 0.8; notional 5000 of 10 000 -> 0.5; skew |10 - 100| = 90 of 2000 ms
    # -> 1 - 0.8 x 0.045 = 0.964.
    assert signal.confidence == pytest.approx(0.8 * 0.5 * 0.964)
    assert signal.details["confidence_factors"] == {"age": 0.8, "depth": 0.5, "skew": 0.964}
    assert (signal.timestamp, signal.expires_at) == (2000, 32_000)
    assert signal.details["opportunity_id"] == "BTCUSDT:buy_binance_sell_bybit:0"
    assert signal.details["net_profit_percentage"] == 0.3
    assert signal.details["direction"] == "buy_binance_sell_bybit"
    d = signal.to_dict()
    assert (d["type"], d["strength"], d["key"]) == ("arbitrage", "moderate", KEY)


@pytest.mark.parametrize(
    ("notional_volume", "age_now", "depth", "age"),
    [
        (1.0, 1000, 0.3, 1.0),  # 100 USD of 10 000: floored at 0.3
        (200.0, 6000, 1.0, 0.0),  # 20 000 USD: capped at 1; age 5000: 0
    ],
)
def test_confidence_bounds(notional_volume: float, age_now: int, depth: float, age: float) -> None:
    binance, bybit = books(1000)
    detector = ArbitrageDetector(config())
    ev = event(OPENED, 0.3, age_now, max_volume=notional_volume)
    [signal] = detector.on_events([ev], (binance, bybit), age_now)
    assert signal.details["confidence_factors"]["depth"] == depth
    assert signal.details["confidence_factors"]["age"] == age


def test_close_retires_the_active_signal_and_ttl_expires_it() -> None:
    aggregator = RealtimeSignalAggregator(config())
    binance, bybit = books()
    seen: list[Signal] = []
    aggregator.add_callback(seen.append)
    aggregator.on_opportunities([event(OPENED, 0.15, 1000)], (binance, bybit), 1000)
    assert [s.key for s in aggregator.active_signals(1000)] == [KEY]
    assert aggregator.active_signals(30_999) != []
    assert aggregator.active_signals(31_000) == []  # timestamp + arb_ttl_s
    aggregator.on_opportunities(
        [event(OPENED, 0.15, 40_000, opened_ms=40_000)], (binance, bybit), 40_000
    )
    assert len(aggregator.active_signals(40_000)) == 1
    closed = aggregator.on_opportunities(
        [event(CLOSED, 0.15, 41_000, opened_ms=40_000)], (binance, bybit), 41_000
    )
    assert closed == []
    assert aggregator.active_signals(41_000) == []
    assert [s.type for s in seen] == [SignalType.ARBITRAGE, SignalType.ARBITRAGE]


def test_end_to_end_no_signal_from_unsynced_or_stale_books() -> None:
    cfg = config()
    analyzer = CrossExchangeAnalyzer(cfg)
    aggregator = RealtimeSignalAggregator(cfg)
    binance = book(Exchange.BINANCE, [(99.0, 5.0)], [(100.0, 2.0)], 1000)
    bybit = book(Exchange.BYBIT, [(100.5, 3.0)], [(101.0, 1.0)], 1000)
    diff(bybit, [(100.6, 3.0)], [], 1100, jump=3)  # gap before the first evaluation
    signals = aggregator.on_opportunities(
        analyzer.update("BTCUSDT", (binance, bybit), 1100), (binance, bybit), 1100
    )
    assert signals == []

    bybit = book(Exchange.BYBIT, [(100.5, 3.0)], [(101.0, 1.0)], 1000)
    stale_now = 1000 + cfg.stale_after_ms + 1
    events = analyzer.update("BTCUSDT", (binance, bybit), stale_now)
    assert events == [] and aggregator.on_opportunities(events, (binance, bybit), stale_now) == []

    events = analyzer.update("BTCUSDT", (binance, bybit), 2000)
    [signal] = aggregator.on_opportunities(events, (binance, bybit), 2000)
    assert signal.strength is MODERATE  # net 0.3945 % is 3.9 x 0.1 %
    assert signal.key == "arbitrage:BTCUSDT:buy_binance_sell_bybit:2000"
