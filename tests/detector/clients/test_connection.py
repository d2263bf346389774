"""ReconnectingWebSocket's receive path: whole messages handed on as they are parsed, as bytes
when asked, in order across fragmented messages, with the compression it was told to offer."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from detector.clients.connection import ReconnectingWebSocket
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
        transport = self.request.transport
        assert transport is not None
        for first, payload in frames:
            assert len(payload) < 126
            transport.write(struct.pack("!BB", first, len(payload)) + payload)


@dataclass
class RawServer:
    url: str = ""
    compress: bool = True
    accepted: asyncio.Queue[Accepted] = field(default_factory=asyncio.Queue)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=self.compress)
        offered = request.headers.get("Sec-WebSocket-Extensions", "")
        await ws.prepare(request)
        self.accepted.put_nowait(Accepted(ws, request, offered))
        async for _ in ws:
            pass
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
