"""BybitWebSocket against a loopback server that answers like Bybit: acks, nacks, pongs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from detector.clients.backoff import Backoff
from detector.clients.ws import BybitWebSocket
from detector.errors import ConfigError
from detector.venues.bybit import orderbook_topic, tickers_topic
from tests.conftest import fixture_path
from tests.detector.clients.conftest import FakeWs, Inbox, Runner, client_tasks, within

SNAPSHOT = (
    fixture_path("bybit_v5_linear_orderbook50_BTCUSDT_snapshot_delta_2026-08-12.jsonl")
    .read_text()
    .splitlines()[0]
)  # the real orderbook.50.BTCUSDT snapshot frame
BAD = "orderbook.500.BTCUSDT"  # depth 500 no longer exists: Bybit refuses it
CONN_ID = "d9tc9d83r8h4ejgu2cu0-ctw7"
QUICK = Backoff(initial_s=0.01, max_s=0.02)


class BybitLike:
    """Answers subscribe, unsubscribe and ping as Bybit does; data comes before the ack."""

    def __init__(self, *, echo_req_id_on_nack: bool = True) -> None:
        self.echo_req_id_on_nack = echo_req_id_on_nack

    def __call__(self, message: Any) -> list[Any]:
        op, req_id = message.get("op"), message.get("req_id")
        if op == "subscribe":
            refused = [topic for topic in message["args"] if topic == BAD]
            if refused:
                nack = {
                    "success": False,
                    "ret_msg": f"error:handler not found,topic:{refused[0]}",
                    "conn_id": CONN_ID,
                    "op": "subscribe",
                }
                if self.echo_req_id_on_nack:
                    nack["req_id"] = req_id
                return [nack]
            data = [SNAPSHOT] if "orderbook.50.BTCUSDT" in message["args"] else []
            ack = {"success": True, "ret_msg": "", "conn_id": CONN_ID, "req_id": req_id, "op": op}
            return [*data, ack]
        if op == "unsubscribe":
            return [
                {"success": True, "ret_msg": "", "conn_id": CONN_ID, "req_id": req_id, "op": op}
            ]
        if op == "ping":
            return [
                {"success": True, "ret_msg": "pong", "conn_id": CONN_ID, "req_id": req_id, "op": op}
            ]
        return []


@pytest.fixture
def bybit_server(ws_server: FakeWs) -> FakeWs:
    ws_server.respond = BybitLike()
    return ws_server


def topics(n: int) -> list[str]:
    return [orderbook_topic(f"S{i}USDT") for i in range(n)]


def make(server: FakeWs, inbox: Inbox, names: list[str], **kwargs: Any) -> BybitWebSocket:
    kwargs.setdefault("ping_interval_s", 3600.0)  # no pings unless a test wants them
    return BybitWebSocket(server.url, names, inbox, backoff=QUICK, **kwargs)


async def replies(inbox: Inbox, count: int) -> list[Any]:
    return [await inbox.next_json() for _ in range(count)]


async def test_topics_are_subscribed_in_batches(
    bybit_server: FakeWs, inbox: Inbox, runner: Runner
) -> None:
    names = topics(25)
    ws = make(bybit_server, inbox, names, batch_size=10)
    runner.start(ws)
    peer = await bybit_server.next_peer()
    requests = await peer.requests(3)
    assert [r["op"] for r in requests] == ["subscribe"] * 3
    assert [r["args"] for r in requests] == [names[:10], names[10:20], names[20:]]
    assert len({r["req_id"] for r in requests}) == 3
    acks = await replies(inbox, 3)
    assert [a["req_id"] for a in acks] == [r["req_id"] for r in requests]
    assert ws.subscribed == set(names)
    assert ws.refused == set()


async def test_data_before_the_ack_is_delivered_verbatim(
    bybit_server: FakeWs, inbox: Inbox, runner: Runner
) -> None:
    ws = make(bybit_server, inbox, ["orderbook.50.BTCUSDT"])
    runner.start(ws)
    text, _ = await inbox.next()
    assert text == SNAPSHOT
    ack = await inbox.next_json()
    assert (ack["op"], ack["success"]) == ("subscribe", True)
    assert ws.subscribed == {"orderbook.50.BTCUSDT"}


@pytest.mark.parametrize("echo_req_id", [True, False])
async def test_a_refused_batch_is_retried_topic_by_topic(
    bybit_server: FakeWs, inbox: Inbox, runner: Runner, echo_req_id: bool
) -> None:
    bybit_server.respond = BybitLike(echo_req_id_on_nack=echo_req_id)
    good = topics(11)
    names = [*good[:3], BAD, *good[3:]]
    refusals: list[tuple[str, str]] = []
    connects: list[int] = []
    ws = make(
        bybit_server,
        inbox,
        names,
        batch_size=10,
        on_refused=lambda topic, message: refusals.append((topic, message)),
        on_connect=lambda: connects.append(1),
    )
    runner.start(ws)
    peer = await bybit_server.next_peer()
    batches = await peer.requests(2)
    assert [b["args"] for b in batches] == [names[:10], names[10:]]
    singles = await peer.requests(10)
    assert [s["args"] for s in singles] == [[topic] for topic in names[:10]]
    await replies(inbox, 12)  # nack, ack, then 9 acks and a nack, every one delivered
    assert refusals == [(BAD, f"error:handler not found,topic:{BAD}")]
    assert ws.refused == {BAD}
    assert ws.subscribed == set(good)

    # A new connection subscribes everything again, except the refused topic.
    await peer.close()
    peer = await bybit_server.next_peer()
    again = await peer.requests(2)
    assert [r["args"] for r in again] == [good[:10], good[10:]]
    await replies(inbox, 2)
    assert ws.subscribed == set(good)
    assert connects == [1, 1]
    assert refusals == [(BAD, f"error:handler not found,topic:{BAD}")]  # reported once


async def test_ping_is_sent_and_the_pong_delivered(
    bybit_server: FakeWs, inbox: Inbox, runner: Runner
) -> None:
    ws = make(bybit_server, inbox, [], ping_interval_s=0.01)
    runner.start(ws)
    peer = await bybit_server.next_peer()
    ping = await peer.next_request()
    assert ping["op"] == "ping"
    assert ping["req_id"]
    pong = await inbox.next_json()
    assert (pong["op"], pong["ret_msg"], pong["req_id"]) == ("ping", "pong", ping["req_id"])


async def test_resubscribe_unsubscribes_then_subscribes(
    bybit_server: FakeWs, inbox: Inbox, runner: Runner
) -> None:
    topic = tickers_topic("BTCUSDT")
    ws = make(bybit_server, inbox, [topic])
    runner.start(ws)
    peer = await bybit_server.next_peer()
    await peer.next_request()
    await inbox.next_json()
    await ws.resubscribe(topic)
    unsubscribe, subscribe = await peer.requests(2)
    assert (unsubscribe["op"], unsubscribe["args"]) == ("unsubscribe", [topic])
    assert (subscribe["op"], subscribe["args"]) == ("subscribe", [topic])
    await replies(inbox, 2)
    assert ws.subscribed == {topic}


async def test_resubscribe_while_disconnected_does_nothing(inbox: Inbox) -> None:
    ws = BybitWebSocket("ws://127.0.0.1:1", [tickers_topic("BTCUSDT")], inbox)
    await ws.resubscribe(tickers_topic("BTCUSDT"))  # the next connection subscribes anyway
    assert ws.subscribed == set()


async def test_reconnect_on_request_resubscribes(
    bybit_server: FakeWs, inbox: Inbox, runner: Runner
) -> None:
    names = topics(3)
    ws = make(bybit_server, inbox, names)
    runner.start(ws)
    first = await bybit_server.next_peer()
    await first.next_request()
    await inbox.next_json()
    await ws.reconnect("orderbook silent for 30 s")
    second = await bybit_server.next_peer()
    assert (await second.next_request())["args"] == names
    await within(first.closed.wait())
    assert (ws.connects, ws.reconnects) == (2, 1)


async def test_stop_leaves_no_tasks(bybit_server: FakeWs, inbox: Inbox) -> None:
    ws = make(bybit_server, inbox, topics(2), ping_interval_s=0.01)
    task = asyncio.create_task(ws.run())
    peer = await bybit_server.next_peer()
    await peer.requests(2)  # the subscription and a ping: every companion is running
    await within(ws.stop())
    assert task.done()
    assert client_tasks() == []
    await within(peer.closed.wait())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"batch_size": 0}, "batch_size"), ({"ping_interval_s": 0}, "ping_interval_s")],
)
def test_bad_configuration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BybitWebSocket(topics=["tickers.BTCUSDT"], **kwargs)


def test_ack_fixture_matches_the_server_stand_in() -> None:
    # The stand-in's ack has the real ack's keys (bybit_v5_linear_subscribe_ack_... line 1).
    real = json.loads(
        fixture_path("bybit_v5_linear_subscribe_ack_and_publicTrade_BTCUSDT_2026-08-12.jsonl")
        .read_text()
        .splitlines()[0]
    )
    ours = BybitLike()({"op": "subscribe", "req_id": "1", "args": ["tickers.BTCUSDT"]})[-1]
    assert set(ours) == set(real)
