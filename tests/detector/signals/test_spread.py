"""SPREAD_ANOMALY: sampling, warm-up, z-score with floored std, episode dedup, reset."""

from __future__ import annotations

import pytest

from detector.aggregator import RealtimeSignalAggregator
from detector.book import SyncedBook
from detector.config import DetectorConfig
from detector.models import Exchange
from detector.signals.signal import Signal, SignalStrength
from detector.signals.spread import SpreadAnomalyDetector, spread_bps
from tests.detector.signals.helpers import book, config

WEAK, MODERATE, STRONG = SignalStrength.WEAK, SignalStrength.MODERATE, SignalStrength.STRONG


def spread_book(bps: float, now: int) -> SyncedBook:
    """A Binance book with mid 100 and a spread of ``bps`` basis points, 10 units a side."""
    half = bps / 200.0
    return book(Exchange.BINANCE, [(100.0 - half, 10.0)], [(100.0 + half, 10.0)], now)


def small_config(**rules: float | int) -> DetectorConfig:
    return config(spread_window=100, spread_warmup=50, **rules)


def warm(detector: SpreadAnomalyDetector, samples: list[float]) -> int:
    """Feed one sample a second; returns the time of the next sample."""
    for i, bps in enumerate(samples):
        assert (
            detector.on_book(Exchange.BINANCE, "BTCUSDT", spread_book(bps, i * 1000), i * 1000)
            == []
        )
    return len(samples) * 1000


ALTERNATING = [2.0, 3.0] * 25  # mean 2.5 bps, population std 0.5 bps


def test_spread_bps() -> None:
    assert spread_bps(99.99, 100.01) == pytest.approx(2.0)


def test_silent_during_warm_up() -> None:
    detector = SpreadAnomalyDetector(small_config())
    warm(detector, [*ALTERNATING[:49], 40.0])  # the 50th sample completes warm-up: silent


def test_samples_at_most_once_per_interval() -> None:
    detector = SpreadAnomalyDetector(config(spread_window=10, spread_warmup=5))
    for t in range(0, 1000, 10):  # 100 updates within one second: one sample
        assert detector.on_book(Exchange.BINANCE, "BTCUSDT", spread_book(2.0, t), t) == []
    assert detector.on_book(Exchange.BINANCE, "BTCUSDT", spread_book(40.0, 1000), 1000) == []


def test_episode_dedup_upgrades_and_hysteresis() -> None:
    detector = SpreadAnomalyDetector(small_config())
    t = warm(detector, ALTERNATING)
    script: list[tuple[float, tuple[str, SignalStrength] | None]] = [
        (5.0, ("new", WEAK)),  # z = (5 - 2.5) / 0.5 = 5.0
        (5.0, None),  # still in the episode, same tier (the baseline moved only a little)
        (7.0, ("upgrade", MODERATE)),
        (12.0, ("upgrade", STRONG)),
        (12.0, None),
        (2.5, None),  # z < 2 (half the weak tier): the episode ends silently
        (6.5, ("new", WEAK)),
    ]
    keys = []
    for i, (bps, expected) in enumerate(script):
        now = t + i * 1000
        signals = detector.on_book(Exchange.BINANCE, "BTCUSDT", spread_book(bps, now), now)
        assert [(s.details["reason"], s.strength) for s in signals] == (
            [expected] if expected else []
        ), (i, bps, signals)
        keys += [s.key for s in signals]
    assert keys[:3] == ["spread_anomaly:binance:BTCUSDT:50000"] * 3
    assert keys[3] == "spread_anomaly:binance:BTCUSDT:56000"
    assert detector.suppressed == 2


def test_first_signal_numbers() -> None:
    detector = SpreadAnomalyDetector(small_config())
    t = warm(detector, ALTERNATING)
    [signal] = detector.on_book(Exchange.BINANCE, "BTCUSDT", spread_book(5.0, t - 200), t)
    d = signal.details
    assert d["z_score"] == pytest.approx(5.0)
    assert (d["mean_bps"], d["std_bps"]) == (pytest.approx(2.5), pytest.approx(0.5))
    assert d["exchange"] == "binance" and d["window_samples"] == 50
    # age 200 of 5000 -> 0.96; top of book 99.975 x 10 = 999.75 USD of 10 000 -> floor 0.3.
    assert d["confidence_factors"] == {"age": 0.96, "depth": 0.3}
    assert signal.confidence == pytest.approx(0.96 * 0.3)
    assert (signal.timestamp, signal.expires_at) == (t, t + 30_000)
    out = signal.to_dict()
    assert (out["type"], out["strength"]) == ("spread_anomaly", "weak")


@pytest.mark.parametrize(
    ("bps", "strength"),
    [
        (1.9, None),  # z = (1.9 - 0.2) / 0.25 = 6.8, but narrower than spread_min_bps
        (2.2, MODERATE),  # z = 8: the std floor 0.25 bps keeps a 1-tick baseline finite
        (2.9, STRONG),  # z = 10.8
    ],
)
def test_std_floor_and_min_spread(bps: float, strength: SignalStrength | None) -> None:
    detector = SpreadAnomalyDetector(small_config())
    t = warm(detector, [0.2] * 50)  # a constant one-tick spread: std 0
    signals = detector.on_book(Exchange.BINANCE, "BTCUSDT", spread_book(bps, t), t)
    assert [s.strength for s in signals] == ([strength] if strength else [])


def test_anomaly_does_not_poison_the_baseline() -> None:
    detector = SpreadAnomalyDetector(small_config())
    t = warm(detector, ALTERNATING)
    for _ in range(5):  # a 5-sample spike of 50 bps enters the window capped at mean + 4 std
        detector.on_book(Exchange.BINANCE, "BTCUSDT", spread_book(50.0, t), t)
        t += 1000
    detector.on_book(Exchange.BINANCE, "BTCUSDT", spread_book(2.5, t), t)  # ends the episode
    [signal] = detector.on_book(Exchange.BINANCE, "BTCUSDT", spread_book(9.0, t + 1000), t + 1000)
    assert signal.details["mean_bps"] < 3.5  # unwinsorized it would be above 6.6
    assert signal.strength is MODERATE


def test_reset_on_unusable_book_restarts_warm_up() -> None:
    aggregator = RealtimeSignalAggregator(small_config())
    seen: list[Signal] = []
    aggregator.add_callback(seen.append)
    for i, bps in enumerate(ALTERNATING):
        for exchange in (Exchange.BINANCE, Exchange.BYBIT):  # the default venues
            aggregator.on_book(exchange, "BTCUSDT", spread_book(bps, i * 1000), i * 1000)
    aggregator.on_book_unusable(Exchange.BINANCE, "BTCUSDT", 50_000)
    wide = spread_book(20.0, 51_000)
    assert aggregator.on_book(Exchange.BINANCE, "BTCUSDT", wide, 51_000) == []
    assert seen == []
    # Bybit's state is its own: Binance's reset leaves it warm.
    [signal] = aggregator.on_book(Exchange.BYBIT, "BTCUSDT", wide, 51_000)
    assert signal.details["exchange"] == "bybit" and seen == [signal]
