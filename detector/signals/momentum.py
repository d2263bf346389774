"""MOMENTUM_BREAKOUT signals: the mid price leaves the range of the previous window of bars.

Definition, per symbol:

- **Bars**: the mids, ``(best bid + best ask) / 2``, of every venue's usable, fresh books are
  aggregated into bars of ``momentum_bar_s`` aligned on the detector clock (bar = now_ms // bar_ms),
  keeping each bar's high and low. A bar in which no book changed repeats the last mid.
- **Prior range**: the high and low of the previous ``momentum_window`` complete bars.
- **Warm-up**: silent until a full prior window of complete bars exists.
- **Score**: ``up = (mid / prior_high - 1) * 100`` and ``down = (1 - mid / prior_low) * 100``;
  a breakout reaches the weak tier of ``momentum_break_pct``, strength by its tiers.
- **Episode** (dedup), one per (symbol, direction), as arbitrage has one per opportunity:
  entering fixes the reference (the prior high for up, the prior low for down); within the
  episode the break is measured against that reference and re-signals only on an upgrade.
- **End**: the episode ends silently once a whole window of bars has passed since entry and the
  mid is back inside the current prior range (the new level has become the range); or when no
  live mid is beyond the reference any more, neither this venue's nor another's (no older than
  ``stale_after_s``): one venue's tick on its own side of the range does not end a breakout
  that another venue is still in.
- **Cooldown**: an episode that ended back inside its reference is kept for
  ``momentum_reopen_quiet_s``; a break of that reference within that time resumes it, as if it
  had never ended (same key, same reference, a signal only on an upgrade). Prices hovering at the
  reference would otherwise announce the same breakout on every crossing.
- **Key**: ``momentum_breakout:{symbol}:{up|down}:{episode start ms}``.
- **Reset**: when a book becomes unusable or stale its last mid is forgotten; when no exchange of
  the symbol has a live mid left, the bars and episodes are discarded and warm-up starts again.
- **Confidence**: age (this book) x depth (thinner side of its top of book) x confirmation (1 when
  another venue's live mid, no older than ``stale_after_s``, is beyond the reference too, else
  0.6). ``other_mids`` names those mids, venue by venue.
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


_BREAKOUTS = tuple(Breakout)
"""Both sides, in order: iterating the enum itself on every book update costs 2 % of the
pipeline (the profile's ``EnumType.__iter__``)."""


@dataclass(slots=True)
class _Episode:
    key: str
    reference: float
    entry_bar: int
    strength: SignalStrength  # the last signalled
    ended_ms: int | None = None  # back inside the reference since then: cooling down


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
        # Each venue's others, in the order of the watched venues (a venue not watched: all).
        self._others = {
            venue: tuple(v for v in config.exchanges if v is not venue) for venue in Exchange
        }
        self._bar_ms = max(1, round(rules.momentum_bar_s * 1000))
        self._ttl_ms = round(rules.momentum_ttl_s * 1000)
        self._quiet_ms = round(rules.momentum_reopen_quiet_s * 1000)
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
            for direction in _BREAKOUTS:
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
        if episode is None:
            # The common case, on every book update: no episode, and no break of the range.
            reference = state.prior_high if up else state.prior_low
            if reference <= 0.0:
                return None
            broken = (mid / reference - 1.0) * 100.0 if up else (1.0 - mid / reference) * 100.0
            if strength_for(broken, rules.momentum_break_pct) is None:
                return None
        others = self._other_mids(state, exchange, now_ms)
        if episode is not None and episode.ended_ms is not None:
            if now_ms - episode.ended_ms >= self._quiet_ms:
                del state.episodes[direction]  # cooled down: the next break is a new episode
                episode = None
        elif episode is not None:
            settled = state.bar - episode.entry_bar >= rules.momentum_window and (
                mid <= state.prior_high if up else mid >= state.prior_low
            )
            live = (mid, *others.values())
            inside = all(m <= episode.reference if up else m >= episode.reference for m in live)
            if settled or (inside and self._quiet_ms == 0):
                del state.episodes[direction]
                episode = None
            elif inside:
                episode.ended_ms = now_ms
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
        else:
            episode.ended_ms = None  # broken again within the cooldown: the episode resumes
            if strength.rank > episode.strength.rank:
                episode.strength = strength
                reason = SignalReason.UPGRADE
            else:
                self.suppressed += 1
                return None
        confirmed = any(m > reference if up else m < reference for m in others.values())
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
                "other_mids": {venue.value: m for venue, m in others.items()},
                "reason": reason.value,
                "confidence_factors": factors,
            },
        )

    def _other_mids(self, state: _State, exchange: Exchange, now_ms: int) -> dict[Exchange, float]:
        """The other venues' live mids (seen no longer than ``stale_after_s`` ago), in the order
        of the watched venues."""
        stale_ms = self._config.stale_after_ms
        mids = state.mids
        found: dict[Exchange, float] = {}
        for venue in self._others[exchange]:
            seen = mids.get(venue)
            if seen is not None and now_ms - seen[1] <= stale_ms:
                found[venue] = seen[0]
        return found


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
