"""MOMENTUM_BREAKOUT: bars of both exchanges' mids, prior range, episodes per direction."""

from __future__ import annotations

from typing import Any

import pytest

from detector.aggregator import RealtimeSignalAggregator
from detector.config import DetectorConfig
from detector.models import Exchange
from detector.signals.momentum import MomentumBreakoutDetector
from detector.signals.signal import Signal, SignalStrength, SignalType
from tests.detector.signals.helpers import config, mid_book

BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT
WEAK, MODERATE, STRONG = SignalStrength.WEAK, SignalStrength.MODERATE, SignalStrength.STRONG


def small_config(**rules: Any) -> DetectorConfig:
    # 1 s bars, a prior window of 3 bars; breaks of 0.15 / 0.4 / 0.8 % beyond it; cooldown 30 s.
    return config(momentum_bar_s=1.0, momentum_window=3, **rules)


def feed(
    detector: MomentumBreakoutDetector, mids: list[tuple[int, float]], exchange: Exchange = BINANCE
) -> list[Signal]:
    signals: list[Signal] = []
    for t, mid in mids:
        signals += detector.on_book(exchange, "BTCUSDT", mid_book(exchange, mid, t), t)
    return signals


FLAT = [(0, 100.0), (1000, 100.0), (2000, 100.0)]  # bars 0-2: prior high = low = 100


def test_silent_during_warm_up() -> None:
    detector = MomentumBreakoutDetector(small_config())
    # At t=2000 only bars 0 and 1 are complete: no full prior window yet.
    assert feed(detector, [(0, 100.0), (1000, 100.0), (2000, 110.0), (2500, 90.0)]) == []


def test_breakouts_upgrades_and_episodes_without_cooldown() -> None:
    detector = MomentumBreakoutDetector(small_config(momentum_reopen_quiet_s=0.0))
    feed(detector, FLAT)
    script: list[tuple[int, float, tuple[str, str, SignalStrength] | None]] = [
        (3000, 100.1, None),  # 0.1 % above the prior high
        (3100, 100.2, ("up", "new", WEAK)),  # 0.2 %
        (3200, 100.3, None),
        (3300, 100.5, ("up", "upgrade", MODERATE)),  # 0.5 %
        (3400, 99.95, None),  # back inside: the up episode ends; 0.05 % below is no break
        (3500, 100.2, ("up", "new", WEAK)),
        (3600, 99.8, ("down", "new", WEAK)),  # 0.2 % below the prior low
        # Bar 4: the prior range is now 99.8-100.5, the down episode keeps its reference (100).
        (4000, 99.8, None),
        (4100, 99.55, ("down", "upgrade", MODERATE)),  # 0.45 % below 100 (0.25 % below 99.8)
        (4200, 99.5, None),
    ]
    keys = []
    for t, mid, expected in script:
        got = detector.on_book(BINANCE, "BTCUSDT", mid_book(BINANCE, mid, t), t)
        assert [(s.details["direction"], s.details["reason"], s.strength) for s in got] == (
            [expected] if expected else []
        ), (t, mid)
        keys += [s.key for s in got]
    assert keys == [
        "momentum_breakout:BTCUSDT:up:3100",
        "momentum_breakout:BTCUSDT:up:3100",
        "momentum_breakout:BTCUSDT:up:3500",
        "momentum_breakout:BTCUSDT:down:3600",
        "momentum_breakout:BTCUSDT:down:3600",
    ]
    assert detector.suppressed == 3


Tick = tuple[int, Exchange, float]  # (clock ms, exchange, mid)
Said = tuple[str, str, SignalStrength, str]  # (direction, reason, strength, key suffix)


@pytest.mark.parametrize(
    ("rules", "ticks", "expected"),
    [
        pytest.param(
            {},
            [(t, BINANCE, 100.2) for t in range(3000, 4000, 100)],
            [(3000, ("up", "new", WEAK, "up:3000"))],
            id="repeated-ticks-one-signal",
        ),
        pytest.param(
            {},
            # Back inside the reference (100) and out again, within the 30 s cooldown: one
            # episode, which signals again only on its upgrade, under its first key.
            [
                (3000, BINANCE, 100.2),
                (3100, BINANCE, 99.95),
                (3200, BINANCE, 100.2),
                (3300, BINANCE, 100.0),
                (3400, BINANCE, 100.25),
                (3500, BINANCE, 100.5),
            ],
            [
                (3000, ("up", "new", WEAK, "up:3000")),
                (3500, ("up", "upgrade", MODERATE, "up:3000")),
            ],
            id="hovering-at-the-reference-one-episode",
        ),
        pytest.param(
            {"momentum_reopen_quiet_s": 0.0},
            # Binance breaks up while Bybit's mid sits below the reference (as in an arbitrage
            # window): Bybit's ticks do not end Binance's breakout, even without a cooldown.
            [
                (3000, BINANCE, 100.2),
                (3020, BYBIT, 99.9),
                (3100, BINANCE, 100.21),
                (3120, BYBIT, 99.9),
                (3200, BINANCE, 100.2),
            ],
            [(3000, ("up", "new", WEAK, "up:3000"))],
            id="other-exchange-inside-does-not-end-it",
        ),
        pytest.param(
            {"momentum_reopen_quiet_s": 2.0},
            # Ended (inside) at 3100; 1.8 s later it is broken again: the same episode, measured
            # against its reference 100 (0.4 %: an upgrade).
            [(3000, BINANCE, 100.2), (3100, BINANCE, 99.95), (4900, BINANCE, 100.4)],
            [
                (3000, ("up", "new", WEAK, "up:3000")),
                (4900, ("up", "upgrade", MODERATE, "up:3000")),
            ],
            id="within-the-cooldown-resumes",
        ),
        pytest.param(
            {"momentum_reopen_quiet_s": 2.0},
            # 2.1 s later the cooldown is over: a new episode, against the new prior high 100.2.
            [(3000, BINANCE, 100.2), (3100, BINANCE, 99.95), (5200, BINANCE, 100.4)],
            [(3000, ("up", "new", WEAK, "up:3000")), (5200, ("up", "new", WEAK, "up:5200"))],
            id="after-the-cooldown-a-new-episode",
        ),
    ],
)
def test_an_episode_per_symbol_and_direction(
    rules: dict[str, Any], ticks: list[Tick], expected: list[tuple[int, Said]]
) -> None:
    detector = MomentumBreakoutDetector(small_config(**rules))
    for exchange in (Exchange.BINANCE, Exchange.BYBIT):  # the default venues
        feed(detector, FLAT, exchange)
    got = []
    for t, exchange, mid in ticks:
        for s in detector.on_book(exchange, "BTCUSDT", mid_book(exchange, mid, t), t):
            suffix = s.key.removeprefix("momentum_breakout:BTCUSDT:")
            got.append((t, (s.details["direction"], s.details["reason"], s.strength, suffix)))
    assert got == expected


def test_strong_tier_and_details() -> None:
    detector = MomentumBreakoutDetector(small_config())
    feed(detector, [(0, 100.0), (1000, 99.0), (2000, 100.0)])  # prior 99-100
    [signal] = feed(detector, [(3000, 101.0)])
    d = signal.details
    assert signal.strength is STRONG  # 1 % above 100
    assert d["break_pct"] == pytest.approx(1.0)
    assert (d["prior_high"], d["prior_low"], d["reference"]) == (100.0, 99.0, 100.0)
    assert (d["exchange"], d["direction"], d["window_bars"]) == ("binance", "up", 3)
    assert (signal.timestamp, signal.expires_at) == (3000, 63_000)
    out = signal.to_dict()
    assert (out["type"], out["strength"]) == ("momentum_breakout", "strong")


def test_skipped_bars_repeat_the_last_mid() -> None:
    detector = MomentumBreakoutDetector(small_config())
    # Nothing changed in bars 1-4: they repeat 100, so the window is full at t=5000.
    [signal] = feed(detector, [(0, 100.0), (5000, 100.5)])
    assert (signal.strength, signal.details["prior_high"]) == (MODERATE, 100.0)


def test_episode_settles_after_a_window_at_the_new_level() -> None:
    detector = MomentumBreakoutDetector(small_config())
    feed(detector, FLAT)
    assert len(feed(detector, [(3000, 100.5)])) == 1
    # Bars 3-5 hold at 100.5; at bar 6 the whole prior window is the new level: the episode ends.
    assert feed(detector, [(4000, 100.5), (5000, 100.5), (6000, 100.5)]) == []
    [again] = feed(detector, [(6100, 100.7)])  # 0.2 % above the new range
    assert (again.details["reason"], again.details["reference"]) == ("new", 100.5)


def test_both_exchanges_feed_the_bars_and_confirm() -> None:
    detector = MomentumBreakoutDetector(small_config())
    for t, mid in FLAT:
        feed(detector, [(t, mid)], BINANCE)
        feed(detector, [(t, mid - 0.1)], BYBIT)  # Bybit's mid sits lower: the low is 99.9
    [unconfirmed] = feed(detector, [(3000, 100.2)], BINANCE)
    assert unconfirmed.details["confidence_factors"] == {
        "age": 1.0,
        "depth": 0.3,
        "confirmation": 0.6,
    }
    assert unconfirmed.details["other_mids"] == {"bybit": pytest.approx(99.9)}
    assert feed(detector, [(3100, 100.3)], BYBIT) == []  # same up episode, same tier
    [confirmed] = feed(detector, [(3200, 100.6)], BINANCE)
    assert confirmed.details["confidence_factors"]["confirmation"] == 1.0
    assert confirmed.confidence == pytest.approx(0.3)
    # Below: 0.15 % under Bybit's 99.9 low.
    [down] = feed(detector, [(3300, 99.75)], BYBIT)
    assert (down.details["direction"], down.details["exchange"]) == ("down", "bybit")


def test_reset_when_no_live_book_is_left() -> None:
    aggregator = RealtimeSignalAggregator(small_config())
    for t, mid in FLAT:
        for exchange in (Exchange.BINANCE, Exchange.BYBIT):  # the default venues
            aggregator.on_book(exchange, "BTCUSDT", mid_book(exchange, mid, t), t)
    aggregator.on_book_unusable(BINANCE, "BTCUSDT", 2500)  # Bybit still live: bars kept
    [signal] = aggregator.on_book(BYBIT, "BTCUSDT", mid_book(BYBIT, 100.2, 3000), 3000)
    assert signal.type is SignalType.MOMENTUM_BREAKOUT
    aggregator.on_book_unusable(BYBIT, "BTCUSDT", 3100)  # nothing live: warm-up again
    assert aggregator.on_book(BINANCE, "BTCUSDT", mid_book(BINANCE, 101.0, 3200), 3200) == []
    assert aggregator.on_book(BINANCE, "BTCUSDT", mid_book(BINANCE, 101.0, 4200), 4200) == []
