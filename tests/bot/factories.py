"""Signals as the detector emits them (every details key of docs/signals.md), for bot tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from detector.analyzer import CloseReason, Direction, TrackedOpportunity
from detector.models import Exchange
from detector.opportunity import ArbitrageOpportunity
from detector.signals import Signal, SignalStrength, SignalType

T0 = 1_786_000_000_000  # 2026-08-06, ms
TTL_MS = 30_000


def arbitrage(
    net: float = 0.15,
    *,
    symbol: str = "BTCUSDT",
    strength: SignalStrength | None = None,
    timestamp: int = T0,
    opened_ms: int = T0,
    direction: str = "buy_binance_sell_bybit",
    reason: str = "new",
    expected_profit: float = 12.5,
    max_volume: float = 0.5,
) -> Signal:
    """An ARBITRAGE signal with ``net`` % net profit (strength from the default tiers)."""
    if strength is None:
        strength = (
            SignalStrength.STRONG
            if net >= 0.4
            else SignalStrength.MODERATE
            if net >= 0.2
            else SignalStrength.WEAK
        )
    buy, sell = direction.removeprefix("buy_").split("_sell_")
    buy_price = 64_123.5
    sell_price = round(buy_price * (1 + (net + 0.105) / 100), 1)  # on the 0.1 tick
    opportunity_id = f"{symbol}:{direction}:{opened_ms}"
    details: dict[str, Any] = {
        "symbol": symbol,
        "direction": direction,
        "buy_exchange": buy,
        "sell_exchange": sell,
        "buy_price": buy_price,
        "sell_price": sell_price,
        "profit_absolute": sell_price - buy_price,
        "profit_percentage": net + 0.105,
        "net_profit_percentage": net,
        "max_volume": max_volume,
        "notional": max_volume * buy_price,
        "expected_profit": expected_profit,
        "timestamp": timestamp,
        "opportunity_id": opportunity_id,
        "event": "opened" if reason == "new" else "updated",
        "reason": reason,
        "peak_net_profit_percentage": net,
        "confidence_factors": {"age": 0.98, "depth": 1.0, "skew": 0.9},
    }
    return Signal(
        type=SignalType.ARBITRAGE,
        symbol=symbol,
        strength=strength,
        confidence=0.88,
        timestamp=timestamp,
        expires_at=timestamp + TTL_MS,
        key=f"arbitrage:{opportunity_id}",
        details=details,
    )


def other(
    kind: SignalType,
    strength: SignalStrength = SignalStrength.WEAK,
    *,
    symbol: str = "BTCUSDT",
    timestamp: int = T0,
    start_ms: int = T0,
    **changes: Any,
) -> Signal:
    """A non-arbitrage signal of ``kind`` with realistic details (``changes`` replace some).

    Funding and momentum carry the keys of signals stored before venues became N (two rates,
    ``other_exchange_mid``): the bot must keep reading them. :func:`funding` and
    :func:`momentum` make the N-venue ones.
    """
    details = {**_DETAILS[kind], **changes}
    if kind is SignalType.MOMENTUM_BREAKOUT:
        key = f"{kind.value}:{symbol}:up:{start_ms}"
    elif kind is SignalType.FUNDING_RATE_DIVERGENCE:
        key = f"{kind.value}:{symbol}:bybit:{start_ms}"
    else:
        key = f"{kind.value}:{details['exchange']}:{symbol}:{start_ms}"
    return Signal(
        type=kind,
        symbol=symbol,
        strength=strength,
        confidence=0.7,
        timestamp=timestamp,
        expires_at=timestamp + TTL_MS,
        key=key,
        details=details,
    )


def funding(
    rates_8h_pct: dict[str, float],
    strength: SignalStrength = SignalStrength.WEAK,
    *,
    symbol: str = "BTCUSDT",
    timestamp: int = T0,
    interval_hours: dict[str, float] | None = None,
) -> Signal:
    """A FUNDING_RATE_DIVERGENCE as the N-venue detector emits it: per-venue keys for every venue
    with a rate, the highest rate against the lowest."""
    hours = {venue: 8.0 for venue in rates_8h_pct} | (interval_hours or {})
    higher = max(rates_8h_pct, key=lambda v: rates_8h_pct[v])
    lower = min(rates_8h_pct, key=lambda v: rates_8h_pct[v])
    details: dict[str, Any] = {}
    for venue, pct in rates_8h_pct.items():
        details[f"{venue}_rate"] = pct / 100 * hours[venue] / 8
        details[f"{venue}_interval_hours"] = hours[venue]
        details[f"{venue}_rate_8h_pct"] = pct
    diff = rates_8h_pct[higher] - rates_8h_pct[lower]
    details |= {
        "diff_pct": diff,
        "abs_diff_pct": diff,
        "higher_exchange": higher,
        "lower_exchange": lower,
        "direction_hint": f"short_{higher}_long_{lower}",
    }
    for venue in rates_8h_pct:
        details[f"{venue}_next_funding_ms"] = T0 + 3_600_000
    details |= {"reason": "new", "confidence_factors": {"freshness": 1.0}}
    return Signal(
        type=SignalType.FUNDING_RATE_DIVERGENCE,
        symbol=symbol,
        strength=strength,
        confidence=0.7,
        timestamp=timestamp,
        expires_at=timestamp + TTL_MS,
        key=f"funding_rate_divergence:{symbol}:{higher}:{timestamp}",
        details=details,
    )


def momentum(
    exchange: str, other_mids: dict[str, float], *, timestamp: int = T0, **changes: Any
) -> Signal:
    """A MOMENTUM_BREAKOUT as the N-venue detector emits it: the other venues' live mids."""
    old = dict(_DETAILS[SignalType.MOMENTUM_BREAKOUT])
    del old["other_exchange_mid"]
    details = {**old, "exchange": exchange, "other_mids": other_mids, **changes}
    signal = other(SignalType.MOMENTUM_BREAKOUT, timestamp=timestamp, start_ms=timestamp)
    return replace(signal, details=details)


_DETAILS: dict[SignalType, dict[str, Any]] = {
    SignalType.SPREAD_ANOMALY: {
        "exchange": "bybit",
        "spread_bps": 12.4,
        "mean_bps": 3.1,
        "std_bps": 1.2,
        "z_score": 7.75,
        "bid": 3120.55,
        "ask": 3124.42,
        "window_samples": 120,
        "reason": "new",
        "confidence_factors": {"age": 1.0, "depth": 0.7},
    },
    SignalType.VOLUME_SPIKE: {
        "exchange": "binance",
        "bucket_start_ms": T0,
        "bucket_s": 5.0,
        "bucket_volume_usd": 1_234_567.0,
        "buy_volume_usd": 800_000.0,
        "sell_volume_usd": 434_567.0,
        "bucket_trades": 312,
        "mean_volume_usd": 76_200.0,
        "ratio": 16.2,
        "history_buckets": 24,
        "last_price": 143.215,
        "reason": "upgrade",
        "confidence_factors": {"history": 1.0, "lag": 0.9},
    },
    SignalType.FUNDING_RATE_DIVERGENCE: {
        "binance_rate": 0.0001,
        "bybit_rate": 0.00045,
        "binance_interval_hours": 8,
        "bybit_interval_hours": 8,
        "binance_rate_8h_pct": 0.01,
        "bybit_rate_8h_pct": 0.045,
        "diff_pct": -0.035,
        "abs_diff_pct": 0.035,
        "higher_exchange": "bybit",
        "direction_hint": "short_bybit_long_binance",
        "binance_next_funding_ms": T0 + 3_600_000,
        "bybit_next_funding_ms": T0 + 3_600_000,
        "reason": "new",
        "confidence_factors": {"freshness": 1.0},
    },
    SignalType.MOMENTUM_BREAKOUT: {
        "exchange": "binance",
        "direction": "up",
        "mid": 64_500.0,
        "reference": 64_230.0,
        "break_pct": 0.42,
        "prior_high": 64_230.0,
        "prior_low": 63_900.0,
        "window_bars": 60,
        "bar_s": 1.0,
        "other_exchange_mid": 64_480.0,
        "reason": "new",
        "confidence_factors": {"age": 1.0, "depth": 1.0, "confirmation": 1.0},
    },
}


def closed(
    signal: Signal, duration_ms: int = 4_200, peak_net: float | None = None
) -> TrackedOpportunity:
    """The analyzer's final view of the opportunity an :func:`arbitrage` signal announced."""
    d = signal.details
    net = float(d["net_profit_percentage"]) if peak_net is None else peak_net
    direction = Direction.parse(d["direction"])
    opened = int(str(d["opportunity_id"]).rsplit(":", 1)[1])

    def observation(ts: int, pct: float) -> ArbitrageOpportunity:
        return ArbitrageOpportunity(
            symbol=signal.symbol,
            direction=direction,
            profit_percentage=pct + 0.105,
            profit_absolute=1.0,
            buy_price=float(d["buy_price"]),
            sell_price=float(d["sell_price"]),
            max_volume=float(d["max_volume"]),
            timestamp=ts,
            buy_exchange=Exchange(d["buy_exchange"]),
            sell_exchange=Exchange(d["sell_exchange"]),
            net_profit_percentage=pct,
            expected_profit=float(d["expected_profit"]),
        )

    return TrackedOpportunity(
        id=str(d["opportunity_id"]),
        symbol=signal.symbol,
        direction=direction,
        opened_ms=opened,
        last=observation(opened + duration_ms, 0.05),
        peak=observation(opened + 1, net),
        closed_ms=opened + duration_ms,
        close_reason=CloseReason.BELOW_THRESHOLD,
    )
