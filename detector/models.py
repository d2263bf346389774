"""Normalized market events: what the venue parsers produce and the rest of the detector consumes.

Wire names (``U``, ``u``, ``pu``, ``bid1Price``) stop at the venue modules; from here on fields
carry our names. Prices and sizes are floats (see STYLE.md), times are integer milliseconds.

The events are frozen :class:`msgspec.Struct` classes rather than frozen dataclasses: one is made
for every frame, and a Struct is built in C for about a tenth of the cost. They are compared,
hashed and printed as dataclasses are; copy one with :func:`msgspec.structs.replace`.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Exchange(StrEnum):
    """A venue arbwatch watches."""

    BINANCE = "binance"
    BYBIT = "bybit"
    OKX = "okx"

    @property
    def label(self) -> str:
        """The venue's name as people write it: ``Binance``, ``Bybit``, ``OKX``."""
        return _LABELS.get(self.value, self.value.capitalize())


_LABELS = {"okx": "OKX"}


class Source(StrEnum):
    """How a message reached us."""

    WS = "ws"
    REST = "rest"


class Side(StrEnum):
    """The taker side of a trade."""

    BUY = "buy"
    SELL = "sell"


class Need(StrEnum):
    """What an unsynced book needs from the I/O layer to become usable again."""

    NOTHING = "nothing"
    SNAPSHOT = "snapshot"  # Binance: fetch GET /fapi/v1/depth and keep buffering the stream
    RESUBSCRIBE = "resubscribe"  # Bybit: unsubscribe + subscribe the topic to get a new snapshot


Level = tuple[float, float]
"""A price level: (price, size)."""


class DepthSnapshot(msgspec.Struct, frozen=True, gc=False):
    """A whole book side pair that replaces the local book (REST depth, Bybit WS snapshot)."""

    exchange: Exchange
    symbol: str
    bids: list[Level]
    asks: list[Level]
    update_id: int  # Binance lastUpdateId / u of a partial-depth frame; Bybit u
    event_time_ms: int  # exchange's own time of the book
    recv_ms: int
    source: Source = Source.WS
    depth: int | None = None  # Bybit topic depth (orderbook.{depth}.SYM); None when not a topic


class DepthDiff(msgspec.Struct, frozen=True, gc=False):
    """An incremental book update. Sizes are absolute; a size of 0 removes the level."""

    exchange: Exchange
    symbol: str
    bids: list[Level]
    asks: list[Level]
    first_update_id: int  # Binance U; Bybit u
    final_update_id: int  # Binance u; Bybit u
    prev_update_id: int | None  # Binance pu; None for Bybit (its u must grow by exactly 1)
    event_time_ms: int
    recv_ms: int
    depth: int | None = None  # Bybit topic depth


class BookTicker(msgspec.Struct, frozen=True, gc=False):
    """Best bid and ask as the exchange reports them (Binance bookTicker, Bybit tickers)."""

    exchange: Exchange
    symbol: str
    bid_price: float
    bid_qty: float
    ask_price: float
    ask_qty: float
    update_id: int | None
    event_time_ms: int
    recv_ms: int


class Trade(msgspec.Struct, frozen=True, gc=False):
    """One public trade (Binance aggTrade, one element of a Bybit publicTrade frame)."""

    exchange: Exchange
    symbol: str
    price: float
    qty: float
    side: Side  # taker side
    trade_time_ms: int
    recv_ms: int


class FundingRate(msgspec.Struct, frozen=True, gc=False):
    """Current funding rate of a perpetual, as a fraction per funding interval."""

    exchange: Exchange
    symbol: str
    rate: float
    interval_hours: float | None  # None when the frame does not say (Binance markPriceUpdate)
    next_funding_ms: int | None
    mark_price: float | None
    index_price: float | None
    event_time_ms: int
    recv_ms: int


class FundingInterval(msgspec.Struct, frozen=True, gc=False):
    """A symbol's funding interval (Binance /fapi/v1/fundingInfo), for symbols not on 8 h."""

    exchange: Exchange
    symbol: str
    interval_hours: float
    recv_ms: int


class SubscriptionAck(msgspec.Struct, frozen=True, gc=False):
    """The exchange's answer to a subscribe request (Binance ``{"result":null,"id":N}``)."""

    exchange: Exchange
    success: bool
    request_id: str | None
    message: str
    topic: str | None  # the refused topic when the exchange names it
    recv_ms: int


class Pong(msgspec.Struct, frozen=True, gc=False):
    """A heartbeat reply (Bybit ``op: ping`` answer)."""

    exchange: Exchange
    recv_ms: int


Event = (
    DepthSnapshot
    | DepthDiff
    | BookTicker
    | Trade
    | FundingRate
    | FundingInterval
    | SubscriptionAck
    | Pong
)
"""Every normalized event a venue parser can return."""
