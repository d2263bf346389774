"""Loopback exchange stand-ins for the client tests: scripted HTTP replies and WebSocket peers.

Small aiohttp servers on 127.0.0.1, port 0, started and stopped by fixtures. Time is faked where
the clients take a clock and a sleep, so that no test waits for real delays.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from detector.clients.connection import TASK_PREFIX, ReconnectingWebSocket

WAIT_S = 5.0  # bound on every wait for an event; tests never get near it


_T = TypeVar("_T")


async def within(aw: Awaitable[_T]) -> _T:
    """Await ``aw``, failing the test after WAIT_S seconds instead of hanging."""
    return await asyncio.wait_for(aw, WAIT_S)


class FakeTime:
    """An injected clock and sleep: sleeping records the delay and moves the clock forward."""

    def __init__(self, now: float = 1_786_540_363.844) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def closed_port() -> int:
    """A loopback port nobody listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# HTTP


@dataclass
class Reply:
    """One scripted HTTP answer: a JSON ``body`` (or raw ``text``), a status and headers."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    hang: bool = False  # never answer (until the test ends): a timeout


class FakeRest:
    """Answers each path with its scripted replies in turn; the last one repeats."""

    def __init__(self) -> None:
        self.url = ""
        self.replies: dict[str, list[Reply]] = defaultdict(list)
        self.requests: list[str] = []  # path and query of every request, in order
        self.release = asyncio.Event()

    def script(self, path: str, *replies: Reply) -> None:
        self.replies[path].extend(replies)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        queue = self.replies[request.path]
        if not queue:
            return web.json_response({"error": "not scripted"}, status=404)
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if reply.hang:
            await self.release.wait()
        if reply.text is not None:
            return web.Response(text=reply.text, status=reply.status, headers=reply.headers)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)


@pytest.fixture
async def rest_server() -> AsyncIterator[FakeRest]:
    fake = FakeRest()
    app = web.Application()
    app.router.add_get("/{tail:.*}", fake.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        fake.url = f"http://127.0.0.1:{server.port}"
        yield fake
        fake.release.set()


# WebSocket


class Peer:
    """The server side of one WebSocket connection."""

    def __init__(self, ws: web.WebSocketResponse, path: str) -> None:
        self.ws = ws
        self.path = path  # path and query of the upgrade request
        self.received: asyncio.Queue[Any] = asyncio.Queue()  # decoded client messages
        self.closed = asyncio.Event()

    async def send(self, text: str) -> None:
        await self.ws.send_str(text)

    async def next_request(self) -> Any:
        return await within(self.received.get())

    async def requests(self, count: int) -> list[Any]:
        return [await self.next_request() for _ in range(count)]

    async def close(self) -> None:
        await self.ws.close()


Responder = Callable[[Any], list[Any]]


class FakeWs:
    """A WebSocket server; ``respond`` turns each client message into the replies to send."""

    def __init__(self) -> None:
        self.url = ""
        self.peers: list[Peer] = []
        self._new: asyncio.Queue[Peer] = asyncio.Queue()
        self.respond: Responder = lambda message: []

    async def next_peer(self) -> Peer:
        """The next connection to arrive."""
        return await within(self._new.get())

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        peer = Peer(ws, request.path_qs)
        self.peers.append(peer)
        self._new.put_nowait(peer)
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                peer.received.put_nowait(data)
                for reply in self.respond(data):
                    await ws.send_str(reply if isinstance(reply, str) else json.dumps(reply))
        finally:
            peer.closed.set()
        return ws


@pytest.fixture
async def ws_server() -> AsyncIterator[FakeWs]:
    fake = FakeWs()
    app = web.Application()
    app.router.add_get("/{tail:.*}", fake.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        fake.url = f"ws://127.0.0.1:{server.port}"
        yield fake
        for peer in fake.peers:
            await peer.close()


class Inbox:
    """An ``on_message`` that queues what it gets, for the test to await."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()

    def __call__(self, text: str, recv_ms: int) -> None:
        self.queue.put_nowait((text, recv_ms))

    async def next(self) -> tuple[str, int]:
        return await within(self.queue.get())

    async def next_json(self) -> Any:
        text, _ = await self.next()
        return json.loads(text)


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


class Runner:
    """Runs WebSocket clients as tasks and stops them all at teardown."""

    def __init__(self) -> None:
        self.running: list[tuple[ReconnectingWebSocket, asyncio.Task[None]]] = []

    def start(self, client: ReconnectingWebSocket) -> asyncio.Task[None]:
        task = asyncio.create_task(client.run())
        self.running.append((client, task))
        return task

    async def stop_all(self) -> None:
        for client, task in self.running:
            await within(client.stop())
            await within(task)


@pytest.fixture
async def runner() -> AsyncIterator[Runner]:
    r = Runner()
    yield r
    await r.stop_all()


def client_tasks() -> list[asyncio.Task[Any]]:
    """Live tasks started by the WebSocket clients (none may survive stop())."""
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith(TASK_PREFIX) and not task.done()
    ]
