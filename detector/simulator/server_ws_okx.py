"""The OKX v5 public WebSocket of the loopback exchange (aiohttp): ``/ws/v5/public`` with
``subscribe``/``unsubscribe`` ops (an ack per arg, code 60018 for an unknown or refused
instrument, the other args subscribed all the same), text ``ping`` -> ``pong``, and the
``books`` snapshot, ``tickers`` and ``funding-rate`` a subscription gets at once."""

from __future__ import annotations

from random import Random
from typing import Any

import orjson
from aiohttp import web

from detector.models import Exchange
from detector.simulator import wire_okx
from detector.simulator.instruments import okx_inst_id, profile
from detector.simulator.server_state import ServerContext
from detector.simulator.server_ws import SnapshotStreams, WsClient

OKX = Exchange.OKX
MAX_REQUESTS_PER_HOUR = 480  # subscribe/unsubscribe/login requests per connection
MAX_REQUEST_BYTES = 64 * 1024  # all args of one request
HOUR_MS = 3_600_000


class OkxStreams(SnapshotStreams):
    """``/ws/v5/public``: ``books``, ``bbo-tbt``, ``tickers``, ``trades``, ``funding-rate``."""

    exchange = OKX

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__(ctx)
        self._rng = Random(f"{ctx.seed}/okx-conn-ids")
        self._symbols = {okx_inst_id(s): s for s in ctx.symbols if profile(s).listed(OKX)}

    def add_routes(self, app: web.Application) -> None:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, "public")

        app.router.add_get(wire_okx.OKX_PUBLIC, handle)

    def on_open(self, client: WsClient, request: web.Request) -> None:
        client.conn_id = f"{self._rng.getrandbits(32):08x}"  # OKX connIds: 8 hex digits

    def on_text(self, client: WsClient, text: str) -> None:
        if text == "ping":  # OKX's keepalive is text, not a WebSocket ping
            client.send("pong")
            return
        conn_id = client.conn_id
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict) or len(text) > MAX_REQUEST_BYTES:
            code, msg = wire_okx.CODE_INVALID_REQUEST, f"Illegal request: {text[:200]}"
            client.send_json(wire_okx.error(code, msg, conn_id))
            return
        op, args = request.get("op"), request.get("args")
        raw_id = request.get("id")
        req_id = None if raw_id is None else str(raw_id)  # echoed in every answer
        if op not in ("subscribe", "unsubscribe"):
            msg = f"Invalid op: {op}"
            client.send_json(wire_okx.error(wire_okx.CODE_INVALID_OP, msg, conn_id, req_id))
            return
        if not self._allow(client):
            msg = "Requests too frequent."
            client.send_json(wire_okx.error("60014", msg, conn_id, req_id))
            return
        if not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
            client.send_json(wire_okx.error("60013", "Invalid args", conn_id, req_id))
            return
        snapshots: list[str] = []
        for item in args:  # each arg on its own: one bad instId never blocks the others
            topic = self._arg(client, op, item, req_id)
            if topic is not None and op == "subscribe":
                snapshots.append(topic)
        stale = self.ctx.faults.is_stale(OKX, self.ctx.now_ms())
        for topic in snapshots:
            if stale:
                client.pending[topic] = None  # a stalled feed sends it when it resumes
            else:
                self._send_snapshot(client, topic)

    def _allow(self, client: WsClient) -> bool:
        """Count a request against the connection's hourly limit."""
        now, times = self.ctx.now_ms(), client.requests
        while times and times[0] <= now - HOUR_MS:
            times.popleft()
        if len(times) >= MAX_REQUESTS_PER_HOUR:
            return False
        times.append(now)
        return True

    def _arg(
        self, client: WsClient, op: str, item: dict[str, Any], req_id: str | None
    ) -> str | None:
        """Answer one arg; the subscribed topic, or None if it was refused."""
        channel, inst_id = str(item.get("channel", "")), str(item.get("instId", ""))
        topic, conn_id = wire_okx.topic(channel, inst_id), client.conn_id
        known = channel in wire_okx.SERVED_CHANNELS and inst_id in self._symbols
        if not known:
            client.send_json(wire_okx.not_found(channel, inst_id, conn_id, req_id))
            return None
        if op == "unsubscribe":
            client.streams.pop(topic, None)
            client.pending.pop(topic, None)
            client.send_json(wire_okx.event(op, channel, inst_id, conn_id, req_id))
            return None
        ctx = self.ctx
        if ctx.faults.refused_topic(OKX, [topic], ctx.now_ms()) is not None:
            ctx.stats.faults["refused_topic"] += 1
            client.send_json(wire_okx.not_found(channel, inst_id, conn_id, req_id))
            return None
        client.streams[topic] = None
        client.send_json(wire_okx.event(op, channel, inst_id, conn_id, req_id))
        return topic

    def _send_snapshot(self, client: WsClient, topic: str) -> None:
        """What a subscription gets at once: a ``books`` snapshot (the book as published, its
        last ``seqId``), the current top, ticker or funding rate; ``trades`` wait for a trade."""
        channel, inst_id = topic.split(":", 1)
        model, symbol = self.ctx.model, self._symbols[inst_id]
        if channel == wire_okx.BOOKS:
            client.send_json(model.okx_books_snapshot(symbol))
        elif channel == wire_okx.BBO:
            client.send_json(model.okx_bbo(symbol))
        elif channel == wire_okx.TICKERS:
            client.send_json(model.okx_ticker(symbol))
        elif channel == wire_okx.FUNDING:
            client.send_json(model.okx_funding(symbol))
