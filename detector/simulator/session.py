"""Recordings from the market model: a scripted client receives the feeds as a live one would.

The client opens the Binance streams and fetches a REST snapshot per symbol 200-500 ms later,
subscribes to Bybit (ack, then snapshots), and reacts to faults the way the real clients do: a
broken Binance ``pu`` chain makes it fetch a new snapshot ~300 ms later, a Bybit ``u`` jump makes
it resubscribe ~300 ms later, a dropped connection makes it reconnect and start over. Every
message is recorded at its receive time (exchange time plus a network delay that never reorders
a connection), as a :class:`detector.recording.Record`.

When the model simulates OKX, the client also fetches OKX's instrument list (the recording
carries the ``ctVal`` a replay converts contracts with), subscribes every symbol's ``books``,
``tickers``, ``trades`` and ``funding-rate`` (an ack per arg, then the snapshots), resubscribes a
book whose ``prevSeqId`` breaks the chain ~300 ms later, and reconnects after a drop. It draws
from random streams of its own: the Binance and Bybit records are the same with OKX or without.
OKX's text ``pong`` is not recorded (the feeds are never silent long enough to need a ping).
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
from detector.simulator import wire, wire_okx
from detector.simulator.instruments import okx_inst_id, profile
from detector.simulator.market import MarketModel, resolve_venues
from detector.simulator.scenarios import Scenario, build_scenario
from detector.simulator.server_catalog import OKX_INSTRUMENTS_PATH, okx_instruments
from detector.simulator.state import FeedRates
from detector.simulator.wire import Disconnect, Frame

DEFAULT_START_MS = 1_786_540_800_000  # 2026-08-12 13:20 UTC
DEFAULT_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
RESYNC_DELAY_MS = 300  # from noticing a broken chain to asking for a new snapshot
PING_EVERY_MS = 20_000  # Bybit wants a ping every 20 s
STEP_MS = 50  # how far the model runs between looks at the client's to-do list

BINANCE, BYBIT, OKX = Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX
_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"


class _Do(IntEnum):
    REST_SNAPSHOT = 0  # Binance: the server answers GET /fapi/v1/depth
    SUBSCRIBE = 1  # Bybit: the server handles a subscribe of every topic of a symbol
    RESUBSCRIBE = 2  # Bybit: unsubscribe a broken book topic ...
    SUBSCRIBE_BOOK = 3  # ... and subscribe it again
    PING = 4
    RECONNECT = 5
    OKX_SUBSCRIBE = 6  # OKX: every channel of every symbol in one request
    OKX_RESUBSCRIBE = 7  # OKX: unsubscribe a broken book ...
    OKX_SUBSCRIBE_BOOK = 8  # ... and subscribe it again


class _Chain:
    """What the client knows of one book's update chain."""

    __slots__ = ("last", "synced")

    def __init__(self) -> None:
        self.last: int | None = None
        self.synced = False


class RecordingSession:
    """Plays a live client of every simulated exchange against ``model`` and yields what it
    receives."""

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
        self._down = {BINANCE: False, BYBIT: False, OKX: False}
        self._conn_id = ""
        self._req_id = 0
        self._okx = OKX in model.venues
        self._okx_rng = Random(f"{seed}/client/okx")
        self._okx_books = {s: _Chain() for s in model.symbols}
        self._okx_symbols = {okx_inst_id(s): s for s in model.symbols}
        self._okx_topics: dict[str, bool] = {}
        self._okx_conn_id = ""
        start = model.start_ms
        self._open_binance(start)
        self._open_bybit(start)
        if self._okx:
            body = wire_okx.rest(okx_instruments({s: profile(s) for s in model.symbols}))
            self._deliver(start, OKX, Source.REST, OKX_INSTRUMENTS_PATH, body)
            self._open_okx(start)

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
        rng = self._okx_rng if exchange is OKX else self._rng
        if source is Source.REST:
            recv = ts + 10 + int(rng.random() * 40)
        else:
            if exchange is BINANCE:
                delay = 5 + int(rng.random() * 20)
            elif exchange is BYBIT:
                delay = 8 + int(rng.random() * 25)
            else:
                delay = 10 + int(rng.random() * 25)
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
        if exchange is OKX:
            self._receive_okx(frame)
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

    def _receive_okx(self, frame: Frame) -> None:
        if not self._okx or not self._okx_topics.get(frame.channel, False):
            return  # not subscribed (yet, or any more)
        recv = self._deliver(frame.ts, OKX, Source.WS, frame.endpoint, frame.data)
        if frame.malformed or not frame.channel.startswith(wire_okx.BOOKS + ":"):
            return
        data = frame.data["data"][0]
        symbol = self._okx_symbols[frame.data["arg"]["instId"]]
        chain = self._okx_books[symbol]
        # OKX: each update's prevSeqId is the last seqId (a keepalive repeats it, a reset after
        # maintenance restarts seqId lower but still names the last one).
        if chain.synced and data["prevSeqId"] != chain.last:
            chain.synced = False
            self._schedule(recv + RESYNC_DELAY_MS, _Do.OKX_RESUBSCRIBE, symbol)
        chain.last = data["seqId"]

    def _disconnect(self, event: Disconnect) -> None:
        self._down[event.exchange] = True
        if event.exchange is OKX:
            self._okx_topics.clear()
            at = event.until_ms + 20 + int(self._okx_rng.random() * 60)
            self._schedule(at, _Do.RECONNECT, event.exchange.value)
            return
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

    def _open_okx(self, now: int) -> None:
        rng = self._okx_rng
        self._okx_conn_id = f"{rng.getrandbits(32):08x}"  # OKX connIds: 8 hex digits
        self._schedule(now + 60 + int(rng.random() * 90), _Do.OKX_SUBSCRIBE, "")

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
            elif exchange is BYBIT:
                self._open_bybit(now)
            else:
                self._open_okx(now)
        else:
            self._do_okx(what, arg, now)

    def _do_okx(self, what: _Do, arg: str, now: int) -> None:
        if self._down[OKX]:
            return
        if what is _Do.OKX_SUBSCRIBE:
            args = [(c, s) for s in self.model.symbols for c in wire_okx.CHANNELS]
            for channel, symbol in args:  # an ack per arg, in order
                self._okx_event("subscribe", channel, symbol, now)
                self._okx_topics[wire_okx.topic(channel, okx_inst_id(symbol))] = True
            for channel, symbol in args:  # then what each subscription gets at once
                if channel == wire_okx.BOOKS:
                    self._okx_book_snapshot(symbol, now)
                elif channel == wire_okx.TICKERS:
                    self._deliver_okx(now, self.model.okx_ticker(symbol))
                elif channel == wire_okx.FUNDING:
                    self._deliver_okx(now, self.model.okx_funding(symbol))
        elif what is _Do.OKX_RESUBSCRIBE:
            self._okx_event("unsubscribe", wire_okx.BOOKS, arg, now)
            self._okx_topics[wire_okx.topic(wire_okx.BOOKS, okx_inst_id(arg))] = False
            at = now + 30 + int(self._okx_rng.random() * 30)
            self._schedule(at, _Do.OKX_SUBSCRIBE_BOOK, arg)
        elif what is _Do.OKX_SUBSCRIBE_BOOK:
            self._okx_event("subscribe", wire_okx.BOOKS, arg, now)
            self._okx_topics[wire_okx.topic(wire_okx.BOOKS, okx_inst_id(arg))] = True
            self._okx_book_snapshot(arg, now)

    def _deliver_okx(self, now: int, data: Any) -> None:
        self._deliver(now, OKX, Source.WS, wire_okx.OKX_PUBLIC, data)

    def _okx_event(self, kind: str, channel: str, symbol: str, now: int) -> None:
        ack = wire_okx.event(kind, channel, okx_inst_id(symbol), self._okx_conn_id)
        self._deliver_okx(now, ack)

    def _okx_book_snapshot(self, symbol: str, now: int) -> None:
        frame = self.model.okx_books_snapshot(symbol)
        self._deliver_okx(now, frame)
        chain = self._okx_books[symbol]
        chain.last, chain.synced = frame["data"][0]["seqId"], True

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
    venues: Sequence[Exchange] | None = None,
) -> Iterator[Record]:
    """The recording of ``scenario`` (a name or a :class:`Scenario`) as an iterator of records.

    Deterministic: the same arguments give the same records. ``duration_s`` overrides the
    scenario's length (``float("inf")`` with ``max_records`` for an endless calm benchmark feed).
    ``venues`` None records Binance and Bybit (plus OKX if the scenario names it); with OKX among
    ``venues`` a scenario given by name comes with its OKX events. The Binance and Bybit records
    are the same either way, but where the scenario's OKX windows move their books.
    """
    if isinstance(scenario, str):
        okx = None if venues is None else OKX in venues
        scenario = build_scenario(scenario, symbols, okx=okx)
    model = MarketModel(
        symbols, seed, start_ms, scenario, rates, venues=resolve_venues(venues, scenario)
    )
    seconds = scenario.duration_s if duration_s is None else duration_s
    until = start_ms + round(seconds * 1000) if seconds != float("inf") else 2**62
    records = RecordingSession(model, seed).records(until)
    return records if max_records is None else islice(records, max_records)
