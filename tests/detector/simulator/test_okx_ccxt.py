"""A third-party OKX client, ccxt pro's ``okx`` (a test-only dependency), pointed at the
simulator's URLs: it loads the markets, watches books, tickers and trades and reads funding
exactly as it would from OKX, and its seqId check sees the scripted break and not the reset.

Bounded (every wait has a timeout) and offline: host names cannot be resolved during the test,
so ccxt reaching for anything but the loopback simulator fails it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import ccxt.pro as ccxtpro
import pytest
from ccxt.base.errors import InvalidNonce

from detector.models import Exchange
from detector.simulator.scenarios import Scenario, SequenceGap, SequenceReset
from detector.simulator.server import SimulatorServer

OKX = Exchange.OKX
BTC = "BTC/USDT:USDT"
WAIT_S = 20.0
RETRY_S = 0.05  # a client's pause before it watches again after an error


class JumpClock:
    """Wall-clock time plus an offset the test moves forward (the market catches up at once)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse to resolve any host but the loopback one."""
    resolve = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "localhost", b"127.0.0.1", None):
            raise OSError(f"test is offline: no lookup of {host!r}")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    yield


def okx_client(sim: SimulatorServer) -> Any:
    exchange = ccxtpro.okx({"enableRateLimit": False, "timeout": 5000})
    # ccxt builds REST URLs as rest + /api/v5/..., WebSocket URLs as ws + /public.
    exchange.urls["api"] = {"rest": sim.okx_rest_url, "ws": sim.urls.okx_ws_base}
    return exchange


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer("calm", symbols=("BTCUSDT", "ETHUSDT")) as server:
        yield server


async def test_ccxt_loads_markets_and_watches_a_book(sim: SimulatorServer) -> None:
    exchange = okx_client(sim)
    try:
        async with asyncio.timeout(WAIT_S):
            markets = await exchange.load_markets()
            nonces = []
            for _ in range(6):
                book = await exchange.watch_order_book(BTC)
                nonces.append(book["nonce"])
            ticker = await exchange.watch_ticker(BTC)
            trades = await exchange.watch_trades("ETH/USDT:USDT")
            funding = await exchange.fetch_funding_rate(BTC)
            rest_book = await exchange.fetch_order_book(BTC, 5)
    finally:
        await exchange.close()
    market = markets[BTC]
    assert (market["id"], market["type"], market["linear"], market["active"]) == (
        "BTC-USDT-SWAP",
        "swap",
        True,
        True,
    )
    assert market["contractSize"] == 0.01 and markets["ETH/USDT:USDT"]["contractSize"] == 0.1
    assert market["precision"] == {"amount": 0.01, "price": 0.1} | {
        k: v for k, v in market["precision"].items() if k not in ("amount", "price")
    }
    assert markets["NEWCOIN/USDT:USDT"]["active"] is False  # preopen
    assert markets["BTC/USD:BTC"]["inverse"] is True
    # The book: 400 levels a side, sorted, uncrossed, sizes in contracts, around the fair price.
    bids, asks = book["bids"], book["asks"]
    assert len(bids) == len(asks) == 400
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert bids[0][0] < asks[0][0] and all(size > 0 for _, size in bids + asks)
    fair = sim.model.fair_price("BTCUSDT")
    assert abs((bids[0][0] + asks[0][0]) / 2 / fair - 1) < 1e-3
    assert 0.5 < sum(size for _, size in bids[:20]) * 0.01 / 20 / 0.25 < 2  # ~0.25 BTC a level
    assert nonces == sorted(nonces) and len(set(nonces)) >= 5  # seqIds, chained
    assert ticker["bid"] < ticker["ask"] and abs(ticker["bid"] / fair - 1) < 1e-3
    assert trades and all(t["amount"] > 0 and t["side"] in ("buy", "sell") for t in trades)
    assert funding["fundingRate"] == 0.0001 and funding["interval"] == "8h"
    assert len(rest_book["bids"]) == len(rest_book["asks"]) == 5


async def test_ccxt_sees_the_prev_seq_id_break_and_not_the_reset() -> None:
    clock = JumpClock()
    events = (SequenceGap(2.0, OKX, "BTCUSDT"), SequenceReset(4.0, OKX, "BTCUSDT"))
    scenario = Scenario("ccxt", "a gap, then a reset", 10.0, events)
    async with SimulatorServer(scenario, symbols=("BTCUSDT",), clock=clock) as sim:
        exchange = okx_client(sim)
        try:
            async with asyncio.timeout(WAIT_S):
                before = (await exchange.watch_order_book(BTC))["nonce"]
                clock.jump(2.5)  # past the lost update
                errors = 0
                while True:  # bounded by the timeout
                    try:
                        book = await exchange.watch_order_book(BTC)
                    except InvalidNonce:
                        errors += 1  # ccxt unsubscribes and subscribes again ...
                        await asyncio.sleep(RETRY_S)  # (its watch raises until that is done)
                        continue
                    if errors:
                        break  # ... and starts over from a snapshot
                resynced = book["nonce"]
                clock.jump(2.0)  # past the seqId reset: continuous, so no error
                nonces = [(await exchange.watch_order_book(BTC))["nonce"]]
                while nonces[-1] >= resynced and len(nonces) < 60:
                    nonces.append((await exchange.watch_order_book(BTC))["nonce"])
                nonces += [(await exchange.watch_order_book(BTC))["nonce"] for _ in range(3)]
        finally:
            await exchange.close()
    assert errors >= 1 and resynced > before
    assert nonces[-1] < resynced  # the restarted seqIds, accepted by ccxt's chain check
    assert sim.stats.faults["disconnect"] == 0
