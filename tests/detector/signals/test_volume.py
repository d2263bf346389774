"""VOLUME_SPIKE: clock-aligned buckets, warm-up, minimums, stalls, ratio tiers, per-bucket dedup."""

from __future__ import annotations

from typing import Any

import pytest

from detector.config import DetectorConfig, SignalRules
from detector.models import Exchange, Side, Trade
from detector.signals.signal import SignalStrength
from detector.signals.volume import VolumeSpikeDetector
from tests.detector.signals.helpers import config, trade

WEAK, MODERATE, STRONG = SignalStrength.WEAK, SignalStrength.MODERATE, SignalStrength.STRONG
DEFAULTS = SignalRules()


def small_config(**overrides: Any) -> DetectorConfig:
    # 5 s buckets, mean of the last 4 complete buckets, speaks after 2; tiers 4x / 8x / 15x.
    # Stalls: a silence of stale_after_s (5 s unless overridden). Minimums off unless given.
    return config(volume_bucket_s=5.0, volume_history=4, volume_warmup=2, **overrides)


def quote(
    usd: float, ts: int, side: Side = Side.BUY, exchange: Exchange = Exchange.BINANCE
) -> Trade:
    """A trade of ``usd`` quote volume at price 100."""
    return trade(100.0, usd / 100.0, ts, exchange=exchange, side=side)


def feed(detector: VolumeSpikeDetector, trades: list[Trade]) -> None:
    for t in trades:
        assert detector.on_trade("BTCUSDT", t, t.trade_time_ms) == []


# Bucket 0 (started mid-way) is partial and ignored; buckets 1 and 2 trade 1000 USD each.
HISTORY = [quote(1000, 2000), quote(1000, 5000), quote(1000, 10_000)]


def test_spike_tiers_and_per_bucket_dedup() -> None:
    # No stall in this script: the 9.5 s silence before bucket 5 is a quiet market (stall: 30 s).
    detector = VolumeSpikeDetector(small_config(stale_after_s=30.0))
    feed(detector, HISTORY)
    script: list[tuple[Trade, tuple[str, SignalStrength] | None]] = [
        (quote(3000, 15_000), None),  # ratio 3
        (quote(1000, 15_100, Side.SELL), ("new", WEAK)),  # 4000 / 1000
        (quote(500, 15_200), None),  # 4.5: same bucket, same tier
        (quote(3500, 15_300), ("upgrade", MODERATE)),  # 8
        (quote(7000, 15_400), ("upgrade", STRONG)),  # 15
        (quote(1000, 15_500), None),
        # Bucket 5: history is buckets 1-4 = 1000, 1000, 16 000 and an empty one; mean 4500.
        (quote(17_999, 25_000), None),
        (quote(1, 25_001), ("new", WEAK)),  # 18 000 / 4500 = 4
    ]
    signals = []
    for t, expected in script:
        got = detector.on_trade("BTCUSDT", t, t.trade_time_ms)
        assert [(s.details["reason"], s.strength) for s in got] == ([expected] if expected else [])
        signals += got
    assert [s.key for s in signals] == [
        "volume_spike:binance:BTCUSDT:15000",
        "volume_spike:binance:BTCUSDT:15000",
        "volume_spike:binance:BTCUSDT:15000",
        "volume_spike:binance:BTCUSDT:25000",
    ]
    first, last = signals[0].details, signals[-1].details
    assert (first["bucket_volume_usd"], first["mean_volume_usd"], first["ratio"]) == (
        pytest.approx(4000),
        1000,
        pytest.approx(4.0),
    )
    assert (first["buy_volume_usd"], first["sell_volume_usd"]) == (
        pytest.approx(3000),
        pytest.approx(1000),
    )
    assert first["bucket_trades"] == 2 and first["history_buckets"] == 2
    assert last["mean_volume_usd"] == pytest.approx(4500) and last["history_buckets"] == 4
    assert detector.suppressed == 2


DEFAULT_MINIMUMS = {
    "volume_min_trades": DEFAULTS.volume_min_trades,
    "volume_min_notional_usd": DEFAULTS.volume_min_notional_usd,
}
NO_MINIMUMS = {"volume_min_trades": 1, "volume_min_notional_usd": 0.0}


@pytest.mark.parametrize(
    ("bucket_usd", "minimums", "expected"),
    [
        # (quote volume of each trade of the spike bucket, the rules, (trade index, reason, tier))
        pytest.param([1_000_000.0], DEFAULT_MINIMUMS, [], id="one-large-trade-never"),
        pytest.param([1_000_000.0] * 4, DEFAULT_MINIMUMS, [], id="four-trades-never"),
        pytest.param([1999.8] * 5, DEFAULT_MINIMUMS, [], id="below-min-notional-never"),
        pytest.param([2000.0] * 5, DEFAULT_MINIMUMS, [(4, "new", MODERATE)], id="both-minimums"),
        pytest.param(
            [2000.0] * 5 + [6000.0],
            DEFAULT_MINIMUMS,
            [(4, "new", MODERATE), (5, "upgrade", STRONG)],  # 10 000, then 16 000 / 1000
            id="minimums-then-upgrade",
        ),
        pytest.param(
            [1_000_000.0],
            {"volume_min_trades": 1, "volume_min_notional_usd": 1_000_000.0},
            [(0, "new", STRONG)],
            id="minimums-are-inclusive",
        ),
        pytest.param([1_000_000.0], NO_MINIMUMS, [(0, "new", STRONG)], id="minimums-off"),
    ],
)
def test_a_spike_needs_the_minimum_trades_and_notional(
    bucket_usd: list[float],
    minimums: dict[str, Any],
    expected: list[tuple[int, str, SignalStrength]],
) -> None:
    detector = VolumeSpikeDetector(small_config(**minimums))
    feed(detector, HISTORY)  # mean 1000 USD: every bucket below is 10x or more
    got = []
    for i, usd in enumerate(bucket_usd):
        for s in detector.on_trade("BTCUSDT", quote(usd, 15_000 + i), 15_000 + i):
            got.append((i, s.details["reason"], s.strength))
    assert got == expected


# 1 s buckets; buckets 1-5 trade 1000 USD each (the last is at 5500), so the mean is 1000.
STEADY = [quote(1000, t) for t in range(500, 6000, 1000)]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param(
            # 8 s without a trade: a stall, not 8 empty buckets; the usual volume is still 1000.
            [(13_500, 1000), (14_500, 1000), (15_500, 1000), (16_500, 4000)],
            [(16_500, WEAK, 1000)],
            id="stall-then-normal-volume-is-not-a-spike",
        ),
        pytest.param(
            # The bucket trades resume in is partial: its 300 USD never becomes history.
            [(13_900, 300), (14_500, 1000), (15_500, 1000), (16_500, 1000), (17_500, 4000)],
            [(17_500, WEAK, 1000)],
            id="resumed-bucket-is-partial",
        ),
        pytest.param(
            # A spike right after a stall is measured against the volume before it.
            [(13_500, 5000)],
            [(13_500, WEAK, 1000)],
            id="spike-right-after-a-stall",
        ),
        pytest.param(
            # 3 s without a trade is a quiet market: buckets 6 and 7 count 0, the mean is 500.
            [(8_500, 1000), (9_500, 2000)],
            [(9_500, WEAK, 500)],
            id="short-quiet-counts-as-zero",
        ),
    ],
)
def test_a_stall_is_not_history(
    script: list[tuple[int, float]], expected: list[tuple[int, SignalStrength, float]]
) -> None:
    detector = VolumeSpikeDetector(
        config(volume_bucket_s=1.0, volume_history=4, volume_warmup=2, stale_after_s=5.0)
    )
    feed(detector, STEADY)
    got = []
    for ts, usd in script:
        for s in detector.on_trade("BTCUSDT", quote(usd, ts), ts):
            got.append((ts, s.strength, s.details["mean_volume_usd"]))
    assert got == [(ts, strength, pytest.approx(mean)) for ts, strength, mean in expected]


def test_silent_during_warm_up() -> None:
    detector = VolumeSpikeDetector(small_config())
    # Only bucket 1 is complete when the big trade of bucket 2 arrives.
    feed(detector, [quote(1000, 2000), quote(1000, 5000), quote(1e9, 10_000)])


def test_silent_while_mean_is_zero() -> None:
    detector = VolumeSpikeDetector(small_config(stale_after_s=30.0))
    feed(detector, [quote(1000, 2000), quote(1e9, 20_000)])  # buckets 1-3 empty: mean 0


def test_exchanges_are_separate() -> None:
    detector = VolumeSpikeDetector(small_config())
    feed(detector, HISTORY)
    # Bybit has no history at all: its spike is silent; Binance's counts only Binance trades.
    feed(detector, [quote(1e6, 15_000, exchange=Exchange.BYBIT)])
    [signal] = detector.on_trade("BTCUSDT", quote(4000, 15_000), 15_000)
    assert signal.details["exchange"] == "binance"
    assert signal.details["bucket_volume_usd"] == pytest.approx(4000)


@pytest.mark.parametrize(("lag_ms", "lag"), [(0, 1.0), (1000, 0.8), (9000, 0.0)])
def test_confidence_history_and_lag(lag_ms: int, lag: float) -> None:
    detector = VolumeSpikeDetector(small_config())
    feed(detector, HISTORY)
    t = quote(4000, 15_000 - lag_ms)
    [signal] = detector.on_trade("BTCUSDT", t, 15_000)
    # 2 complete buckets of the 4 the mean can hold -> 0.5.
    assert signal.details["confidence_factors"] == {"history": 0.5, "lag": lag}
    assert signal.confidence == pytest.approx(0.5 * lag)
    assert (signal.timestamp, signal.expires_at) == (15_000, 45_000)
    out = signal.to_dict()
    assert (out["type"], out["strength"]) == ("volume_spike", "weak")
