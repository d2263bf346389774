"""VOLUME_SPIKE signals: traded quote volume of a bucket far above the recent buckets.

Definition, per (exchange, symbol):

- **Buckets**: quote volume (price x qty) of the public trades received, in buckets of
  ``volume_bucket_s`` aligned on the detector clock (bucket = now_ms // bucket_ms). The first bucket
  after start is partial and is not used as history.
- **Baseline**: the mean of the previous ``volume_history`` complete buckets; buckets without trades
  count as 0.
- **Stalls**: a silence longer than ``stale_after_s`` (no trade of that exchange and symbol) is a
  feed stall, not a quiet market: its empty buckets are not history, and the bucket in which trades
  resume is partial like the first one. Counted as zeros, a stall would empty the baseline and
  make the next ordinary bucket look like a spike.
- **Warm-up**: silent until ``volume_warmup`` complete buckets are in the history; silent while the
  mean is 0.
- **Minimums**: a bucket with fewer than ``volume_min_trades`` trades or less than
  ``volume_min_notional_usd`` quote volume never signals, whatever its ratio (one large trade is
  not a volume spike).
- **Score**: ``ratio = current bucket volume / mean``, evaluated on every trade so that a spike is
  reported while it happens; strength by the ``volume_ratio`` tiers.
- **Dedup**: at most one signal per bucket, plus one per upgrade within it. Key:
  ``volume_spike:{exchange}:{symbol}:{bucket start ms}``.
- **Confidence**: history (complete buckets / ``volume_history``) x lag (now minus the trade's
  exchange time, 1 at 0 falling to 0 at ``stale_after_s``).
- **Expiry**: timestamp + ``volume_ttl_s``.

Trades are not book state: a book going unusable does not reset this detector.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from detector.config import DetectorConfig
from detector.models import Exchange, Side, Trade
from detector.signals import confidence
from detector.signals.signal import (
    Signal,
    SignalReason,
    SignalStrength,
    SignalType,
    strength_for,
)


@dataclass(slots=True)
class _State:
    history: deque[float]
    bucket: int
    last_ms: int  # the newest trade's clock time: silences longer than a stall are not history
    partial: bool = True  # the bucket we started in, or resumed in after a stall
    volume: float = 0.0
    buy_volume: float = 0.0
    trades: int = 0
    mean: float = 0.0  # of the history, refreshed when a bucket completes
    signalled: SignalStrength | None = None


class VolumeSpikeDetector:
    """Bucketed trade volume per (exchange, symbol), with per-bucket dedup."""

    def __init__(self, config: DetectorConfig) -> None:
        rules = config.rules
        self._config = config
        self._bucket_ms = max(1, round(rules.volume_bucket_s * 1000))
        self._ttl_ms = round(rules.volume_ttl_s * 1000)
        self._stall_ms = config.stale_after_ms
        self._states: dict[tuple[Exchange, str], _State] = {}
        self.suppressed = 0

    def on_trade(self, symbol: str, trade: Trade, now_ms: int) -> list[Signal]:
        rules = self._config.rules
        key = (trade.exchange, symbol)
        bucket = now_ms // self._bucket_ms
        state = self._states.get(key)
        if state is None:
            state = _State(
                history=deque(maxlen=rules.volume_history), bucket=bucket, last_ms=now_ms
            )
            self._states[key] = state
        else:
            if bucket > state.bucket:
                _roll(state, bucket, stalled=now_ms - state.last_ms > self._stall_ms)
            state.last_ms = max(state.last_ms, now_ms)
        # A clock stepping back counts into the current bucket: history is never rewritten.
        quote = trade.price * trade.qty
        state.volume += quote
        if trade.side is Side.BUY:
            state.buy_volume += quote
        state.trades += 1
        if len(state.history) < rules.volume_warmup or state.mean <= 0.0:
            return []
        if state.trades < rules.volume_min_trades or state.volume < rules.volume_min_notional_usd:
            return []
        ratio = state.volume / state.mean
        strength = strength_for(ratio, rules.volume_ratio)
        if strength is None:
            return []
        if state.signalled is not None and strength.rank <= state.signalled.rank:
            self.suppressed += 1
            return []
        reason = SignalReason.NEW if state.signalled is None else SignalReason.UPGRADE
        state.signalled = strength
        return [self._signal(symbol, trade, state, ratio, strength, reason, now_ms)]

    def _signal(
        self,
        symbol: str,
        trade: Trade,
        state: _State,
        ratio: float,
        strength: SignalStrength,
        reason: SignalReason,
        now_ms: int,
    ) -> Signal:
        rules = self._config.rules
        bucket_start = state.bucket * self._bucket_ms
        value, factors = confidence.combine(
            {
                "history": confidence.history_factor(len(state.history), rules.volume_history),
                "lag": confidence.linear_decay(
                    now_ms - trade.trade_time_ms, self._config.stale_after_ms
                ),
            }
        )
        return Signal(
            type=SignalType.VOLUME_SPIKE,
            symbol=symbol,
            strength=strength,
            confidence=value,
            timestamp=now_ms,
            expires_at=now_ms + self._ttl_ms,
            key=f"{SignalType.VOLUME_SPIKE.value}:{trade.exchange.value}:{symbol}:{bucket_start}",
            details={
                "exchange": trade.exchange.value,
                "bucket_start_ms": bucket_start,
                "bucket_s": rules.volume_bucket_s,
                "bucket_volume_usd": state.volume,
                "buy_volume_usd": state.buy_volume,
                "sell_volume_usd": state.volume - state.buy_volume,
                "bucket_trades": state.trades,
                "mean_volume_usd": state.mean,
                "ratio": ratio,
                "history_buckets": len(state.history),
                "last_price": trade.price,
                "reason": reason.value,
                "confidence_factors": factors,
            },
        )


def _roll(state: _State, bucket: int, *, stalled: bool) -> None:
    """Close the current bucket (and any empty ones after it) and start ``bucket``.

    After a stall the empty buckets are unknown, not zero: they are skipped, and ``bucket``
    (whose trades began mid-way) is partial.
    """
    history = state.history
    if not state.partial:
        history.append(state.volume)
    if not stalled:
        for _ in range(min(bucket - state.bucket - 1, history.maxlen or 0)):
            history.append(0.0)
    state.bucket = bucket
    state.partial = stalled
    state.volume = 0.0
    state.buy_volume = 0.0
    state.trades = 0
    state.signalled = None
    state.mean = sum(history) / len(history) if history else 0.0
