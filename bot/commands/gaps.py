"""The gap between the exchanges, as a symbol's stored signals saw it (pure, no matplotlib).

:func:`gap_points` turns arbitrage and momentum signals into signed :class:`GapPoint` s;
:func:`gap_segments` says which of them a chart may join by a line (the rest stand alone).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.store import OpportunityRow
from detector.signals import Signal, SignalType

JOIN_WITHIN_MS = 60_000
"""Consecutive arbitrage observations are joined by a line only this close, and only inside one
opportunity window: between windows the gap was below the threshold, its value unknown."""
BYBIT_HIGHER_DIRECTION = "buy_binance_sell_bybit"  # buy cheap on Binance: Bybit quotes higher
_OVERLAPS = 4  # windows of one symbol open at once, at most, that a point is matched against


@dataclass(frozen=True, slots=True)
class GapPoint:
    """One observation of the gap, signed: positive when Bybit quotes above Binance.

    ``gap_pct`` is the gross gap; ``net_pct`` the gap after fees, for arbitrage signals only
    (a momentum breakout's point has none: its gap is mid to mid, not ask to bid).
    """

    timestamp_ms: int
    gap_pct: float
    net_pct: float | None


GAP_TYPES = (SignalType.ARBITRAGE, SignalType.MOMENTUM_BREAKOUT)
"""The signals that see the gap: arbitrage carries both legs' prices, momentum both mids."""


def gap_points(signals: Sequence[Signal]) -> list[GapPoint]:
    """The gap as the symbol's signals (of :data:`GAP_TYPES`) saw it, in their order."""
    points = [_gap_point(s.type, s.timestamp, s.details) for s in signals]
    return [p for p in points if p is not None]


def direction_sign(direction: object) -> int:
    """+1 when Bybit quoted higher (buy Binance, sell Bybit), -1 otherwise."""
    return 1 if direction == BYBIT_HIGHER_DIRECTION else -1


def _gap_point(kind: SignalType, timestamp_ms: int, d: Mapping[str, Any]) -> GapPoint | None:
    try:
        if kind is SignalType.ARBITRAGE:
            buy, sell = float(d["buy_price"]), float(d["sell_price"])
            sign = direction_sign(d.get("direction"))
            net = d.get("net_profit_percentage")
            return GapPoint(
                timestamp_ms,
                sign * (sell - buy) / buy * 100,
                None if net is None else sign * float(net),
            )
        if kind is not SignalType.MOMENTUM_BREAKOUT:
            return None
        mid, other = float(d["mid"]), float(d["other_exchange_mid"])
        bybit, binance = (mid, other) if d.get("exchange") == "bybit" else (other, mid)
        return GapPoint(timestamp_ms, (bybit - binance) / binance * 100, None)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None  # an older or partial details blob: skip the point, keep the chart


def gap_segments(
    points: Sequence[GapPoint], windows: Sequence[OpportunityRow] = ()
) -> list[list[GapPoint]]:
    """The arbitrage points (those with a net %) in runs that may be joined by a line.

    Two consecutive points share a run when at most :data:`JOIN_WITHIN_MS` apart and, if
    ``windows`` are known, inside the same window (of the point's direction). Momentum points
    are never joined: signals are sparse, and a line through unrelated observations draws a
    gap nobody saw.
    """

    ordered = sorted(range(len(windows)), key=lambda i: windows[i].opened_ms)
    opens = [windows[i].opened_ms for i in ordered]

    def window_of(p: GapPoint) -> int | None:
        # One symbol's windows hardly overlap: the few opened last before p are enough to try.
        at = bisect.bisect_right(opens, p.timestamp_ms)
        for i in reversed(ordered[max(0, at - _OVERLAPS) : at]):
            w = windows[i]
            if p.timestamp_ms <= w.end_ms and direction_sign(w.direction) * p.gap_pct > 0:
                return i
        return None

    runs: list[list[GapPoint]] = []
    last: tuple[GapPoint, int | None] | None = None
    for p in points:
        if p.net_pct is None:
            continue
        here = window_of(p) if windows else None
        joined = (
            last is not None
            and p.timestamp_ms - last[0].timestamp_ms <= JOIN_WITHIN_MS
            and (not windows or (here is not None and here == last[1]))
        )
        if joined:
            runs[-1].append(p)
        else:
            runs.append([p])
        last = (p, here)
    return runs
