"""The gap between two venues, as a symbol's stored signals saw it (pure, no matplotlib).

A :class:`VenuePair` names the two venues (Binance and Bybit unless the user picks others);
:func:`gap_points` turns the pair's arbitrage and momentum signals into signed :class:`GapPoint` s;
:func:`gap_segments` says which of them a chart may join by a line (the rest stand alone).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.messages import other_mids, venue_name
from bot.store import OpportunityRow
from detector.signals import Signal, SignalType

JOIN_WITHIN_MS = 60_000
"""Consecutive arbitrage observations are joined by a line only this close, and only inside one
opportunity window: between windows the gap was below the threshold, its value unknown."""
_OVERLAPS = 4  # windows of one symbol open at once, at most, that a point is matched against


@dataclass(frozen=True, slots=True)
class VenuePair:
    """The two venues of a gap chart: ``second``'s price minus ``first``'s, in % of ``first``'s."""

    first: str
    second: str

    def sign(self, direction: object) -> int:
        """+1 when ``second`` quoted higher (buy on ``first``, sell on ``second``), -1 the other
        way round, 0 for an opportunity between other venues."""
        if direction == f"buy_{self.first}_sell_{self.second}":
            return 1
        return -1 if direction == f"buy_{self.second}_sell_{self.first}" else 0

    @property
    def names(self) -> tuple[str, str]:
        """``("Binance", "Bybit")``."""
        return venue_name(self.first), venue_name(self.second)


DEFAULT_PAIR = VenuePair("binance", "bybit")
"""The gap /chart draws unless asked for another pair: Bybit minus Binance."""


@dataclass(frozen=True, slots=True)
class GapPoint:
    """One observation of the gap, signed: positive when the pair's second venue quotes above
    its first (Bybit above Binance by default).

    ``gap_pct`` is the gross gap; ``net_pct`` the gap after fees, for arbitrage signals only
    (a momentum breakout's point has none: its gap is mid to mid, not ask to bid).
    """

    timestamp_ms: int
    gap_pct: float
    net_pct: float | None


GAP_TYPES = (SignalType.ARBITRAGE, SignalType.MOMENTUM_BREAKOUT)
"""The signals that see the gap: arbitrage carries both legs' prices, momentum both mids."""


def gap_points(signals: Sequence[Signal], pair: VenuePair = DEFAULT_PAIR) -> list[GapPoint]:
    """The gap between the pair's venues as the symbol's signals (of :data:`GAP_TYPES`) saw it,
    in their order; signals about other venues are left out."""
    points = [_gap_point(s.type, s.timestamp, s.details, pair) for s in signals]
    return [p for p in points if p is not None]


def _gap_point(
    kind: SignalType, timestamp_ms: int, d: Mapping[str, Any], pair: VenuePair
) -> GapPoint | None:
    try:
        if kind is SignalType.ARBITRAGE:
            sign = pair.sign(d.get("direction"))
            if not sign:
                return None
            buy, sell = float(d["buy_price"]), float(d["sell_price"])
            net = d.get("net_profit_percentage")
            return GapPoint(
                timestamp_ms,
                sign * (sell - buy) / buy * 100,
                None if net is None else sign * float(net),
            )
        if kind is not SignalType.MOMENTUM_BREAKOUT:
            return None
        mids = {str(d.get("exchange")): float(d["mid"]), **other_mids(d)}
        first, second = mids.get(pair.first), mids.get(pair.second)
        if first is None or second is None:
            return None  # not a breakout seen on both venues of the pair
        return GapPoint(timestamp_ms, (second - first) / first * 100, None)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None  # an older or partial details blob: skip the point, keep the chart


def gap_segments(
    points: Sequence[GapPoint],
    windows: Sequence[OpportunityRow] = (),
    pair: VenuePair = DEFAULT_PAIR,
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
            if p.timestamp_ms <= w.end_ms and pair.sign(w.direction) * p.gap_pct > 0:
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
