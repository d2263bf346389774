"""The WebSocket endpoints of the loopback exchanges (aiohttp): Binance routed streams
(``/public``, ``/market``; combined or raw, live SUBSCRIBE) and Bybit ``/v5/public/linear``
(subscribe ack or nack, snapshot then deltas, ping), fed with the market model's frames."""

from __future__ import annotations

import asyncio
import re
from collections import deque
from random import Random
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from detector.models import Exchange
from detector.simulator import wire
from detector.simulator.instruments import profile
from detector.simulator.server_state import ServerContext, binance_channel_group
from detector.simulator.wire import Frame

BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT
MAX_BACKLOG = 20_000  # messages queued for one client; beyond that it is cut, like a slow reader
BINANCE_HEARTBEAT_S = 180.0  # the server pings every 3 minutes
# Binance checks the syntax of a stream name, not whether it exists: a well-formed unknown
# stream is acknowledged and never delivers.
_STREAM_NAME = re.compile(r"^!?[A-Za-z0-9_]+(@[A-Za-z0-9_]+)+$")
_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
_BINANCE_METHODS = (
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST_SUBSCRIPTIONS",
    "SET_PROPERTY",
    "GET_PROPERTY",
)


class WsClient:
    """One accepted WebSocket: what it subscribed to, and an outbox drained in order."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, group: str) -> None:
        self.ws = ws
        self.request = request
        self.group = group  # Binance "public"/"market"; Bybit "linear"; OKX "public"
        self.streams: dict[str, None] = {}  # Binance streams / Bybit topics / OKX topics
        self.combined = True  # Binance: frames wrapped as {"stream","data"}
        self.pending: dict[str, None] = {}  # Bybit/OKX snapshots held back by a stall
        self.conn_id = ""
        self.requests: deque[int] = deque()  # OKX: times of its subscribe requests this hour
        self.closed = False
        self._outbox: deque[str] = deque()
        self._wake = asyncio.Event()

    def send(self, text: str) -> None:
        if self.closed:
            return
        if len(self._outbox) >= MAX_BACKLOG:
            self.drop()
            return
        self._outbox.append(text)
        self._wake.set()

    def send_json(self, payload: Any) -> None:
        self.send(wire.dumps(payload))

    def drop(self) -> None:
        """Cut the connection now, without a close frame: what a network drop looks like."""
        self.closed = True
        self._outbox.clear()
        self._wake.set()
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def pump(self) -> None:
        """Send queued messages as TEXT frames until the connection ends."""
        try:
            while not self.closed:
                await self._wake.wait()
                self._wake.clear()
                while self._outbox and not self.closed:
                    await self.ws.send_str(self._outbox.popleft())
        except ConnectionError:
            self.closed = True  # the peer went away; the reader sees it too


class Streams:
    """Accepted connections of one exchange: refusal while it is down, reading, shutdown."""

    exchange: Exchange
    heartbeat: float | None = None

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.clients: set[WsClient] = set()
        self.accepting = True

    async def serve(self, request: web.Request, group: str) -> web.StreamResponse:
        ctx = self.ctx
        if not self.accepting or ctx.faults.down_until(self.exchange, ctx.now_ms()) is not None:
            ctx.stats.refused_connections[self.exchange] += 1
            raise web.HTTPServiceUnavailable(text="503 Service Temporarily Unavailable")
        ws = web.WebSocketResponse(heartbeat=self.heartbeat)
        await ws.prepare(request)
        client = WsClient(ws, request, group)
        self.clients.add(client)
        ctx.stats.connections[self.exchange] += 1
        pump = asyncio.create_task(client.pump())
        try:
            self.on_open(client, request)
            async for msg in ws:
                if msg.type is WSMsgType.TEXT and not client.closed:
                    self.on_text(client, msg.data)
        finally:
            self.clients.discard(client)
            client.closed = True
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            await ws.close()
        return ws

    def on_open(self, client: WsClient, request: web.Request) -> None:
        """A connection was accepted."""

    def on_text(self, client: WsClient, text: str) -> None:
        raise NotImplementedError

    def drop_all(self) -> None:
        for client in list(self.clients):
            client.drop()

    async def close_all(self) -> None:
        """Close every connection with 1001 (going away) and refuse new ones."""
        self.accepting = False
        closing = [
            client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
            for client in list(self.clients)
        ]
        await asyncio.gather(*closing, return_exceptions=True)


class BinanceStreams(Streams):
    """``/public/{stream,ws}`` and ``/market/{stream,ws}``: one routed path per connection."""

    exchange = BINANCE
    heartbeat = BINANCE_HEARTBEAT_S

    def add_routes(self, app: web.Application) -> None:
        for group in ("public", "market"):
            for path in (f"/{group}/stream", f"/{group}/ws", f"/{group}/ws/{{stream}}"):
                app.router.add_get(path, self._route(group))

    def _route(self, group: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, group)

        return handle

    def on_open(self, client: WsClient, request: web.Request) -> None:
        client.combined = request.path.endswith("/stream")
        names = request.query.get("streams", "").split("/") if client.combined else []
        if "stream" in request.match_info:
            names = [request.match_info["stream"]]
        now = self.ctx.now_ms()
        for name in names:
            # An unknown (or refused) stream in the URL connects and never delivers.
            if name and self.ctx.faults.refused_topic(BINANCE, [name], now) is None:
                client.streams[name] = None

    def on_text(self, client: WsClient, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict):
            client.send_json({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
            return
        req_id = request.get("id")
        if req_id is not None and (not isinstance(req_id, int) or req_id < 0):
            msg = "Invalid request: request ID must be an unsigned integer"
            client.send_json({"error": {"code": 2, "msg": msg}, "id": None})
            return
        method, params = request.get("method"), request.get("params", [])
        result = self._call(client, method, params)
        if isinstance(result, tuple):
            code, msg = result
            client.send_json({"error": {"code": code, "msg": msg}, "id": req_id})
        else:
            client.send_json({"result": result, "id": req_id})

    def _call(self, client: WsClient, method: Any, params: Any) -> Any:
        """The result of a request, or (code, msg) of the error the server answers."""
        if method not in _BINANCE_METHODS:
            expected = ", ".join(f"`{m}`" for m in _BINANCE_METHODS)
            return 2, f"Invalid request: unknown variant `{method}`, expected one of {expected}"
        if method == "LIST_SUBSCRIPTIONS":
            return list(client.streams)
        if method == "SET_PROPERTY":
            if not isinstance(params, list) or len(params) != 2 or params[0] != "combined":
                return 0, "Unknown property"
            if not isinstance(params[1], bool):
                return 1, "Invalid value type: expected Boolean"
            client.combined = params[1]
            return None
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return 2, "Invalid request: invalid params"
        if method == "GET_PROPERTY":
            return client.combined if params == ["combined"] else (0, "Unknown property")
        if not all(_STREAM_NAME.match(name) for name in params):
            return 2, "Invalid request: invalid stream"
        if method == "UNSUBSCRIBE":
            for name in params:
                client.streams.pop(name, None)
            return None
        if self.ctx.faults.refused_topic(BINANCE, params, self.ctx.now_ms()) is not None:
            self.ctx.stats.faults["refused_topic"] += 1
            return 2, "Invalid request: invalid stream"
        for name in params:
            client.streams[name] = None
        return None

    def dispatch(self, frame: Frame) -> None:
        group, channel = binance_channel_group(frame.endpoint), frame.channel
        data = frame.data
        texts: dict[tuple[bool, str], str] = {}

        def text(combined: bool, stream: str) -> str:
            key = (combined, stream)
            if key not in texts:
                if isinstance(data, str):  # a truncated frame: sent as the broken text it is
                    texts[key] = data
                elif combined:
                    texts[key] = wire.dumps({"stream": stream, "data": data["data"]})
                else:
                    texts[key] = wire.dumps(data["data"])
            return texts[key]

        is_mark = channel.endswith("@markPrice")
        every_3s = not is_mark or (frame.ts // 1000) % 3 == 0  # @markPrice: every 3 s
        sent = 0
        for client in self.clients:
            if client.group != group:
                continue  # a stream on the wrong path delivers nothing
            if every_3s and channel in client.streams:
                client.send(text(client.combined, channel))
                sent += 1
            if is_mark and channel + "@1s" in client.streams:
                client.send(text(client.combined, channel + "@1s"))
                sent += 1
        self.ctx.stats.frames_sent[BINANCE] += sent


class SnapshotStreams(Streams):
    """Streams whose subscriptions start with a snapshot (Bybit, OKX): a client's topics held
    back by a stall (``client.pending``) get theirs when the feed runs again, and get no
    frames until then."""

    def _send_snapshot(self, client: WsClient, topic: str) -> None:
        raise NotImplementedError

    def flush(self, now: int) -> None:
        """Send the snapshots a stall held back once the feed runs again (after the tick's
        frames, which the snapshot already contains)."""
        if self.ctx.faults.is_stale(self.exchange, now):
            return
        for client in self.clients:
            if client.pending:
                pending, client.pending = client.pending, {}
                for topic in pending:
                    self._send_snapshot(client, topic)

    def dispatch(self, frame: Frame) -> None:
        text: str | None = None
        sent = 0
        for client in self.clients:
            if frame.channel in client.streams and frame.channel not in client.pending:
                if text is None:
                    data = frame.data
                    text = data if isinstance(data, str) else wire.dumps(data)
                client.send(text)
                sent += 1
        self.ctx.stats.frames_sent[self.exchange] += sent


class BybitStreams(SnapshotStreams):
    """``/v5/public/linear``: ``orderbook.50``, ``tickers`` and ``publicTrade`` topics."""

    exchange = BYBIT

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__(ctx)
        self._rng = Random(f"{ctx.seed}/bybit-conn-ids")
        self.topics = {  # of the symbols Bybit lists: any other topic is refused
            topic
            for s in ctx.symbols
            if profile(s).listed(BYBIT)
            for topic in (wire.orderbook_topic(s), wire.tickers_topic(s), wire.trade_topic(s))
        }

    def add_routes(self, app: web.Application) -> None:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, "linear")

        app.router.add_get(wire.BYBIT_LINEAR, handle)

    def on_open(self, client: WsClient, request: web.Request) -> None:
        # Bybit connection ids look like "d9tc9msptl6qssdmv0gg-cwel": an xid and a suffix.
        rng = self._rng
        xid = "".join(rng.choice(_XID_ALPHABET) for _ in range(20))
        client.conn_id = f"{xid}-{''.join(rng.choice(_XID_ALPHABET[10:]) for _ in range(4))}"

    def _reply(self, client: WsClient, op: str, req_id: str, ok: bool, msg: str = "") -> None:
        client.send_json(
            {"success": ok, "ret_msg": msg, "conn_id": client.conn_id, "req_id": req_id, "op": op}
        )

    def on_text(self, client: WsClient, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict):
            self._reply(client, "", "", False, "error:request not json")
            return
        op, raw_id = request.get("op"), request.get("req_id")
        req_id = "" if raw_id is None else str(raw_id)
        if op == "ping":
            pong: dict[str, Any] = {"success": True, "ret_msg": "pong", "conn_id": client.conn_id}
            if raw_id is not None:
                pong["req_id"] = req_id
            pong["op"] = "ping"
            client.send_json(pong)
            return
        args = request.get("args")
        if op not in ("subscribe", "unsubscribe"):
            self._reply(client, str(op), req_id, False, f"error:invalid op:{op}")
        elif not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            self._reply(client, op, req_id, False, "Params Error")
        elif op == "unsubscribe":
            for topic in args:
                client.streams.pop(topic, None)
                client.pending.pop(topic, None)
            self._reply(client, op, req_id, True)
        else:
            self._subscribe(client, req_id, args)

    def _subscribe(self, client: WsClient, req_id: str, topics: list[str]) -> None:
        """All of the request's topics, or none of them: one bad topic fails the request."""
        ctx = self.ctx
        now = ctx.now_ms()
        error = ""
        for topic in topics:
            if topic not in self.topics:
                error = f"error:handler not found,topic:{topic}"
            elif topic in client.streams:
                error = f"error:already subscribed,topic:{topic}"
            if error:
                break
        refused = ctx.faults.refused_topic(BYBIT, topics, now)
        if not error and refused is not None:
            ctx.stats.faults["refused_topic"] += 1
            error = f"error:handler not found,topic:{refused}"
        if error:
            self._reply(client, "subscribe", req_id, False, error)
            return
        self._reply(client, "subscribe", req_id, True)
        stale = ctx.faults.is_stale(BYBIT, now)
        for topic in topics:
            client.streams[topic] = None
            if topic.startswith(("orderbook.", "tickers.")):
                if stale:
                    client.pending[topic] = None  # a stalled feed sends it when it resumes
                else:
                    self._send_snapshot(client, topic)

    def _send_snapshot(self, client: WsClient, topic: str) -> None:
        """The topic's snapshot now: the book as published, with the current ``u``."""
        model, symbol = self.ctx.model, topic.rsplit(".", 1)[1]
        if topic.startswith("orderbook."):
            client.send_json(model.bybit_orderbook_snapshot(symbol))
        else:
            client.send_json(model.bybit_tickers_snapshot(symbol))
