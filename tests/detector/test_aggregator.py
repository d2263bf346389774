"""RealtimeSignalAggregator: callbacks, active signals, stats, schema and determinism."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from detector.aggregator import RealtimeSignalAggregator
from detector.analyzer import CrossExchangeAnalyzer, OpportunityEventKind
from detector.config import DetectorConfig, SignalRules
from detector.errors import ConfigError
from detector.models import Exchange
from detector.signals.signal import SCHEMA_VERSION, Signal, SignalType
from tests.detector.signals.helpers import book, config, diff, event, funding, mid_book, trade

BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT


def small_config() -> DetectorConfig:
    return config(
        spread_window=10,
        spread_warmup=5,
        volume_bucket_s=1.0,
        volume_history=4,
        volume_warmup=2,
        momentum_bar_s=1.0,
        momentum_window=3,
    )


def scenario(aggregator: RealtimeSignalAggregator) -> list[Signal]:
    """One signal of every type, from market data alone (analyzer included)."""
    out: list[Signal] = []
    analyzer = CrossExchangeAnalyzer(small_config())
    # Flat, tight books for 5 s: warms the spread (5 samples) and momentum (3 bars) detectors.
    for t in range(0, 5000, 1000):
        for exchange in (Exchange.BINANCE, Exchange.BYBIT):  # the default venues
            out += aggregator.on_book(exchange, "BTCUSDT", mid_book(exchange, 100.0, t), t)
    # Binance jumps to 100.5 with a wide spread: momentum up and a spread anomaly.
    wide = book(BINANCE, [(100.3, 2.0)], [(100.7, 2.0)], 5000)
    out += aggregator.on_book(BINANCE, "BTCUSDT", wide, 5000)
    # Bybit bids above Binance's ask: an arbitrage opportunity.
    cheap = book(BINANCE, [(99.0, 5.0)], [(100.0, 2.0)], 5100)
    rich = book(BYBIT, [(100.5, 3.0)], [(101.0, 1.0)], 5100)
    events = analyzer.update("BTCUSDT", (cheap, rich), 5100)
    out += aggregator.on_opportunities(events, (cheap, rich), 5100)
    # Volume: 1000 USD per 1 s bucket, then 5000 USD.
    for t in (500, 1500, 2500):
        out += aggregator.on_trade("BTCUSDT", trade(100.0, 10.0, t), t)
    out += aggregator.on_trade("BTCUSDT", trade(100.0, 40.0, 3500), 3500)
    # Funding: Binance 0.05 % vs Bybit 0.01 % per 8 h.
    out += aggregator.on_funding("BTCUSDT", funding(BYBIT, 0.0001, 6000, 8.0), 6000)
    out += aggregator.on_funding("BTCUSDT", funding(BINANCE, 0.0005, 6000), 6000)
    # The opportunity closes.
    diff(rich, [(100.5, 0.0)], [], 7000)
    events = analyzer.update("BTCUSDT", (cheap, rich), 7000)
    out += aggregator.on_opportunities(events, (cheap, rich), 7000)
    return out


def test_every_type_once_and_callbacks_in_order() -> None:
    aggregator = RealtimeSignalAggregator(small_config())
    first: list[str] = []
    second: list[str] = []
    aggregator.add_callback(lambda s: first.append(s.key))
    aggregator.add_callback(lambda s: second.append(s.key))
    signals = scenario(aggregator)
    assert [s.type for s in signals] == [
        SignalType.SPREAD_ANOMALY,
        SignalType.MOMENTUM_BREAKOUT,
        SignalType.ARBITRAGE,
        SignalType.VOLUME_SPIKE,
        SignalType.FUNDING_RATE_DIVERGENCE,
    ]
    assert first == second == [s.key for s in signals]


def test_active_signals_expire_and_close() -> None:
    aggregator = RealtimeSignalAggregator(small_config())
    scenario(aggregator)
    # The arbitrage signal left with its opportunity's close at 7000.
    active = aggregator.active_signals(7000)
    assert [s.type for s in active] == [
        SignalType.VOLUME_SPIKE,  # 3500
        SignalType.MOMENTUM_BREAKOUT,  # 5000 (ordered by timestamp, then key)
        SignalType.SPREAD_ANOMALY,  # 5000
        SignalType.FUNDING_RATE_DIVERGENCE,  # 6000
    ]
    assert [s.type for s in aggregator.active_signals(34_999)] == [
        SignalType.MOMENTUM_BREAKOUT,  # until 5000 + 60 s
        SignalType.SPREAD_ANOMALY,  # until 5000 + 30 s
        SignalType.FUNDING_RATE_DIVERGENCE,  # 6000 + 600 s
    ]
    assert [s.type for s in aggregator.active_signals(65_000)] == [
        SignalType.FUNDING_RATE_DIVERGENCE
    ]
    assert aggregator.active_signals(606_000) == []


def test_upgrade_replaces_the_active_signal_of_its_episode() -> None:
    aggregator = RealtimeSignalAggregator(config())
    binance = book(BINANCE, [(99.0, 5.0)], [(100.0, 2.0)], 0)
    bybit = book(BYBIT, [(99.0, 5.0)], [(100.0, 2.0)], 0)
    aggregator.on_opportunities([event(OpportunityEventKind.OPENED, 0.15, 0)], (binance, bybit), 0)
    aggregator.on_opportunities(
        [event(OpportunityEventKind.UPDATED, 0.5, 10)], (binance, bybit), 10
    )
    [active] = aggregator.active_signals(10)
    assert (active.timestamp, active.strength.value) == (10, "strong")


def test_stats() -> None:
    aggregator = RealtimeSignalAggregator(small_config())
    scenario(aggregator)
    binance = book(BINANCE, [(99.0, 5.0)], [(100.0, 2.0)], 0)
    bybit = book(BYBIT, [(99.0, 5.0)], [(100.0, 2.0)], 0)
    for net in (0.15, 0.16):  # opens (past the re-open quiet time), then a duplicate
        kind = OpportunityEventKind.OPENED if net == 0.15 else OpportunityEventKind.UPDATED
        aggregator.on_opportunities([event(kind, net, 40_000, 40_000)], (binance, bybit), 40_000)
    stats = aggregator.stats()
    assert stats["emitted"] == 6
    assert stats["by_type"] == {
        "arbitrage": 2,
        "spread_anomaly": 1,
        "volume_spike": 1,
        "funding_rate_divergence": 1,
        "momentum_breakout": 1,
    }
    assert sum(stats["by_strength"].values()) == 6
    assert stats["by_type_and_strength"]["arbitrage"]["moderate"] == 1  # net 0.3945 %
    assert stats["by_type_and_strength"]["arbitrage"]["weak"] == 1  # net 0.15 %
    assert stats["suppressed"]["arbitrage"] == 1
    assert stats["suppressed_total"] == 1


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    # StrEnum members are str subclasses: demand the exact builtin types.
    return value is None or type(value) in (str, int, float, bool)


def test_to_dict_schema_is_plain_json() -> None:
    for signal in scenario(RealtimeSignalAggregator(small_config())):
        d = signal.to_dict()
        assert list(d) == [
            "schema_version",
            "type",
            "symbol",
            "strength",
            "confidence",
            "timestamp",
            "expires_at",
            "key",
            "details",
        ]
        assert d["schema_version"] == SCHEMA_VERSION
        assert d["type"] == signal.type.value and d["type"].islower()
        assert d["strength"] in ("weak", "moderate", "strong")
        assert 0.0 <= d["confidence"] <= 1.0 and d["confidence"] == round(d["confidence"], 4)
        assert d["expires_at"] > d["timestamp"]
        assert d["key"].startswith(d["type"] + ":")
        assert _plain(d), d


def test_deterministic_byte_for_byte() -> None:
    runs = [
        b"\n".join(orjson.dumps(s.to_dict()) for s in scenario(RealtimeSignalAggregator(cfg)))
        for cfg in (small_config(), small_config())
    ]
    assert runs[0] == runs[1]
    assert runs[0].count(b"\n") == 4


@pytest.mark.parametrize(
    "rules",
    [
        {"spread_z": (4.0, 3.0, 10.0)},
        {"volume_ratio": (0.0, 8.0, 15.0)},
        {"spread_warmup": 200},
        {"volume_warmup": 0},
        {"momentum_window": 0},
        {"arb_moderate_multiple": 5.0},
        {"arb_moderate_multiple": 0.0},
        {"volume_bucket_s": 0.0},
    ],
)
def test_signal_rules_are_validated(rules: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SignalRules(**rules)


def test_on_book_ignores_unusable_and_stale_books() -> None:
    aggregator = RealtimeSignalAggregator(small_config())
    for t in range(0, 5000, 1000):
        aggregator.on_book(BYBIT, "BTCUSDT", mid_book(BYBIT, 100.0, t), t)
    gapped = mid_book(BYBIT, 101.0, 5000)
    diff(gapped, [(100.9, 1.0)], [], 5000, jump=2)  # Bybit u jumps: the book is discarded
    assert aggregator.on_book(BYBIT, "BTCUSDT", gapped, 5000) == []
    stale = mid_book(BYBIT, 101.0, 5000)
    assert aggregator.on_book(BYBIT, "BTCUSDT", stale, 10_001) == []  # 5001 ms old
    # The same jump from a fresh, synced book is a breakout (and a spread sample).
    [signal] = aggregator.on_book(BYBIT, "BTCUSDT", stale, 10_000)
    assert signal.type is SignalType.MOMENTUM_BREAKOUT
