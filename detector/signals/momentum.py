"""MOMENTUM_BREAKOUT signals: the mid price leaves the range of the previous window of bars.

Definition, per symbol:

- **Bars**: the mids, ``(best bid + best ask) / 2``, of both exchanges' usable, fresh books are
  aggregated into bars of ``momentum_bar_s`` aligned on the detector clock (bar = now_ms // bar_ms),
  keeping each bar's high and low. A bar in which no book changed repeats the last mid.
- **Prior range**: the high and low of the previous ``momentum_window`` complete bars.
- **Warm-up**: silent until a full prior window of complete bars exists.
- **Score**: ``up = (mid / prior_high - 1) * 100`` and ``down = (1 - mid / prior_low) * 100``;
  a breakout reaches the weak tier of ``momentum_break_pct``, strength by its tiers.
- **Episode** (dedup), one per direction: entering fixes the reference (the prior high for up, the
  prior low for down); within the episode the break is measured against that reference and
  re-signals only on an upgrade. It ends silently when the mid returns inside the reference, or
  once a whole window of bars has passed since entry and the mid is back inside the current prior
  range (the new level has become the range).
  Key: ``momentum_breakout:{symbol}:{up|down}:{episode start ms}``.
- **Reset**: when a book becomes unusable or stale its last mid is forgotten; when no exchange of
  the symbol has a live mid left, the bars and episodes are discarded and warm-up starts again.
- **Confidence**: age (this book) x depth (thinner side of its top of book) x confirmation (1 when
  the other exchange's live mid, no older than ``stale_after_s``, is beyond the reference too, else
  0.6).
- **Expiry**: timestamp + ``momentum_ttl_s``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from detector.book import SyncedBook
from detector.config import DetectorConfig
from detector.models import Exchange
from detector.signals import confidence
from detector.signals.signal import (
    Signal,
    SignalReason,
    SignalStrength,
    SignalType,
    strength_for,
)


class Breakout(StrEnum):
    """Which side of the prior range the mid left."""

    UP = "up"
    DOWN = "down"


@dataclass(slots=True)
class _Episode:
    key: str
    reference: float
    entry_bar: int
    strength: SignalStrength


@dataclass(slots=True)
class _State:
    bars: deque[tuple[float, float]]  # (high, low) of complete bars, oldest first
    bar: int
    high: float
    low: float
    last_mid: float
    prior_high: float = 0.0
    prior_low: float = 0.0
    mids: dict[Exchange, tuple[float, int]] = field(default_factory=dict)  # live mid, when seen
    episodes: dict[Breakout, _Episode] = field(default_factory=dict)


class MomentumBreakoutDetector:
    """Bars of both exchanges' mids per symbol, with a breakout episode per direction."""

    def __init__(self, config: DetectorConfig) -> None:
        rules = config.rules
        self._config = config
        self._bar_ms = max(1, round(rules.momentum_bar_s * 1000))
        self._ttl_ms = round(rules.momentum_ttl_s * 1000)
        self._states: dict[str, _State] = {}
        self.suppressed = 0

    def on_book(
        self, exchange: Exchange, symbol: str, book: SyncedBook, now_ms: int
    ) -> list[Signal]:
        """Add ``book``'s mid to the current bar and look for a breakout of the prior range."""
        best_bid = book.levels.best_bid()
        best_ask = book.levels.best_ask()
        if best_bid is None or best_ask is None:
            return []
        mid = (best_bid[0] + best_ask[0]) / 2.0
        window = self._config.rules.momentum_window
        bar = now_ms // self._bar_ms
        state = self._states.get(symbol)
        if state is None:
            state = _State(deque(maxlen=window), bar, mid, mid, mid)
            self._states[symbol] = state
        elif bar > state.bar:
            _roll(state, bar)
        signals: list[Signal] = []
        if len(state.bars) >= window:
            for direction in Breakout:
                signal = self._evaluate(state, direction, exchange, symbol, book, mid, now_ms)
                if signal is not None:
                    signals.append(signal)
        state.high = max(state.high, mid)
        state.low = min(state.low, mid)
        state.last_mid = mid
        state.mids[exchange] = (mid, now_ms)
        return signals

    def reset(self, exchange: Exchange, symbol: str) -> None:
        """Forget ``exchange``'s mid; with no live mid left, forget the symbol's bars too."""
        state = self._states.get(symbol)
        if state is None:
            return
        state.mids.pop(exchange, None)
        if not state.mids:
            del self._states[symbol]

    def _evaluate(
        self,
        state: _State,
        direction: Breakout,
        exchange: Exchange,
        symbol: str,
        book: SyncedBook,
        mid: float,
        now_ms: int,
    ) -> Signal | None:
        rules = self._config.rules
        up = direction is Breakout.UP
        episode = state.episodes.get(direction)
        if episode is not None:
            inside_reference = mid <= episode.reference if up else mid >= episode.reference
            settled = state.bar - episode.entry_bar >= rules.momentum_window and (
                mid <= state.prior_high if up else mid >= state.prior_low
            )
            if inside_reference or settled:
                del state.episodes[direction]
                episode = None
        reference = (
            episode.reference
            if episode is not None
            else (state.prior_high if up else state.prior_low)
        )
        if reference <= 0.0:
            return None
        broken = (mid / reference - 1.0) * 100.0 if up else (1.0 - mid / reference) * 100.0
        strength = strength_for(broken, rules.momentum_break_pct)
        if strength is None:
            return None
        if episode is None:
            key = f"{SignalType.MOMENTUM_BREAKOUT.value}:{symbol}:{direction.value}:{now_ms}"
            episode = _Episode(key, reference, state.bar, strength)
            state.episodes[direction] = episode
            reason = SignalReason.NEW
        elif strength.rank > episode.strength.rank:
            episode.strength = strength
            reason = SignalReason.UPGRADE
        else:
            self.suppressed += 1
            return None
        other = state.mids.get(Exchange.BYBIT if exchange is Exchange.BINANCE else Exchange.BINANCE)
        other_mid: float | None = None
        if other is not None and now_ms - other[1] <= self._config.stale_after_ms:
            other_mid = other[0]
        confirmed = other_mid is not None and (
            other_mid > reference if up else other_mid < reference
        )
        value, factors = confidence.combine(
            {
                "age": confidence.age_factor(book, now_ms, self._config.stale_after_ms),
                "depth": confidence.depth_factor(
                    confidence.top_notional(book.levels), rules.confidence_depth_notional_usd
                ),
                "confirmation": 1.0 if confirmed else confidence.UNCONFIRMED,
            }
        )
        return Signal(
            type=SignalType.MOMENTUM_BREAKOUT,
            symbol=symbol,
            strength=strength,
            confidence=value,
            timestamp=now_ms,
            expires_at=now_ms + self._ttl_ms,
            key=episode.key,
            details={
                "exchange": exchange.value,
                "direction": direction.value,
                "mid": mid,
                "reference": reference,
                "break_pct": broken,
                "prior_high": state.prior_high,
                "prior_low": state.prior_low,
                "window_bars": len(state.bars),
                "bar_s": rules.momentum_bar_s,
                "other_exchange_mid": other_mid,
                "reason": reason.value,
                "confidence_factors": factors,
            },
        )


def _roll(state: _State, bar: int) -> None:
    """Complete the current bar, fill skipped bars with the last mid, start ``bar``."""
    bars = state.bars
    bars.append((state.high, state.low))
    for _ in range(min(bar - state.bar - 1, bars.maxlen or 0)):
        bars.append((state.last_mid, state.last_mid))
    state.bar = bar
    state.high = float("-inf")  # the caller adds the mid that opened this bar
    state.low = float("inf")
    state.prior_high = max(high for high, _ in bars)
    state.prior_low = min(low for _, low in bars)
