"""The frame pusher on 127.0.0.1: books sync from its snapshots, the live detector runs on it.

Every wait is bounded and waits for a condition, never for a fixed time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from detector.clients.backoff import Backoff
from detector.config import DetectorConfig, SignalRules
from detector.engine import Detector
from detector.models import Exchange
from detector.signals import Signal, SignalType
from detector.simulator.scenarios import ArbitrageWindow, Scenario
from detector.simulator.server_push import FramePusher
from detector.simulator.timeline import Timeline, build_timeline

SYMBOLS = ("BTCUSDT", "ETHUSDT")
WAIT_S = 20.0
FAST_BACKOFF = Backoff(initial_s=0.05, max_s=0.2)
WINDOWS = tuple(
    ArbitrageWindow(2.0 + 4.0 * i, 1.5, SYMBOLS[i % 2], sell_on=Exchange.BYBIT, net_pct=0.3)
    for i in range(8)
)


@pytest.fixture(scope="module")
def timeline() -> Timeline:
    scenario = Scenario("push", "arbitrage windows", 40.0, WINDOWS)
    return build_timeline(
        scenario, symbols=SYMBOLS, venues=tuple(Exchange), duration_s=40.0, snapshot_every_ms=200
    )


@pytest.fixture
async def pusher(timeline: Timeline) -> AsyncIterator[FramePusher]:
    async with FramePusher(timeline, speed=2.0) as server:
        yield server


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (state changed by synchronous callbacks) until it holds, bounded."""
    async with asyncio.timeout(WAIT_S):
        while not condition():  # noqa: ASYNC110 - the bound is what the test relies on
            await asyncio.sleep(0.02)


async def test_a_detector_syncs_every_book_and_finds_the_windows(pusher: FramePusher) -> None:
    config = DetectorConfig(
        symbols=SYMBOLS, exchanges=tuple(Exchange), rules=SignalRules(arb_reopen_quiet_s=0)
    )
    detector = Detector(config, pusher.urls.feed_urls(), ws_options={"backoff": FAST_BACKOFF})
    signals: list[Signal] = []
    detector.add_callback(signals.append)
    async with detector:
        await until(lambda: all(b.healthy for b in detector.health().books))
        await until(lambda: any(s.type is SignalType.ARBITRAGE for s in signals))
        health = detector.health()
    assert len(health.books) == len(SYMBOLS) * 3
    for exchange, venue in health.exchanges.items():
        assert venue.frames > 0, exchange
        assert venue.gaps == 0 and venue.frame_errors == 0, exchange
    assert health.internal_errors == 0
    assert detector.received_ns > 0  # the receive time of the frame behind the signals
    assert pusher.stats.frames_sent > 0
    assert pusher.stats.connections[Exchange.BINANCE] == 2


async def test_the_detector_offers_deflate_when_told_and_still_syncs(timeline: Timeline) -> None:
    config = DetectorConfig(symbols=SYMBOLS, exchanges=tuple(Exchange), ws_compression="deflate")
    async with FramePusher(timeline, speed=2.0, deflate=True) as server:
        detector = Detector(config, server.urls.feed_urls(), ws_options={"backoff": FAST_BACKOFF})
        async with detector:
            await until(lambda: all(b.healthy for b in detector.health().books))
            connections = [c for feed in detector.feeds.values() for c in feed.connections]
            assert {c.compression for c in connections} == {"deflate"}
            assert server.stats.compressed_connections == len(connections) == 4


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_a_bybit_subscription_gets_its_snapshot_then_the_deltas_after_it(
    timeline: Timeline, compression: str | None
) -> None:
    async with (
        FramePusher(timeline, speed=2.0, deflate=True) as server,
        connect(server.urls.bybit_ws, compression=compression) as ws,
    ):
        assert bool(ws.protocol.extensions) is (compression == "deflate")
        request = {"op": "subscribe", "req_id": "1", "args": ["orderbook.50.BTCUSDT"]}
        await ws.send(orjson.dumps(request).decode())
        async with asyncio.timeout(WAIT_S):
            ack = orjson.loads(await ws.recv())
            snapshot = orjson.loads(await ws.recv())
            deltas = [orjson.loads(await ws.recv()) for _ in range(5)]
    assert ack["success"] is True and ack["req_id"] == "1"
    assert snapshot["type"] == "snapshot" and snapshot["topic"] == "orderbook.50.BTCUSDT"
    ids = [snapshot["data"]["u"]] + [d["data"]["u"] for d in deltas]
    assert [d["type"] for d in deltas] == ["delta"] * 5
    assert ids == list(range(ids[0], ids[0] + 6))  # Bybit: each delta's u is the last + 1


async def test_a_binance_depth_snapshot_bridges_the_stream_it_was_asked_beside(
    pusher: FramePusher,
) -> None:
    url = f"{pusher.urls.binance_ws}/public/stream?streams=btcusdt@depth@100ms"
    async with connect(url) as ws, httpx.AsyncClient(base_url=pusher.urls.binance_rest) as http:
        async with asyncio.timeout(WAIT_S):
            diffs = [orjson.loads(await ws.recv())["data"]]  # the stream buffers first
            answer = await http.get("/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 1000})
            last_id = answer.json()["lastUpdateId"]
            while diffs[-1]["u"] < last_id:
                diffs.append(orjson.loads(await ws.recv())["data"])
    assert answer.status_code == 200
    assert diffs[0]["U"] <= last_id  # the buffered stream reaches back before the snapshot
    assert any(d["U"] <= last_id <= d["u"] for d in diffs)
    for previous, diff in itertools.pairwise(diffs):
        assert diff["pu"] == previous["u"]  # futures: an unbroken chain


async def test_after_the_timeline_the_depth_is_the_last_snapshot() -> None:
    short = build_timeline(Scenario("short", "", 1.0), symbols=SYMBOLS, duration_s=1.0)
    async with FramePusher(short, speed=50.0) as server:
        async with asyncio.timeout(WAIT_S):
            await server.finished.wait()
        async with httpx.AsyncClient(base_url=server.urls.binance_rest) as http:
            answer = await http.get("/fapi/v1/depth", params={"symbol": "ETHUSDT"})
            unknown = await http.get("/fapi/v1/depth", params={"symbol": "DOGEUSDT"})
            info = await http.get("/fapi/v1/exchangeInfo")
    assert answer.status_code == 200 and answer.json()["lastUpdateId"] > 0
    assert unknown.status_code == 400 and unknown.json()["code"] == -1121
    assert {s["symbol"] for s in info.json()["symbols"]} >= set(SYMBOLS)
    assert server.stats.entries == len(short.times)


async def test_the_depth_has_limit_levels_a_side_at_most_the_timeline_s_depth() -> None:
    short = build_timeline(
        Scenario("short", "", 1.0), symbols=SYMBOLS, duration_s=1.0, depth_limit=100
    )
    async with FramePusher(short, speed=50.0) as server:
        async with asyncio.timeout(WAIT_S):
            await server.finished.wait()
        async with httpx.AsyncClient(base_url=server.urls.binance_rest) as http:

            async def levels(limit: str) -> tuple[int, int]:
                body = (
                    await http.get("/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": limit})
                ).json()
                return len(body["bids"]), len(body["asks"])

            assert await levels("5") == (5, 5)
            assert await levels("7") == (10, 10)  # rounded up to a limit Binance accepts
            assert await levels("1000") == (100, 100)  # as deep as the timeline keeps


def test_the_rate_sets_the_speed(timeline: Timeline) -> None:
    pusher = FramePusher(timeline, rate=timeline.frames_per_s * 3)
    assert pusher.speed == pytest.approx(3.0)
    assert pusher.rate == pytest.approx(timeline.frames_per_s * 3)


@pytest.mark.parametrize(
    "kwargs", [{}, {"rate": 10.0, "speed": 1.0}, {"rate": -1.0}, {"speed": 0.0}]
)
def test_rate_or_speed_is_required_and_positive(
    timeline: Timeline, kwargs: dict[str, float]
) -> None:
    with pytest.raises(ValueError):
        FramePusher(timeline, **kwargs)


async def test_the_depth_endpoint_spends_weight_and_refuses_beyond_the_minute_s_budget() -> None:
    short = build_timeline(Scenario("short", "", 1.0), symbols=SYMBOLS, duration_s=1.0)
    minute = [30.0]  # seconds into a minute of the pusher's clock; the test moves it
    async with FramePusher(short, speed=50.0, clock=lambda: 1_786_540_800.0 + minute[0]) as server:
        async with asyncio.timeout(WAIT_S):
            await server.finished.wait()  # answers come at once from here on
        async with httpx.AsyncClient(base_url=server.urls.binance_rest) as http:

            async def depth(limit: str) -> httpx.Response:
                return await http.get(
                    "/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": limit}
                )

            used = [(await depth("1000")).headers["X-MBX-USED-WEIGHT-1M"] for _ in range(3)]
            assert used == ["20", "40", "60"]
            assert (await depth("100")).headers["X-MBX-USED-WEIGHT-1M"] == "65"
            bad = await depth("x")
            for _ in range(117):  # 65 + 117 x 20 = 2,405: the last one is still answered
                assert (await depth("1000")).status_code == 200
            refused = await depth("5")
            minute[0] = 61.0  # the next minute: a fresh budget
            again = await depth("5")
    assert bad.status_code == 400 and bad.json()["code"] == -1100
    assert refused.status_code == 429 and refused.json()["code"] == -1003
    assert refused.headers["Retry-After"] == "31"
    assert again.status_code == 200 and again.headers["X-MBX-USED-WEIGHT-1M"] == "2"
    assert server.stats.depth_429s == 1 and server.stats.depth_weight_peak == 2405
