"""OrderBookProcessor: the seed's unified order-book API over both venues' parsers and books."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from msgspec.structs import replace

from detector.book import ApplyResult, BookState, OrderBook, SyncedBook, make_book
from detector.errors import BookNotSynced, ConfigError, InvalidBook, MalformedFrame
from detector.models import DepthDiff, DepthSnapshot, Event, Exchange, Level, Source
from detector.venues.binance import BinanceParser
from detector.venues.bybit import BybitParser


@dataclass(frozen=True, slots=True)
class OrderBookSnapshot:
    """The top levels of one book at one moment; bids and asks are best first."""

    exchange: Exchange
    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    update_id: int | None
    timestamp: int  # exchange time of the newest update in the book, ms
    recv_ms: int  # our receive time of the newest frame for the book, ms

    @property
    def best_bid(self) -> Level | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> Level | None:
        return self.asks[0] if self.asks else None

    @property
    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2.0

    @property
    def spread(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return self.asks[0][0] - self.bids[0][0]

    @property
    def spread_bps(self) -> float | None:
        mid, spread = self.mid, self.spread
        if mid is None or spread is None:
            return None
        return spread / mid * 10_000.0


class OrderBookProcessor:
    """Keeps one synced book per (exchange, symbol) and answers with :class:`OrderBookSnapshot`."""

    def __init__(self, depth: int = 50) -> None:
        if depth < 1:
            raise ConfigError(f"depth must be >= 1, got {depth}")
        self.depth = depth  # levels per side in returned snapshots
        self._books: dict[tuple[Exchange, str], SyncedBook] = {}
        self._binance = BinanceParser()
        self._bybit = BybitParser()

    def book(self, exchange: Exchange, symbol: str) -> SyncedBook:
        """The book of ``(exchange, symbol)``, created empty (awaiting a snapshot) on first use."""
        key = (exchange, symbol)
        found = self._books.get(key)
        if found is None:
            found = self._books[key] = make_book(exchange, symbol)
        return found

    def forget(self, exchange: Exchange, symbol: str) -> None:
        """Drop the book of ``(exchange, symbol)``; a later :meth:`book` makes a fresh one."""
        self._books.pop((exchange, symbol), None)

    def apply(self, event: DepthSnapshot | DepthDiff) -> ApplyResult:
        """Apply one depth event to its book with the exchange's sync rules."""
        book = self.book(event.exchange, event.symbol)
        if isinstance(event, DepthSnapshot):
            return book.apply_snapshot(event)
        return book.apply_diff(event)

    def process_orderbook(
        self,
        data: Any,
        symbol: str,
        exchange: Exchange | str,
        recv_ms: int | None = None,
    ) -> OrderBookSnapshot:
        """Parse any book payload of ``exchange`` (WS or REST), apply it, return the book's top.

        Accepted: Binance ``/fapi/v1/depth`` bodies, ``depthUpdate`` frames (raw or combined,
        diff or partial depth); Bybit ``orderbook.*`` frames, ``/v5/market/orderbook`` envelopes
        and their bare ``result``. ``recv_ms`` defaults to the payload's own time.

        Raises :class:`MalformedFrame` (bad payload, unknown exchange, another symbol),
        :class:`BookNotSynced` (the book waits for ``need``) and :class:`InvalidBook` (crossed).
        """
        venue = _exchange(exchange)
        symbol = symbol.upper()
        event = self._parse_book(venue, data, symbol, 0 if recv_ms is None else recv_ms)
        if recv_ms is None:
            event = replace(event, recv_ms=event.event_time_ms)
        if event.symbol != symbol:
            raise MalformedFrame(venue, f"payload is for {event.symbol}, not {symbol}", data)
        result = self.apply(event)
        if (
            result is ApplyResult.IGNORED
            and isinstance(event, DepthSnapshot)
            and event.source is Source.REST
        ):
            # Bybit REST books cannot seed the WS topic book, but they are whole books in their
            # own right: answer with the snapshot itself and leave the WS book untouched.
            return self._from_event(event)
        return self.snapshot(venue, symbol)

    def snapshot(
        self, exchange: Exchange, symbol: str, depth: int | None = None
    ) -> OrderBookSnapshot:
        """The top ``depth`` levels per side of a book.

        A Binance book that holds a REST snapshot but has not yet seen the event spanning it is
        served too: its levels are the exchange's own book at ``lastUpdateId``.
        """
        book = self.book(exchange, symbol)
        if book.state is BookState.AWAITING_SNAPSHOT:
            raise BookNotSynced(exchange, symbol, book.need)
        levels = book.levels
        if levels.is_crossed():
            raise InvalidBook(exchange, symbol, _crossed(levels))
        n = self.depth if depth is None else depth
        return OrderBookSnapshot(
            exchange=exchange,
            symbol=symbol,
            bids=tuple(levels.top_bids(n)),
            asks=tuple(levels.top_asks(n)),
            update_id=book.last_update_id,
            timestamp=book.last_event_ms or 0,
            recv_ms=book.last_recv_ms or 0,
        )

    def _parse_book(
        self, exchange: Exchange, data: Any, symbol: str, recv_ms: int
    ) -> DepthSnapshot | DepthDiff:
        events: list[Event]
        if type(data) is not dict:
            raise MalformedFrame(exchange, f"book payload must be an object, got {data!r}", data)
        if exchange not in (Exchange.BINANCE, Exchange.BYBIT):
            # OKX sizes are contracts: converting them needs each instrument's contract value,
            # which the pipeline learns from the instruments list.
            raise MalformedFrame(
                exchange, f"process_orderbook reads Binance and Bybit books, not {exchange}", data
            )
        if exchange is Exchange.BINANCE:
            if "lastUpdateId" in data or ("code" in data and "msg" in data):
                # REST bodies carry no symbol: it comes from the request.
                events = self._binance.parse_rest(f"/fapi/v1/depth?symbol={symbol}", data, recv_ms)
            else:
                events = self._binance.parse_ws_message(data, recv_ms)
        elif "topic" in data or "op" in data:
            events = self._bybit.parse_ws_message(data, recv_ms)
        else:
            if "retCode" not in data:  # the bare ``result`` object of the REST envelope
                data = {"retCode": 0, "retMsg": "OK", "result": data}
            endpoint = f"/v5/market/orderbook?category=linear&symbol={symbol}"
            events = self._bybit.parse_rest(endpoint, data, recv_ms)
        for event in events:
            if isinstance(event, DepthSnapshot | DepthDiff):
                return event
        raise MalformedFrame(exchange, "not an order book payload", data)

    def _from_event(self, event: DepthSnapshot) -> OrderBookSnapshot:
        levels = OrderBook()
        levels.replace(event.bids, event.asks)
        if levels.is_crossed():
            raise InvalidBook(event.exchange, event.symbol, _crossed(levels))
        return OrderBookSnapshot(
            exchange=event.exchange,
            symbol=event.symbol,
            bids=tuple(levels.top_bids(self.depth)),
            asks=tuple(levels.top_asks(self.depth)),
            update_id=event.update_id,
            timestamp=event.event_time_ms,
            recv_ms=event.recv_ms,
        )


def _exchange(value: Exchange | str) -> Exchange:
    if isinstance(value, Exchange):
        return value
    try:
        return Exchange(str(value).lower())
    except ValueError:
        known = ", ".join(e.value for e in Exchange)
        raise MalformedFrame(
            str(value), f"unknown exchange {value!r}; expected one of {known}"
        ) from None


def _crossed(levels: OrderBook) -> str:
    bid, ask = levels.best_bid(), levels.best_ask()
    assert bid is not None and ask is not None  # only called on a crossed book
    return f"crossed: best bid {bid[0]} >= best ask {ask[0]}"
