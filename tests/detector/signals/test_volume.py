"""VOLUME_SPIKE: clock-aligned buckets, warm-up, ratio tiers, per-bucket dedup."""

from __future__ import annotations

import pytest

from detector.config import DetectorConfig
from detector.models import Exchange, Side, Trade
from detector.signals.signal import SignalStrength
from detector.signals.volume import VolumeSpikeDetector
from tests.detector.signals.helpers import config, trade

WEAK, MODERATE, STRONG = SignalStrength.WEAK, SignalStrength.MODERATE, SignalStrength.STRONG


def small_config() -> DetectorConfig:
    # 5 s buckets, mean of the last 4 complete buckets, speaks after 2; tiers 4x / 8x / 15x.
    return config(volume_bucket_s=5.0, volume_history=4, volume_warmup=2)


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
    detector = VolumeSpikeDetector(small_config())
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


def test_silent_during_warm_up() -> None:
    detector = VolumeSpikeDetector(small_config())
    # Only bucket 1 is complete when the big trade of bucket 2 arrives.
    feed(detector, [quote(1000, 2000), quote(1000, 5000), quote(1e9, 10_000)])


def test_silent_while_mean_is_zero() -> None:
    detector = VolumeSpikeDetector(small_config())
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
