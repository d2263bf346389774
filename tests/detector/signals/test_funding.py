"""FUNDING_RATE_DIVERGENCE: normalisation to 8 h, warm-up, tiers, episodes, sign flips."""

from __future__ import annotations

from dataclasses import replace

import pytest

from detector.models import Exchange
from detector.signals.funding import FundingDivergenceDetector
from detector.signals.signal import SignalStrength
from tests.detector.signals.helpers import config, funding

BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT
WEAK, MODERATE, STRONG = SignalStrength.WEAK, SignalStrength.MODERATE, SignalStrength.STRONG


def test_silent_until_both_sides_seen() -> None:
    detector = FundingDivergenceDetector(config())
    assert detector.on_funding("BTCUSDT", funding(BINANCE, 0.01, 0), 0) == []
    assert detector.on_funding("BTCUSDT", funding(BINANCE, 0.02, 1000), 1000) == []
    assert len(detector.on_funding("BTCUSDT", funding(BYBIT, 0.0001, 2000), 2000)) == 1


@pytest.mark.parametrize(
    ("binance", "bybit", "binance_hours", "diff_pct", "strength"),
    # diff_pct here: Binance minus Bybit per 8 h (its sign says which is higher)
    [
        # 8 h both: 0.01 % vs 0.045 % -> diff -0.035 points, weak (tiers 0.03 / 0.06 / 0.12).
        ((0.0001, None), (0.00045, 8.0), None, -0.035, WEAK),
        ((0.0001, None), (0.0003, 8.0), None, -0.02, None),
        # Bybit on 4 h: 0.025 % per 4 h is 0.05 % per 8 h -> diff -0.04.
        ((0.0001, None), (0.00025, 4.0), None, -0.04, WEAK),
        # Binance 4 h (fundingInfo): 0.04 % per 4 h = 0.08 % per 8 h; Bybit 1 h: 0.001 % = 0.008 %.
        ((0.0004, None), (0.00001, 1.0), 4.0, 0.072, MODERATE),
        # The event's own interval wins over the default: Binance 2 h, 0.05 % -> 0.2 % per 8 h.
        ((0.0005, 2.0), (0.0001, None), None, 0.19, STRONG),
    ],
)
def test_normalisation_and_tiers(
    binance: tuple[float, float | None],
    bybit: tuple[float, float | None],
    binance_hours: float | None,
    diff_pct: float,
    strength: SignalStrength | None,
) -> None:
    detector = FundingDivergenceDetector(config())
    if binance_hours is not None:
        detector.set_funding_interval(BINANCE, "BTCUSDT", binance_hours)
    detector.on_funding("BTCUSDT", funding(BINANCE, binance[0], 0, binance[1]), 0)
    signals = detector.on_funding("BTCUSDT", funding(BYBIT, bybit[0], 0, bybit[1]), 0)
    assert [s.strength for s in signals] == ([strength] if strength else [])
    if signals:
        d = signals[0].details
        assert d["diff_pct"] == pytest.approx(abs(diff_pct))  # higher minus lower
        assert d["abs_diff_pct"] == pytest.approx(abs(diff_pct))
        assert d["binance_rate"] == binance[0] and d["bybit_rate"] == bybit[0]
        higher = "binance" if diff_pct > 0 else "bybit"
        lower = "bybit" if diff_pct > 0 else "binance"
        assert d["higher_exchange"] == higher
        assert d["direction_hint"] == f"short_{higher}_long_{lower}"


def test_binance_default_interval_from_config() -> None:
    detector = FundingDivergenceDetector(config())
    assert detector.interval_hours(BINANCE, "BTCUSDT") == 8.0
    assert detector.interval_hours(BYBIT, "BTCUSDT") == 8.0
    detector.on_funding("BTCUSDT", funding(BYBIT, 0.0001, 0, 4.0), 0)
    assert detector.interval_hours(BYBIT, "BTCUSDT") == 4.0
    detector.on_funding("BTCUSDT", funding(BYBIT, 0.0001, 0, None), 0)  # a delta without it
    assert detector.interval_hours(BYBIT, "BTCUSDT") == 4.0


def test_episode_dedup_hysteresis_and_sign_flip() -> None:
    detector = FundingDivergenceDetector(config())
    detector.on_funding("BTCUSDT", funding(BYBIT, 0.0001, 0, 8.0), 0)  # 0.01 % per 8 h
    script: list[tuple[float, tuple[str, SignalStrength] | None]] = [
        (0.0005, ("new", WEAK)),  # binance 0.05 %: diff 0.04
        (0.0006, None),  # 0.05: same tier
        (0.00085, ("upgrade", MODERATE)),  # 0.075
        (0.0003, None),  # 0.02: above half the weak tier (0.015), the episode goes on
        (0.0005, None),  # 0.04: weak, below the episode's moderate
        (0.0002, None),  # 0.01 < 0.015: the episode ends
        (0.0005, ("new", WEAK)),  # a new episode
        (-0.0003, ("sign_flip", WEAK)),  # -0.04: Bybit now pays more
    ]
    signals = []
    for i, (rate, expected) in enumerate(script):
        now = (i + 1) * 1000
        got = detector.on_funding("BTCUSDT", funding(BINANCE, rate, now), now)
        assert [(s.details["reason"], s.strength) for s in got] == ([expected] if expected else [])
        signals += got
    assert [s.key for s in signals] == [
        "funding_rate_divergence:BTCUSDT:binance:1000",
        "funding_rate_divergence:BTCUSDT:binance:1000",
        "funding_rate_divergence:BTCUSDT:binance:7000",
        "funding_rate_divergence:BTCUSDT:bybit:8000",
    ]
    assert detector.suppressed == 2


def test_confidence_expiry_and_schema() -> None:
    detector = FundingDivergenceDetector(config())
    detector.on_funding("BTCUSDT", funding(BYBIT, 0.0001, 0, 8.0), 0)
    [signal] = detector.on_funding("BTCUSDT", funding(BINANCE, 0.0005, 60_000), 60_000)
    # The Bybit rate is 60 s old of a 600 s TTL: 1 - 0.8 x 0.1 = 0.92.
    assert signal.details["confidence_factors"] == {"freshness": 0.92}
    assert signal.confidence == pytest.approx(0.92)
    assert (signal.timestamp, signal.expires_at) == (60_000, 660_000)
    d = signal.details
    assert (d["binance_interval_hours"], d["bybit_interval_hours"]) == (8.0, 8.0)
    assert (d["binance_rate_8h_pct"], d["bybit_rate_8h_pct"]) == (
        pytest.approx(0.05),
        pytest.approx(0.01),
    )
    assert d["bybit_next_funding_ms"] == 28_800_000
    out = signal.to_dict()
    assert (out["type"], out["strength"]) == ("funding_rate_divergence", "weak")


def three_venues() -> FundingDivergenceDetector:
    venues = (BINANCE, BYBIT, Exchange.OKX)
    fees = dict.fromkeys(venues, 0.05)
    return FundingDivergenceDetector(replace(config(), exchanges=venues, taker_fee_pct=fees))


def test_three_venues_compare_the_highest_with_the_lowest() -> None:
    detector = three_venues()
    okx = Exchange.OKX
    detector.on_funding("BTCUSDT", funding(BINANCE, 0.0001, 0), 0)
    detector.on_funding("BTCUSDT", funding(BYBIT, 0.0002, 0), 0)  # 0.01 vs 0.02: below the tier
    # OKX on 4 h: 0.03 % per 4 h = 0.06 % per 8 h, 0.05 points above Binance: weak.
    [signal] = detector.on_funding("BTCUSDT", funding(okx, 0.0003, 0, 4.0), 0)
    d = signal.details
    assert (d["higher_exchange"], d["lower_exchange"]) == ("okx", "binance")
    assert d["diff_pct"] == pytest.approx(0.05) and signal.strength is WEAK
    assert d["direction_hint"] == "short_okx_long_binance"
    assert d["okx_rate_8h_pct"] == pytest.approx(0.06) and d["okx_interval_hours"] == 4.0
    assert d["bybit_rate_8h_pct"] == pytest.approx(0.02)  # every venue's rate is named
    assert signal.key.startswith("funding_rate_divergence:BTCUSDT:okx:")
    # Bybit becomes the lowest: another pair of venues, so a new episode (not a flip).
    [moved] = detector.on_funding("BTCUSDT", funding(BYBIT, -0.0001, 10), 10)
    assert (moved.details["higher_exchange"], moved.details["lower_exchange"]) == ("okx", "bybit")
    assert moved.details["reason"] == "new" and moved.key != signal.key


def test_a_venue_that_is_not_watched_is_ignored() -> None:
    detector = FundingDivergenceDetector(config())  # Binance and Bybit
    assert detector.on_funding("BTCUSDT", funding(BINANCE, 0.0001, 0), 0) == []
    assert detector.on_funding("BTCUSDT", funding(Exchange.OKX, 0.01, 0), 0) == []
