"""Binance start-up at market scale: every book's snapshot within the weight budget, no 429,
resyncs of broken books ahead of first syncs. A loopback REST server enforces Binance's 2,400
weight a minute on the test's virtual clock (the client's limiter sleeps on it too)."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from detector.clients.rest import BINANCE_WEIGHT_LIMIT, BinanceClient, depth_weight
from detector.feeds import SNAPSHOTS_IN_FLIGHT, BinanceFeed, snapshot_limit
from detector.models import Exchange, Need
from detector.pipeline import BookNeed
from tests.detector.clients.conftest import FakeTime, within


class WeightedDepth:
    """``/fapi/v1/depth`` for any symbol, charging Binance's weight per minute of ``time``."""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.url = ""
        self.requests: list[tuple[str, int]] = []  # (symbol, limit)
        self.rejected = 0  # 429s
        self.peak = 0  # most weight used in one minute
        self._minute = -1
        self._used = 0
        self.hold = asyncio.Event()
        self.hold.set()

    async def handle(self, request: web.Request) -> web.Response:
        await self.hold.wait()
        query = urllib.parse.parse_qs(request.query_string)
        symbol, limit = query["symbol"][0], int(query["limit"][0])
        minute = int(self.time.clock() // 60)
        if minute != self._minute:
            self._minute, self._used = minute, 0
        weight = depth_weight(limit)
        if self._used + weight > BINANCE_WEIGHT_LIMIT:
            self.rejected += 1
            return web.json_response({"code": -1003, "msg": "Too many requests"}, status=429)
        self._used += weight
        self.peak = max(self.peak, self._used)
        self.requests.append((symbol, limit))
        headers = {"X-MBX-USED-WEIGHT-1M": str(self._used)}
        body = {"lastUpdateId": 10, "E": 1, "T": 1, "bids": [["1.0", "1"]], "asks": [["1.1", "1"]]}
        return web.json_response(body, headers=headers)


@pytest.fixture
async def depth() -> AsyncIterator[WeightedDepth]:
    server = WeightedDepth(FakeTime())
    app = web.Application()
    app.router.add_get("/fapi/v1/depth", server.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as test_server:
        server.url = f"http://127.0.0.1:{test_server.port}"
        yield server


def need(symbol: str, broken: bool = False) -> BookNeed:
    return BookNeed(Exchange.BINANCE, symbol, symbol, Need.SNAPSHOT, 3, broken)


def feed_for(depth: WeightedDepth, symbols: list[str], got: list[Any]) -> BinanceFeed:
    time = depth.time
    rest = BinanceClient(depth.url, clock=time.clock, sleep=time.sleep)

    def ingest(*record: Any) -> None:
        got.append(record)

    return BinanceFeed(symbols, ingest, rest, "ws://127.0.0.1:9", time.clock)


async def settle(feed: BinanceFeed, got: list[Any], expected: int) -> None:
    async def done() -> None:
        while len(got) < expected or feed.snapshots_waiting:  # noqa: ASYNC110 - bounded by within()
            await asyncio.sleep(0.01)

    await within(done())


@pytest.mark.parametrize(("books", "limit"), [(3, 1000), (150, 500), (400, 50), (1000, 50)])
async def test_every_book_syncs_within_the_budget_without_a_429(
    depth: WeightedDepth, books: int, limit: int
) -> None:
    symbols = [f"C{i}USDT" for i in range(books)]
    got: list[Any] = []
    feed = feed_for(depth, symbols, got)
    assert feed.snapshot_limit == limit == snapshot_limit(books, feed.rest.limiter.budget)
    start = depth.time.clock()
    feed.repair([need(s) for s in symbols])
    await settle(feed, got, books)
    assert sorted(s for s, _ in depth.requests) == sorted(symbols)
    assert {lim for _, lim in depth.requests} == {limit}
    assert depth.rejected == 0 and depth.peak <= BINANCE_WEIGHT_LIMIT
    waited = depth.time.clock() - start
    # Up to 960 books every first sync fits one window of the budget (1,920): no wait at all.
    # 1,000 books at weight 2 need a second window: one wait of about a minute.
    assert (waited == 0) if books * depth_weight(limit) <= 1920 else (55 <= waited <= 61)
    await feed.stop()
    await feed.rest.aclose()


async def test_a_broken_book_goes_before_first_syncs_that_wait(depth: WeightedDepth) -> None:
    symbols = [f"C{i}USDT" for i in range(12)] + ["BROKENUSDT"]
    got: list[Any] = []
    feed = feed_for(depth, symbols, got)
    depth.hold.clear()  # the first requests hang until released: the rest queue in the feed
    feed.repair([need(s) for s in symbols[:12]])
    await asyncio.sleep(0.05)
    feed.repair([need("BROKENUSDT", broken=True)])
    depth.hold.set()
    await settle(feed, got, 13)
    order = [s for s, _ in depth.requests]
    # The 4 already in flight answer first; the broken book comes right after them.
    assert order.index("BROKENUSDT") == SNAPSHOTS_IN_FLIGHT
    assert feed.resyncs_ahead == 1 and feed.snapshots == 13
    await feed.stop()
    await feed.rest.aclose()


async def test_stop_leaves_no_snapshot_behind(depth: WeightedDepth) -> None:
    symbols = [f"C{i}USDT" for i in range(12)]
    got: list[Any] = []
    feed = feed_for(depth, symbols, got)
    depth.hold.clear()  # four requests hang, eight wait in the feed
    feed.repair([need(s) for s in symbols])
    await asyncio.sleep(0.05)
    await within(feed.stop())
    depth.hold.set()
    await asyncio.sleep(0.05)
    assert feed.snapshots_waiting == 0 and len(depth.requests) <= SNAPSHOTS_IN_FLIGHT
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("binance snapshot")]
    await feed.rest.aclose()
