"""``arbwatch simulate`` speaks OKX v5 on its loopback port: WebSocket subscriptions with an
ack per arg and snapshot-then-updates books, text ping/pong, refusals with code 60018, every
OKX fault on the wire, and the REST endpoints in OKX's envelope."""

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
from websockets.exceptions import ConnectionClosed, InvalidStatus

from detector.models import Exchange
from detector.simulator.scenarios import (
    ConnectionDrop,
    FundingShift,
    RefusedTopic,
    RestFault,
    Scenario,
    SequenceGap,
    SequenceReset,
    StaleFeed,
    okx_topic,
)
from detector.simulator.server import SimulatorServer
from tests.conftest import load_jsonl
from tests.detector.simulator.replica import OkxReplica

OKX = Exchange.OKX
WAIT_S = 5.0
BTC = "BTC-USDT-SWAP"
REAL_ACK = load_jsonl("okx_v5_books5_BTC-USDT-SWAP_2026-08-12.jsonl")[0]


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


def sub(*args: tuple[str, str], op: str = "subscribe") -> dict[str, Any]:
    return {"op": op, "args": [{"channel": c, "instId": i} for c, i in args]}


async def send(ws: ClientConnection, payload: Any) -> None:
    await ws.send(payload if isinstance(payload, str) else orjson.dumps(payload).decode())


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


def is_book(action: str, inst_id: str = BTC) -> Callable[[Any], bool]:
    def match(m: Any) -> bool:
        return (
            isinstance(m, dict)
            and m.get("action") == action
            and m["arg"] == {"channel": "books", "instId": inst_id}
        )

    return match


def books(messages: list[Any], inst_id: str = BTC) -> list[dict[str, Any]]:
    return [m["data"][0] for m in messages if is_book("update", inst_id)(m)]


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer("calm", symbols=("BTCUSDT", "ETHUSDT")) as server:
        yield server


@pytest.fixture
def clock() -> JumpClock:
    return JumpClock()


@pytest.fixture
def make_sim(clock: JumpClock) -> Callable[..., SimulatorServer]:
    def make(*events: Any) -> SimulatorServer:
        scenario = Scenario("test", "scripted OKX faults", 30.0, tuple(events))
        return SimulatorServer(scenario, symbols=("BTCUSDT", "ETHUSDT"), clock=clock)

    return make


# -- WebSocket -------------------------------------------------------------------------------
async def test_subscribe_acks_each_arg_then_snapshot_then_chained_updates(
    sim: SimulatorServer,
) -> None:
    replica = OkxReplica(ct_val=0.01)
    async with connect(sim.okx_ws_url) as ws:
        channels = ("books", "tickers", "trades", "funding-rate")
        await send(ws, sub(*((c, BTC) for c in channels)))
        messages = await recv_until(ws, is_book("snapshot"))
        acks = [m for m in messages if "event" in m]
        assert [a["arg"]["channel"] for a in acks] == list(channels)
        assert all(list(a) == list(REAL_ACK) and a["event"] == "subscribe" for a in acks)
        assert len({a["connId"] for a in acks}) == 1
        while len(books(messages)) < 12:
            messages += await recv_until(ws, is_book("update"))
    messages_so_far = messages
    for message in messages_so_far:
        if is_book("snapshot")(message) or is_book("update")(message):
            replica.on_frame(message, 1)
    assert replica.gaps == [] and replica.checksums_checked >= 12
    kinds = {m["arg"]["channel"] for m in messages_so_far if isinstance(m, dict) and "data" in m}
    assert {"books", "tickers", "funding-rate"} <= kinds
    top = replica.top()
    assert top is not None and top[0] < top[2]
    assert abs(top[0] / sim.model.fair_price("BTCUSDT") - 1) < 1e-3


async def test_a_request_id_comes_back_in_every_answer(sim: SimulatorServer) -> None:
    async with connect(sim.okx_ws_url) as ws:
        request = sub(("books", BTC), ("books", "DOGE-USDT-SWAP")) | {"id": "17"}
        await send(ws, request)
        messages = await recv_until(ws, is_book("snapshot"))
    ack, error = (m for m in messages if "event" in m)
    assert list(ack) == ["id", "event", "arg", "connId"] and ack["id"] == "17"
    assert (error["id"], error["event"], error["code"]) == ("17", "error", "60018")


async def test_text_ping_gets_text_pong(sim: SimulatorServer) -> None:
    async with connect(sim.okx_ws_url) as ws:
        await send(ws, "ping")
        assert await recv_until(ws, lambda m: True) == ["pong"]


async def test_an_unknown_inst_id_is_refused_alone(sim: SimulatorServer) -> None:
    async with connect(sim.okx_ws_url) as ws:
        await send(ws, sub(("books", "DOGE-USDT-SWAP"), ("books", BTC), ("candle1m", BTC)))
        messages = await recv_until(ws, is_book("snapshot"))
    errors = [m for m in messages if m.get("event") == "error"]
    assert [e["code"] for e in errors] == ["60018", "60018"]
    assert list(errors[0]) == ["event", "msg", "code", "connId"]
    assert errors[0]["msg"].startswith("Wrong URL or channel:books,instId:DOGE-USDT-SWAP doesn't")
    assert "channel:candle1m,instId:BTC-USDT-SWAP" in errors[1]["msg"]
    acks = [m for m in messages if m.get("event") == "subscribe"]
    assert [a["arg"]["instId"] for a in acks] == [BTC]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "60012"),
        ('{"op":"login","args":[]}', "60019"),
        ('{"op":"subscribe","args":[]}', "60013"),
        ('{"op":"subscribe","args":["books"]}', "60013"),
    ],
)
async def test_bad_requests_get_error_events(sim: SimulatorServer, text: str, code: str) -> None:
    async with connect(sim.okx_ws_url) as ws:
        await send(ws, text)
        (error,) = await recv_until(ws, lambda m: True)
    assert (error["event"], error["code"]) == ("error", code)


async def test_unsubscribe_stops_the_channel(sim: SimulatorServer) -> None:
    async with connect(sim.okx_ws_url) as ws:
        await send(ws, sub(("books", BTC), ("trades", "ETH-USDT-SWAP")))
        await recv_until(ws, is_book("snapshot"))
        await send(ws, sub(("books", BTC), op="unsubscribe"))
        acked = await recv_until(ws, lambda m: m.get("event") == "unsubscribe")
        assert acked[-1]["arg"] == {"channel": "books", "instId": BTC}
        after = await recv_until(
            ws, lambda m: m.get("arg", {}).get("channel") == "trades" and "data" in m
        )
    assert not [m for m in after if is_book("update")(m)]


async def test_every_channel_names_its_instrument(sim: SimulatorServer) -> None:
    async with connect(sim.okx_ws_url) as ws:
        await send(ws, sub(("bbo-tbt", "ETH-USDT-SWAP"), ("trades", "ETH-USDT-SWAP")))
        messages = await recv_until(
            ws, lambda m: m.get("arg", {}).get("channel") == "trades" and "data" in m
        )
    bbo = [m for m in messages if m.get("arg", {}).get("channel") == "bbo-tbt" and "data" in m]
    assert bbo and all(m["arg"]["instId"] == "ETH-USDT-SWAP" for m in bbo)
    assert messages[-1]["data"][0]["instId"] == "ETH-USDT-SWAP"


# -- faults on the wire ----------------------------------------------------------------------
async def test_a_lost_update_and_a_reset_show_in_the_seq_ids(
    make_sim: Callable[..., SimulatorServer], clock: JumpClock
) -> None:
    events = (SequenceGap(1.0, OKX, "BTCUSDT"), SequenceReset(2.0, OKX, "BTCUSDT"))
    async with make_sim(*events) as sim, connect(sim.okx_ws_url) as ws:
        await send(ws, sub(("books", BTC)))
        snapshot = (await recv_until(ws, is_book("snapshot")))[-1]["data"][0]
        clock.jump(3.0)
        until = sim.start_ms + 2500
        messages = await recv_until(
            ws, lambda m: is_book("update")(m) and int(m["data"][0]["ts"]) >= until
        )
    updates = [snapshot, *books(messages)]
    breaks = [(a, b) for a, b in pairwise(updates) if b["prevSeqId"] != a["seqId"]]
    assert len(breaks) == 1  # one update lost
    resets = [b for b in updates[1:] if b["seqId"] < b["prevSeqId"]]
    assert len(resets) == 1  # ... and one restart, whose prevSeqId names the last update
    index = updates.index(resets[0])
    assert resets[0]["prevSeqId"] == updates[index - 1]["seqId"]


async def test_a_refused_inst_id_is_refused_only_while_scripted(
    make_sim: Callable[..., SimulatorServer], clock: JumpClock
) -> None:
    async with make_sim(RefusedTopic(1.0, 2.0, OKX, okx_topic("trades", "ETHUSDT"))) as sim:
        clock.jump(1.5)
        async with connect(sim.okx_ws_url) as ws:
            await send(ws, sub(("trades", "ETH-USDT-SWAP"), ("books", "ETH-USDT-SWAP")))
            messages = await recv_until(ws, is_book("snapshot", "ETH-USDT-SWAP"))
            error = next(m for m in messages if m.get("event") == "error")
            assert error["code"] == "60018"
            assert "channel:trades,instId:ETH-USDT-SWAP" in error["msg"]
            assert [m["arg"]["channel"] for m in messages if m.get("event") == "subscribe"] == [
                "books"
            ]
            clock.jump(2.0)
            await send(ws, sub(("trades", "ETH-USDT-SWAP")))
            ack = await recv_until(ws, lambda m: m.get("event") in ("subscribe", "error"))
            assert ack[-1]["event"] == "subscribe"
    assert sim.stats.faults["refused_topic"] == 1


async def test_a_dropped_connection_is_cut_refused_then_accepted_again(
    make_sim: Callable[..., SimulatorServer], clock: JumpClock
) -> None:
    async with make_sim(ConnectionDrop(1.0, 2.0, OKX)) as sim:
        async with connect(sim.okx_ws_url) as ws:
            await send(ws, sub(("books", BTC)))
            await recv_until(ws, is_book("snapshot"))
            clock.jump(1.5)
            with pytest.raises(ConnectionClosed):
                await recv_until(ws, lambda m: False)
            assert ws.close_code == 1006  # cut without a close frame, like a network drop
        with pytest.raises(InvalidStatus) as refused:
            async with connect(sim.okx_ws_url):
                pass
        assert refused.value.response.status_code == 503
        clock.jump(2.0)
        async with connect(sim.okx_ws_url) as ws:
            await send(ws, sub(("books", BTC)))
            await recv_until(ws, is_book("snapshot"))
    assert sim.stats.refused_connections == {OKX: 1}
    assert sim.stats.connections == {OKX: 2}


async def test_a_stall_holds_the_snapshot_until_the_feed_runs(
    make_sim: Callable[..., SimulatorServer], clock: JumpClock
) -> None:
    async with make_sim(StaleFeed(1.0, 2.0, OKX)) as sim:
        clock.jump(1.5)
        async with connect(sim.okx_ws_url) as ws:
            await send(ws, sub(("books", BTC)))
            (ack,) = await recv_until(ws, lambda m: True)
            assert ack["event"] == "subscribe"
            clock.jump(2.0)
            messages = await recv_until(ws, is_book("update"))
    snapshot = next(m for m in messages if is_book("snapshot")(m))["data"][0]
    assert int(snapshot["ts"]) >= sim.start_ms + 3000
    assert books(messages)[0]["prevSeqId"] == snapshot["seqId"]


# -- REST ------------------------------------------------------------------------------------
@pytest.fixture
async def rest(sim: SimulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.okx_rest_url) as client:
        yield client


async def test_rest_instruments(rest: httpx.AsyncClient) -> None:
    response = await rest.get("/api/v5/public/instruments", params={"instType": "SWAP"})
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "0" and body["msg"] == ""
    usdt = {i["instId"]: i["ctVal"] for i in body["data"] if i["settleCcy"] == "USDT"}
    assert usdt == {"BTC-USDT-SWAP": "0.01", "ETH-USDT-SWAP": "0.1", "NEWCOIN-USDT-SWAP": "0.1"}
    one = await rest.get("/api/v5/public/instruments", params={"instType": "SWAP", "instId": BTC})
    assert [i["instId"] for i in one.json()["data"]] == [BTC]
    spot = await rest.get("/api/v5/public/instruments", params={"instType": "SPOT"})
    assert spot.json() == {"code": "0", "data": [], "msg": ""}


async def test_rest_funding_rate_books_ticker_and_time(
    sim: SimulatorServer, rest: httpx.AsyncClient
) -> None:
    funding = (await rest.get("/api/v5/public/funding-rate", params={"instId": BTC})).json()
    (data,) = funding["data"]
    assert int(data["nextFundingTime"]) - int(data["fundingTime"]) == 8 * 3_600_000
    assert data["instId"] == BTC and data["fundingRate"] == "0.0001"
    book = (await rest.get("/api/v5/market/books", params={"instId": BTC, "sz": "5"})).json()
    (levels,) = book["data"]
    assert list(levels) == ["asks", "bids", "ts", "seqId"]
    assert len(levels["asks"]) == len(levels["bids"]) == 5
    assert float(levels["bids"][0][0]) < float(levels["asks"][0][0])
    default = (await rest.get("/api/v5/market/books", params={"instId": BTC})).json()
    assert len(default["data"][0]["bids"]) == 1
    ticker = (await rest.get("/api/v5/market/ticker", params={"instId": BTC})).json()
    assert ticker["data"][0]["instId"] == BTC
    swaps = (await rest.get("/api/v5/market/tickers", params={"instType": "SWAP"})).json()
    assert [t["instId"] for t in swaps["data"]] == [BTC, "ETH-USDT-SWAP"]
    now = (await rest.get("/api/v5/public/time")).json()["data"][0]["ts"]
    assert abs(int(now) - sim.model.now_ms) < 5000


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/api/v5/public/funding-rate", {"instId": "btc-usdt-swap"}, 200, "51001"),
        ("/api/v5/public/funding-rate", {}, 400, "50014"),
        ("/api/v5/market/books", {"instId": BTC, "sz": "many"}, 200, "51000"),
        ("/api/v5/public/instruments", {}, 400, "50014"),
        ("/api/v5/public/instruments", {"instType": "PERP"}, 200, "51000"),
    ],
)
async def test_rest_errors(
    rest: httpx.AsyncClient, path: str, params: dict[str, str], status: int, code: str
) -> None:
    response = await rest.get(path, params=params)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code and body["data"] == [] and body["msg"]


@pytest.mark.parametrize(
    ("status", "http", "code"), [(429, 429, "50011"), (418, 429, "50011"), (500, 503, "50001")]
)
async def test_rest_faults(
    make_sim: Callable[..., SimulatorServer], status: int, http: int, code: str
) -> None:
    sim = make_sim(RestFault(0.0, 10.0, OKX, status=status))
    async with sim, httpx.AsyncClient(base_url=sim.okx_rest_url) as client:
        response = await client.get("/api/v5/public/time")
    assert response.status_code == http and response.json()["code"] == code
    assert sim.stats.faults["rest_fault"] == 1


async def test_a_funding_shift_reaches_rest_and_ws(
    make_sim: Callable[..., SimulatorServer], clock: JumpClock
) -> None:
    async with make_sim(FundingShift(1.0, OKX, "ETHUSDT", 0.0005, interval_hours=2)) as sim:
        async with connect(sim.okx_ws_url) as ws:
            await send(ws, sub(("funding-rate", "ETH-USDT-SWAP")))
            before = await recv_until(ws, lambda m: "data" in m)
            clock.jump(1.5)
            after = await recv_until(ws, lambda m: "data" in m)
        async with httpx.AsyncClient(base_url=sim.okx_rest_url) as client:
            params = {"instId": "ETH-USDT-SWAP"}
            body = (await client.get("/api/v5/public/funding-rate", params=params)).json()
    assert before[-1]["data"][0]["fundingRate"] == "0.0001"
    for data in (after[-1]["data"][0], body["data"][0]):
        assert data["fundingRate"] == "0.0005"
        assert int(data["nextFundingTime"]) - int(data["fundingTime"]) == 2 * 3_600_000
