"""A pre-generated market: every frame the exchanges publish, already framed for the wire.

:func:`build_timeline` runs a :class:`~detector.simulator.market.MarketModel` ahead of time and
keeps, in publication order, each frame as the bytes of one WebSocket text frame (header and
JSON), so that a server can push them at any rate with no encoding in its sending loop
(:mod:`detector.simulator.server_push`). Every ``snapshot_every_ms`` of market time it also
keeps the snapshots a client syncs from, at that point of the stream: Binance's REST depth
(``lastUpdateId`` bridges the next diff), Bybit's ``orderbook``/``tickers`` and OKX's ``books``,
``tickers`` and ``funding-rate`` subscription snapshots. A client that asks for one gets the
next one in the stream, then the frames that follow it: its book syncs as with the live server.

Binance frames are combined-stream messages; a mark price is kept under ``@markPrice@1s`` and,
every third second, under ``@markPrice`` too. Disconnects of the scenario are not kept (the
timeline is for load, not faults). Pure: no I/O.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import orjson

from detector.models import Exchange
from detector.simulator import wire, wire_okx
from detector.simulator.instruments import okx_inst_id
from detector.simulator.market import MarketModel, resolve_venues
from detector.simulator.scenarios import Scenario
from detector.simulator.state import FeedRates
from detector.simulator.wire import Frame

FRAME, WS_SNAPSHOT, REST_SNAPSHOT = 0, 1, 2
"""Kinds of entry: a frame for every subscriber of its key; a subscription snapshot for the
clients waiting for one (its key is the topic); a Binance REST depth body (key: the symbol)."""
SNAPSHOT_EVERY_MS = 250
BINANCE_SNAPSHOT_LIMIT = 1000  # what the detector asks for, up to 96 books

BINANCE, BYBIT, OKX = Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX
VENUE_INDEX: dict[Exchange, int] = {e: i for i, e in enumerate(Exchange)}


def ws_text_frame(payload: bytes, rsv1: bool = False) -> bytes:
    """``payload`` as one unmasked, final WebSocket text frame (RFC 6455 §5.2): a server's."""
    first = 0xC1 if rsv1 else 0x81  # FIN, (RSV1: compressed), opcode 1
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", first, n) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


def frame_payload(frame: bytes) -> bytes:
    """The payload of a frame made by :func:`ws_text_frame`."""
    n = frame[1]
    return frame[2 + (2 if n == 126 else 8 if n == 127 else 0) :]


@dataclass(slots=True)
class Timeline:
    """Entries in publication order, as parallel lists (cheap to walk in a sending loop).

    ``times`` are market milliseconds (never decreasing), ``kinds`` :data:`FRAME`,
    :data:`WS_SNAPSHOT` or :data:`REST_SNAPSHOT`, ``venues`` the :data:`VENUE_INDEX` of each
    entry's exchange, ``keys`` its stream, topic or symbol, ``data`` its WebSocket frame (a REST
    snapshot: the JSON body).
    """

    symbols: tuple[str, ...]
    venues: tuple[Exchange, ...]
    start_ms: int
    end_ms: int
    times: list[int]
    kinds: bytearray
    venue_of: bytearray
    keys: list[str]
    data: list[bytes]
    frames: int  # entries of kind FRAME

    @property
    def duration_s(self) -> float:
        return (self.end_ms - self.start_ms) / 1000

    @property
    def frames_per_s(self) -> float:
        """Frames per second of market time: a push at ``speed`` x sends ``speed`` times as many."""
        return self.frames / self.duration_s if self.end_ms > self.start_ms else 0.0

    @property
    def nbytes(self) -> int:
        return sum(len(d) for d in self.data)


class _Builder:
    def __init__(
        self, symbols: tuple[str, ...], venues: tuple[Exchange, ...], depth_limit: int
    ) -> None:
        self.symbols, self.venues, self.depth_limit = symbols, venues, depth_limit
        self.times: list[int] = []
        self.kinds = bytearray()
        self.venue_of = bytearray()
        self.keys: list[str] = []
        self.data: list[bytes] = []
        self.frames = 0
        self._names: dict[str, str] = {}  # one str object per key, not one per frame

    def add(self, ts: int, kind: int, exchange: Exchange, key: str, data: bytes) -> None:
        self.times.append(ts)
        self.kinds.append(kind)
        self.venue_of.append(VENUE_INDEX[exchange])
        self.keys.append(self._names.setdefault(key, key))
        self.data.append(data)
        if kind == FRAME:
            self.frames += 1

    def frame(self, frame: Frame) -> None:
        data = frame.data
        if frame.exchange is BINANCE and frame.channel.endswith("@markPrice"):
            # As the live server does: @1s subscribers get every mark, the others every 3 s.
            stream = frame.channel + "@1s"
            body = orjson.dumps({"stream": stream, "data": data["data"]})
            self.add(frame.ts, FRAME, BINANCE, stream, ws_text_frame(body))
            if (frame.ts // 1000) % 3 != 0:
                return
        payload = data.encode() if isinstance(data, str) else orjson.dumps(data)
        self.add(frame.ts, FRAME, frame.exchange, frame.channel, ws_text_frame(payload))

    def depth(self, model: MarketModel, ts: int, symbols: Sequence[str]) -> None:
        for symbol in symbols:
            body = model.binance_depth_snapshot(symbol, self.depth_limit)
            self.add(ts, REST_SNAPSHOT, BINANCE, symbol, orjson.dumps(body))

    def snapshots(self, model: MarketModel, ts: int) -> None:
        for symbol in self.symbols:
            self._ws(
                ts, BYBIT, wire.orderbook_topic(symbol), model.bybit_orderbook_snapshot(symbol)
            )
            self._ws(ts, BYBIT, wire.tickers_topic(symbol), model.bybit_tickers_snapshot(symbol))
            if OKX in self.venues:
                inst = okx_inst_id(symbol)
                topic = wire_okx.topic
                self._ws(ts, OKX, topic(wire_okx.BOOKS, inst), model.okx_books_snapshot(symbol))
                self._ws(ts, OKX, topic(wire_okx.TICKERS, inst), model.okx_ticker(symbol))
                self._ws(ts, OKX, topic(wire_okx.FUNDING, inst), model.okx_funding(symbol))

    def _ws(self, ts: int, exchange: Exchange, topic: str, payload: object) -> None:
        self.add(ts, WS_SNAPSHOT, exchange, topic, ws_text_frame(orjson.dumps(payload)))


def _staggered(
    symbols: Sequence[str], start_ms: int, every_ms: int
) -> Iterator[tuple[int, list[str]]]:
    """When each symbol's next depth snapshot is due after ``start_ms``, in time order: every
    ``every_ms``, the i-th of n symbols ``i * every_ms / n`` into the period. Staggered, so that a
    client fetching one book after another waits a fraction of the period for each, not all of
    it (a real exchange answers at once)."""
    slots: dict[int, list[str]] = {}
    for i, symbol in enumerate(symbols):
        slots.setdefault(i * every_ms // len(symbols), []).append(symbol)
    for period in itertools.count(start_ms, every_ms):
        for offset, due in slots.items():
            if period + offset > start_ms:
                yield period + offset, due


def build_timeline(
    scenario: Scenario,
    *,
    symbols: Sequence[str],
    seed: int = 1,
    rates: FeedRates | None = None,
    venues: Sequence[Exchange] | None = None,
    start_ms: int = 0,
    max_frames: int | None = None,
    duration_s: float | None = None,
    snapshot_every_ms: int = SNAPSHOT_EVERY_MS,
    depth_every_ms: int | None = None,
    depth_limit: int = BINANCE_SNAPSHOT_LIMIT,
) -> Timeline:
    """The market of ``scenario`` from ``start_ms``, until ``max_frames`` frames or
    ``duration_s`` of market time (the scenario's length when neither is given), with
    subscription snapshots every ``snapshot_every_ms`` and Binance depth snapshots of
    ``depth_limit`` levels every ``depth_every_ms`` (default: ``snapshot_every_ms``; staggered
    over the symbols), the first of both at ``start_ms``. Deterministic."""
    depth_every_ms = snapshot_every_ms if depth_every_ms is None else depth_every_ms
    if snapshot_every_ms <= 0 or depth_every_ms <= 0:
        raise ValueError(
            f"snapshot_every_ms and depth_every_ms must be > 0,"
            f" got {snapshot_every_ms} and {depth_every_ms}"
        )
    if depth_limit <= 0:
        raise ValueError(f"depth_limit must be > 0, got {depth_limit}")
    if max_frames is not None and max_frames <= 0:
        raise ValueError(f"max_frames must be > 0, got {max_frames}")
    chosen = resolve_venues(venues, scenario)
    model = MarketModel(symbols, seed, start_ms, scenario, rates, venues=chosen)
    builder = _Builder(tuple(model.symbols), chosen, depth_limit)
    seconds = scenario.duration_s if duration_s is None and max_frames is None else duration_s
    until = start_ms + round(seconds * 1000) if seconds is not None else None
    depth_times = _staggered(builder.symbols, start_ms, depth_every_ms)
    builder.depth(model, start_ms, builder.symbols)
    next_depth, due = next(depth_times)
    now = next_ws = start_ms
    while True:
        if now == next_depth:
            builder.depth(model, now, due)
            next_depth, due = next(depth_times)
        if now == next_ws:
            builder.snapshots(model, now)
            next_ws += snapshot_every_ms
        if (until is not None and now >= until) or (
            max_frames is not None and builder.frames >= max_frames
        ):
            break
        now = min(next_depth, next_ws)
        for output in model.advance(now):
            if isinstance(output, Frame):
                builder.frame(output)
    return Timeline(
        symbols=builder.symbols,
        venues=chosen,
        start_ms=start_ms,
        end_ms=now,
        times=builder.times,
        kinds=builder.kinds,
        venue_of=builder.venue_of,
        keys=builder.keys,
        data=builder.data,
        frames=builder.frames,
    )
