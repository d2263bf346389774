"""The frame pusher: a pre-generated market (:mod:`~detector.simulator.timeline`) served over the
loopback exchanges' endpoints at a set rate, for load tests where the server must not be the
bottleneck.

The WebSocket endpoints and their subscription protocols are the live simulator's
(:mod:`~detector.simulator.server_ws`, ``server_ws_okx``); only what they send differs. A task
walks the timeline at ``speed`` x market time (``rate`` frames/s gives the speed) and appends
each frame's pre-built bytes to the buffer of every client subscribed to its stream or topic;
each client's buffer goes out in one ``transport.write`` per tick. No JSON is encoded while
pushing. A subscription (Bybit, OKX) waits for the next snapshot of its topic in the timeline
and gets the frames after it; ``GET /fapi/v1/depth`` waits for the next Binance snapshot
likewise: books sync as against the live server, under Binance's weight limit (2,400 a minute,
by ``limit``; beyond it a 429 with ``Retry-After``, counted). The other REST endpoints are the live
simulator's, answered from a model at the timeline's start.

With ``deflate`` the server accepts permessage-deflate and compresses every message of a
connection that negotiated it (one compressor per connection, as a real server does).
A client whose socket backs up (more than :data:`HIGH_WATER` bytes unsent) pauses the push
until it drains: the push keeps its schedule, so the lateness shows in exchange-time latency.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, cast

import orjson
from aiohttp import WSMsgType, web

from detector.models import Exchange
from detector.simulator import wire, wire_okx
from detector.simulator.market import MarketModel
from detector.simulator.scenarios import Scenario
from detector.simulator.server import SimulatorUrls
from detector.simulator.server_rest import (
    BINANCE_WEIGHT_LIMIT,
    RestApi,
    binance_depth_limit,
    binance_depth_weight,
)
from detector.simulator.server_rest_okx import OkxRestApi
from detector.simulator.server_state import FaultSchedule, ServerContext
from detector.simulator.server_ws import BinanceStreams, BybitStreams, Streams, WsClient
from detector.simulator.server_ws_okx import OkxStreams
from detector.simulator.timeline import (
    FRAME,
    VENUE_INDEX,
    WS_SNAPSHOT,
    Timeline,
    frame_payload,
    ws_text_frame,
)

log = logging.getLogger(__name__)

MAX_BATCH = 4096  # entries walked before the loop yields, when it is behind
MAX_SLEEP_S = 0.002
HIGH_WATER = 4 * 2**20  # bytes unsent to one client before the push waits for it
LOW_WATER = 2**20
DEPTH_PATH = "/fapi/v1/depth"
_SNAPSHOT_CHANNELS = (wire_okx.BOOKS, wire_okx.TICKERS, wire_okx.FUNDING)


@dataclass(slots=True)
class PushStats:
    """What the pusher did: entries walked, frames written (one per subscriber), waits."""

    entries: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    stalls: int = 0  # times the push waited for a backed-up client
    stalled_s: float = 0.0
    max_late_ms: float = 0.0  # wall ms a frame went out after it was due, at worst
    depth_weight_peak: int = 0  # the most Binance request weight used in one minute
    depth_429s: int = 0  # depth requests refused for weight, as Binance would
    connections: dict[Exchange, int] = field(default_factory=dict)
    compressed_connections: int = 0  # connections that negotiated permessage-deflate


def _cut(body: bytes, limit: int) -> bytes:
    """A depth body with at most ``limit`` levels a side (as deep as it is when shallower)."""
    snapshot = orjson.loads(body)
    if len(snapshot["bids"]) <= limit and len(snapshot["asks"]) <= limit:
        return body
    snapshot["bids"], snapshot["asks"] = snapshot["bids"][:limit], snapshot["asks"][:limit]
    return orjson.dumps(snapshot)


class PushClient(WsClient):
    """An accepted WebSocket whose messages go straight to the transport, framed by us."""

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, group: str, takeover: bool
    ) -> None:
        super().__init__(ws, request, group)
        self.out: list[bytes] = []  # frames of the current tick
        bits = int(ws.compress)
        self._deflate = zlib.compressobj(1, zlib.DEFLATED, -bits) if bits else None
        self._flush_mode = zlib.Z_SYNC_FLUSH if takeover else zlib.Z_FULL_FLUSH

    def send(self, text: str) -> None:
        """A reply (ack, pong): written now, in order with the pushed frames (none pending)."""
        if self.closed:
            return
        self.out.append(ws_text_frame(text.encode()))
        self.flush()

    def flush(self) -> int:
        """Write the tick's frames in one go; returns the bytes written."""
        out, transport = self.out, self.request.transport
        if transport is None or transport.is_closing():
            self.closed = True
            out.clear()
            return 0
        if self._deflate is None:
            data = b"".join(out)
        else:
            data = b"".join(self._compress(frame) for frame in out)
        out.clear()
        transport.write(data)
        return len(data)

    def _compress(self, frame: bytes) -> bytes:
        assert self._deflate is not None
        body = self._deflate.compress(frame_payload(frame)) + self._deflate.flush(self._flush_mode)
        return ws_text_frame(body.removesuffix(b"\x00\x00\xff\xff"), rsv1=True)

    def backlog(self) -> int:
        transport = self.request.transport
        return 0 if transport is None or self.closed else transport.get_write_buffer_size()


class _Pushed(Streams):
    """The live endpoints, with :class:`PushClient` connections; snapshots come from the
    timeline (a subscribed topic waits in ``client.pending`` for the next one)."""

    deflate = False
    stats: PushStats | None = None

    async def serve(self, request: web.Request, group: str) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=self.heartbeat, compress=self.deflate)
        await ws.prepare(request)
        extensions = ws.headers.get("Sec-WebSocket-Extensions", "")
        client = PushClient(ws, request, group, "server_no_context_takeover" not in extensions)
        self.clients.add(client)
        self.ctx.stats.connections[self.exchange] += 1
        if ws.compress and self.stats is not None:
            self.stats.compressed_connections += 1
        try:
            self.on_open(client, request)
            async for msg in ws:
                if msg.type is WSMsgType.TEXT and not client.closed:
                    self.on_text(client, msg.data)
        finally:
            self.clients.discard(client)
            client.closed = True
            await ws.close()
        return ws

    def _send_snapshot(self, client: WsClient, topic: str) -> None:
        client.pending[topic] = None


class PushBinanceStreams(_Pushed, BinanceStreams):
    """Binance combined streams (``/public/stream``, ``/market/stream``); raw ``/ws`` paths
    connect and get nothing (the timeline holds combined frames only)."""

    def on_open(self, client: WsClient, request: web.Request) -> None:
        super().on_open(client, request)
        if not client.combined:
            client.streams.clear()


class PushBybitStreams(_Pushed, BybitStreams):
    """Bybit ``/v5/public/linear``: acks as live; book and ticker snapshots from the timeline."""


class PushOkxStreams(_Pushed, OkxStreams):
    """OKX ``/ws/v5/public``: acks as live; books, tickers and funding snapshots from the
    timeline (trades and bbo-tbt need none)."""

    def _send_snapshot(self, client: WsClient, topic: str) -> None:
        if topic.split(":", 1)[0] in _SNAPSHOT_CHANNELS:
            client.pending[topic] = None


class FramePusher:
    """Serves ``timeline`` on one loopback port at ``rate`` frames/s (or ``speed`` x market
    time), from :meth:`start` on; :attr:`finished` is set when the timeline has been sent."""

    def __init__(
        self,
        timeline: Timeline,
        *,
        rate: float | None = None,
        speed: float | None = None,
        deflate: bool = False,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (rate is None) == (speed is None):
            raise ValueError("give rate or speed, not both")
        if rate is not None:
            if rate <= 0 or timeline.frames_per_s <= 0:
                raise ValueError(f"rate must be > 0 and the timeline not empty, got {rate}")
            speed = rate / timeline.frames_per_s
        assert speed is not None
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.timeline = timeline
        self.speed = speed
        self.deflate = deflate
        self.stats = PushStats()
        self.finished = asyncio.Event()
        self.started_at: float | None = None  # clock() when the push started
        self._t0 = 0.0
        self._seed, self._host, self._port, self._clock = seed, host, port, clock
        self._weight_minute, self._weight = -1, 0  # Binance depth weight in this minute
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._urls: SimulatorUrls | None = None
        self._streams: list[_Pushed] = []
        self._last_depth: dict[str, bytes] = {}
        self._depth_waiters: dict[str, list[asyncio.Future[bytes]]] = {}

    @property
    def rate(self) -> float:
        """Frames per second pushed (to one subscriber of every stream)."""
        return self.speed * self.timeline.frames_per_s

    @property
    def urls(self) -> SimulatorUrls:
        if self._urls is None:
            raise RuntimeError("the pusher is not started")
        return self._urls

    def scheduled_ms(self, market_ms: int) -> float:
        """The wall-clock time (ms) a frame of market time ``market_ms`` is due to be sent."""
        if self.started_at is None:
            raise RuntimeError("the pusher is not started")
        return self.started_at * 1000 + (market_ms - self.timeline.start_ms) / self.speed

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the pusher is already started")
        tl = self.timeline
        calm = Scenario("push", "pre-generated market", tl.duration_s)
        model = MarketModel(tl.symbols, self._seed, tl.start_ms, calm, venues=tuple(Exchange))
        ctx = ServerContext(model, FaultSchedule(calm, tl.start_ms), self._clock, self._seed)
        app = web.Application()
        app.router.add_get(DEPTH_PATH, self._depth)
        scratch = web.Application()  # the live simulator's other REST endpoints, as they are
        RestApi(ctx).add_routes(scratch)
        OkxRestApi(ctx).add_routes(scratch)
        for route in scratch.router.routes():
            path = route.resource.canonical if route.resource is not None else ""
            if route.method == "GET" and path != DEPTH_PATH:
                app.router.add_get(path, route.handler)
        binance, bybit, okx = PushBinanceStreams(ctx), PushBybitStreams(ctx), PushOkxStreams(ctx)
        binance.add_routes(app)
        bybit.add_routes(app)
        okx.add_routes(app)
        self._streams = [binance, bybit, okx]
        for s in self._streams:
            s.deflate, s.stats = self.deflate, self.stats
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        base = f"127.0.0.1:{port}" if self._host in ("", "0.0.0.0") else f"{self._host}:{port}"
        self._urls = SimulatorUrls(
            binance_rest=f"http://{base}",
            binance_ws=f"ws://{base}",
            bybit_rest=f"http://{base}",
            bybit_ws=f"ws://{base}{wire.BYBIT_LINEAR}",
            okx_rest=f"http://{base}",
            okx_ws=f"ws://{base}{wire_okx.OKX_PUBLIC}",
        )
        self.stats.connections = ctx.stats.connections
        self._t0 = time.perf_counter()  # the pacing clock; started_at is the same instant
        self.started_at = self._clock()
        self._task = asyncio.create_task(self._push(), name="frame-pusher")

    async def stop(self) -> None:
        """Close every connection (1001) and the server; idempotent."""
        runner, task = self._runner, self._task
        if runner is None:
            return
        self._runner = self._task = None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._release_waiters()
        for s in self._streams:
            await s.close_all()
        await runner.cleanup()

    async def __aenter__(self) -> FramePusher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- the push ------------------------------------------------------------------------------
    async def _push(self) -> None:
        tl, stats = self.timeline, self.stats
        times, kinds, venue_of, keys, data = tl.times, tl.kinds, tl.venue_of, tl.keys, tl.data
        clients: list[set[PushClient]] = [set() for _ in VENUE_INDEX]
        for s in self._streams:  # every client of these streams is a PushClient
            clients[VENUE_INDEX[s.exchange]] = cast(set[PushClient], s.clients)
        n, m0, per_s = len(times), tl.start_ms, self.speed * 1000  # market ms per wall second
        t0 = self._t0
        i = 0
        dirty: list[PushClient] = []
        while i < n:
            due = m0 + (time.perf_counter() - t0) * per_s
            j = bisect.bisect_right(times, due, i, min(n, i + MAX_BATCH))
            sent = 0
            for k in range(i, j):
                kind, key = kinds[k], keys[k]
                if kind == FRAME:
                    for c in clients[venue_of[k]]:
                        if key in c.streams and key not in c.pending:
                            out = c.out
                            if not out:
                                dirty.append(c)
                            out.append(data[k])
                            sent += 1
                elif kind == WS_SNAPSHOT:
                    for c in clients[venue_of[k]]:
                        if key in c.pending:
                            del c.pending[key]
                            if not c.out:
                                dirty.append(c)
                            c.out.append(data[k])
                else:
                    self._depth_snapshot(key, data[k])
            stats.entries += j - i
            stats.frames_sent += sent
            for c in dirty:
                stats.bytes_sent += c.flush()
            dirty.clear()
            if j > i:
                late_ms = (due - times[i]) / self.speed  # the batch's oldest frame, wall ms
                if late_ms > stats.max_late_ms:
                    stats.max_late_ms = late_ms
            i = j
            await self._wait_for_clients(clients)
            if i < n:
                wait = (times[i] - due) / per_s
                await asyncio.sleep(min(max(wait, 0.0), MAX_SLEEP_S))
        self._release_waiters()
        self.finished.set()
        log.info("pusher: timeline sent (%d entries)", n)

    async def _wait_for_clients(self, clients: list[set[PushClient]]) -> None:
        """Wait while a client has more than HIGH_WATER bytes unsent, until LOW_WATER."""
        slow = [c for group in clients for c in group if c.backlog() > HIGH_WATER]
        if not slow:
            return
        self.stats.stalls += 1
        started = time.perf_counter()
        # Polled: a raw transport.write gives no drain event to wait on.
        while any(c.backlog() > LOW_WATER for c in slow):  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        self.stats.stalled_s += time.perf_counter() - started

    # -- Binance REST depth --------------------------------------------------------------------
    def _depth_snapshot(self, symbol: str, body: bytes) -> None:
        self._last_depth[symbol] = body
        for waiter in self._depth_waiters.pop(symbol, ()):
            if not waiter.done():
                waiter.set_result(body)

    def _release_waiters(self) -> None:
        """The push is over: every waiting depth request gets the last snapshot."""
        for symbol, waiters in self._depth_waiters.items():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(self._last_depth[symbol])
        self._depth_waiters.clear()

    async def _depth(self, request: web.Request) -> web.StreamResponse:
        """``GET /fapi/v1/depth``: the next snapshot of the symbol in the timeline (the last
        one once the timeline is over), cut to ``limit`` levels a side (the timeline's depth at
        most), at the weight of ``limit``."""
        symbol, limit = request.query.get("symbol", ""), request.query.get("limit", "500")
        if symbol not in self.timeline.symbols:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        if not limit.isdigit():
            msg = "Illegal characters found in parameter 'limit'; legal range is '^[0-9]+$'."
            return web.json_response({"code": -1100, "msg": msg}, status=400)
        now_ms = int(self._clock() * 1000)  # Binance counts weight per minute of its clock
        if now_ms // 60_000 != self._weight_minute:
            self._weight_minute, self._weight = now_ms // 60_000, 0
        if self._weight >= BINANCE_WEIGHT_LIMIT:
            self.stats.depth_429s += 1
            retry_after = str(1 + (60_000 - now_ms % 60_000) // 1000)
            msg = "Too many requests; current limit of IP is 2400 requests per minute."
            headers = {"Retry-After": retry_after, "X-MBX-USED-WEIGHT-1M": str(self._weight)}
            return web.json_response({"code": -1003, "msg": msg}, status=429, headers=headers)
        self._weight += binance_depth_weight(int(limit))
        self.stats.depth_weight_peak = max(self.stats.depth_weight_peak, self._weight)
        used = str(self._weight)
        body: Any
        if self.finished.is_set() or self._task is None:
            body = self._last_depth[symbol]
        else:
            waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._depth_waiters.setdefault(symbol, []).append(waiter)
            body = await waiter
        body = _cut(body, binance_depth_limit(int(limit)))
        return web.Response(
            body=body, content_type="application/json", headers={"X-MBX-USED-WEIGHT-1M": used}
        )
