"""BinanceWebSocket against a loopback WebSocket server: URL, delivery, reconnects, stop."""

from __future__ import annotations

import asyncio

import pytest

from detector.clients.backoff import Backoff
from detector.clients.ws import BinanceWebSocket, split_streams, stream_path
from detector.errors import ConfigError
from detector.venues.binance import book_ticker_stream, depth_stream
from tests.conftest import fixture_path
from tests.detector.clients.conftest import (
    FakeTime,
    FakeWs,
    Inbox,
    Runner,
    client_tasks,
    closed_port,
    within,
)

DEPTH_FRAMES = fixture_path("binance_usdm_ws_depth100ms_combined_2021-07-22.jsonl").read_text()
FRAMES = [line for line in DEPTH_FRAMES.splitlines() if line.strip()]
QUICK = Backoff(initial_s=0.01, max_s=0.02)  # real but tiny reconnect delays


def client(server: FakeWs, inbox: Inbox, **kwargs: object) -> BinanceWebSocket:
    streams = [depth_stream("BTCUSDT"), book_ticker_stream("btcusdt")]
    return BinanceWebSocket(
        server.url,
        "public",
        streams,
        inbox,
        backoff=QUICK,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_combined_stream_url_and_delivery(
    ws_server: FakeWs, inbox: Inbox, runner: Runner, fake_time: FakeTime
) -> None:
    connects: list[int] = []
    ws = client(ws_server, inbox, clock=fake_time.clock, on_connect=lambda: connects.append(1))
    runner.start(ws)
    peer = await ws_server.next_peer()
    assert peer.path == "/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker"
    for frame in FRAMES[:3]:
        await peer.send(frame)
    received = [await inbox.next() for _ in range(3)]
    recv_ms = int(fake_time.now * 1000)
    assert received == [(frame, recv_ms) for frame in FRAMES[:3]]  # verbatim
    assert (ws.connected, ws.connects, ws.reconnects, ws.last_message_ms) == (True, 1, 0, recv_ms)
    assert connects == [1]


async def test_server_close_reconnects_and_messages_flow_again(
    ws_server: FakeWs, inbox: Inbox, runner: Runner
) -> None:
    connects: list[int] = []
    ws = client(ws_server, inbox)
    ws.on_connect = lambda: connects.append(ws.connects)
    runner.start(ws)
    first = await ws_server.next_peer()
    await first.send(FRAMES[0])
    await inbox.next()
    await first.close()
    second = await ws_server.next_peer()
    await second.send(FRAMES[1])
    assert (await inbox.next())[0] == FRAMES[1]
    assert (ws.connects, ws.reconnects) == (2, 1)
    assert connects == [1, 2]  # the feed hears of every new connection
    assert ws.last_error is not None
    assert "closed" in ws.last_error


async def test_proactive_reconnect_before_max_age(
    ws_server: FakeWs, inbox: Inbox, runner: Runner
) -> None:
    ws = client(ws_server, inbox, max_age_s=0.05)
    runner.start(ws)
    first = await ws_server.next_peer()
    await ws_server.next_peer()
    await within(first.closed.wait())  # we closed the old one
    assert ws.last_error == "max age 0.05 s reached"


async def test_reconnect_on_request(ws_server: FakeWs, inbox: Inbox, runner: Runner) -> None:
    opened = asyncio.Event()
    ws = client(ws_server, inbox, on_connect=opened.set)
    runner.start(ws)
    first = await ws_server.next_peer()
    await within(opened.wait())
    await ws.reconnect("no depth for 10 s")
    second = await ws_server.next_peer()
    await within(first.closed.wait())
    assert ws.last_error == "reconnect requested: no depth for 10 s"
    await second.send(FRAMES[0])
    assert (await inbox.next())[0] == FRAMES[0]


async def test_a_failing_consumer_does_not_break_the_connection(
    ws_server: FakeWs, inbox: Inbox, runner: Runner
) -> None:
    def on_message(text: str, recv_ms: int) -> None:
        inbox(text, recv_ms)
        if text == FRAMES[0]:
            raise RuntimeError("consumer bug")

    ws = BinanceWebSocket(ws_server.url, "public", ["btcusdt@depth@100ms"], on_message)
    runner.start(ws)
    peer = await ws_server.next_peer()
    await peer.send(FRAMES[0])
    await peer.send(FRAMES[1])
    assert [(await inbox.next())[0] for _ in range(2)] == FRAMES[:2]
    assert ws.connects == 1


async def test_connect_failures_back_off_exponentially(runner: Runner) -> None:
    delays: list[float] = []
    three = asyncio.Event()

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 3:
            three.set()
        await asyncio.sleep(0)

    backoff = Backoff(random=lambda: 1.0, sleep=sleep)
    ws = BinanceWebSocket(
        f"ws://127.0.0.1:{closed_port()}", "public", ["btcusdt@bookTicker"], backoff=backoff
    )
    runner.start(ws)
    await within(three.wait())
    assert delays[:3] == [0.5, 1.0, 2.0]
    assert not ws.connected
    assert ws.connects == 0
    assert ws.last_error is not None
    assert ws.last_error.startswith("connect failed")


async def test_stop_ends_run_and_leaves_no_tasks(ws_server: FakeWs, inbox: Inbox) -> None:
    ws = client(ws_server, inbox)
    task = asyncio.create_task(ws.run())
    peer = await ws_server.next_peer()
    assert client_tasks()
    await within(ws.stop())
    assert task.done()
    await task  # returned normally
    assert client_tasks() == []
    assert not ws.connected
    await within(peer.closed.wait())


async def test_stop_while_waiting_to_reconnect() -> None:
    sleeping = asyncio.Event()

    async def sleep(seconds: float) -> None:
        sleeping.set()
        await asyncio.Event().wait()  # a long backoff: only stop() can end it

    backoff = Backoff(sleep=sleep)
    ws = BinanceWebSocket(
        f"ws://127.0.0.1:{closed_port()}", "market", ["btcusdt@aggTrade"], backoff=backoff
    )
    task = asyncio.create_task(ws.run())
    await within(sleeping.wait())
    await within(ws.stop())
    assert task.done()
    assert client_tasks() == []


async def test_cancelling_run_leaves_no_tasks(ws_server: FakeWs, inbox: Inbox) -> None:
    ws = client(ws_server, inbox)
    task = asyncio.create_task(ws.run())
    peer = await ws_server.next_peer()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await within(task)
    assert client_tasks() == []
    await within(peer.closed.wait())


# Configuration and stream paths


@pytest.mark.parametrize(
    ("stream", "path"),
    [
        ("btcusdt@depth@100ms", "public"),
        ("btcusdt@depth20@100ms", "public"),
        ("btcusdt@bookTicker", "public"),
        ("!bookTicker", "public"),
        ("btcusdt@trade", "public"),
        ("btcusdt@aggTrade", "market"),
        ("btcusdt@markPrice@1s", "market"),
        ("!markPrice@arr", "market"),
        ("btcusdt@kline_1m", "market"),
        ("btcusdt@miniTicker", "market"),
        ("btcusdt@somethingNew", None),
    ],
)
def test_stream_path(stream: str, path: str | None) -> None:
    assert stream_path(stream) == path


def test_split_streams_by_path_and_size() -> None:
    streams = [depth_stream(f"S{i}USDT") for i in range(450)] + ["btcusdt@markPrice"]
    chunks = split_streams(streams)
    assert [len(c) for c in chunks] == [200, 200, 50, 1]
    assert chunks[3] == ["btcusdt@markPrice"]


@pytest.mark.parametrize(
    ("path", "streams", "message"),
    [
        ("public", [], "at least one stream"),
        ("public", [f"s{i}usdt@bookTicker" for i in range(201)], "at most 200"),
        ("public", ["btcusdt@markPrice"], "not served on /public"),
        ("market", ["btcusdt@depth@100ms"], "not served on /market"),
        ("futures", ["btcusdt@depth"], "path must be"),
    ],
)
def test_bad_configuration(path: str, streams: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BinanceWebSocket("wss://fstream.binance.com", path, streams)  # type: ignore[arg-type]


def test_bad_url() -> None:
    with pytest.raises(ConfigError, match="invalid WebSocket URL"):
        BinanceWebSocket("https://fstream.binance.com", "public", ["btcusdt@bookTicker"])
