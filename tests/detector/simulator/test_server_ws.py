"""The simulator's WebSockets speak the exchanges' protocols: routed Binance streams whose depth
diffs bridge onto the REST snapshot, Bybit subscriptions with ack, snapshot and u+1 deltas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from itertools import pairwise
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from detector.simulator.server import SimulatorServer
from tests.conftest import load_jsonl
from tests.detector.simulator.replica import BinanceReplica, BybitReplica

WAIT_S = 5.0  # bound of every wait for a message
REAL_BINANCE_ACK = "binance_usdm_market_ws_ack_miniTicker_ps_st_2026-08-12.jsonl"
REAL_BYBIT_ACK = "bybit_v5_linear_subscribe_ack_and_publicTrade_BTCUSDT_2026-08-12.jsonl"


class JumpClock:
    """Wall-clock time plus an offset the test moves forward (the market catches up at once)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += seconds


def connect(url: str) -> ws_connect:
    """A client that never stops reading: with a bounded queue, a test that leaves messages
    unread pauses the socket and the closing handshake waits out its 10 s timeout."""
    return ws_connect(url, max_queue=None)


async def recv(ws: ClientConnection) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), WAIT_S))


async def recv_until(ws: ClientConnection, done: Callable[[Any], bool]) -> list[Any]:
    """Every message up to and including the first for which ``done`` holds."""
    messages = []
    async with asyncio.timeout(WAIT_S):
        while True:
            message = orjson.loads(await ws.recv())
            messages.append(message)
            if done(message):
                return messages


async def send(ws: ClientConnection, payload: Any) -> None:
    await ws.send(orjson.dumps(payload).decode())


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer("calm", symbols=("BTCUSDT", "ETHUSDT")) as server:
        yield server


@pytest.fixture
def clock() -> JumpClock:
    return JumpClock()


@pytest.fixture
async def jumpy(clock: JumpClock) -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer("calm", symbols=("BTCUSDT",), clock=clock) as server:
        yield server


# -- Binance ---------------------------------------------------------------------------------
async def test_binance_depth_diffs_bridge_onto_the_rest_snapshot(sim: SimulatorServer) -> None:
    streams = "btcusdt@depth@100ms/btcusdt@bookTicker"
    replica = BinanceReplica()
    tickers_checked = 0

    def handle(message: dict[str, Any]) -> None:
        nonlocal tickers_checked
        data = message["data"]
        assert message["stream"] in streams.split("/")
        if data["e"] == "depthUpdate":
            replica.on_depth(data, 0)
        elif replica.state == "synced" and replica.last_u == data["u"]:
            # A bookTicker with the u of the last applied diff shows the rebuilt top of book.
            top = (float(data["b"]), float(data["B"]), float(data["a"]), float(data["A"]))
            assert replica.top() == top
            tickers_checked += 1

    url = f"{sim.urls.binance_ws}/public/stream?streams={streams}"
    async with connect(url) as ws, httpx.AsyncClient(base_url=sim.urls.binance_rest) as rest:
        handle(await recv(ws))  # the documented procedure: buffer, then fetch the snapshot
        response = await rest.get("/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 1000})
        replica.on_rest(response.json())
        async with asyncio.timeout(3 * WAIT_S):
            while replica.applied < 15 or tickers_checked < 3:
                handle(orjson.loads(await ws.recv()))
    assert len(replica.bridges) == 1
    assert replica.gaps == []


async def test_binance_raw_stream_with_live_subscribe(sim: SimulatorServer) -> None:
    async with connect(f"{sim.urls.binance_ws}/market/ws") as ws:
        await send(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 7})
        ack = await recv(ws)
        assert ack == load_jsonl(REAL_BINANCE_ACK)[0] | {"id": 7}
        trade = await recv(ws)
        assert (trade["e"], trade["s"]) == ("aggTrade", "BTCUSDT")  # raw: no stream wrapper
        await send(ws, {"method": "SUBSCRIBE", "params": ["ethusdt@aggTrade"], "id": 8})
        await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 9})
        listed = [m for m in await recv_until(ws, lambda m: m.get("id") == 9)]
        assert listed[-1] == {"result": ["btcusdt@aggTrade", "ethusdt@aggTrade"], "id": 9}
        assert {"result": None, "id": 8} in listed
        await send(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 10})
        await recv_until(ws, lambda m: m.get("id") == 10)
        wrapped = await recv(ws)
        assert wrapped["stream"].endswith("@aggTrade") and wrapped["data"]["e"] == "aggTrade"
        await send(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 11})
        await recv_until(ws, lambda m: m.get("id") == 11)
        later = await recv_until(ws, lambda m: m.get("stream") == "ethusdt@aggTrade")
        assert all(m.get("stream") != "btcusdt@aggTrade" for m in later)


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({"method": "SUBSCRIBE", "params": ["not a stream"], "id": 1}, 2),
        ({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": "x"}, 2),
        ({"method": "FETCH", "params": [], "id": 1}, 2),
        ({"method": "SET_PROPERTY", "params": ["colour", True], "id": 1}, 0),
    ],
)
async def test_binance_refuses_bad_requests(
    sim: SimulatorServer, request_: dict[str, Any], error: int
) -> None:
    async with connect(f"{sim.urls.binance_ws}/public/ws") as ws:
        await send(ws, request_)
        answer = await recv(ws)
        assert list(answer) == ["error", "id"]
        assert answer["error"]["code"] == error


async def test_a_stream_on_the_wrong_path_delivers_nothing(
    jumpy: SimulatorServer, clock: JumpClock
) -> None:
    base = jumpy.urls.binance_ws
    async with (
        connect(f"{base}/public/ws") as public,
        connect(f"{base}/market/stream?streams=btcusdt@markPrice/btcusdt@markPrice@1s") as market,
    ):
        params = ["btcusdt@markPrice", "btcusdt@markPrice@1s", "btcusdt@depth@100ms"]
        await send(public, {"method": "SUBSCRIBE", "params": params, "id": 1})
        assert await recv(public) == {"result": None, "id": 1}
        clock.jump(7.0)
        marks = await recv_until(
            market,
            lambda m: m["stream"].endswith("@1s") and m["data"]["E"] >= jumpy.start_ms + 6000,
        )
        every_1s = [m["data"]["E"] for m in marks if m["stream"] == "btcusdt@markPrice@1s"]
        every_3s = [m["data"]["E"] for m in marks if m["stream"] == "btcusdt@markPrice"]
        assert all(b - a == 1000 for a, b in pairwise(every_1s))
        assert len(every_1s) >= 6
        assert every_3s == [e for e in every_1s if e // 1000 % 3 == 0]
        # The public connection gets its depth frames for the same span, and no mark at all.
        seen = await recv_until(public, lambda m: m["E"] >= every_1s[-1])
        assert {m["e"] for m in seen} == {"depthUpdate"}


# -- Bybit -----------------------------------------------------------------------------------
async def test_bybit_subscribe_acks_then_snapshot_then_consecutive_deltas(
    sim: SimulatorServer,
) -> None:
    topic = "orderbook.50.BTCUSDT"
    real_ack = load_jsonl(REAL_BYBIT_ACK)[0]
    async with connect(sim.urls.bybit_ws) as first, connect(sim.urls.bybit_ws) as late:
        args = [topic, "tickers.BTCUSDT"]
        await send(first, {"req_id": "sub-1", "op": "subscribe", "args": args})
        ack = await recv(first)
        assert list(ack) == list(real_ack)
        assert ack | {"conn_id": ""} == {
            "success": True,
            "ret_msg": "",
            "conn_id": "",
            "req_id": "sub-1",
            "op": "subscribe",
        }
        book, tickers = await recv(first), await recv(first)
        assert (book["topic"], book["type"]) == (topic, "snapshot")
        assert (tickers["topic"], tickers["type"]) == ("tickers.BTCUSDT", "snapshot")
        replica = BybitReplica()
        replica.on_frame(book, 0)
        deltas = await recv_until(first, lambda m: m["topic"] == topic)
        # A late subscriber gets the current snapshot and then the same deltas, u + 1 each.
        await send(late, {"req_id": "late", "op": "subscribe", "args": [topic]})
        assert (await recv(late))["success"] is True
        late_book = await recv(late)
        late_replica = BybitReplica()
        late_replica.on_frame(late_book, 0)
        late_deltas = [await recv(late) for _ in range(5)]
        for message in late_deltas:
            late_replica.on_frame(message, 0)
        u = late_deltas[-1]["data"]["u"]
        deltas += await recv_until(first, lambda m: m["topic"] == topic and m["data"]["u"] >= u)
        for message in deltas:
            if message["topic"] == topic:
                replica.on_frame(message, 0)
    first_u = late_book["data"]["u"] + 1
    assert [m["data"]["u"] for m in late_deltas] == list(range(first_u, first_u + 5))
    assert replica.gaps == late_replica.gaps == []
    assert replica.last_u == late_replica.last_u == u
    assert replica.top() == late_replica.top()
    same = next(m for m in deltas if m["topic"] == topic and m["data"]["u"] == u)
    assert same == late_deltas[-1]


async def test_bybit_refuses_a_whole_request_for_one_unknown_topic(sim: SimulatorServer) -> None:
    real_nack = load_jsonl("error_bodies.jsonl")[3]["body"]
    async with connect(sim.urls.bybit_ws) as ws:
        args = ["orderbook.50.BTCUSDT", "orderbook.500.BTCUSDT"]
        await send(ws, {"req_id": "1", "op": "subscribe", "args": args})
        nack = await recv(ws)
        assert nack["ret_msg"] == real_nack["ret_msg"]
        assert (nack["success"], nack["req_id"], nack["op"]) == (False, "1", "subscribe")
        await send(ws, {"req_id": "2", "op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
        assert (await recv(ws))["success"] is True
        messages = [await recv(ws) for _ in range(3)]
        assert {m["topic"] for m in messages} == {"publicTrade.BTCUSDT"}  # no book: refused


async def test_bybit_ping_unsubscribe_and_double_subscribe(sim: SimulatorServer) -> None:
    async with connect(sim.urls.bybit_ws) as ws:
        await send(ws, {"req_id": "p1", "op": "ping"})
        pong = await recv(ws)
        assert list(pong) == ["success", "ret_msg", "conn_id", "req_id", "op"]
        assert (pong["success"], pong["ret_msg"], pong["req_id"], pong["op"]) == (
            True,
            "pong",
            "p1",
            "ping",
        )
        args = ["publicTrade.BTCUSDT", "publicTrade.ETHUSDT"]
        await send(ws, {"req_id": "s", "op": "subscribe", "args": args})
        assert (await recv(ws))["success"] is True
        await send(ws, {"req_id": "again", "op": "subscribe", "args": ["publicTrade.ETHUSDT"]})
        again = await recv_until(ws, lambda m: m.get("req_id") == "again")
        assert again[-1]["ret_msg"] == "error:already subscribed,topic:publicTrade.ETHUSDT"
        await send(ws, {"req_id": "u", "op": "unsubscribe", "args": ["publicTrade.BTCUSDT"]})
        done = await recv_until(ws, lambda m: m.get("req_id") == "u")
        assert done[-1]["success"] is True
        after = [await recv(ws) for _ in range(3)]
        assert {m["topic"] for m in after} == {"publicTrade.ETHUSDT"}


async def test_frames_carry_exchange_time_on_the_wall_clock(sim: SimulatorServer) -> None:
    async with connect(sim.urls.bybit_ws) as ws:
        await send(ws, {"req_id": "1", "op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
        await recv(ws)
        trade = await recv(ws)
    assert sim.start_ms <= trade["ts"] <= int(time.time() * 1000)
    assert sim.stats.frames_sent["bybit"] >= 1
