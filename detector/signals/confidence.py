"""Confidence of a signal, 0..1: the product of a few documented factors, each in [0, 1].

Factors (the detectors pick theirs; see docs/signals.md):

- **age**: ``1 - age / stale_after_ms``, clamped to [0, 1]; age is now minus the book's last
  receive time (for two-book signals, the older book). A book never heard from counts as 0.
- **depth**: ``notional / confidence_depth_notional_usd``, clamped to [0.3, 1]. Arbitrage uses the
  opportunity's executable notional; single-book signals the thinner side of the top of book
  (``min(bid price * size, ask price * size)``).
- **skew**: cross-exchange clock skew, ``|(recv - event) of binance - (recv - event) of bybit|``
  from each book's last frame; ``1 - 0.8 * skew / confidence_skew_ms``, clamped to [0.2, 1]. An
  unknown skew (a book without times) counts as the floor, 0.2.
- **history**: how much history backs a statistical signal: ``samples / full``, clamped to [0, 1].
- **lag**: like age, for a trade: now minus the trade's exchange time, over stale_after_ms.
- **freshness**: for funding, the older of the two rates' age over the funding TTL, clamped to
  [0.2, 1] (funding rates change slowly, so an old rate is doubtful, not worthless).
- **confirmation**: for momentum, 1 when the other exchange's live mid also breaks out, else 0.6.
"""

from __future__ import annotations

from detector.book import OrderBook, SyncedBook

DEPTH_FLOOR = 0.3
SKEW_FLOOR = 0.2
FRESHNESS_FLOOR = 0.2
UNCONFIRMED = 0.6
_DECIMALS = 4


def linear_decay(elapsed: float | None, full: float, floor: float = 0.0) -> float:
    """1 at ``elapsed`` <= 0 falling linearly to ``floor`` at ``full``; ``floor`` when unknown."""
    if elapsed is None:
        return floor
    if elapsed <= 0:
        return 1.0
    if full <= 0:
        return floor
    return max(floor, 1.0 - (1.0 - floor) * elapsed / full)


def age_factor(book: SyncedBook, now_ms: int, stale_after_ms: int) -> float:
    """Freshness of one book: 1 at age 0, 0 at ``stale_after_ms``."""
    return linear_decay(book.age_ms(now_ms), stale_after_ms)


def pair_age_factor(a: SyncedBook, b: SyncedBook, now_ms: int, stale_after_ms: int) -> float:
    """The age factor of the older of two books."""
    return min(age_factor(a, now_ms, stale_after_ms), age_factor(b, now_ms, stale_after_ms))


def depth_factor(notional: float, full_notional: float) -> float:
    """``notional / full_notional`` clamped to [DEPTH_FLOOR, 1]."""
    if full_notional <= 0:
        return 1.0
    return max(DEPTH_FLOOR, min(1.0, notional / full_notional))


def top_notional(levels: OrderBook) -> float:
    """Quote value of the thinner side of the top of book; 0 when a side is empty."""
    bid = levels.best_bid()
    ask = levels.best_ask()
    if bid is None or ask is None:
        return 0.0
    return min(bid[0] * bid[1], ask[0] * ask[1])


def clock_skew_ms(a: SyncedBook, b: SyncedBook) -> int | None:
    """Difference of the two books' receive delays (recv - exchange time), or None if unknown."""
    if None in (a.last_recv_ms, a.last_event_ms, b.last_recv_ms, b.last_event_ms):
        return None
    assert a.last_recv_ms is not None and a.last_event_ms is not None
    assert b.last_recv_ms is not None and b.last_event_ms is not None
    return abs((a.last_recv_ms - a.last_event_ms) - (b.last_recv_ms - b.last_event_ms))


def skew_factor(skew_ms: int | None, full_skew_ms: float) -> float:
    """1 at no skew, falling linearly to SKEW_FLOOR at ``full_skew_ms`` and staying there."""
    return linear_decay(skew_ms, full_skew_ms, SKEW_FLOOR)


def history_factor(samples: int, full: int) -> float:
    """``samples / full`` clamped to [0, 1]."""
    if full <= 0:
        return 1.0
    return max(0.0, min(1.0, samples / full))


def combine(factors: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The confidence (product of the factors) and the factors rounded for a signal's details."""
    confidence = 1.0
    for value in factors.values():
        confidence *= value
    return confidence, {name: round(value, _DECIMALS) for name, value in factors.items()}
