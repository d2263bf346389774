"""The market model: one fair price per symbol, a real book per exchange, frames as they are sent.

Pure and deterministic: a seeded :class:`random.Random` per component, time advanced explicitly
in milliseconds, no I/O. :meth:`MarketModel.advance` returns what the exchanges publish
(Binance combined-stream frames, Bybit v5 topic frames, OKX v5 channel pushes) in time order;
the request handlers (:meth:`~MarketModel.binance_depth_snapshot`, the Bybit ``*_snapshot`` and
the ``okx_*`` methods) answer what a client asks for. A recording is made by
:mod:`detector.simulator.session`; a loopback server can serve the same calls over real sockets.

The simulated venues are Binance and Bybit, plus OKX when asked (``venues``) or when the
scenario names it. Every venue draws from random streams of its own: with OKX or without, the
Binance and Bybit frames of a seed are the same.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from enum import IntEnum
from random import Random
from typing import Any

from detector.models import Exchange
from detector.simulator import wire
from detector.simulator.book import SimBook
from detector.simulator.effects import Effects
from detector.simulator.instruments import format_decimal, profile
from detector.simulator.market_okx import OkxPublisher
from detector.simulator.scenarios import Scenario, scenario_venues
from detector.simulator.state import FeedRates, SymbolState
from detector.simulator.tickers import next_funding_ms
from detector.simulator.wire import Disconnect, Frame, Output

BINANCE, BYBIT, OKX = Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX
BASE_VENUES: tuple[Exchange, ...] = (BINANCE, BYBIT)
"""The venues every model simulates (and every recording holds, unless asked for more)."""


def resolve_venues(
    venues: Iterable[Exchange] | None, scenario: Scenario | None = None
) -> tuple[Exchange, ...]:
    """The simulated venues in :class:`Exchange` order: ``venues`` (None: Binance and Bybit
    plus any venue the scenario names). ValueError unless Binance and Bybit are among them."""
    if venues is None:
        named = scenario_venues(scenario.events) if scenario is not None else set()
        chosen = set(BASE_VENUES) | named
    else:
        chosen = set(venues)
        missing = [e.value for e in BASE_VENUES if e not in chosen]
        if missing:
            raise ValueError(f"the simulator always runs binance and bybit; add {missing}")
    return tuple(e for e in Exchange if e in chosen)


class _Kind(IntEnum):
    BINANCE_DEPTH = 0
    BYBIT_BOOK = 1
    BYBIT_TICKER = 2
    BINANCE_MARK = 3
    BINANCE_TRADE = 4
    BYBIT_TRADE = 5
    DISCONNECT = 6
    OKX_BOOK = 7
    OKX_TICKER = 8
    OKX_TRADE = 9
    OKX_FUNDING = 10


class MarketModel:
    """Every venue's view of a simulated market, stepped explicitly in milliseconds."""

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int,
        start_ms: int,
        scenario: Scenario | None = None,
        rates: FeedRates | None = None,
        *,
        venues: Iterable[Exchange] | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("the market needs at least one symbol")
        self.rates = rates or FeedRates()
        self.scenario = scenario
        self.start_ms = start_ms
        self.venues = resolve_venues(venues, scenario)
        self._now = start_ms
        self._effects = Effects(scenario, start_ms, symbols, self.venues)
        self._symbols = [
            SymbolState(profile(s), seed, start_ms, self.rates, self._effects, self.venues)
            for s in symbols
        ]
        self._by_name = {s.symbol: s for s in self._symbols}
        ids = Random(f"{seed}/binance-ids")
        self._bn_id = 11_270_000_000_000 + int(ids.random() * 1_000_000_000)
        self._heap: list[tuple[int, int, _Kind, int]] = []
        self._seq = 0
        self._out: list[Output] = []
        self._okx = OkxPublisher(self.rates, self._effects, seed, self._emit)
        r = self.rates
        for i, s in enumerate(self._symbols):
            s.bn_last_u = self._bn_id - int(s.ids.random() * 5000)  # the event before we joined
            for exchange in self.venues:
                bid, ask, _, _ = s.targets(exchange, start_ms)
                s.books[exchange].seed(bid, ask)
            s.bn_top = (*s.books[BINANCE].best_bid(), *s.books[BINANCE].best_ask())
            s.ticker.update(s.fair(start_ms), start_ms)
            s.ticker_sent = self._ticker_fields(s, start_ms)
            jitter = s.ids.random
            # A venue that does not list the symbol publishes nothing of it (the draws are
            # made all the same: the other symbols' markets do not move).
            bn, by = s.profile.listed(BINANCE), s.profile.listed(BYBIT)
            due = [  # in the order of the heap's ties
                (bn, r.binance_depth_ms + int(jitter() * 10), _Kind.BINANCE_DEPTH),
                (by, self._uniform(s.ids, r.bybit_book_ms), _Kind.BYBIT_BOOK),
                (by, self._uniform(s.ids, r.bybit_ticker_ms), _Kind.BYBIT_TICKER),
                (bn, 1000 - start_ms % 1000, _Kind.BINANCE_MARK),
                (bn, 1 + int(jitter() * 300), _Kind.BINANCE_TRADE),
                (by, 1 + int(jitter() * 300), _Kind.BYBIT_TRADE),
            ]
            for listed, delay, kind in due:
                if listed:
                    self._push(start_ms + delay, kind, i)
            if OKX in self.venues:
                okx = self._okx.add(s, start_ms).ids  # OKX's own jitter
                book, ticker = self._uniform(okx, r.okx_book_ms), 50 + int(okx.random() * 300)
                trade, funding = 1 + int(okx.random() * 300), self._uniform(okx, r.okx_funding_ms)
                if s.profile.listed(OKX):
                    self._push(start_ms + book, _Kind.OKX_BOOK, i)
                    self._push(start_ms + ticker, _Kind.OKX_TICKER, i)
                    self._push(start_ms + trade, _Kind.OKX_TRADE, i)
                    self._push(start_ms + funding, _Kind.OKX_FUNDING, i)
        self._drops = [Disconnect(*drop) for drop in self._effects.disconnects()]
        for i, drop in enumerate(self._drops):
            self._push(drop.ts, _Kind.DISCONNECT, i)

    # -- public --------------------------------------------------------------------------------
    @property
    def now_ms(self) -> int:
        return self._now

    @property
    def symbols(self) -> list[str]:
        return [s.symbol for s in self._symbols]

    def advance(self, until_ms: int) -> list[Output]:
        """Run the market up to ``until_ms`` (inclusive); what the exchanges sent, in time order."""
        if until_ms < self._now:
            raise ValueError(f"time runs forward: {until_ms} < {self._now}")
        out = self._out = []
        heap = self._heap
        while heap and heap[0][0] <= until_ms:
            now, _, kind, index = heapq.heappop(heap)
            self._now = now
            if kind is _Kind.DISCONNECT:
                out.append(self._drops[index])
                continue
            s = self._symbols[index]
            if kind is _Kind.BINANCE_DEPTH:
                self._push(
                    now + self.rates.binance_depth_ms + int(s.ids.random() * 12), kind, index
                )
                if s.active():
                    self._publish_binance(s, now)
            elif kind is _Kind.BYBIT_BOOK:
                self._push(now + self._uniform(s.ids, self.rates.bybit_book_ms), kind, index)
                if s.active():
                    self._publish_bybit(s, now)
            elif kind is _Kind.BYBIT_TICKER:
                self._push(now + self._uniform(s.ids, self.rates.bybit_ticker_ms), kind, index)
                self._publish_ticker(s, now)
            elif kind is _Kind.BINANCE_MARK:
                self._push(now + self.rates.binance_mark_ms, kind, index)
                self._publish_mark(s, now)
            elif kind is _Kind.BINANCE_TRADE or kind is _Kind.BYBIT_TRADE:
                exchange = BINANCE if kind is _Kind.BINANCE_TRADE else BYBIT
                self._push(now + self._trade(s, exchange, now), kind, index)
            else:
                self._advance_okx(kind, s, index, now)
        self._now = until_ms
        return out

    def _advance_okx(self, kind: _Kind, s: SymbolState, index: int, now: int) -> None:
        okx, r = self._okx, self.rates
        rng = okx.states[s.symbol].ids
        if kind is _Kind.OKX_BOOK:
            self._push(now + self._uniform(rng, r.okx_book_ms), kind, index)
            if s.active():
                okx.publish_book(s, now)
        elif kind is _Kind.OKX_TICKER:
            self._push(now + self._uniform(rng, r.okx_ticker_ms), kind, index)
            okx.publish_ticker(s, now)
        elif kind is _Kind.OKX_TRADE:
            self._push(now + okx.trade(s, now), kind, index)
        else:
            self._push(now + self._uniform(rng, r.okx_funding_ms), kind, index)
            okx.publish_funding(s, now)

    def fair_price(self, symbol: str) -> float:
        """The fair price of ``symbol`` now (the common price both books are built around)."""
        return self._by_name[symbol].fair(self._now)

    def book(self, exchange: Exchange, symbol: str) -> SimBook:
        """The exchange's current book of ``symbol`` (read it, do not change it)."""
        return self._by_name[symbol].books[exchange]

    def binance_depth_snapshot(self, symbol: str, limit: int = wire.BINANCE_DEPTH_LIMIT) -> Any:
        """The body of ``GET /fapi/v1/depth?symbol=..&limit=..`` now.

        ``lastUpdateId`` falls inside the next depth event's ``[U, u]`` (the book already holds
        part of that event), so the documented bridging rule ``U <= lastUpdateId <= u`` holds.
        """
        s = self._by_name[symbol]
        book = s.books[BINANCE]
        if s.bn_next_first is None:
            s.bn_next_first = self._bn_id + 1 + int(s.ids.random() * 40)
        last_id = s.bn_next_first + (int(s.ids.random() * 200) if book.has_changes() else 0)
        self._bn_id = max(self._bn_id, last_id)
        s.bn_min_u = max(s.bn_min_u, last_id)
        spec, now = s.profile.binance, self._now
        bids = wire.wire_levels(spec, book.levels(True, limit))
        asks = wire.wire_levels(spec, book.levels(False, limit))
        return wire.binance_rest_depth(last_id, now, now - 1 - int(s.ids.random() * 5), bids, asks)

    def bybit_orderbook_snapshot(self, symbol: str) -> Any:
        """The ``orderbook.50`` snapshot a (re)subscription gets: the book as last published."""
        s = self._by_name[symbol]
        book, spec, now = s.books[BYBIT], s.profile.bybit, self._now
        depth = wire.BYBIT_BOOK_DEPTH
        bids = wire.wire_levels(spec, book.levels(True, depth, published=True))
        asks = wire.wire_levels(spec, book.levels(False, depth, published=True))
        cts = now - 1 - int(s.ids.random() * 3)
        return wire.bybit_orderbook(
            symbol, "snapshot", now, bids, asks, s.by_u, self._cross_seq(s, now), cts
        )

    def bybit_tickers_snapshot(self, symbol: str) -> Any:
        """The ``tickers`` snapshot a subscription gets: every field as last published."""
        s = self._by_name[symbol]
        fields = dict(s.ticker_sent)
        return wire.bybit_tickers(
            symbol, "snapshot", fields, self._cross_seq(s, self._now), self._now
        )

    def okx_books_snapshot(self, symbol: str) -> Any:
        """The ``books`` snapshot an OKX (re)subscription gets now (``prevSeqId`` -1)."""
        return self._okx.books_snapshot(self._okx_symbol(symbol), self._now)

    def okx_bbo(self, symbol: str) -> Any:
        """The ``bbo-tbt`` push an OKX subscription gets at once."""
        return self._okx.bbo(self._okx_symbol(symbol), self._now)

    def okx_rest_books(self, symbol: str, depth: int) -> Any:
        """The data element of ``GET /api/v5/market/books?instId=..&sz=depth`` now."""
        return self._okx.rest_books(self._okx_symbol(symbol), depth, self._now)

    def okx_ticker(self, symbol: str) -> Any:
        """The ``tickers`` push an OKX subscription gets at once (the last one published)."""
        self._okx_symbol(symbol)
        return self._okx.ticker(symbol)

    def okx_funding(self, symbol: str) -> Any:
        """The ``funding-rate`` push an OKX subscription gets at once."""
        self._okx_symbol(symbol)
        return self._okx.funding(symbol)

    def okx_funding_rest(self, symbol: str) -> Any:
        """The data element of ``GET /api/v5/public/funding-rate?instId=..``."""
        self._okx_symbol(symbol)
        return self._okx.funding_rest(symbol)

    def _okx_symbol(self, symbol: str) -> SymbolState:
        if OKX not in self.venues:
            raise ValueError("this market does not simulate OKX (venues)")
        return self._by_name[symbol]

    # -- scheduling ----------------------------------------------------------------------------
    def _emit(self, frame: Frame) -> None:
        self._out.append(frame)

    def _push(self, at: int, kind: _Kind, index: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, index))

    @staticmethod
    def _uniform(rng: Random, span: tuple[int, int]) -> int:
        return span[0] + int(rng.random() * (span[1] - span[0] + 1))

    def _cross_seq(self, s: SymbolState, now: int) -> int:
        """Bybit's per-symbol cross sequence: about 30 000 a second, strictly increasing."""
        s.seq = max(s.seq + 1, s.seq_base + (now - self.start_ms) * 30) + int(s.ids.random() * 40)
        return s.seq

    # -- publishing ----------------------------------------------------------------------------
    def _silent(self, exchange: Exchange, now: int) -> tuple[bool, bool]:
        """(down, stale): down publishes to nobody, stale holds everything back."""
        effects = self._effects
        return effects.is_down(exchange, now), effects.is_stale(exchange, now)

    def _publish_binance(self, s: SymbolState, now: int) -> None:
        book = s.evolve(BINANCE, now, self.rates.binance_churn)
        down, stale = self._silent(BINANCE, now)
        if (stale and not down) or not book.has_changes():
            return
        bids, asks = book.take_diff()
        ids = s.ids
        first = s.bn_next_first
        if first is None:
            first = self._bn_id + 1 + int(ids.random() * 40)
        last = max(first + (len(bids) + len(asks)) * (20 + int(ids.random() * 300)), s.bn_min_u)
        prev, s.bn_last_u, s.bn_next_first = s.bn_last_u, last, None
        self._bn_id = max(self._bn_id, last)
        if down:
            return  # published to nobody
        due, fault = self._effects.take_one_shot(BINANCE, s.symbol, now)
        if due and fault is None:
            return  # lost on the way: the next event's pu will not match
        spec = s.profile.binance
        trade_ms = now - 1 - int(ids.random() * 12)
        frame = wire.binance_depth(
            s.symbol,
            now,
            trade_ms,
            first,
            last,
            prev,
            wire.wire_levels(spec, bids),
            wire.wire_levels(spec, asks),
        )
        channel = wire.depth_stream(s.symbol)
        if fault is not None:
            data = wire.malformed(frame, fault)
            self._out.append(Frame(now, BINANCE, wire.BINANCE_PUBLIC_STREAM, channel, data, True))
            return
        self._out.append(Frame(now, BINANCE, wire.BINANCE_PUBLIC_STREAM, channel, frame))
        top = (*book.best_bid(), *book.best_ask())
        if top != s.bn_top:
            s.bn_top = top
            ticker_ms = trade_ms + int(ids.random() * (now - trade_ms + 1))
            data = wire.binance_book_ticker(
                s.symbol, last, top[:2], top[2:], spec, trade_ms, ticker_ms
            )
            stream = wire.book_ticker_stream(s.symbol)
            self._out.append(Frame(now, BINANCE, wire.BINANCE_PUBLIC_STREAM, stream, data))

    def _publish_bybit(self, s: SymbolState, now: int) -> None:
        book = s.evolve(BYBIT, now, self.rates.bybit_churn)
        down, stale = self._silent(BYBIT, now)
        if (stale and not down) or not book.has_changes():
            return
        bids, asks = book.take_diff()
        if not bids and not asks:
            return  # every change was undone before the push: Bybit sends nothing
        s.by_u += 1
        if down:
            return  # published to nobody
        due, fault = self._effects.take_one_shot(BYBIT, s.symbol, now)
        if due and fault is None:
            return  # lost on the way: the next delta's u jumps by 2
        spec = s.profile.bybit
        bids.reverse()  # Bybit lists bids best (highest) first
        cts = now - 1 - int(s.ids.random() * 3)
        frame = wire.bybit_orderbook(
            s.symbol,
            "delta",
            now,
            wire.wire_levels(spec, bids),
            wire.wire_levels(spec, asks),
            s.by_u,
            self._cross_seq(s, now),
            cts,
        )
        topic = wire.orderbook_topic(s.symbol)
        if fault is not None:
            data = wire.malformed(frame, fault)
            self._out.append(Frame(now, BYBIT, wire.BYBIT_LINEAR, topic, data, True))
            return
        self._out.append(Frame(now, BYBIT, wire.BYBIT_LINEAR, topic, frame))

    def _ticker_fields(self, s: SymbolState, now: int) -> dict[str, Any]:
        book = s.books[BYBIT]
        rate, hours = self._effects.funding(BYBIT, s.symbol, now)
        if rate is None:
            rate = s.ticker.funding[BYBIT]
        return s.ticker.bybit_fields(book.best_bid(), book.best_ask(), rate, hours, now)

    def _publish_ticker(self, s: SymbolState, now: int) -> None:
        s.ticker.update(s.fair(now), now)
        down, stale = self._silent(BYBIT, now)
        if stale and not down:
            return
        fields = self._ticker_fields(s, now)
        delta = wire.ticker_delta(s.ticker_sent, fields)
        if len(delta) == 1:
            return
        s.ticker_sent = fields
        if down:
            return
        data = wire.bybit_tickers(s.symbol, "delta", delta, self._cross_seq(s, now), now)
        self._out.append(Frame(now, BYBIT, wire.BYBIT_LINEAR, wire.tickers_topic(s.symbol), data))

    def _publish_mark(self, s: SymbolState, now: int) -> None:
        s.ticker.update(s.fair(now), now)
        if any(self._silent(BINANCE, now)):
            return
        rate, hours = self._effects.funding(BINANCE, s.symbol, now)
        if rate is None:
            rate = s.ticker.funding[BINANCE]
        mark, index, settle = s.ticker.binance_mark(s.profile.binance)
        data = wire.binance_mark_price(
            s.symbol, now, mark, index, settle, format_decimal(rate, 8), next_funding_ms(now, hours)
        )
        channel = wire.mark_price_stream(s.symbol)
        self._out.append(Frame(now, BINANCE, wire.BINANCE_MARKET_STREAM, channel, data))

    def _trade(self, s: SymbolState, exchange: Exchange, now: int) -> int:
        """One taker trade against the exchange's book; returns the wait until the next one."""
        rate, size = self._effects.trade_factors(exchange, s.symbol, now)
        per_s = (
            self.rates.binance_trades_per_s
            if exchange is BINANCE
            else self.rates.bybit_trades_per_s
        )
        seq = self._cross_seq(s, now) if exchange is BYBIT else 0
        frame = s.tape.trade(exchange, s.books[exchange], s.ticker, size, now, seq)
        if not any(self._silent(exchange, now)):
            if exchange is BINANCE:
                endpoint, channel = wire.BINANCE_MARKET_STREAM, wire.agg_trade_stream(s.symbol)
            else:
                endpoint, channel = wire.BYBIT_LINEAR, wire.trade_topic(s.symbol)
            self._out.append(Frame(now, exchange, endpoint, channel, frame))
        return max(1, int(s.tape.rng.expovariate(per_s * rate * s.profile.activity) * 1000))
