"""Scripted faults reach clients at their times: REST errors, dropped and refused connections,
stalls, lost and broken updates, refused topics; the server starts and stops cleanly."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from detector.models import Exchange
from detector.simulator.scenarios import (
    SCENARIOS,
    ConnectionDrop,
    MalformedFrame,
    RefusedTopic,
    RestFault,
    Scenario,
    SequenceGap,
    StaleFeed,
    build_scenario,
)
from detector.simulator.server import SimulatorServer, run_simulator
from detector.simulator.wire import Malformation

BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT
WAIT_S = 5.0
BOOK = "orderbook.50.BTCUSDT"
OKX_PATH = "/ws/v5/public"


class JumpClock:
    """Wall-clock time plus an offset the test moves forward (the market catches up at once)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += seconds


def connect(url: str) -> ws_connect:
    return ws_connect(url, max_queue=None)  # see test_server_ws.connect


async def send(ws: ClientConnection, payload: Any) -> None:
    await ws.send(orjson.dumps(payload).decode())


async def recv_until(ws: ClientConnection, done: Callable[[Any], bool]) -> list[Any]:
    """Every message (raw text if it is not JSON) up to the first for which ``done`` holds."""
    messages: list[Any] = []
    async with asyncio.timeout(WAIT_S):
        while True:
            text = await ws.recv()
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError:
                message = text
            messages.append(message)
            if done(message):
                return messages


def scripted(*events: Any) -> Scenario:
    return Scenario("test", "scripted faults", 30.0, tuple(events))


@pytest.fixture
def clock() -> JumpClock:
    return JumpClock()


@pytest.fixture
def make_sim(clock: JumpClock) -> Callable[..., SimulatorServer]:
    def make(*events: Any) -> SimulatorServer:
        return SimulatorServer(scripted(*events), symbols=("BTCUSDT",), clock=clock)

    return make


# -- REST ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "http", "code", "text"),
    [
        (429, 429, -1003, "Too many requests"),
        (418, 418, -1003, "IP banned until"),
        (500, 500, -1001, "Internal error"),
        (403, 403, None, "403 Forbidden"),
    ],
)
async def test_binance_rest_faults(
    make_sim: Callable[..., SimulatorServer],
    clock: JumpClock,
    status: int,
    http: int,
    code: int | None,
    text: str,
) -> None:
    fault = RestFault(1.0, 2.0, BINANCE, status=status, retry_after_s=2.0)
    async with make_sim(fault) as sim, httpx.AsyncClient(base_url=sim.urls.binance_rest) as rest:
        params = {"symbol": "BTCUSDT", "limit": 5}
        assert (await rest.get("/fapi/v1/depth", params=params)).status_code == 200
        clock.jump(1.5)
        response = await rest.get("/fapi/v1/depth", params=params)
        assert response.status_code == http
        assert text in response.text
        if code is not None:
            assert list(response.json()) == ["code", "msg"]
            assert response.json()["code"] == code
        if status in (429, 418):
            assert response.headers["Retry-After"] == "2"
        bybit = await rest.get(sim.urls.bybit_rest + "/v5/market/tickers?category=linear")
        assert bybit.json()["retCode"] == 0  # the other exchange is fine
        clock.jump(2.0)
        assert (await rest.get("/fapi/v1/depth", params=params)).status_code == 200
        assert sim.stats.faults["rest_fault"] == 1


@pytest.mark.parametrize(("status", "http", "ret_code"), [(429, 200, 10006), (500, 200, 10016)])
async def test_bybit_rest_faults_keep_http_200(
    make_sim: Callable[..., SimulatorServer],
    clock: JumpClock,
    status: int,
    http: int,
    ret_code: int,
) -> None:
    sim = make_sim(RestFault(1.0, 2.0, BYBIT, status=status))
    async with sim, httpx.AsyncClient(base_url=sim.urls.bybit_rest) as rest:
        clock.jump(1.5)
        response = await rest.get("/v5/market/orderbook?category=linear&symbol=BTCUSDT")
    assert response.status_code == http
    body = response.json()
    assert list(body) == ["retCode", "retMsg", "result", "retExtInfo", "time"]
    assert body["retCode"] == ret_code
    if status == 429:
        assert body["retMsg"] == "Too many visits!"
        assert int(response.headers["X-Bapi-Limit-Reset-Timestamp"]) > body["time"]


async def test_bybit_ip_limit_answers_403(
    make_sim: Callable[..., SimulatorServer], clock: JumpClock
) -> None:
    sim = make_sim(RestFault(1.0, 2.0, BYBIT, status=403))
    async with sim, httpx.AsyncClient(base_url=sim.urls.bybit_rest) as rest:
        clock.jump(1.5)
        response = await rest.get("/v5/market/tickers?category=linear")
    assert (response.status_code, response.text) == (403, "access too frequent")


# -- connections -----------------------------------------------------------------------------
async def test_a_dropped_connection_is_cut_refused_then_accepted_again(
    make_sim: Callable[..., SimulatorServer], clock: JumpClock
) -> None:
    async with make_sim(ConnectionDrop(1.0, 2.0, BYBIT), ConnectionDrop(1.0, 2.0, BINANCE)) as sim:
        binance_url = f"{sim.urls.binance_ws}/public/stream?streams=btcusdt@depth@100ms"
        async with connect(sim.urls.bybit_ws) as bybit, connect(binance_url) as binance:
            await send(bybit, {"req_id": "1", "op": "subscribe", "args": [BOOK]})
            await recv_until(bybit, lambda m: m.get("type") == "snapshot")
            await recv_until(binance, lambda m: True)
            clock.jump(1.5)
            for ws in (bybit, binance):
                with pytest.raises(ConnectionClosed):
                    await recv_until(ws, lambda m: False)
                assert ws.close_code == 1006  # cut without a close frame, like a network drop
        for url in (sim.urls.bybit_ws, binance_url):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url):
                    pass
            assert refused.value.response.status_code == 503
        clock.jump(2.0)
        async with connect(sim.urls.bybit_ws) as bybit:
            await send(bybit, {"req_id": "2", "op": "subscribe", "args": [BOOK]})
            ack, snapshot = await recv_until(bybit, lambda m: m.get("type") == "snapshot")
            assert ack["success"] is True and snapshot["topic"] == BOOK
    assert sim.stats.faults["disconnect"] == 2
    assert sim.stats.refused_connections == {BYBIT: 1, BINANCE: 1}
    assert sim.stats.connections == {BYBIT: 2, BINANCE: 1}


async def test_a_stall_withholds_frames_and_snapshots_then_the_chain_goes_on(
    make_sim: Callable[..., SimulatorServer], clock: JumpClock
) -> None:
    async with make_sim(StaleFeed(1.0, 2.0, BYBIT)) as sim:
        stall_begin, stall_end = sim.start_ms + 1000, sim.start_ms + 3000
        async with connect(sim.urls.bybit_ws) as early, connect(sim.urls.bybit_ws) as late:
            await send(early, {"req_id": "1", "op": "subscribe", "args": [BOOK]})
            await recv_until(early, lambda m: m.get("type") == "snapshot")
            clock.jump(1.5)
            # Subscribing during the stall: acknowledged, but the snapshot waits for the feed.
            await send(late, {"req_id": "2", "op": "subscribe", "args": [BOOK]})
            (ack,) = await recv_until(late, lambda m: True)
            assert ack["success"] is True
            clock.jump(2.0)
            frames = await recv_until(early, lambda m: m["ts"] >= stall_end)
            late_frames = await recv_until(late, lambda m: m["type"] == "delta")
    assert not [m for m in frames if stall_begin <= m["ts"] < stall_end]
    us = [m["data"]["u"] for m in frames]
    assert us == list(range(us[0], us[0] + len(us)))  # nothing lost, only held back
    snapshot, delta = late_frames
    assert snapshot["type"] == "snapshot" and snapshot["ts"] >= stall_end
    assert delta["data"]["u"] == snapshot["data"]["u"] + 1


async def test_lost_and_broken_updates_reach_the_client(
    make_sim: Callable[..., SimulatorServer], clock: JumpClock
) -> None:
    events = (
        SequenceGap(1.0, BYBIT, "BTCUSDT"),
        MalformedFrame(2.0, BYBIT, "BTCUSDT", Malformation.TRUNCATED_JSON),
        SequenceGap(1.0, BINANCE, "BTCUSDT"),
    )
    async with make_sim(*events) as sim:
        binance_url = f"{sim.urls.binance_ws}/public/stream?streams=btcusdt@depth@100ms"
        async with connect(sim.urls.bybit_ws) as bybit, connect(binance_url) as binance:
            await send(bybit, {"req_id": "1", "op": "subscribe", "args": [BOOK]})
            await recv_until(bybit, lambda m: m.get("type") == "snapshot")
            clock.jump(3.0)
            until = sim.start_ms + 2500
            book = await recv_until(bybit, lambda m: isinstance(m, dict) and m["ts"] >= until)
            depth = await recv_until(binance, lambda m: m["data"]["E"] >= until)
    broken = [m for m in book if isinstance(m, str)]
    assert len(broken) == 1 and broken[0].startswith('{"topic":"orderbook.50.BTCUSDT"')
    us = [m["data"]["u"] for m in book if isinstance(m, dict)]
    steps = [b - a for a, b in pairwise(us)]
    assert sorted(set(steps)) == [1, 2] and steps.count(2) == 2  # one lost, one unreadable
    breaks = [m for prev, m in pairwise(depth) if m["data"]["pu"] != prev["data"]["u"]]
    assert len(breaks) == 1
    assert sim.stats.faults["malformed_frame"] == 1


async def test_refused_topics(make_sim: Callable[..., SimulatorServer], clock: JumpClock) -> None:
    refused = (
        RefusedTopic(1.0, 2.0, BYBIT, "publicTrade.BTCUSDT"),
        RefusedTopic(1.0, 2.0, BINANCE, "btcusdt@aggTrade"),
    )
    async with make_sim(*refused) as sim:
        clock.jump(1.5)
        streams = "btcusdt@aggTrade/btcusdt@markPrice@1s"
        combined = f"{sim.urls.binance_ws}/market/stream?streams={streams}"
        async with (
            connect(sim.urls.bybit_ws) as bybit,
            connect(f"{sim.urls.binance_ws}/market/ws") as raw,
            connect(combined) as url_streams,
        ):
            args = [BOOK, "publicTrade.BTCUSDT"]
            await send(bybit, {"req_id": "a", "op": "subscribe", "args": args})
            (nack,) = await recv_until(bybit, lambda m: True)
            assert nack["ret_msg"] == "error:handler not found,topic:publicTrade.BTCUSDT"
            assert (nack["success"], nack["req_id"]) == (False, "a")
            await send(raw, {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 3})
            (error,) = await recv_until(raw, lambda m: True)
            assert error == {
                "error": {"code": 2, "msg": "Invalid request: invalid stream"},
                "id": 3,
            }
            # In a combined-stream URL the refused stream connects and never delivers.
            clock.jump(1.0)
            marks = await recv_until(url_streams, lambda m: m["data"]["E"] >= sim.start_ms + 2000)
            assert {m["stream"] for m in marks} == {"btcusdt@markPrice@1s"}
            clock.jump(1.0)  # the refusal is over
            await send(bybit, {"req_id": "b", "op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
            ack = await recv_until(bybit, lambda m: m.get("req_id") == "b")
            assert ack[-1]["success"] is True
    assert sim.stats.faults["refused_topic"] == 2


# -- lifecycle -------------------------------------------------------------------------------
async def test_stop_closes_clients_and_leaves_no_tasks() -> None:
    before = asyncio.all_tasks()
    sim = SimulatorServer("calm", symbols=("BTCUSDT",))
    await sim.start()
    serving = asyncio.create_task(sim.serve_forever())
    async with connect(sim.urls.bybit_ws) as ws:
        await send(ws, {"req_id": "1", "op": "subscribe", "args": [BOOK]})
        await recv_until(ws, lambda m: m.get("type") == "snapshot")
        await sim.stop()
        with pytest.raises(ConnectionClosed):
            await recv_until(ws, lambda m: False)
        assert ws.close_code == 1001
    await sim.stop()  # idempotent
    await asyncio.wait_for(serving, WAIT_S)  # serve_forever returns once stopped
    assert asyncio.all_tasks() == before


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_every_scenario_is_served(name: str) -> None:
    async with SimulatorServer(name, symbols=("BTCUSDT", "ETHUSDT")) as sim:
        async with httpx.AsyncClient(base_url=sim.urls.binance_rest) as rest:
            response = await rest.get("/fapi/v1/ticker/bookTicker?symbol=ETHUSDT")
        assert response.status_code == 200
        assert sim.scenario.name == name


def test_live_faults_packs_every_fault_into_a_short_run() -> None:
    scenario = build_scenario("live_faults", ["BTCUSDT", "ETHUSDT"])
    kinds = {type(e).__name__ for e in scenario.events}
    assert {
        "ArbitrageWindow",
        "RestFault",
        "RefusedTopic",
        "ConnectionDrop",
        "StaleFeed",
        "SequenceGap",
        "MalformedFrame",
    } <= kinds
    assert scenario.duration_s <= 60
    assert min(e.at_s for e in scenario.events) <= 5
    statuses = {(e.status, e.retry_after_s) for e in scenario.events if isinstance(e, RestFault)}
    assert (429, 2.0) in statuses and any(s == 500 for s, _ in statuses)


def test_rest_faults_use_real_statuses() -> None:
    with pytest.raises(ValueError, match="status"):
        RestFault(1.0, 1.0, BINANCE, status=404)


async def test_run_simulator_prints_env_lines_and_the_timeline() -> None:
    out = io.StringIO()
    started: asyncio.Future[SimulatorServer] = asyncio.get_running_loop().create_future()
    symbols = ("BTCUSDT", "ETHUSDT")
    task = asyncio.create_task(
        run_simulator("live_faults", 0, symbols, 3, out=out, ready=started.set_result)
    )
    sim = await asyncio.wait_for(started, WAIT_S)
    lines = out.getvalue().splitlines()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    settings = dict(line.split("=", 1) for line in lines if not line.startswith("#"))
    assert settings == {
        "BINANCE_REST_URL": sim.urls.binance_rest,
        "BINANCE_WS_URL": sim.urls.binance_ws,
        "BYBIT_REST_URL": sim.urls.bybit_rest,
        "BYBIT_WS_URL": sim.urls.bybit_ws,
        "OKX_REST_URL": sim.okx_rest_url,
        "OKX_WS_URL": sim.okx_ws_url,
    }
    assert sim.urls.bybit_ws.endswith("/v5/public/linear")
    assert sim.okx_ws_url == sim.urls.okx_ws == sim.okx_rest_url.replace("http", "ws") + OKX_PATH
    urls = sim.urls.feed_urls()
    assert (urls.okx_rest, urls.okx_ws) == (sim.okx_rest_url, sim.okx_ws_url)
    timeline = [line for line in lines if "RestFault" in line]
    assert len(timeline) == 2 and "status=429" in timeline[0]
