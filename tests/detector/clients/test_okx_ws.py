"""OkxWebSocket against a loopback server that answers like OKX: per-arg acks, 60018, pong."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from detector.clients.backoff import Backoff
from detector.clients.okx_ws import OkxWebSocket, connect_limiter
from detector.clients.ratelimit import WeightLimiter
from detector.errors import ConfigError
from detector.venues.okx import arg_key, books_arg, tickers_arg
from tests.conftest import fixture_path
from tests.detector.clients.conftest import (
    FakeTime,
    FakeWs,
    Inbox,
    Peer,
    Runner,
    client_tasks,
    within,
)

QUICK = Backoff(initial_s=0.01, max_s=0.02)
BAD = "NOPE-USDT-SWAP"  # OKX does not list it: 60018
CONN_ID = "a4d3ae55"
BOOKS5 = fixture_path("okx_v5_books5_BTC-USDT-SWAP_2026-08-12.jsonl").read_text().splitlines()
SNAPSHOT_ACK, SNAPSHOT = BOOKS5[0], BOOKS5[1]  # the real books5 ack and first frame
ID = re.compile(r"^[A-Za-z0-9]{1,32}$")  # docs-v5: "alphanumerics ... of up to 32 characters"


class OkxLike:
    """Answers as OKX does: an ack per arg (OKX refuses args one by one: an unknown instId gets
    a 60018 error, the others are subscribed), ``pong`` for ``ping`` unless ``mute``."""

    def __init__(self) -> None:
        self.mute = False
        self.refuse_with: dict[str, Any] | None = None  # answer every subscribe with this error

    def __call__(self, message: Any) -> list[Any]:
        if message == "ping":
            return [] if self.mute else ["pong"]
        op, request_id = message["op"], message.get("id")
        if op == "subscribe" and self.refuse_with is not None:
            return [dict(self.refuse_with, id=request_id)]
        replies: list[Any] = []
        for arg in message["args"]:
            if op == "subscribe" and arg["instId"] == BAD:
                replies.append(
                    {
                        "id": request_id,
                        "event": "error",
                        "code": "60018",
                        "msg": f"Wrong URL or channel:{arg['channel']},instId:{arg['instId']} "
                        "doesn't exist. Please use the correct URL, channel and parameters "
                        "referring to API document.",
                        "connId": CONN_ID,
                    }
                )
                continue
            replies.append({"id": request_id, "event": op, "arg": arg, "connId": CONN_ID})
            if op == "subscribe" and arg["channel"] == "books5":
                replies.append(SNAPSHOT)
        return replies


class OkxServer(FakeWs):
    """FakeWs, but the text ``ping`` is not JSON: it is delivered as the string itself."""

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
                data = message.data if message.data == "ping" else json.loads(message.data)
                peer.received.put_nowait(data)
                for reply in self.respond(data):
                    await ws.send_str(reply if isinstance(reply, str) else json.dumps(reply))
        finally:
            peer.closed.set()
        return ws


@pytest.fixture
async def okx_server() -> AsyncIterator[OkxServer]:
    fake = OkxServer()
    fake.respond = OkxLike()
    app = web.Application()
    app.router.add_get("/{tail:.*}", fake.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        fake.url = f"ws://127.0.0.1:{server.port}/ws/v5/public"
        yield fake
        for peer in fake.peers:
            await peer.close()


def like(server: FakeWs) -> OkxLike:
    assert isinstance(server.respond, OkxLike)
    return server.respond


def args(n: int, make: Any = books_arg) -> list[dict[str, str]]:
    return [make(f"S{i}-USDT-SWAP") for i in range(n)]


def make(server: FakeWs, inbox: Inbox, subs: list[dict[str, str]], **kwargs: Any) -> OkxWebSocket:
    kwargs.setdefault("ping_after_s", 3600.0)  # no pings unless a test wants them
    return OkxWebSocket(server.url, subs, inbox, backoff=QUICK, **kwargs)


async def replies(inbox: Inbox, count: int) -> list[Any]:
    return [await inbox.next_json() for _ in range(count)]


async def test_args_are_subscribed_in_batches(
    okx_server: OkxServer, inbox: Inbox, runner: Runner
) -> None:
    subs = args(25)
    ws = make(okx_server, inbox, subs, batch_size=10)
    runner.start(ws)
    peer = await okx_server.next_peer()
    requests = await peer.requests(3)
    assert [r["op"] for r in requests] == ["subscribe"] * 3
    assert [r["args"] for r in requests] == [subs[:10], subs[10:20], subs[20:]]
    assert len({r["id"] for r in requests}) == 3
    assert all(ID.match(r["id"]) for r in requests)
    acks = await replies(inbox, 25)  # one ack per arg
    assert {a["id"] for a in acks} == {r["id"] for r in requests}
    assert ws.subscribed == {arg_key(a) for a in subs}
    assert (ws.refused, ws.requests) == ({}, 3)


async def test_batches_stay_under_the_byte_limit(
    okx_server: OkxServer, inbox: Inbox, runner: Runner
) -> None:
    subs = args(6)
    one = len(json.dumps(subs[0], separators=(",", ":"))) + 1
    ws = make(okx_server, inbox, subs, batch_size=100, max_request_bytes=2 * one)
    runner.start(ws)
    peer = await okx_server.next_peer()
    requests = await peer.requests(3)
    assert [r["args"] for r in requests] == [subs[0:2], subs[2:4], subs[4:6]]


async def test_data_is_delivered_verbatim(
    okx_server: OkxServer, inbox: Inbox, runner: Runner
) -> None:
    ws = make(okx_server, inbox, [{"channel": "books5", "instId": "BTC-USDT-SWAP"}])
    runner.start(ws)
    ack = await inbox.next_json()
    assert (ack["event"], ack["arg"]["channel"]) == ("subscribe", "books5")
    text, _ = await inbox.next()
    assert text == SNAPSHOT
    assert ws.subscribed == {"books5:BTC-USDT-SWAP"}


async def test_one_refused_inst_id_does_not_block_the_others(
    okx_server: OkxServer, inbox: Inbox, runner: Runner
) -> None:
    good = args(4)
    bad = books_arg(BAD)
    subs = [*good[:2], bad, *good[2:], tickers_arg(BAD)]
    refusals: list[tuple[str, str]] = []
    ws = make(
        okx_server,
        inbox,
        subs,
        batch_size=10,
        on_refused=lambda key, why: refusals.append((key, why)),
    )
    runner.start(ws)
    peer = await okx_server.next_peer()
    [request] = await peer.requests(1)
    assert request["args"] == subs
    await replies(inbox, len(subs))
    assert ws.subscribed == {arg_key(a) for a in good}
    assert set(ws.refused) == {"books:NOPE-USDT-SWAP", "tickers:NOPE-USDT-SWAP"}
    assert [key for key, _ in refusals] == ["books:NOPE-USDT-SWAP", "tickers:NOPE-USDT-SWAP"]
    assert refusals[0][1].startswith("60018: Wrong URL or channel:books,instId:NOPE-USDT-SWAP")

    # A new connection subscribes what it carried again, except the refused args.
    await peer.close()
    peer = await okx_server.next_peer()
    [again] = await peer.requests(1)
    assert again["args"] == good
    await replies(inbox, len(good))
    assert ws.subscribed == {arg_key(a) for a in good}
    assert len(refusals) == 2  # reported once
    assert (ws.connects, ws.reconnects) == (2, 1)


async def test_a_refusal_naming_no_arg_is_retried_arg_by_arg(
    okx_server: OkxServer, inbox: Inbox, runner: Runner
) -> None:
    like(okx_server).refuse_with = {"event": "error", "code": "60018", "msg": "doesn't exist"}
    subs = args(2)
    ws = make(okx_server, inbox, subs)
    runner.start(ws)
    peer = await okx_server.next_peer()
    batch, first, second = await peer.requests(3)
    assert [batch["args"], first["args"], second["args"]] == [subs, subs[:1], subs[1:]]
    await replies(inbox, 3)
    assert set(ws.refused) == {arg_key(a) for a in subs}


async def test_a_passing_refusal_is_not_final(
    okx_server: OkxServer, inbox: Inbox, runner: Runner
) -> None:
    like(okx_server).refuse_with = {
        "event": "error",
        "code": "60014",
        "msg": "Requests too frequent",
    }
    subs = args(2)
    ws = make(okx_server, inbox, subs)
    runner.start(ws)
    peer = await okx_server.next_peer()
    await peer.requests(1)
    await replies(inbox, 1)
    assert (ws.refused, ws.subscribed) == ({}, set())
    like(okx_server).refuse_with = None
    await peer.close()  # the next connection asks again
    peer = await okx_server.next_peer()
    assert (await peer.next_request())["args"] == subs


async def test_ping_after_silence_and_the_pong_delivered(
    okx_server: OkxServer, inbox: Inbox, runner: Runner
) -> None:
    ws = make(okx_server, inbox, [], ping_after_s=0.05)
    runner.start(ws)
    peer = await okx_server.next_peer()
    assert await peer.next_request() == "ping"  # the text itself, not JSON
    text, _ = await inbox.next()
    assert text == "pong"
    assert await peer.next_request() == "ping"  # the timer starts again after each message
    assert ws.requests == 0  # pings are not subscribe requests: they spend no budget


async def test_a_busy_connection_is_not_pinged_until_it_falls_silent(
    okx_server: OkxServer, inbox: Inbox, runner: Runner
) -> None:
    ws = make(okx_server, inbox, [], ping_after_s=0.1)
    runner.start(ws)
    peer = await okx_server.next_peer()
    busy_until = time.monotonic() + 0.4  # four times the silence that earns a ping
    while time.monotonic() < busy_until:
        await peer.send('{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"data":[]}')
        await asyncio.sleep(0.02)
    assert peer.received.empty()  # every message put the ping off
    silent_from = time.monotonic()
    assert await peer.next_request() == "ping"
    assert time.monotonic() - silent_from >= 0.08  # about 0.1 s after the last message


async def test_no_pong_drops_the_connection_and_resubscribes(
    okx_server: OkxServer, inbox: Inbox, runner: Runner
) -> None:
    like(okx_server).mute = True
    subs = args(2)
    ws = make(okx_server, inbox, subs, ping_after_s=0.05)
    runner.start(ws)
    first = await okx_server.next_peer()
    assert (await first.next_request())["args"] == subs
    await replies(inbox, 2)
    assert await first.next_request() == "ping"
    second = await okx_server.next_peer()  # no answer: reconnected at once
    assert (await second.next_request())["args"] == subs
    await within(first.closed.wait())
    assert ws.last_error is not None and "no pong" in ws.last_error


async def test_a_restart_notice_reconnects(
    okx_server: OkxServer, inbox: Inbox, runner: Runner
) -> None:
    subs = args(1)
    ws = make(okx_server, inbox, subs)
    runner.start(ws)
    first = await okx_server.next_peer()
    await first.next_request()
    await inbox.next_json()
    notice = {
        "event": "notice",
        "code": "64008",
        "msg": "The connection will soon be closed for a service upgrade. Please reconnect.",
        "connId": CONN_ID,
    }
    await first.send(json.dumps(notice))
    second = await okx_server.next_peer()
    assert (await second.next_request())["args"] == subs
    assert ws.last_error is not None and "64008" in ws.last_error


async def test_resubscribe_unsubscribes_then_subscribes(
    okx_server: OkxServer, inbox: Inbox, runner: Runner
) -> None:
    arg = books_arg("BTC-USDT-SWAP")
    ws = make(okx_server, inbox, [arg])
    runner.start(ws)
    peer = await okx_server.next_peer()
    await peer.next_request()
    await inbox.next_json()
    await ws.resubscribe(arg_key(arg))
    unsubscribe, subscribe = await peer.requests(2)
    assert (unsubscribe["op"], unsubscribe["args"]) == ("unsubscribe", [arg])
    assert (subscribe["op"], subscribe["args"]) == ("subscribe", [arg])
    await replies(inbox, 2)
    assert ws.subscribed == {arg_key(arg)}
    assert ws.requests == 3


async def test_resubscribe_of_a_refused_or_unconnected_arg_does_nothing(inbox: Inbox) -> None:
    ws = OkxWebSocket("ws://127.0.0.1:1", [books_arg("BTC-USDT-SWAP")], inbox)
    await ws.resubscribe("books:BTC-USDT-SWAP")
    ws.refuse("books:BTC-USDT-SWAP", "not tradable")
    assert ws.refused == {"books:BTC-USDT-SWAP": "not tradable"}
    assert ws.subscribed == set()


async def test_requests_wait_when_the_hourly_budget_is_spent(
    okx_server: OkxServer, inbox: Inbox, runner: Runner, fake_time: FakeTime
) -> None:
    subs = args(3)
    ws = make(
        okx_server,
        inbox,
        subs,
        batch_size=1,
        requests_per_hour=2,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    runner.start(ws)
    peer = await okx_server.next_peer()
    requests = await peer.requests(3)
    assert [r["args"] for r in requests] == [[a] for a in subs]
    # The third request waited for the first to leave the hour (the fake sleep moved the clock).
    assert fake_time.sleeps == [pytest.approx(3600.0)]


async def test_connection_attempts_share_one_limiter(
    okx_server: OkxServer, inbox: Inbox, runner: Runner, fake_time: FakeTime
) -> None:
    limiter = connect_limiter(fake_time.clock, fake_time.sleep)
    one = make(okx_server, inbox, args(1), connects=limiter)
    two = make(okx_server, inbox, args(1), connects=limiter)
    three = make(okx_server, inbox, args(1), connects=limiter)
    for ws in (one, two, three):
        runner.start(ws)
        await okx_server.next_peer()
    assert isinstance(limiter, WeightLimiter)
    # OKX: 3 connection attempts per second per IP; we open at most 2 in any second.
    assert fake_time.sleeps == [pytest.approx(1.0)]


async def test_stop_leaves_no_tasks(okx_server: OkxServer, inbox: Inbox) -> None:
    ws = make(okx_server, inbox, args(2), ping_after_s=0.01)
    task = asyncio.create_task(ws.run())
    peer = await okx_server.next_peer()
    await peer.requests(2)  # the subscription and a ping: every companion is running
    await within(ws.stop())
    assert task.done()
    assert client_tasks() == []
    await within(peer.closed.wait())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"ping_after_s": 0}, "ping_after_s"),
        ({"requests_per_hour": 0}, "requests_per_hour"),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OkxWebSocket(args=[books_arg("BTC-USDT-SWAP")], **kwargs)


def test_ack_fixture_matches_the_server_stand_in() -> None:
    # The stand-in's ack has the real ack's keys, plus the id OKX echoes when one is sent.
    real = json.loads(SNAPSHOT_ACK)
    ours = OkxLike()({"op": "subscribe", "id": "s1", "args": [real["arg"]]})[0]
    assert set(ours) == {*real, "id"}
