"""SPREAD_ANOMALY signals: one book's bid-ask spread far outside its own recent range.

Definition, per (exchange, symbol):

- **Sample**: spread in bps of the mid, ``(ask - bid) / ((ask + bid) / 2) * 10_000``, taken from a
  usable, fresh book at most once per ``spread_sample_s`` (the first book update at least that long
  after the previous sample). Only samples are evaluated: a spread that lasts less than a sampling
  interval may go unseen, by design.
- **Baseline**: the last ``spread_window`` samples; mean and population standard deviation. The
  standard deviation is floored at ``max(0.1 * mean, 0.25 bps)`` so that a book whose spread is
  always one tick does not turn every two-tick spread into an infinite z.
- **Warm-up**: silent until ``spread_warmup`` samples are in the window.
- **Score**: ``z = (spread - mean) / std``; strength by the ``spread_z`` tiers; spreads narrower
  than ``spread_min_bps`` never signal.
- **Episode** (dedup): starts when a sample reaches the weak tier (one signal), re-signals only on
  an upgrade, and ends (silently) when z falls below half the weak tier. Key:
  ``spread_anomaly:{exchange}:{symbol}:{episode start ms}``.
- **No self-poisoning**: after warm-up a sample enters the window winsorized at
  ``mean + weak_z * std``; an anomaly therefore moves the baseline by at most one weak-tier step per
  sample, and a lasting change of regime is absorbed gradually over about one window.
- **Reset**: when the book becomes unusable or stale the window and any episode are discarded
  (warm-up starts again): spreads from before a gap say little about the book after it.
- **Confidence**: age (this book) x depth (thinner side of the top of book).
- **Expiry**: timestamp + ``spread_ttl_s``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

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

STD_FLOOR_FRACTION = 0.1  # of the mean spread
STD_FLOOR_BPS = 0.25


@dataclass(slots=True)
class _State:
    window: deque[float]
    last_sample_ms: int | None = None
    mean: float = 0.0
    std: float = 0.0  # floored
    episode_key: str | None = None
    episode_strength: SignalStrength | None = None


def spread_bps(bid: float, ask: float) -> float:
    """Bid-ask spread in basis points of the mid."""
    return (ask - bid) / ((ask + bid) / 2.0) * 10_000.0


class SpreadAnomalyDetector:
    """Rolling spread statistics per (exchange, symbol), with episode dedup."""

    def __init__(self, config: DetectorConfig) -> None:
        rules = config.rules
        self._config = config
        self._sample_ms = round(rules.spread_sample_s * 1000)
        self._ttl_ms = round(rules.spread_ttl_s * 1000)
        self._states: dict[tuple[Exchange, str], _State] = {}
        self.suppressed = 0

    def on_book(
        self, exchange: Exchange, symbol: str, book: SyncedBook, now_ms: int
    ) -> list[Signal]:
        """Sample the spread when due and evaluate the sample; ``book`` must be usable and fresh."""
        rules = self._config.rules
        state = self._states.get((exchange, symbol))
        if state is None:
            state = _State(window=deque(maxlen=rules.spread_window))
            self._states[(exchange, symbol)] = state
        if state.last_sample_ms is not None and now_ms - state.last_sample_ms < self._sample_ms:
            return []
        best_bid = book.levels.best_bid()
        best_ask = book.levels.best_ask()
        if best_bid is None or best_ask is None:
            return []
        state.last_sample_ms = now_ms
        spread = spread_bps(best_bid[0], best_ask[0])
        if len(state.window) < rules.spread_warmup:
            _add(state, spread)
            return []
        weak_z = rules.spread_z[0]
        z = (spread - state.mean) / state.std
        strength = strength_for(z, rules.spread_z) if spread >= rules.spread_min_bps else None
        if state.episode_key is not None and z < weak_z / 2.0:
            state.episode_key = None
            state.episode_strength = None
        reason: SignalReason | None = None
        if strength is not None:
            if state.episode_key is None:
                key = SignalType.SPREAD_ANOMALY.value
                state.episode_key = f"{key}:{exchange.value}:{symbol}:{now_ms}"
                reason = SignalReason.NEW
            elif state.episode_strength is None or strength.rank > state.episode_strength.rank:
                reason = SignalReason.UPGRADE
            else:
                self.suppressed += 1
        signals: list[Signal] = []
        if reason is not None and strength is not None:
            state.episode_strength = strength
            signals.append(self._signal(exchange, symbol, book, state, spread, z, reason, now_ms))
        # Winsorized at the weak tier: an anomaly cannot drag its own baseline along at once.
        _add(state, min(spread, state.mean + weak_z * state.std))
        return signals

    def reset(self, exchange: Exchange, symbol: str) -> None:
        """Forget the book's spread history and episode (it went unsynced or stale)."""
        self._states.pop((exchange, symbol), None)

    def _signal(
        self,
        exchange: Exchange,
        symbol: str,
        book: SyncedBook,
        state: _State,
        spread: float,
        z: float,
        reason: SignalReason,
        now_ms: int,
    ) -> Signal:
        rules = self._config.rules
        assert state.episode_key is not None and state.episode_strength is not None
        value, factors = confidence.combine(
            {
                "age": confidence.age_factor(book, now_ms, self._config.stale_after_ms),
                "depth": confidence.depth_factor(
                    confidence.top_notional(book.levels), rules.confidence_depth_notional_usd
                ),
            }
        )
        best_bid = book.levels.best_bid()
        best_ask = book.levels.best_ask()
        assert best_bid is not None and best_ask is not None
        return Signal(
            type=SignalType.SPREAD_ANOMALY,
            symbol=symbol,
            strength=state.episode_strength,
            confidence=value,
            timestamp=now_ms,
            expires_at=now_ms + self._ttl_ms,
            key=state.episode_key,
            details={
                "exchange": exchange.value,
                "spread_bps": spread,
                "mean_bps": state.mean,
                "std_bps": state.std,
                "z_score": z,
                "bid": best_bid[0],
                "ask": best_ask[0],
                "window_samples": len(state.window),
                "reason": reason.value,
                "confidence_factors": factors,
            },
        )


def _add(state: _State, sample: float) -> None:
    """Append a sample and refresh the window's mean and floored standard deviation."""
    window = state.window
    window.append(sample)
    n = len(window)
    mean = math.fsum(window) / n
    variance = math.fsum((x - mean) ** 2 for x in window) / n
    state.mean = mean
    state.std = max(math.sqrt(variance), STD_FLOOR_FRACTION * mean, STD_FLOOR_BPS)
