"""One exchange's simulated order book: integer levels that evolve and report their diffs (pure).

The book remembers, for every level touched since the last publish, the size it had then. That
gives both the diff to publish and the *published* book (what a subscriber holds right now),
which is what a Bybit snapshot sent on (re)subscription must show.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from random import Random

LevelTicks = tuple[int, int]
"""A level as (price in ticks, size in lots)."""


class SimBook:
    """Bids and asks as ``tick -> lots`` plus sorted tick lists, kept at ``depth`` levels a side."""

    __slots__ = (
        "_ask_ticks",
        "_bid_ticks",
        "_level_mu",
        "_pending_asks",
        "_pending_bids",
        "_rng",
        "asks",
        "bids",
        "depth",
        "net_only",
    )

    def __init__(self, depth: int, level_lots: float, rng: Random, *, net_only: bool) -> None:
        self.depth = depth
        self.net_only = net_only  # diffs leave out levels that ended where they started
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self._bid_ticks: list[int] = []  # ascending; best bid last
        self._ask_ticks: list[int] = []  # ascending; best ask first
        self._pending_bids: dict[int, int] = {}  # tick -> lots at the last publish
        self._pending_asks: dict[int, int] = {}
        self._level_mu = math.log(max(level_lots, 1.0))
        self._rng = rng

    # -- reading ---------------------------------------------------------------------------
    def best_bid(self) -> LevelTicks:
        tick = self._bid_ticks[-1]
        return tick, self.bids[tick]

    def best_ask(self) -> LevelTicks:
        tick = self._ask_ticks[0]
        return tick, self.asks[tick]

    def levels(self, is_bid: bool, limit: int, *, published: bool = False) -> list[LevelTicks]:
        """Up to ``limit`` levels, best first; ``published`` undoes changes not yet published."""
        book = self.bids if is_bid else self.asks
        if published:
            book = dict(book)
            for tick, lots in (self._pending_bids if is_bid else self._pending_asks).items():
                if lots:
                    book[tick] = lots
                else:
                    book.pop(tick, None)
            ticks = sorted(book, reverse=is_bid)
        else:  # slice first: the top of a deep book is read often (OKX checksums)
            ticks = self._bid_ticks[: -limit - 1 : -1] if is_bid else self._ask_ticks[:limit]
        return [(tick, book[tick]) for tick in ticks[:limit]]

    def has_changes(self) -> bool:
        return bool(self._pending_bids or self._pending_asks)

    # -- writing ---------------------------------------------------------------------------
    def set_level(self, is_bid: bool, tick: int, lots: int) -> None:
        """Set a level's size; 0 removes it. Remembers the published size for the diff."""
        if is_bid:
            book, ticks, pending = self.bids, self._bid_ticks, self._pending_bids
        else:
            book, ticks, pending = self.asks, self._ask_ticks, self._pending_asks
        old = book.get(tick, 0)
        if lots == old:
            return
        if tick not in pending:
            pending[tick] = old
        if lots:
            if not old:
                insort(ticks, tick)
            book[tick] = lots
        else:
            del book[tick]
            del ticks[bisect_left(ticks, tick)]

    def take_diff(self) -> tuple[list[LevelTicks], list[LevelTicks]]:
        """(bids, asks) changed since the last call, ascending by price; marks them published."""
        sides = []
        for book, pending in ((self.bids, self._pending_bids), (self.asks, self._pending_asks)):
            if self.net_only:
                changed = [
                    (t, book.get(t, 0)) for t, old in pending.items() if book.get(t, 0) != old
                ]
            else:
                changed = [(t, book.get(t, 0)) for t in pending]
            changed.sort()
            pending.clear()
            sides.append(changed)
        return sides[0], sides[1]

    def random_lots(self, scale: float = 1.0) -> int:
        """A level size: log-normal around the median, with a share of tiny resting orders."""
        rng = self._rng
        if rng.random() < 0.2:
            return 1 + int(rng.random() * 5)
        return max(1, int(scale * math.exp(self._level_mu + 1.1 * rng.gauss())))

    def seed(self, best_bid: int, best_ask: int) -> None:
        """Fill an empty book around the given best prices; the result counts as published."""
        self.set_level(True, best_bid, self.random_lots())
        self.set_level(False, best_ask, self.random_lots())
        self._refill(True, best_bid)
        self._refill(False, best_ask)
        self._pending_bids.clear()
        self._pending_asks.clear()

    def evolve(
        self,
        best_bid: int,
        best_ask: int,
        churn: int,
        *,
        min_bid_lots: int = 0,
        min_ask_lots: int = 0,
    ) -> None:
        """Move the top of the book to the target, churn a few levels, keep ``depth`` a side."""
        set_level = self.set_level
        # Levels on the wrong side of the new top are consumed or cancelled.
        bid_ticks, ask_ticks = self._bid_ticks, self._ask_ticks
        while bid_ticks and bid_ticks[-1] > best_bid:
            set_level(True, bid_ticks[-1], 0)
        while ask_ticks and ask_ticks[0] < best_ask:
            set_level(False, ask_ticks[0], 0)
        self._churn(churn, best_bid, best_ask)
        # The two best ticks are always quoted, so the spread is exactly the target.
        for i in range(2):
            if best_bid - i not in self.bids:
                set_level(True, best_bid - i, self.random_lots())
            if best_ask + i not in self.asks:
                set_level(False, best_ask + i, self.random_lots())
        if self.bids[best_bid] < min_bid_lots:
            set_level(True, best_bid, min_bid_lots + self.random_lots())
        if self.asks[best_ask] < min_ask_lots:
            set_level(False, best_ask, min_ask_lots + self.random_lots())
        self._refill(True, best_bid)
        self._refill(False, best_ask)

    def take(self, is_bid: bool, lots: int) -> tuple[int, int]:
        """A taker order hits the best level of a side: (price tick, lots filled)."""
        tick, resting = self.best_bid() if is_bid else self.best_ask()
        filled = min(lots, resting)
        left = resting - filled
        # A fully taken top level is re-quoted at once (market makers), so the spread holds.
        self.set_level(is_bid, tick, left if left else self.random_lots())
        return tick, filled

    # -- internals -------------------------------------------------------------------------
    def _churn(self, count: int, best_bid: int, best_ask: int) -> None:
        rng = self._rng
        for _ in range(count):
            is_bid = rng.random() < 0.5
            ticks = self._bid_ticks if is_bid else self._ask_ticks
            if not ticks:
                continue
            index = min(int(rng.expovariate(0.12)), len(ticks) - 1)
            tick = ticks[-1 - index] if is_bid else ticks[index]
            roll = rng.random()
            if roll < 0.55:
                self.set_level(is_bid, tick, self.random_lots())
            elif roll < 0.75 and index >= 2:
                self.set_level(is_bid, tick, 0)
            else:
                offset = 1 + int(rng.expovariate(0.15))
                new = best_bid - offset if is_bid else best_ask + offset
                self.set_level(is_bid, new, self.random_lots())

    def _refill(self, is_bid: bool, best: int) -> None:
        """Close holes near the top, then trim or extend the far end to ``depth`` levels."""
        rng, ticks, depth = self._rng, (self._bid_ticks if is_bid else self._ask_ticks), self.depth
        sign = -1 if is_bid else 1
        near = min(20, depth)
        # After a jump of the top the book is sparse just behind it; quote that region again.
        if (
            len(ticks) < near
            or abs((ticks[-near] if is_bid else ticks[near - 1]) - best) > 4 * near
        ):
            tick = best
            for _ in range(near):
                tick += sign * (1 + int(rng.random() * 3))
                if tick not in (self.bids if is_bid else self.asks):
                    self.set_level(is_bid, tick, self.random_lots())
        while len(ticks) > depth:
            self.set_level(is_bid, ticks[0] if is_bid else ticks[-1], 0)
        while len(ticks) < depth:
            worst = ticks[0] if is_bid else ticks[-1]
            self.set_level(
                is_bid, worst + sign * (1 + int(rng.expovariate(0.8))), self.random_lots()
            )
