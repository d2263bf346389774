"""Cross-exchange arbitrage over every ordered pair of venues' books, tracked from open to close.

Pure. The formulas live in :mod:`detector.opportunity`. For each symbol, every ordered pair of the
venues that list it (buy on one, sell on the other: a :class:`Direction`) is evaluated. An
opportunity is reported when its net % reaches ``min_profit_pct``, its notional (max_volume *
buy_price) reaches ``min_notional_usd`` and its max_volume is positive. It is tracked while it
lasts and closed when it falls below a threshold or when either of its two books is unusable or
stale; while one is, nothing of that pair is opened or updated.

Cost: each book's top is read once per update. While nothing of the symbol is open, one bound —
the best bid after fees over the best ask after fees, across its fit books — rejects every pair at
once when it cannot clear the threshold: the usual update costs the same for six pairs as for
two. Otherwise a pair whose top cannot clear it is rejected with four float operations, and the
depth walk runs only for pairs that cross.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from detector.book import SyncedBook
from detector.config import DetectorConfig
from detector.models import Level
from detector.opportunity import ArbitrageOpportunity, Direction, find_opportunity, net_profit_pct

__all__ = [
    "AnalyzerStats",
    "ArbitrageOpportunity",
    "CloseReason",
    "CrossExchangeAnalyzer",
    "Direction",
    "OpportunityEvent",
    "OpportunityEventKind",
    "TrackedOpportunity",
    "find_opportunity",
    "net_profit_pct",
]


class OpportunityEventKind(StrEnum):
    """What happened to a tracked opportunity."""

    OPENED = "opened"
    UPDATED = "updated"  # prices, volume or expected profit changed
    CLOSED = "closed"


class CloseReason(StrEnum):
    """Why a tracked opportunity closed."""

    # Net % or notional fell below its threshold, or a book side emptied.
    BELOW_THRESHOLD = "below_threshold"
    UNSYNCED = "unsynced"  # a book is missing, not synced or crossed
    STALE = "stale"  # a book had no frame for longer than stale_after_s
    DELISTED = "delisted"  # the symbol left the watched market (a venue delisted it)


@dataclass(frozen=True, slots=True)
class TrackedOpportunity:
    """An opportunity from open to close; its ``id`` is ``symbol:direction:opened_ms``."""

    id: str
    symbol: str
    direction: Direction
    opened_ms: int
    last: ArbitrageOpportunity
    peak: ArbitrageOpportunity  # the observation with the highest net %
    updates: int = 0  # UPDATED events so far
    closed_ms: int | None = None
    close_reason: CloseReason | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_ms is None

    @property
    def duration_ms(self) -> int:
        """Open to close; while open, open to the last observation."""
        end = self.closed_ms if self.closed_ms is not None else self.last.timestamp
        return end - self.opened_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "symbol": self.symbol,
            "direction": self.direction.value,
            "opened_ms": self.opened_ms,
            "closed_ms": self.closed_ms,
            "close_reason": None if self.close_reason is None else self.close_reason.value,
            "duration_ms": self.duration_ms,
            "updates": self.updates,
            "last": self.last.to_dict(),
            "peak": self.peak.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class OpportunityEvent:
    """A change in the life of a tracked opportunity."""

    kind: OpportunityEventKind
    tracked: TrackedOpportunity

    @property
    def opportunity(self) -> ArbitrageOpportunity:
        return self.tracked.last


@dataclass(frozen=True, slots=True)
class AnalyzerStats:
    """Performance of the detected opportunities (of one symbol, or of all when symbol is None).

    Peak figures cover every opportunity opened (closed and still open); durations cover closed
    ones. Undefined averages (nothing to average) are None.
    """

    symbol: str | None
    opened: int
    closed: int
    open_now: int
    avg_peak_net_pct: float | None
    max_peak_net_pct: float | None
    mean_duration_ms: float | None
    median_duration_ms: float | None
    max_duration_ms: int | None
    total_expected_profit_at_peak: float
    by_direction: dict[str, int]  # opened count per Direction value
    by_close_reason: dict[str, int]  # closed count per CloseReason value

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "opened": self.opened,
            "closed": self.closed,
            "open_now": self.open_now,
            "avg_peak_net_pct": self.avg_peak_net_pct,
            "max_peak_net_pct": self.max_peak_net_pct,
            "mean_duration_ms": self.mean_duration_ms,
            "median_duration_ms": self.median_duration_ms,
            "max_duration_ms": self.max_duration_ms,
            "total_expected_profit_at_peak": self.total_expected_profit_at_peak,
            "by_direction": dict(self.by_direction),
            "by_close_reason": dict(self.by_close_reason),
        }


@dataclass(slots=True)
class _Closed:
    """Running totals of the closed opportunities of one symbol (durations kept for the median)."""

    count: int = 0
    peak_net_sum: float = 0.0
    peak_net_max: float = float("-inf")
    peak_profit_sum: float = 0.0
    durations: list[int] = field(default_factory=list)
    by_direction: Counter[Direction] = field(default_factory=Counter)
    by_reason: dict[CloseReason, int] = field(default_factory=lambda: dict.fromkeys(CloseReason, 0))


_Key = tuple[str, Direction]


@dataclass(frozen=True, slots=True)
class _Pair:
    """One ordered pair of a symbol's books, by index, with what evaluating it needs."""

    buy: int
    sell: int
    direction: Direction
    key: _Key
    fee_buy: float
    fee_sell: float
    cost: float  # 1 + fee_buy
    keep: float  # 1 - fee_sell


class CrossExchangeAnalyzer:
    """Finds and tracks arbitrage between every pair of venues' books of each symbol."""

    def __init__(self, config: DetectorConfig) -> None:
        # The pairs stats() reports, even at zero: every ordered pair of the watched venues.
        self._directions = Direction.between(config.exchanges)
        self._min_profit = config.min_profit_pct
        self._min_notional = config.min_notional_usd
        self._stale_after_ms = config.stale_after_ms
        self._fees = {exchange: config.fee(exchange) for exchange in config.exchanges}
        self._open: dict[_Key, TrackedOpportunity] = {}
        # Per symbol, its books (as last passed) and their ordered pairs: (buy, sell, direction).
        self._pairs: dict[
            str, tuple[Sequence[SyncedBook], list[_Pair], list[float], list[float]]
        ] = {}
        self._open_in: Counter[str] = Counter()  # open opportunities per symbol
        self._closed: dict[str, _Closed] = {}
        self._last_opened: dict[_Key, tuple[int, int]] = {}  # opened_ms, repeats at that ms
        # Depth walks per direction: how often two tops crossed after fees (the rest of the
        # updates were rejected from the tops alone).
        self.walks: Counter[Direction] = Counter()

    def update(
        self, symbol: str, books: Sequence[SyncedBook], now_ms: int
    ) -> list[OpportunityEvent]:
        """Re-evaluate ``symbol`` after a change of one of its ``books`` (one per venue, in a
        fixed order), or a clock tick for staleness."""
        cached = self._pairs.get(symbol)
        if cached is None or cached[0] is not books:  # the pipeline passes one tuple per symbol
            cached = self._pairs[symbol] = (books, *self._plan(symbol, books))
        _, pairs, keeps, costs = cached
        # Each book once: why it is unfit (None: fit), and its top of book.
        stale_after_ms = self._stale_after_ms
        fitness: list[CloseReason | None] = []
        asks: list[Level | None] = []
        bids: list[Level | None] = []
        # The best a sale can keep and the least a purchase can cost after fees, over the fit
        # books: no pair can clear the threshold unless this best combination does.
        best_keep, least_cost = 0.0, math.inf
        for i, book in enumerate(books):
            levels = book.levels
            if not book.usable:
                fitness.append(CloseReason.UNSYNCED)
                asks.append(None)
                bids.append(None)
                continue
            age = book.age_ms(now_ms)
            if age is None or age > stale_after_ms:
                fitness.append(CloseReason.STALE)
                asks.append(None)
                bids.append(None)
                continue
            fitness.append(None)
            ask, bid = levels.best_ask(), levels.best_bid()
            asks.append(ask)
            bids.append(bid)
            if ask is not None and ask[0] * costs[i] < least_cost:
                least_cost = ask[0] * costs[i]
            if bid is not None and bid[0] * keeps[i] > best_keep:
                best_keep = bid[0] * keeps[i]
        min_profit = self._min_profit
        if not self._open_in.get(symbol) and (
            least_cost == math.inf or (best_keep / least_cost - 1.0) * 100.0 < min_profit
        ):
            # Nothing open to close, and nothing can open: each pair's net % is at most this
            # bound's (division, subtraction and scaling are monotonic in floats too).
            return []
        events: list[OpportunityEvent] = []
        opened = self._open
        for pair in pairs:
            key = pair.key
            tracked = opened.get(key)
            unfit_buy, unfit_sell = fitness[pair.buy], fitness[pair.sell]
            if unfit_buy is not None or unfit_sell is not None:
                if tracked is not None:
                    # A book that lost sync outranks one that only went quiet.
                    unsynced = CloseReason.UNSYNCED in (unfit_buy, unfit_sell)
                    reason = CloseReason.UNSYNCED if unsynced else CloseReason.STALE
                    events.append(self._close(key, tracked, now_ms, reason))
                continue
            best_ask, best_bid = asks[pair.buy], bids[pair.sell]
            # Quick reject on the top of book (net_profit_pct, inlined): runs on every book
            # update for every pair, the walk only on crossings.
            if (
                best_ask is None
                or best_bid is None
                or (best_bid[0] * pair.keep / (best_ask[0] * pair.cost) - 1.0) * 100.0 < min_profit
            ):
                if tracked is not None:
                    events.append(self._close(key, tracked, now_ms, CloseReason.BELOW_THRESHOLD))
                continue
            self._crossing(pair, books, tracked, now_ms, events)
        return events

    def _plan(
        self, symbol: str, books: Sequence[SyncedBook]
    ) -> tuple[list[_Pair], list[float], list[float]]:
        """Every ordered pair of ``books`` by index, with its key and fees: (0, 1), (1, 0), ...;
        and per book what a sale there keeps (1 - fee) and what a purchase costs (1 + fee)."""
        keeps = [1.0 - self._fees[book.exchange] for book in books]
        costs = [1.0 + self._fees[book.exchange] for book in books]
        pairs = []
        for i in range(len(books)):
            for j in range(i + 1, len(books)):
                for buy, sell in ((i, j), (j, i)):
                    direction = Direction.of(books[buy].exchange, books[sell].exchange)
                    fee_buy = self._fees[direction.buy_exchange]
                    fee_sell = self._fees[direction.sell_exchange]
                    pairs.append(
                        _Pair(
                            buy,
                            sell,
                            direction,
                            (symbol, direction),
                            fee_buy,
                            fee_sell,
                            1.0 + fee_buy,
                            1.0 - fee_sell,
                        )
                    )
        return pairs, keeps, costs

    def _crossing(
        self,
        pair: _Pair,
        books: Sequence[SyncedBook],
        tracked: TrackedOpportunity | None,
        now_ms: int,
        events: list[OpportunityEvent],
    ) -> None:
        """The tops of ``pair`` cross after fees: walk the depth, then open, update or close."""
        key = pair.key
        symbol, direction = key
        self.walks[direction] += 1
        found = find_opportunity(
            symbol,
            direction,
            books[pair.buy].levels,
            books[pair.sell].levels,
            pair.fee_buy,
            pair.fee_sell,
            now_ms,
        )
        if found is None or found.max_volume <= 0.0 or found.notional < self._min_notional:
            if tracked is not None:
                events.append(self._close(key, tracked, now_ms, CloseReason.BELOW_THRESHOLD))
        elif tracked is None:
            events.append(self._open_new(key, found))
        elif _changed(tracked.last, found):
            peak = tracked.peak
            if found.net_profit_percentage > peak.net_profit_percentage:
                peak = found
            tracked = replace(tracked, last=found, peak=peak, updates=tracked.updates + 1)
            self._open[key] = tracked
            events.append(OpportunityEvent(OpportunityEventKind.UPDATED, tracked))

    def forget(self, symbol: str, now_ms: int) -> list[OpportunityEvent]:
        """``symbol`` is no longer watched: its open opportunities close (DELISTED); its
        closed ones stay in :meth:`stats`."""
        self._pairs.pop(symbol, None)
        events = [
            self._close(key, tracked, now_ms, CloseReason.DELISTED)
            for key, tracked in list(self._open.items())
            if key[0] == symbol
        ]
        self._open_in.pop(symbol, None)
        return events

    def open_opportunities(self) -> list[TrackedOpportunity]:
        """Opportunities open now, oldest first."""
        return sorted(self._open.values(), key=lambda t: (t.opened_ms, t.id))

    def stats(self, symbol: str | None = None) -> AnalyzerStats:
        """Counts, peaks and durations of ``symbol`` (or of every symbol when None)."""
        if symbol is None:
            closed = [self._closed[s] for s in sorted(self._closed)]
        else:
            closed = [self._closed[symbol]] if symbol in self._closed else []
        live = [t for t in self.open_opportunities() if symbol is None or t.symbol == symbol]
        opened = sum(c.count for c in closed) + len(live)
        net_sum = sum((c.peak_net_sum for c in closed), 0.0) + sum(
            (t.peak.net_profit_percentage for t in live), 0.0
        )
        net_maxes = [c.peak_net_max for c in closed] + [t.peak.net_profit_percentage for t in live]
        profit = sum((c.peak_profit_sum for c in closed), 0.0) + sum(
            (t.peak.expected_profit for t in live), 0.0
        )
        durations = [d for c in closed for d in c.durations]
        by_direction = {d.value: sum(c.by_direction[d] for c in closed) for d in self._directions}
        for c in closed:  # a pair of venues no longer watched, from before a change of EXCHANGES
            for d in c.by_direction:
                by_direction.setdefault(d.value, sum(k.by_direction[d] for k in closed))
        for t in live:
            by_direction[t.direction.value] = by_direction.get(t.direction.value, 0) + 1
        return AnalyzerStats(
            symbol=symbol,
            opened=opened,
            closed=len(durations),
            open_now=len(live),
            avg_peak_net_pct=net_sum / opened if opened else None,
            max_peak_net_pct=max(net_maxes) if net_maxes else None,
            mean_duration_ms=sum(durations) / len(durations) if durations else None,
            median_duration_ms=float(statistics.median(durations)) if durations else None,
            max_duration_ms=max(durations) if durations else None,
            total_expected_profit_at_peak=profit,
            by_direction=by_direction,
            by_close_reason={r.value: sum(c.by_reason[r] for c in closed) for r in CloseReason},
        )

    def _open_new(self, key: _Key, found: ArbitrageOpportunity) -> OpportunityEvent:
        symbol, direction = key
        opened_ms = found.timestamp
        last_ms, repeats = self._last_opened.get(key, (None, 0))
        repeats = repeats + 1 if last_ms == opened_ms else 0
        self._last_opened[key] = (opened_ms, repeats)
        ident = f"{symbol}:{direction.value}:{opened_ms}"
        if repeats:  # closed and reopened within the same millisecond
            ident = f"{ident}#{repeats}"
        tracked = TrackedOpportunity(
            id=ident,
            symbol=symbol,
            direction=direction,
            opened_ms=opened_ms,
            last=found,
            peak=found,
        )
        self._open[key] = tracked
        self._open_in[symbol] += 1
        return OpportunityEvent(OpportunityEventKind.OPENED, tracked)

    def _close(
        self, key: _Key, tracked: TrackedOpportunity, now_ms: int, reason: CloseReason
    ) -> OpportunityEvent:
        del self._open[key]
        self._open_in[key[0]] -= 1
        closed = replace(
            tracked, closed_ms=max(now_ms, tracked.last.timestamp), close_reason=reason
        )
        totals = self._closed.setdefault(tracked.symbol, _Closed())
        totals.count += 1
        totals.peak_net_sum += closed.peak.net_profit_percentage
        totals.peak_net_max = max(totals.peak_net_max, closed.peak.net_profit_percentage)
        totals.peak_profit_sum += closed.peak.expected_profit
        totals.durations.append(closed.duration_ms)
        totals.by_direction[closed.direction] += 1
        totals.by_reason[reason] += 1
        return OpportunityEvent(OpportunityEventKind.CLOSED, closed)


def _changed(old: ArbitrageOpportunity, new: ArbitrageOpportunity) -> bool:
    return (
        old.buy_price != new.buy_price
        or old.sell_price != new.sell_price
        or old.max_volume != new.max_volume
        or old.expected_profit != new.expected_profit
    )
