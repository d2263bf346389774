"""Plain-Python clients of the generated frames: books rebuilt by the exchanges' documented rules.

Deliberately independent of ``detector.venues`` and ``detector.book``: these replicas check the
simulator against the wire rules themselves, not against another implementation of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from detector.models import Exchange, Source
from detector.recording import Record
from detector.simulator.session import DEFAULT_START_MS

Top = tuple[float, float, float, float]  # bid, bid qty, ask, ask qty


def at(seconds: float) -> int:
    """Absolute ms of a scenario time (the fixtures' recordings start at the default start)."""
    return DEFAULT_START_MS + round(seconds * 1000)


def _levels(pairs: list[list[str]]) -> list[tuple[float, float]]:
    """Parse ``[["price","qty"],...]``; ValueError for a non-numeric entry (a malformed frame)."""
    return [(float(p), float(q)) for p, q in pairs]


def _apply(book: dict[float, float], levels: list[tuple[float, float]]) -> None:
    for price, qty in levels:
        if qty == 0:
            book.pop(price, None)
        else:
            book[price] = qty


@dataclass
class BinanceReplica:
    """One symbol's book per the futures procedure: buffer, REST snapshot, bridge, pu chain."""

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    state: str = "buffering"  # buffering -> bridging -> synced; a broken chain -> buffering
    last_u: int | None = None
    snapshot_id: int = 0
    buffer: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[int] = field(default_factory=list)  # receive times of broken chains
    bridges: list[tuple[int, int, int]] = field(default_factory=list)  # (U, lastUpdateId, u)
    applied: int = 0

    def on_rest(self, body: dict[str, Any]) -> None:
        self.bids = dict(_levels(body["bids"]))
        self.asks = dict(_levels(body["asks"]))
        self.snapshot_id = body["lastUpdateId"]
        self.state = "bridging"
        buffered, self.buffer = self.buffer, []
        for data in buffered:
            self._bridge_or_apply(data, 0)

    def on_depth(self, data: dict[str, Any], ts: int) -> None:
        if self.state == "buffering":
            self.buffer.append(data)
        else:
            self._bridge_or_apply(data, ts)

    def _bridge_or_apply(self, data: dict[str, Any], ts: int) -> None:
        try:
            bids, asks = _levels(data["b"]), _levels(data["a"])
        except ValueError:
            return  # unreadable: as good as lost
        if self.state == "bridging":
            if data["u"] < self.snapshot_id:
                return  # older than the snapshot
            # The first applied event must span the snapshot: U <= lastUpdateId <= u.
            assert data["U"] <= self.snapshot_id <= data["u"], (data["U"], self.snapshot_id)
            self.bridges.append((data["U"], self.snapshot_id, data["u"]))
            self.state = "synced"
        elif data["pu"] != self.last_u:  # futures: every event's pu is the previous u
            self.gaps.append(ts)
            self.state = "buffering"
            self.buffer = [data]
            return
        _apply(self.bids, bids)
        _apply(self.asks, asks)
        self.last_u = data["u"]
        self.applied += 1

    def top(self) -> Top | None:
        if self.state != "synced" or not self.bids or not self.asks:
            return None
        bid, ask = max(self.bids), min(self.asks)
        return bid, self.bids[bid], ask, self.asks[ask]


@dataclass
class BybitReplica:
    """One symbol's ``orderbook.50`` book: snapshot, then deltas whose u grows by exactly 1."""

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    synced: bool = False
    last_u: int = 0
    gaps: list[int] = field(default_factory=list)
    snapshots: list[int] = field(default_factory=list)  # receive times

    def on_frame(self, frame: dict[str, Any], ts: int) -> None:
        data = frame["data"]
        try:
            bids, asks = _levels(data["b"]), _levels(data["a"])
        except ValueError:
            return  # unreadable: as good as lost
        if frame["type"] == "snapshot":
            self.bids, self.asks = dict(bids), dict(asks)
            self.synced, self.last_u = True, data["u"]
            self.snapshots.append(ts)
            return
        if not self.synced:
            return
        if data["u"] != self.last_u + 1:
            self.gaps.append(ts)
            self.synced = False
            return
        _apply(self.bids, bids)
        _apply(self.asks, asks)
        self.last_u = data["u"]

    def top(self) -> Top | None:
        if not self.synced or not self.bids or not self.asks:
            return None
        bid, ask = max(self.bids), min(self.asks)
        return bid, self.bids[bid], ask, self.asks[ask]


@dataclass
class Replay:
    """Every book of a recording, plus what the replicas noticed on the way."""

    binance: dict[str, BinanceReplica] = field(default_factory=dict)
    bybit: dict[str, BybitReplica] = field(default_factory=dict)
    book_tickers_checked: int = 0

    def feed(self, record: Record) -> tuple[Exchange, str] | None:
        """Apply one record; the (exchange, symbol) whose book it touched, if any."""
        data = record.data
        if record.exchange is Exchange.BINANCE:
            if record.source is Source.REST:
                symbol = record.endpoint.split("symbol=")[1].split("&")[0]
                self.binance.setdefault(symbol, BinanceReplica()).on_rest(data)
                return Exchange.BINANCE, symbol
            if not isinstance(data, dict):
                return None  # truncated JSON: unreadable
            inner = data["data"]
            if inner["e"] == "depthUpdate":
                replica = self.binance.setdefault(inner["s"], BinanceReplica())
                replica.on_depth(inner, record.ts)
                return Exchange.BINANCE, inner["s"]
            if inner["e"] == "bookTicker":
                self._check_book_ticker(inner)
            return None
        topic = data.get("topic", "") if isinstance(data, dict) else ""
        if topic.startswith("orderbook."):
            symbol = topic.rsplit(".", 1)[1]
            self.bybit.setdefault(symbol, BybitReplica()).on_frame(data, record.ts)
            return Exchange.BYBIT, symbol
        return None

    def _check_book_ticker(self, ticker: dict[str, Any]) -> None:
        replica = self.binance.get(ticker["s"])
        if replica is None or replica.state != "synced" or replica.last_u != ticker["u"]:
            return
        top = replica.top()
        expected = (float(ticker["b"]), float(ticker["B"]), float(ticker["a"]), float(ticker["A"]))
        assert top == expected, (ticker, top)
        self.book_tickers_checked += 1

    def top(self, exchange: Exchange, symbol: str) -> Top | None:
        books = self.binance if exchange is Exchange.BINANCE else self.bybit
        replica = books.get(symbol)
        return replica.top() if replica is not None else None


def replay_tops(
    records: list[Record],
) -> Iterator[tuple[Record, Replay, tuple[Exchange, str] | None]]:
    """Feed every record; yields (record, replay state after it, book it touched)."""
    replay = Replay()
    for record in records:
        touched = replay.feed(record)
        yield record, replay, touched
