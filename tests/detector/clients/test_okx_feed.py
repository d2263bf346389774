"""OkxFeed against loopback OKX stand-ins: instruments first, then connections; book repairs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from detector.clients.backoff import Backoff
from detector.clients.rest import OkxClient
from detector.feeds import OkxFeed
from detector.models import Exchange, Need, Source
from detector.pipeline import BookNeed
from detector.venues.okx import INSTRUMENTS_ENDPOINT
from tests.detector.clients.conftest import FakeRest, Reply, client_tasks, within
from tests.detector.clients.test_okx_ws import OkxLike, OkxServer

QUICK = Backoff(initial_s=0.01, max_s=0.02)
SWAP = {
    "instType": "SWAP",
    "ctMult": "1",
    "ctType": "linear",
    "settleCcy": "USDT",
    "state": "live",
    "tickSz": "0.1",
    "lotSz": "0.01",
}
INSTRUMENTS = {
    "code": "0",
    "msg": "",
    "data": [
        dict(SWAP, instId="BTC-USDT-SWAP", ctVal="0.01", ctValCcy="BTC"),
        dict(SWAP, instId="ETH-USDT-SWAP", ctVal="0.1", ctValCcy="ETH"),
        dict(SWAP, instId="SOL-USDT-SWAP", ctVal="1", ctValCcy="SOL", state="suspend"),
    ],
}
Record = tuple[Exchange, Source, str, Any, int]


class Recorder:
    """The feed's ``ingest``: keeps every message handed on, for the test to wait on."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._changed = asyncio.Event()

    def __call__(
        self, exchange: Exchange, source: Source, endpoint: str, data: Any, recv_ms: int
    ) -> None:
        self.records.append((exchange, source, endpoint, data, recv_ms))
        self._changed.set()

    async def wait_for(self, done: Callable[[list[Record]], bool]) -> None:
        while not done(self.records):
            self._changed.clear()
            await within(self._changed.wait())


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


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def feed(
    rest_server: FakeRest, okx_server: OkxServer, recorder: Recorder
) -> AsyncIterator[OkxFeed]:
    rest_server.script(
        "/api/v5/public/instruments",
        Reply({"code": "50026", "msg": "System error"}, status=500),
        Reply(INSTRUMENTS),
    )
    async with OkxClient(rest_server.url, max_retries=0) as rest:
        okx = OkxFeed(
            ["BTCUSDT", "ETH-USDT-SWAP", "SOL-USDT-SWAP", "NOPE-USDT-SWAP"],
            recorder,
            rest,
            okx_server.url,
            time.time,
            books_per_connection=2,
            backoff=QUICK,
            ping_after_s=3600.0,
        )
        yield okx
        await within(okx.stop())
    assert client_tasks() == []


def keys(*instruments: str) -> list[dict[str, str]]:
    return [
        {"channel": channel, "instId": inst}
        for channel in ("books", "tickers", "trades", "funding-rate")
        for inst in instruments
    ]


async def test_instruments_come_first_then_only_tradable_swaps_are_subscribed(
    feed: OkxFeed, okx_server: OkxServer, recorder: Recorder
) -> None:
    await feed.start()
    # The first connection carries BTC and ETH; the second only untradable ones: never opened
    # (OKX cuts a connection without a subscription after 30 s).
    peer = await okx_server.next_peer()
    [request] = await peer.requests(1)
    assert request["args"] == keys("BTC-USDT-SWAP", "ETH-USDT-SWAP")
    first = recorder.records[0]
    assert (first[0], first[1], first[2], first[3]) == (
        Exchange.OKX,
        Source.REST,
        INSTRUMENTS_ENDPOINT,
        INSTRUMENTS,
    )
    assert (feed.instruments_loaded, feed.rest_errors) == (True, 1)  # the 500 was retried
    assert feed.untradable == ["SOL-USDT-SWAP", "NOPE-USDT-SWAP"]
    second = feed.ws[1]
    assert set(second.refused) == {
        f"{c}:{i}"
        for c in ("books", "tickers", "trades", "funding-rate")
        for i in ("SOL-USDT-SWAP", "NOPE-USDT-SWAP")
    }
    assert feed.health().refused_topics == sorted(second.refused)
    assert (feed.connections, second.connects) == ([feed.ws[0]], 0)
    # One ack per arg, each handed on as received, with the endpoint of the public stream.
    await recorder.wait_for(lambda records: sum(r[1] is Source.WS for r in records) == 8)
    acks = [r for r in recorder.records if r[1] is Source.WS]
    assert {(r[0], r[2], r[3]["event"]) for r in acks} == {
        (Exchange.OKX, "/ws/v5/public", "subscribe")
    }
    assert feed.ws[0].subscribed == {f"{a['channel']}:{a['instId']}" for a in request["args"]}


async def test_a_gap_resubscribes_that_instruments_books_only(
    feed: OkxFeed, okx_server: OkxServer
) -> None:
    await feed.start()
    peer = await okx_server.next_peer()
    await peer.requests(1)
    need = BookNeed(Exchange.OKX, "BTCUSDT", "BTC-USDT-SWAP", Need.RESUBSCRIBE, 0, True)
    waiting = BookNeed(Exchange.OKX, "ETHUSDT", "ETH-USDT-SWAP", Need.RESUBSCRIBE, 0, False)
    untradable = BookNeed(Exchange.OKX, "SOLUSDT", "SOL-USDT-SWAP", Need.RESUBSCRIBE, 0, True)
    feed.repair([need, waiting, untradable])
    feed.repair([need])  # at most one repair per book per OKX_MIN_REPAIR_INTERVAL_MS
    unsubscribe, subscribe = await peer.requests(2)
    books = [{"channel": "books", "instId": "BTC-USDT-SWAP"}]
    assert (unsubscribe["op"], unsubscribe["args"]) == ("unsubscribe", books)
    assert (subscribe["op"], subscribe["args"]) == ("subscribe", books)
    # ETH's first snapshot may still be on its way: not asked again yet. SOL is not subscribed.
    assert feed.repairs == 1


async def test_bad_configuration() -> None:
    async with OkxClient() as rest:
        with pytest.raises(ValueError, match="books_per_connection"):
            OkxFeed([], Recorder(), rest, "ws://x", time.time, books_per_connection=0)
