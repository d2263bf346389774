"""What OKX publishes in the market model: ``books``, ``tickers``, ``trades`` and
``funding-rate`` frames, and its answers to (re)subscriptions and REST requests (pure).

``books`` follows OKX's continuity rule: a snapshot has ``prevSeqId`` -1, each update's
``prevSeqId`` is the previous update's ``seqId``, a push without a change is a keepalive
(``seqId == prevSeqId``, no levels), and a :class:`~detector.simulator.scenarios.SequenceReset`
restarts ``seqId`` below its ``prevSeqId``. A lost update (``SequenceGap``) leaves the next
``prevSeqId`` naming a ``seqId`` nobody saw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detector.models import Exchange
from detector.simulator import wire_okx
from detector.simulator.book import SimBook
from detector.simulator.effects import Effects
from detector.simulator.okx_state import OkxState
from detector.simulator.state import FeedRates, SymbolState
from detector.simulator.wire import Frame, Malformation, dumps

OKX = Exchange.OKX
Json = dict[str, Any]


def malformed(frame: Json, kind: Malformation) -> Any:
    """An OKX frame broken as scripted: its JSON text cut in half, or its first price garbled."""
    if kind is Malformation.TRUNCATED_JSON:
        text = dumps(frame)
        return text[: len(text) // 2]
    data = frame["data"][0]
    side = data["bids"] or data["asks"]
    price = side[0][0]
    side[0][0] = price[:-2] + "x" + price[-1:]
    return frame


class OkxPublisher:
    """OKX's feeds of every symbol: frames go to ``emit`` as they are published."""

    def __init__(
        self, rates: FeedRates, effects: Effects, seed: int, emit: Callable[[Frame], None]
    ) -> None:
        self.rates = rates
        self.effects = effects
        self.seed = seed
        self.emit = emit
        self.states: dict[str, OkxState] = {}

    def add(self, s: SymbolState, now: int) -> OkxState:
        """Start OKX's state of a symbol whose book is already seeded."""
        o = self.states[s.symbol] = OkxState(s.profile, self.seed, now)
        book = s.books[OKX]
        o.ticker_sent = o.ticker_fields(book.best_bid(), book.best_ask(), now)
        rate, hours = self.effects.funding(OKX, s.symbol, now)
        o.funding_sent = o.funding_fields(rate, hours, now)
        return o

    # -- publishing ----------------------------------------------------------------------------
    def _silent(self, now: int) -> tuple[bool, bool]:
        return self.effects.is_down(OKX, now), self.effects.is_stale(OKX, now)

    def _send(self, now: int, channel: str, o: OkxState, data: Any, bad: bool = False) -> None:
        topic = wire_okx.topic(channel, o.inst_id)
        self.emit(Frame(now, OKX, wire_okx.OKX_PUBLIC, topic, data, bad))

    def publish_book(self, s: SymbolState, now: int) -> None:
        """One ``books`` push: an update with the book's net changes, or a keepalive."""
        o = self.states[s.symbol]
        still = o.ids.random() < self.rates.okx_keepalive_share  # nothing moved this time
        book = s.books[OKX] if still else s.evolve(OKX, now, self.rates.okx_churn)
        down, stale = self._silent(now)
        if stale and not down:
            return  # held back: a stall sends the changes in one update when it ends
        bids, asks = book.take_diff() if book.has_changes() else ([], [])
        if not bids and not asks:
            if not down:  # keepalive: seqId == prevSeqId == the last seqId, no levels
                check = o.top_checksum(book, self.rates.okx_checksums)
                frame = wire_okx.books(o.inst_id, "update", [], [], now, check, o.seq_id, o.seq_id)
                self._send(now, wire_okx.BOOKS, o, frame)
            return
        prev = o.seq_id
        if not down and self.effects.take_reset(OKX, s.symbol, now):
            o.restart_seq()  # maintenance: prevSeqId still names the last update
        else:
            o.next_seq()
        if down:
            return  # published to nobody
        self._publish_bbo(o, book, now)
        due, fault = self.effects.take_one_shot(OKX, s.symbol, now)
        if due and fault is None:
            return  # lost on the way: the next prevSeqId names this seqId
        bids.reverse()  # bids best (highest) first
        spec = o.spec
        frame = wire_okx.books(
            o.inst_id,
            "update",
            wire_okx.levels(spec, asks),
            wire_okx.levels(spec, bids),
            now,
            o.top_checksum(book, self.rates.okx_checksums),
            prev,
            o.seq_id,
        )
        if fault is not None:
            self._send(now, wire_okx.BOOKS, o, malformed(frame, fault), True)
            return
        self._send(now, wire_okx.BOOKS, o, frame)

    def _publish_bbo(self, o: OkxState, book: SimBook, now: int) -> None:
        """A ``bbo-tbt`` push when the top of the book changed (tick by tick)."""
        top = (*book.best_bid(), *book.best_ask())
        if top == o.top:
            return
        o.top = top
        frame = wire_okx.bbo(o.inst_id, o.spec, top[:2], top[2:], now, o.seq_id)
        self._send(now, wire_okx.BBO, o, frame)

    def publish_ticker(self, s: SymbolState, now: int) -> None:
        """A ``tickers`` push if anything but its time changed; a funding push on a change."""
        o = self.states[s.symbol]
        down, stale = self._silent(now)
        if stale and not down:
            return
        book = s.books[OKX]
        fields = o.ticker_fields(book.best_bid(), book.best_ask(), now)
        if any(fields[k] != v for k, v in o.ticker_sent.items() if k != "ts"):
            o.ticker_sent = fields
            if not down:
                self._send(now, wire_okx.TICKERS, o, wire_okx.tickers(o.inst_id, fields))
        rate, hours = self.effects.funding(OKX, s.symbol, now)
        if o.funding_key != o.funding_key_for(rate, hours):
            self.publish_funding(s, now)  # a scripted shift shows at once, not up to 90 s later

    def publish_funding(self, s: SymbolState, now: int) -> None:
        """A ``funding-rate`` push (every 30 to 90 s, and when a scripted rate takes over)."""
        o = self.states[s.symbol]
        o.drift(now)
        rate, hours = self.effects.funding(OKX, s.symbol, now)
        o.funding_sent = o.funding_fields(rate, hours, now)
        if not any(self._silent(now)):
            self._send(now, wire_okx.FUNDING, o, wire_okx.funding_rate(o.inst_id, o.funding_sent))

    def trade(self, s: SymbolState, now: int) -> int:
        """One taker trade on OKX's book; returns the wait until the next one (ms)."""
        o = self.states[s.symbol]
        rate, size = self.effects.trade_factors(OKX, s.symbol, now)
        frame = o.trade(s.books[OKX], size, now)
        if not any(self._silent(now)):
            self._send(now, wire_okx.TRADES, o, frame)
        return max(
            1,
            int(
                o.trade_rng.expovariate(self.rates.okx_trades_per_s * rate * s.profile.activity)
                * 1000
            ),
        )

    # -- answers -------------------------------------------------------------------------------
    def books_snapshot(self, s: SymbolState, now: int) -> Json:
        """The ``books`` snapshot a (re)subscription gets: the book as last published, with the
        last published ``seqId`` and ``prevSeqId`` -1."""
        o, book = self.states[s.symbol], s.books[OKX]
        bids, asks = self._published(o, book, self.rates.okx_depth)
        check = wire_okx.checksum(bids, asks) if self.rates.okx_checksums else 0
        return wire_okx.books(o.inst_id, "snapshot", asks, bids, now, check, -1, o.seq_id)

    def rest_books(self, s: SymbolState, depth: int, now: int) -> Json:
        """The data element of ``GET /api/v5/market/books``: the top ``depth`` levels as last
        published, with their ``seqId``."""
        o = self.states[s.symbol]
        bids, asks = self._published(o, s.books[OKX], depth)
        return {"asks": asks, "bids": bids, "ts": str(now), "seqId": o.seq_id}

    def _published(
        self, o: OkxState, book: SimBook, depth: int
    ) -> tuple[list[list[str]], list[list[str]]]:
        spec = o.spec
        bids = wire_okx.levels(spec, book.levels(True, depth, published=True))
        asks = wire_okx.levels(spec, book.levels(False, depth, published=True))
        return bids, asks

    def bbo(self, s: SymbolState, now: int) -> Json:
        """The ``bbo-tbt`` push a subscription gets at once: the published top of the book."""
        o, book = self.states[s.symbol], s.books[OKX]
        (bid,), (ask,) = book.levels(True, 1, published=True), book.levels(False, 1, published=True)
        return wire_okx.bbo(o.inst_id, o.spec, bid, ask, now, o.seq_id)

    def ticker(self, symbol: str) -> Json:
        """The ``tickers`` push a subscription gets at once: the ticker as last published."""
        o = self.states[symbol]
        return wire_okx.tickers(o.inst_id, dict(o.ticker_sent))

    def funding(self, symbol: str) -> Json:
        """The ``funding-rate`` push a subscription gets at once: the last one published."""
        o = self.states[symbol]
        return wire_okx.funding_rate(o.inst_id, dict(o.funding_sent))

    def funding_rest(self, symbol: str) -> Json:
        """The data element of ``GET /api/v5/public/funding-rate``."""
        return dict(self.states[symbol].funding_sent)
