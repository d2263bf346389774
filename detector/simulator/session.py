"""Recordings from the market model: a scripted client receives the feeds as a live one would.

The client opens the Binance streams and fetches a REST snapshot per symbol 200-500 ms later,
subscribes to Bybit (ack, then snapshots), and reacts to faults the way the real clients do: a
broken Binance ``pu`` chain makes it fetch a new snapshot ~300 ms later, a Bybit ``u`` jump makes
it resubscribe ~300 ms later, a dropped connection makes it reconnect and start over. Every
message is recorded at its receive time (exchange time plus a network delay that never reorders
a connection), as a :class:`detector.recording.Record`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from enum import IntEnum
from itertools import islice
from random import Random
from typing import Any

from detector.models import Exchange, Source
from detector.recording import Record
from detector.simulator import wire
from detector.simulator.market import MarketModel
from detector.simulator.scenarios import Scenario, build_scenario
from detector.simulator.state import FeedRates
from detector.simulator.wire import Disconnect, Frame

DEFAULT_START_MS = 1_786_540_800_000  # 2026-08-12 13:20 UTC
DEFAULT_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
RESYNC_DELAY_MS = 300  # from noticing a broken chain to asking for a new snapshot
PING_EVERY_MS = 20_000  # Bybit wants a ping every 20 s
STEP_MS = 50  # how far the model runs between looks at the client's to-do list

BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT
_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"


class _Do(IntEnum):
    REST_SNAPSHOT = 0  # Binance: the server answers GET /fapi/v1/depth
    SUBSCRIBE = 1  # Bybit: the server handles a subscribe of every topic of a symbol
    RESUBSCRIBE = 2  # Bybit: unsubscribe a broken book topic ...
    SUBSCRIBE_BOOK = 3  # ... and subscribe it again
    PING = 4
    RECONNECT = 5


class _Chain:
    """What the client knows of one book's update chain."""

    __slots__ = ("last", "synced")

    def __init__(self) -> None:
        self.last: int | None = None
        self.synced = False


class RecordingSession:
    """Plays a live client of both exchanges against ``model`` and yields what it receives."""

    def __init__(self, model: MarketModel, seed: int) -> None:
        self.model = model
        self._rng = Random(f"{seed}/client")
        self._todo: list[tuple[int, int, _Do, str]] = []
        self._inbox: list[tuple[int, int, Record]] = []
        self._seq = 0
        self._last_recv: dict[tuple[Exchange, str], int] = {}
        self._binance = {s: _Chain() for s in model.symbols}
        self._bybit = {s: _Chain() for s in model.symbols}
        self._topics: dict[str, bool] = {}
        self._down = {BINANCE: False, BYBIT: False}
        self._conn_id = ""
        self._req_id = 0
        start = model.start_ms
        self._open_binance(start)
        self._open_bybit(start)

    def records(self, until_ms: int) -> Iterator[Record]:
        """Every recorded message up to ``until_ms`` of market time, in receive order."""
        model, todo, inbox = self.model, self._todo, self._inbox
        now = model.now_ms
        while now < until_ms:
            step = min(now + STEP_MS, until_ms)
            if todo and todo[0][0] < step:
                step = max(todo[0][0], now)
            for output in model.advance(step):
                if isinstance(output, Frame):
                    self._receive(output)
                else:
                    self._disconnect(output)
            while todo and todo[0][0] <= step:
                _, _, what, arg = heapq.heappop(todo)
                self._do(what, arg, step)
            while inbox and inbox[0][0] <= step:
                yield heapq.heappop(inbox)[2]
            now = step
        while inbox:
            yield heapq.heappop(inbox)[2]

    # -- delivery ------------------------------------------------------------------------------
    def _deliver(
        self, ts: int, exchange: Exchange, source: Source, endpoint: str, data: Any
    ) -> int:
        """Queue a message sent at ``ts``; returns its receive time."""
        rng = self._rng
        if source is Source.REST:
            recv = ts + 10 + int(rng.random() * 40)
        else:
            delay = (
                (5 + int(rng.random() * 20))
                if exchange is BINANCE
                else (8 + int(rng.random() * 25))
            )
            key = (exchange, endpoint)
            recv = max(ts + delay, self._last_recv.get(key, 0))  # TCP keeps a connection in order
            self._last_recv[key] = recv
        self._seq += 1
        heapq.heappush(
            self._inbox, (recv, self._seq, Record(recv, exchange, source, endpoint, data))
        )
        return recv

    def _schedule(self, at: int, what: _Do, arg: str = "") -> None:
        self._seq += 1
        heapq.heappush(self._todo, (at, self._seq, what, arg))

    def _receive(self, frame: Frame) -> None:
        exchange, channel = frame.exchange, frame.channel
        if self._down[exchange]:
            return
        if exchange is BYBIT and not self._topics.get(channel, False):
            return  # not subscribed (yet, or any more)
        recv = self._deliver(frame.ts, exchange, Source.WS, frame.endpoint, frame.data)
        if frame.malformed:
            return  # the client cannot read it: as good as lost, the next update shows a gap
        if exchange is BINANCE and channel.endswith("@depth@100ms"):
            data = frame.data["data"]
            chain = self._binance[data["s"]]
            if chain.synced and data["pu"] != chain.last:
                chain.synced = False
                self._schedule(recv + RESYNC_DELAY_MS, _Do.REST_SNAPSHOT, data["s"])
            chain.last = data["u"]
        elif exchange is BYBIT and channel.startswith("orderbook."):
            data = frame.data["data"]
            chain = self._bybit[data["s"]]
            if chain.synced and data["u"] != (chain.last or 0) + 1:
                chain.synced = False
                self._schedule(recv + RESYNC_DELAY_MS, _Do.RESUBSCRIBE, data["s"])
            chain.last = data["u"]

    def _disconnect(self, event: Disconnect) -> None:
        self._down[event.exchange] = True
        if event.exchange is BYBIT:
            self._topics.clear()
        at = event.until_ms + 20 + int(self._rng.random() * 60)
        self._schedule(at, _Do.RECONNECT, event.exchange.value)

    # -- client actions ------------------------------------------------------------------------
    def _open_binance(self, now: int) -> None:
        """Streams open now; each book needs a REST snapshot, fetched 200-500 ms later."""
        for symbol, chain in self._binance.items():
            chain.synced = False
            self._schedule(now + 200 + int(self._rng.random() * 300), _Do.REST_SNAPSHOT, symbol)

    def _open_bybit(self, now: int) -> None:
        rng = self._rng
        # Bybit connection ids look like "d9tc9msptl6qssdmv0gg-cwel": an xid and a suffix.
        xid = "".join(rng.choice(_XID_ALPHABET) for _ in range(20))
        self._conn_id = f"{xid}-{''.join(rng.choice(_XID_ALPHABET[10:]) for _ in range(4))}"
        self._schedule(now + 60 + int(rng.random() * 90), _Do.SUBSCRIBE, "")
        self._schedule(now + PING_EVERY_MS, _Do.PING, self._conn_id)

    def _next_req_id(self) -> str:
        self._req_id += 1
        return str(self._req_id)

    def _do(self, what: _Do, arg: str, now: int) -> None:
        model = self.model
        if what is _Do.REST_SNAPSHOT:
            if self._down[BINANCE]:
                return
            body = model.binance_depth_snapshot(arg)
            self._deliver(now, BINANCE, Source.REST, wire.binance_depth_path(arg), body)
            self._binance[arg].synced = True
        elif what is _Do.SUBSCRIBE:
            for symbol in model.symbols:  # one request per symbol: book, tickers, trades
                self._ack("subscribe", now)
                for topic in (
                    wire.orderbook_topic(symbol),
                    wire.tickers_topic(symbol),
                    wire.trade_topic(symbol),
                ):
                    self._topics[topic] = True
                self._book_snapshot(symbol, now)
                ticker = model.bybit_tickers_snapshot(symbol)
                self._deliver(now, BYBIT, Source.WS, wire.BYBIT_LINEAR, ticker)
        elif what is _Do.RESUBSCRIBE:
            if self._down[BYBIT]:
                return
            self._ack("unsubscribe", now)
            self._topics[wire.orderbook_topic(arg)] = False
            self._schedule(now + 30 + int(self._rng.random() * 30), _Do.SUBSCRIBE_BOOK, arg)
        elif what is _Do.SUBSCRIBE_BOOK:
            if self._down[BYBIT]:
                return
            self._ack("subscribe", now)
            self._topics[wire.orderbook_topic(arg)] = True
            self._book_snapshot(arg, now)
        elif what is _Do.PING:
            if arg == self._conn_id and not self._down[BYBIT]:
                self._deliver(now, BYBIT, Source.WS, wire.BYBIT_LINEAR, wire.bybit_pong(arg))
                self._schedule(now + PING_EVERY_MS, _Do.PING, arg)
        elif what is _Do.RECONNECT:
            exchange = Exchange(arg)
            self._down[exchange] = False
            if exchange is BINANCE:
                self._open_binance(now)
            else:
                self._open_bybit(now)

    def _ack(self, op: str, now: int) -> None:
        ack = wire.bybit_ack(op, self._next_req_id(), self._conn_id)
        self._deliver(now, BYBIT, Source.WS, wire.BYBIT_LINEAR, ack)

    def _book_snapshot(self, symbol: str, now: int) -> None:
        frame = self.model.bybit_orderbook_snapshot(symbol)
        self._deliver(now, BYBIT, Source.WS, wire.BYBIT_LINEAR, frame)
        chain = self._bybit[symbol]
        chain.last, chain.synced = frame["data"]["u"], True


def generate_records(
    scenario: Scenario | str = "showcase",
    *,
    seed: int = 1,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    start_ms: int = DEFAULT_START_MS,
    duration_s: float | None = None,
    max_records: int | None = None,
    rates: FeedRates | None = None,
) -> Iterator[Record]:
    """The recording of ``scenario`` (a name or a :class:`Scenario`) as an iterator of records.

    Deterministic: the same arguments give the same records. ``duration_s`` overrides the
    scenario's length (``float("inf")`` with ``max_records`` for an endless calm benchmark feed).
    """
    if isinstance(scenario, str):
        scenario = build_scenario(scenario, symbols)
    model = MarketModel(symbols, seed, start_ms, scenario, rates)
    seconds = scenario.duration_s if duration_s is None else duration_s
    until = start_ms + round(seconds * 1000) if seconds != float("inf") else 2**62
    records = RecordingSession(model, seed).records(until)
    return records if max_records is None else islice(records, max_records)
