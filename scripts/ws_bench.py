"""WebSocket layer cost per message on loopback: client CPU to receive pre-built market frames.

A server process writes N pre-framed messages (real simulator payloads, ~250 bytes; with
``deflate`` pre-compressed once, as one permessage-deflate stream with context takeover) as fast
as the client reads them, so only the client's work is measured. The client runs in this process;
for each (client, compression) pair it reports messages/s and this process's CPU µs per message.

Clients: ``websockets`` as arbwatch used it (``async for``: text decoded to str), ``websockets``
with ``recv(decode=False)`` (bytes, no UTF-8 decode), ``websockets-direct`` (each message handed
on from ``data_received``: no queue, no await per message), ``arbwatch`` (its
ReconnectingWebSocket, which does that), ``aiohttp`` (its C frame reader), and ``picows`` when it
is installed (``pip install picows``; no permessage-deflate). ``--decode`` adds ``orjson.loads``
of every message, the feed's next step.

    python scripts/ws_bench.py [--messages 200000] [--clients websockets,websockets-bytes,aiohttp]
        [--compression none,deflate] [--decode] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import multiprocessing
import resource
import statistics
import struct
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detector.simulator.market import MarketModel
from detector.simulator.scenarios import Scenario
from detector.simulator.server import LIVE_RATES
from detector.simulator.wire import Frame

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
POOL = 20_000  # distinct payloads, cycled


def payloads(count: int) -> list[bytes]:
    """``count`` JSON payloads of the simulated Binance and Bybit feeds, in publication order."""
    model = MarketModel(
        ("BTCUSDT", "ETHUSDT", "SOLUSDT"), 1, 0, Scenario("b", "b", 1, ()), LIVE_RATES
    )
    out: list[bytes] = []
    now = 0
    while len(out) < count:
        now += 50
        out.extend(orjson.dumps(o.data) for o in model.advance(now) if isinstance(o, Frame))
    return out[:count]


def header(length: int, rsv1: bool) -> bytes:
    first = 0x80 | (0x40 if rsv1 else 0) | 0x1  # FIN, text
    if length < 126:
        return struct.pack("!BB", first, length)
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def framed(messages: int, deflate: bool) -> list[bytes]:
    """The whole stream of one connection, pre-framed (and pre-compressed, in order)."""
    pool = payloads(POOL)
    if not deflate:
        frames = [header(len(p), False) + p for p in pool]
        return [frames[i % POOL] for i in range(messages)]
    # websockets' server defaults: level 6, memLevel 5; one stream, context takeover.
    comp = zlib.compressobj(6, zlib.DEFLATED, -15, 5)
    out = []
    for i in range(messages):
        data = comp.compress(pool[i % POOL]) + comp.flush(zlib.Z_SYNC_FLUSH)
        data = data.removesuffix(b"\x00\x00\xff\xff")
        out.append(header(len(data), True) + data)
    return out


class Pusher(asyncio.Protocol):
    """Handshake by hand, then every pre-built frame, honouring the transport's flow control."""

    def __init__(self, streams: dict[bool, list[bytes]], rate: float) -> None:
        self.streams = streams
        self.rate = rate
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.can_write = asyncio.Event()
        self.can_write.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.buffer is None:  # a client frame after the handshake: its close
            assert self.transport is not None
            self.transport.close()
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        lines = self.buffer.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        self.buffer = None  # type: ignore[assignment]
        key = headers[b"sec-websocket-key"]
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        deflate = b"permessage-deflate" in headers.get(b"sec-websocket-extensions", b"")
        reply = [
            b"HTTP/1.1 101 Switching Protocols",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Accept: " + accept,
        ]
        if deflate:
            reply.append(b"Sec-WebSocket-Extensions: permessage-deflate")
        assert self.transport is not None
        self.transport.write(b"\r\n".join(reply) + b"\r\n\r\n")
        asyncio.get_running_loop().create_task(self.push(self.streams[deflate]))

    async def push(self, frames: list[bytes]) -> None:
        """Every frame, ``rate`` a second (0: as fast as the client reads), in 1 ms batches."""
        transport = self.transport
        assert transport is not None
        sent, start = 0, time.perf_counter()
        while sent < len(frames):
            if not self.can_write.is_set():
                await self.can_write.wait()
            if transport.is_closing():
                return
            due = len(frames) if self.rate <= 0 else int((time.perf_counter() - start) * self.rate)
            batch = frames[sent : min(due, sent + 256, len(frames))]
            if batch:
                transport.write(b"".join(batch))
                sent += len(batch)
            if self.rate > 0:
                await asyncio.sleep(0.001)

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()


def serve(port_queue: Any, messages: int, deflate: bool, rate: float) -> None:
    async def main() -> None:
        streams = {False: framed(messages, False)}
        if deflate:
            streams[True] = framed(messages, True)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Pusher(streams, rate), "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        await asyncio.sleep(3600)

    asyncio.run(main())


Consume = Callable[[Any], Any]


def _noop(message: Any) -> None:
    pass


async def with_websockets(url: str, n: int, deflate: bool, consume: Consume, raw: bool) -> int:
    from websockets.asyncio.client import connect

    compression = "deflate" if deflate else None
    async with connect(url, compression=compression, max_size=2**24) as ws:
        if raw:
            for _ in range(n):
                consume(await ws.recv(decode=False))
        else:
            count = 0
            async for message in ws:
                consume(message)
                count += 1
                if count == n:
                    break
    return n


async def with_websockets_direct(
    url: str, n: int, deflate: bool, consume: Consume, raw: bool
) -> int:
    """websockets, with each single-frame message handed on from ``data_received`` (no queue,
    no ``await recv()`` per message): what the protocol parser alone costs."""
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.frames import Frame, Opcode

    done = asyncio.get_running_loop().create_future()
    count = 0

    class Direct(ClientConnection):
        def process_event(self, event: Any) -> None:
            nonlocal count
            whole = self.response is not None and type(event) is Frame and event.fin
            if whole and event.opcode in (Opcode.TEXT, Opcode.BINARY):
                consume(event.data)
                count += 1
                if count == n and not done.done():
                    done.set_result(None)
                return
            super().process_event(event)

    compression = "deflate" if deflate else None
    async with connect(url, compression=compression, max_size=2**24, create_connection=Direct):
        await done
    return n


async def with_arbwatch(url: str, n: int, deflate: bool, consume: Consume, raw: bool) -> int:
    """arbwatch's own receive loop (ReconnectingWebSocket, ``on_bytes``): the feeds' path."""
    from detector.clients.connection import ReconnectingWebSocket
    from detector.models import Exchange

    done = asyncio.Event()
    count = 0

    class Client(ReconnectingWebSocket):
        exchange = Exchange.BINANCE

    def on_bytes(data: bytes, recv_ms: int) -> None:
        nonlocal count
        consume(data)
        count += 1
        if count == n:
            done.set()

    client = Client(url, _noop, on_bytes=on_bytes, compression="deflate" if deflate else "none")
    task = asyncio.create_task(client.run())
    await done.wait()
    await client.stop()
    await task
    return n


async def with_aiohttp(url: str, n: int, deflate: bool, consume: Consume, raw: bool) -> int:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, compress=15 if deflate else 0, max_msg_size=2**24) as ws,
    ):
        for _ in range(n):
            msg = await ws.receive()
            consume(msg.data)
    return n


async def with_picows(url: str, n: int, deflate: bool, consume: Consume, raw: bool) -> int:
    import picows

    done = asyncio.get_running_loop().create_future()

    class Listener(picows.WSListener):  # type: ignore[misc]
        count = 0

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            consume(frame.get_payload_as_bytes())
            self.count += 1
            if self.count == n and not done.done():
                done.set_result(None)

    transport, _ = await picows.ws_connect(Listener, url, max_frame_size=2**24)
    await done
    transport.disconnect()
    return n


CLIENTS: dict[str, tuple[Callable[..., Awaitable[int]], bool]] = {
    "websockets": (with_websockets, False),
    "websockets-bytes": (with_websockets, True),
    "websockets-direct": (with_websockets_direct, True),
    "arbwatch": (with_arbwatch, True),
    "aiohttp": (with_aiohttp, False),
    "picows": (with_picows, True),
}


def measure(
    url: str, client: str, n: int, deflate: bool, decode: bool, use_uvloop: bool = False
) -> tuple[float, float]:
    """(messages/s, CPU µs per message) of one run, warm-up messages excluded."""
    run, raw = CLIENTS[client]
    consume: Consume = orjson.loads if decode else _noop
    started: list[tuple[float, float]] = []
    ended: list[tuple[float, float]] = []
    warmup = min(1000, n // 10)
    count = 0

    def counted(message: Any) -> None:
        nonlocal count
        count += 1
        if count == warmup:
            started.append(_now())
        consume(message)
        if count == n:
            ended.append(_now())

    factory = None
    if use_uvloop:
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run(url, n, deflate, counted, raw))
    (wall0, cpu0), (wall1, cpu1) = started[0], ended[0]
    measured = n - warmup
    return measured / (wall1 - wall0), (cpu1 - cpu0) / measured * 1e6


def _now() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument(
        "--rate", type=float, default=10_000, help="messages/s the server sends (0: flat out)"
    )
    parser.add_argument(
        "--clients", default="websockets,websockets-bytes,websockets-direct,arbwatch,aiohttp,picows"
    )
    parser.add_argument("--compression", default="none,deflate")
    parser.add_argument("--decode", action="store_true", help="orjson.loads every message too")
    parser.add_argument("--runs", type=int, default=3, help="runs per pair; the median is shown")
    parser.add_argument(
        "--uvloop", action="store_true", help="the client on uvloop (not a dependency of arbwatch)"
    )
    args = parser.parse_args()
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    modes = [m.strip() for m in args.compression.split(",") if m.strip()]
    for name in clients:
        if name not in CLIENTS:
            parser.error(f"unknown client {name!r} (known: {', '.join(CLIENTS)})")
    if "picows" in clients:
        try:
            import picows  # noqa: F401
        except ImportError:
            print("picows is not installed: skipped (pip install picows)")
            clients.remove("picows")
    ctx = multiprocessing.get_context("spawn")
    port_queue: Any = ctx.Queue()
    server = ctx.Process(
        target=serve, args=(port_queue, args.messages, "deflate" in modes, args.rate)
    )
    server.start()
    try:
        url = f"ws://127.0.0.1:{port_queue.get(timeout=300)}/"
        print(
            f"{args.messages:,} messages per run at {args.rate:,.0f}/s (0: flat out), "
            f"median of {args.runs} runs, "
            f"consumer: {'orjson.loads' if args.decode else 'none'}"
            f"{', uvloop' if args.uvloop else ''}"
        )
        if "deflate" in modes:
            raw = sum(len(f) for f in framed(POOL, False))
            packed = sum(len(f) for f in framed(POOL, True))
            print(
                f"bytes per message on the wire: {raw / POOL:.0f} plain,"
                f" {packed / POOL:.0f} with permessage-deflate ({raw / packed:.1f}x smaller)"
            )
        print(f"{'client':<18} {'compression':<12} {'msgs/s':>10} {'CPU µs/msg':>11}")
        for mode in modes:
            for name in clients:
                if mode == "deflate" and name == "picows":
                    continue  # no permessage-deflate
                runs = [
                    measure(url, name, args.messages, mode == "deflate", args.decode, args.uvloop)
                    for _ in range(args.runs)
                ]
                rate = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                print(f"{name:<18} {mode:<12} {rate:>10,.0f} {cpu:>11.2f}")
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
