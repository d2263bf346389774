"""ReconnectingWebSocket's receive path: whole messages handed on as they are parsed, as bytes
when asked, in order across fragmented messages, with the compression it was told to offer; its
own frame reading (after the handshake) against frames written byte for byte by the server:
every length form, frames cut anywhere, pings answered, closes, protocol errors and oversized
frames left to websockets."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from detector.clients.backoff import Backoff
from detector.clients.connection import ReconnectingWebSocket, _DirectConnection
from detector.errors import ConfigError
from detector.models import Exchange
from tests.detector.clients.conftest import Inbox, Runner, within


class Client(ReconnectingWebSocket):
    exchange = Exchange.BINANCE


@dataclass
class Accepted:
    ws: web.WebSocketResponse
    request: web.Request
    extensions: str  # what the client offered

    def write_raw(self, *frames: tuple[int, bytes]) -> None:
        """Server frames as given: (first byte, payload), unmasked."""
        self.write_bytes(b"".join(frame(first, payload) for first, payload in frames))

    def write_bytes(self, data: bytes) -> None:
        transport = self.request.transport
        assert transport is not None
        transport.write(data)


def frame(
    first: int, payload: bytes, *, mask: bytes | None = None, length: int | None = None
) -> bytes:
    """One frame as a server writes it: 7-bit, 16-bit or 64-bit length, masked if ``mask``."""
    size = len(payload) if length is None else length
    mask_bit = 0x80 if mask is not None else 0
    if size < 126:
        head = struct.pack("!BB", first, mask_bit | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if mask is None:
        return head + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


@dataclass
class RawServer:
    url: str = ""
    compress: bool = True
    accepted: asyncio.Queue[Accepted] = field(default_factory=asyncio.Queue)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    pongs: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)  # what the client ponged
    closes: asyncio.Queue[int | None] = field(default_factory=asyncio.Queue)  # client's codes

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=self.compress, autoping=False)
        offered = request.headers.get("Sec-WebSocket-Extensions", "")
        await ws.prepare(request)
        self.accepted.put_nowait(Accepted(ws, request, offered))
        async for message in ws:
            if message.type is WSMsgType.PONG:
                self.pongs.put_nowait(message.data)
            elif message.type is WSMsgType.PING:
                await ws.pong(message.data)
        self.closes.put_nowait(ws.close_code)  # the iteration ends on the client's close
        return ws

    async def next(self) -> Accepted:
        return await within(self.accepted.get())


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    server = RawServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as test_server:
        server.url = f"ws://127.0.0.1:{test_server.port}/public/stream"
        yield server


class BytesInbox:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.received_ns: list[int] = []

    def __call__(self, data: bytes, recv_ms: int) -> None:
        self.received_ns.append(ReconnectingWebSocket.received_ns)
        self.queue.put_nowait(data)

    async def take(self, count: int) -> list[bytes]:
        return [await within(self.queue.get()) for _ in range(count)]


async def test_on_bytes_gets_each_message_undecoded(
    raw_server: RawServer, runner: Runner, inbox: Inbox
) -> None:
    received = BytesInbox()
    client = Client(raw_server.url, inbox, on_bytes=received)
    runner.start(client)
    peer = await raw_server.next()
    before = time.perf_counter_ns()
    await peer.ws.send_str('{"e":"depthUpdate","u":1}')
    await peer.ws.send_bytes(b'{"binary":true}')
    assert await received.take(2) == [b'{"e":"depthUpdate","u":1}', b'{"binary":true}']
    assert inbox.queue.empty()  # on_bytes replaces on_message
    assert all(before < ns <= time.perf_counter_ns() for ns in received.received_ns)


async def test_a_fragmented_message_comes_whole_and_in_order(
    raw_server: RawServer, runner: Runner, inbox: Inbox
) -> None:
    received = BytesInbox()
    runner.start(Client(raw_server.url, inbox, on_bytes=received))
    peer = await raw_server.next()
    await peer.ws.send_str("first")
    peer.write_raw((0x01, b"sec"), (0x00, b"ond-"), (0x80, b"part"))  # text, cont, final cont
    await peer.ws.send_str("third")
    await peer.ws.send_str("fourth")
    assert await received.take(4) == [b"first", b"second-part", b"third", b"fourth"]


async def test_on_message_still_gets_text(
    raw_server: RawServer, runner: Runner, inbox: Inbox
) -> None:
    runner.start(Client(raw_server.url, inbox))
    peer = await raw_server.next()
    await peer.ws.send_str("héllo")
    await peer.ws.send_bytes(b"\xff bad utf-8")
    assert (await inbox.next())[0] == "héllo"
    assert (await inbox.next())[0] == "\ufffd bad utf-8"  # replaced, never a dropped connection


@pytest.mark.parametrize(("compression", "offered"), [("none", False), ("deflate", True)])
async def test_the_compression_setting_is_what_is_offered(
    raw_server: RawServer, runner: Runner, inbox: Inbox, compression: str, offered: bool
) -> None:
    received = BytesInbox()
    client = Client(raw_server.url, inbox, on_bytes=received, compression=compression)
    runner.start(client)
    peer = await raw_server.next()
    assert ("permessage-deflate" in peer.extensions) is offered
    assert bool(peer.ws.compress) is offered  # aiohttp compresses what it sends, if agreed
    message = '{"stream":"btcusdt@depth@100ms","data":{"b":[["1.0","2.0"]]}}' * 20
    await peer.ws.send_str(message)
    assert await received.take(1) == [message.encode()]


async def test_a_failing_on_bytes_keeps_the_connection(
    raw_server: RawServer, runner: Runner, inbox: Inbox
) -> None:
    received = BytesInbox()

    def on_bytes(data: bytes, recv_ms: int) -> None:
        received(data, recv_ms)
        if data == b"boom":
            raise RuntimeError("consumer bug")

    client = Client(raw_server.url, inbox, on_bytes=on_bytes)
    runner.start(client)
    peer = await raw_server.next()
    await peer.ws.send_str("boom")
    await peer.ws.send_str("after")
    assert await received.take(2) == [b"boom", b"after"]
    assert client.connects == 1


def test_an_unknown_compression_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"compression must be one of none, deflate, got 'gzip'"):
        Client("ws://127.0.0.1:1/", lambda text, ms: None, compression="gzip")


# arbwatch's own frame reading


def reading(client: ReconnectingWebSocket) -> bool:
    """The connection reads the frames itself (not through websockets' parser)."""
    ws = client._ws
    return isinstance(ws, _DirectConnection) and ws.reading


async def connected(raw_server: RawServer, client: ReconnectingWebSocket) -> Accepted:
    """The server side, once a first message has passed and the client reads frames itself."""
    peer = await raw_server.next()
    received = client.on_bytes
    assert isinstance(received, BytesInbox)
    await peer.ws.send_str("hello")
    assert await received.take(1) == [b"hello"]
    assert reading(client)
    return peer


async def reading_client(
    raw_server: RawServer, runner: Runner, inbox: Inbox, backoff: Backoff | None = None
) -> tuple[Client, BytesInbox, Accepted]:
    """A running client on ``on_bytes`` and its server side, once it reads frames itself."""
    received = BytesInbox()
    client = Client(raw_server.url, inbox, on_bytes=received, backoff=backoff)
    runner.start(client)
    return client, received, await connected(raw_server, client)


def no_wait() -> Backoff:
    async def sleep(_: float) -> None:
        await asyncio.sleep(0)

    return Backoff(initial_s=0.0, sleep=sleep)


async def test_every_length_form_comes_whole_when_cut_anywhere(
    raw_server: RawServer, runner: Runner, inbox: Inbox
) -> None:
    client, received, peer = await reading_client(raw_server, runner, inbox)
    messages = [b"x" * 125, b"y" * 126, b"z" * 65_535, b"w" * 65_536, b"", b'{"binary":1}']
    stream = b"".join(frame(0x81, m) for m in messages[:-1]) + frame(0x82, messages[-1])
    # One write of all of them, then the same stream cut into pieces of 1 to 9 bytes.
    peer.write_bytes(stream)
    assert await received.take(len(messages)) == messages
    pos, cut = 0, 1
    while pos < len(stream):
        peer.write_bytes(stream[pos : pos + cut])
        await asyncio.sleep(0)
        pos, cut = pos + cut, cut % 9 + 1
    assert await received.take(len(messages)) == messages
    assert reading(client)
    assert client.connects == 1


async def test_a_ping_between_messages_is_answered_and_reading_goes_on(
    raw_server: RawServer, runner: Runner, inbox: Inbox
) -> None:
    client, received, peer = await reading_client(raw_server, runner, inbox)
    peer.write_bytes(frame(0x81, b"before") + frame(0x89, b"are you there") + frame(0x81, b"after"))
    assert await within(raw_server.pongs.get()) == b"are you there"
    assert await received.take(2) == [b"before", b"after"]
    # A ping cut in two comes whole to websockets as well.
    ping = frame(0x89, b"again")
    peer.write_bytes(ping[:3])
    await asyncio.sleep(0.01)
    peer.write_bytes(ping[3:] + frame(0x81, b"last"))
    assert await within(raw_server.pongs.get()) == b"again"
    assert await received.take(1) == [b"last"]
    assert reading(client)


async def test_a_close_from_the_server_is_answered_then_the_client_reconnects(
    raw_server: RawServer, runner: Runner, inbox: Inbox
) -> None:
    client, received, peer = await reading_client(raw_server, runner, inbox, no_wait())
    close = frame(0x88, struct.pack("!H", 1001) + b"going away")
    peer.write_bytes(frame(0x81, b"last words") + close + frame(0x81, b"never read"))
    assert await received.take(1) == [b"last words"]
    await connected(raw_server, client)
    assert client.connects == 2
    assert client.last_error is not None and "1001" in client.last_error
    assert received.queue.empty()  # nothing after the close frame was delivered


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (frame(0x81, b"masked", mask=b"\x01\x02\x03\x04"), 1002),  # servers never mask
        (frame(0xC1, b"rsv1 set, nothing negotiated"), 1002),
        (frame(0x83, b"opcode 3"), 1002),
        (frame(0x81, b"", length=17 * 2**20), 1009),  # over the 16 MiB limit: header only
    ],
)
async def test_a_frame_websockets_refuses_drops_the_connection_as_before(
    raw_server: RawServer, runner: Runner, inbox: Inbox, bad: bytes, code: int
) -> None:
    client, received, peer = await reading_client(raw_server, runner, inbox, no_wait())
    peer.write_bytes(frame(0x81, b"fine") + bad + frame(0x81, b"never read"))
    assert await received.take(1) == [b"fine"]
    assert await within(raw_server.closes.get()) == code  # websockets' close code
    await connected(raw_server, client)
    assert client.connects == 2
    assert received.queue.empty()
