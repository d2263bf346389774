"""The offline demo: a short scenario on the loopback simulator, with signal windows to match.

The default signal windows need a minute or two of history before spread, volume and momentum
can speak; a demo that should show every type within ~20 s runs them with short windows. That
is the one thing the demo changes: the exchanges are simulated, the rest is the live detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from detector.config import DetectorConfig, SignalRules
from detector.models import Exchange
from detector.simulator.scenarios import (
    ArbitrageWindow,
    FundingShift,
    PriceMove,
    Scenario,
    SpreadBlowout,
    VolumeSpike,
)

DEMO_RULES = SignalRules(
    spread_sample_s=0.25,
    spread_window=40,
    spread_warmup=12,
    volume_bucket_s=1.0,
    volume_history=8,
    volume_warmup=5,
    # One-second buckets of a calm market swing more than five-second ones: higher tiers keep
    # the demo's volume signals to the scripted spike.
    volume_ratio=(6.0, 10.0, 18.0),
    momentum_bar_s=0.5,
    momentum_window=10,
)
"""Short windows: warm-ups of 3 s (spread), 5 s (volume) and 5 s (momentum)."""


def demo_scenario(symbols: Sequence[str]) -> Scenario:
    """Every signal type within 20 s: funding at 2 s, arbitrage at 4 s, then the others."""
    a = symbols[0]
    b = symbols[1 % len(symbols)]
    return Scenario(
        "demo",
        "every signal type in 20 s (with the demo's short signal windows)",
        25.0,
        (
            FundingShift(2.0, Exchange.BYBIT, b, 0.0008),
            ArbitrageWindow(4.0, 4.0, a, sell_on=Exchange.BYBIT, net_pct=0.2),
            SpreadBlowout(9.0, 3.0, Exchange.BINANCE, b, spread_bps=5.0),
            VolumeSpike(11.0, 3.0, Exchange.BYBIT, a, rate_factor=12.0, size_factor=2.0),
            PriceMove(14.5, 1.5, b, move_pct=1.0),
        ),
    )


def demo_config(config: DetectorConfig) -> DetectorConfig:
    """``config`` with the demo's short signal windows."""
    return replace(config, rules=DEMO_RULES)
