"""Plain-Python clients of the generated frames: books rebuilt by the exchanges' documented rules.

Deliberately independent of ``detector.venues`` and ``detector.book``: these replicas check the
simulator against the wire rules themselves, not against another implementation of them.
"""

from __future__ import annotations

import zlib
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


def okx_checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """OKX's documented checksum: ``bid:sz:ask:sz:...`` over the top 25 levels, CRC32, signed."""
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 2**32 if crc >= 2**31 else crc


@dataclass
class OkxReplica:
    """One instrument's ``books``: a snapshot (``prevSeqId`` -1), then updates whose
    ``prevSeqId`` is the last ``seqId``; sizes are contracts of ``ct_val`` base units."""

    ct_val: float = 1.0
    bids: dict[float, list[str]] = field(default_factory=dict)  # price -> [px, sz] strings
    asks: dict[float, list[str]] = field(default_factory=dict)
    synced: bool = False
    last_seq: int = 0
    gaps: list[int] = field(default_factory=list)
    snapshots: list[int] = field(default_factory=list)
    resets: list[int] = field(default_factory=list)  # seqId fell below prevSeqId, chain intact
    keepalives: int = 0
    checksums_checked: int = 0

    def on_frame(self, frame: dict[str, Any], ts: int) -> None:
        data = frame["data"][0]
        try:
            bids = [(float(level[0]), level) for level in data["bids"]]
            asks = [(float(level[0]), level) for level in data["asks"]]
            for _, level in bids + asks:
                float(level[1])
        except ValueError:
            return  # unreadable: as good as lost
        if frame["action"] == "snapshot":
            assert data["prevSeqId"] == -1
            self.bids = {p: level[:2] for p, level in bids}
            self.asks = {p: level[:2] for p, level in asks}
            self.synced, self.last_seq = True, data["seqId"]
            self.snapshots.append(ts)
            self._check(data["checksum"])
            return
        if not self.synced:
            return
        if data["prevSeqId"] != self.last_seq:
            self.gaps.append(ts)
            self.synced = False
            return
        if data["seqId"] == data["prevSeqId"]:
            assert not bids and not asks  # a keepalive carries no levels
            self.keepalives += 1
        elif data["seqId"] < data["prevSeqId"]:
            self.resets.append(ts)
        for book, levels in ((self.bids, bids), (self.asks, asks)):
            for price, level in levels:
                if float(level[1]) == 0:
                    assert level[3] == "0"
                    book.pop(price, None)
                else:
                    book[price] = level[:2]
        self.last_seq = data["seqId"]
        self._check(data["checksum"])

    def _check(self, checksum: int) -> None:
        if checksum == 0:
            return  # OKX sends 0 on some channels: never fail a book on it
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)[:25]]
        asks = [self.asks[p] for p in sorted(self.asks)[:25]]
        assert okx_checksum(bids, asks) == checksum
        self.checksums_checked += 1

    def top(self) -> Top | None:
        if not self.synced or not self.bids or not self.asks:
            return None
        bid, ask = max(self.bids), min(self.asks)
        bid_sz, ask_sz = float(self.bids[bid][1]), float(self.asks[ask][1])
        return bid, bid_sz * self.ct_val, ask, ask_sz * self.ct_val


def okx_symbol(inst_id: str) -> str:
    """``BTC-USDT-SWAP`` -> ``BTCUSDT``."""
    base, quote, _ = inst_id.split("-")
    return base + quote


@dataclass
class Replay:
    """Every book of a recording, plus what the replicas noticed on the way."""

    binance: dict[str, BinanceReplica] = field(default_factory=dict)
    bybit: dict[str, BybitReplica] = field(default_factory=dict)
    okx: dict[str, OkxReplica] = field(default_factory=dict)
    okx_ct_val: dict[str, float] = field(default_factory=dict)  # from the recorded instruments
    book_tickers_checked: int = 0

    def feed(self, record: Record) -> tuple[Exchange, str] | None:
        """Apply one record; the (exchange, symbol) whose book it touched, if any."""
        data = record.data
        if record.exchange is Exchange.OKX:
            return self._feed_okx(record)
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

    def _feed_okx(self, record: Record) -> tuple[Exchange, str] | None:
        data = record.data
        if record.source is Source.REST:
            for item in data["data"]:
                self.okx_ct_val[item["instId"]] = float(item["ctVal"]) * float(item["ctMult"])
            return None
        if not isinstance(data, dict) or "action" not in data:
            return None
        if data["arg"]["channel"] != "books":
            return None
        inst_id = data["arg"]["instId"]
        symbol = okx_symbol(inst_id)
        replica = self.okx.setdefault(symbol, OkxReplica(self.okx_ct_val[inst_id]))
        replica.on_frame(data, record.ts)
        return Exchange.OKX, symbol

    def _check_book_ticker(self, ticker: dict[str, Any]) -> None:
        replica = self.binance.get(ticker["s"])
        if replica is None or replica.state != "synced" or replica.last_u != ticker["u"]:
            return
        top = replica.top()
        expected = (float(ticker["b"]), float(ticker["B"]), float(ticker["a"]), float(ticker["A"]))
        assert top == expected, (ticker, top)
        self.book_tickers_checked += 1

    def top(self, exchange: Exchange, symbol: str) -> Top | None:
        """(bid, bid size, ask, ask size) in base units, while the book is synced."""
        books: dict[str, Any] = (
            self.binance
            if exchange is Exchange.BINANCE
            else self.bybit
            if exchange is Exchange.BYBIT
            else self.okx
        )
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
