"""The simulator's REST endpoints answer like the real exchanges: bodies, headers, errors, pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from detector.models import Exchange
from detector.simulator.instruments import profile
from detector.simulator.server import SimulatorServer
from tests.conftest import load_json, load_jsonl

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
REAL_DEPTH = "binance_usdm_rest_depth_SUSHIUSDT_limit1000_2021-07-22.json"
REAL_TICKERS = "bybit_v5_linear_tickers_BTCUSDT_snapshot_delta_2026-08-12.jsonl"


def error_body(http: int, *, bybit: bool = False) -> dict[str, Any]:
    """A real error body from ``error_bodies.jsonl``."""
    for line in load_jsonl("error_bodies.jsonl"):
        if line.get("http") == http and ("retCode" in line["body"]) == bybit:
            body: dict[str, Any] = line["body"]
            return body
    raise LookupError(http)


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer("calm", symbols=SYMBOLS) as server:
        yield server


@pytest.fixture
async def binance(sim: SimulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.urls.binance_rest) as client:
        yield client


@pytest.fixture
async def bybit(sim: SimulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.urls.bybit_rest) as client:
        yield client


async def bybit_result(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params={"category": "linear", **params})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["retCode", "retMsg", "result", "retExtInfo", "time"]
    assert (body["retCode"], body["retMsg"]) == (0, "OK"), body
    return body["result"]


# -- Binance ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("limit", "levels"), [(5, 5), (7, 10), (20, 20), (None, 200)])
async def test_binance_depth_has_the_fixture_shape_and_clamps_the_limit(
    binance: httpx.AsyncClient, limit: int | None, levels: int
) -> None:
    params: dict[str, Any] = {"symbol": "BTCUSDT"} | ({"limit": limit} if limit else {})
    response = await binance.get("/fapi/v1/depth", params=params)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == list(load_json(REAL_DEPTH))
    # The model's book holds 200 levels a side: limit 500 (the default) returns all of them.
    assert len(body["bids"]) == len(body["asks"]) == levels
    assert float(body["bids"][0][0]) < float(body["asks"][0][0])
    assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) > 0


async def test_binance_exchange_info_lists_the_instruments_and_contracts_to_filter_out(
    binance: httpx.AsyncClient,
) -> None:
    body = (await binance.get("/fapi/v1/exchangeInfo")).json()
    real = load_json("binance_usdm_rest_exchangeInfo_2021-07-21.json")
    assert list(body) == list(real)
    assert body["rateLimits"] == real["rateLimits"]
    real_btc = real["symbols"][0]
    for entry in body["symbols"]:
        assert list(entry) == list(real_btc)
        assert [f["filterType"] for f in entry["filters"]] == [
            f["filterType"] for f in real_btc["filters"]
        ]
        for ours, theirs in zip(entry["filters"], real_btc["filters"], strict=True):
            assert set(ours) == set(theirs)
    usable = {
        s["symbol"]: s
        for s in body["symbols"]
        if s["status"] == "TRADING"
        and s["contractType"] == "PERPETUAL"
        and s["quoteAsset"] == "USDT"
    }
    assert set(usable) == set(SYMBOLS)
    assert len(body["symbols"]) == len(SYMBOLS) + 2  # a quarterly and a pending listing
    for symbol, entry in usable.items():
        spec = profile(symbol).binance
        filters = {f["filterType"]: f for f in entry["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == spec.price_str(1)
        assert filters["LOT_SIZE"]["stepSize"] == spec.qty_str(1)
        assert entry["baseAsset"] == symbol.removesuffix("USDT")
    assert usable["SOLUSDT"]["filters"][0]["tickSize"] == "0.0100"


async def test_binance_market_endpoints(sim: SimulatorServer, binance: httpx.AsyncClient) -> None:
    premium = (await binance.get("/fapi/v1/premiumIndex", params={"symbol": "ETHUSDT"})).json()
    assert list(premium) == [
        "symbol",
        "markPrice",
        "indexPrice",
        "estimatedSettlePrice",
        "lastFundingRate",
        "interestRate",
        "nextFundingTime",
        "time",
    ]
    fair = sim.model.fair_price("ETHUSDT")
    assert abs(float(premium["markPrice"]) / fair - 1) < 0.001
    assert premium["nextFundingTime"] % (8 * 3_600_000) == 0
    everything = (await binance.get("/fapi/v1/premiumIndex")).json()
    assert [p["symbol"] for p in everything] == list(SYMBOLS)

    ticker = (await binance.get("/fapi/v1/ticker/24hr", params={"symbol": "BTCUSDT"})).json()
    assert {"symbol", "lastPrice", "volume", "quoteVolume", "openTime", "closeTime"} <= set(ticker)
    assert len((await binance.get("/fapi/v1/ticker/24hr")).json()) == len(SYMBOLS)

    top = (await binance.get("/fapi/v1/ticker/bookTicker", params={"symbol": "SOLUSDT"})).json()
    assert list(top) == [
        "lastUpdateId",
        "symbol",
        "bidPrice",
        "bidQty",
        "askPrice",
        "askQty",
        "time",
    ]
    assert float(top["bidPrice"]) < float(top["askPrice"])

    funding = (await binance.get("/fapi/v1/fundingInfo")).json()
    assert [(f["symbol"], f["fundingIntervalHours"]) for f in funding] == [(s, 8) for s in SYMBOLS]


@pytest.mark.parametrize(
    "path",
    [
        "/fapi/v1/depth",
        "/fapi/v1/premiumIndex",
        "/fapi/v1/ticker/24hr",
        "/fapi/v1/ticker/bookTicker",
    ],
)
@pytest.mark.parametrize("symbol", ["FOOUSDT", "btcusdt"])
async def test_binance_refuses_unknown_symbols_with_http_400(
    binance: httpx.AsyncClient, path: str, symbol: str
) -> None:
    response = await binance.get(path, params={"symbol": symbol})
    assert response.status_code == 400
    assert response.json() == error_body(400) == {"code": -1121, "msg": "Invalid symbol."}
    assert "X-MBX-USED-WEIGHT-1M" in response.headers


async def test_binance_depth_needs_a_symbol(binance: httpx.AsyncClient) -> None:
    response = await binance.get("/fapi/v1/depth")
    assert response.status_code == 400
    assert response.json()["code"] == -1102


async def test_binance_weight_header_adds_up(binance: httpx.AsyncClient) -> None:
    weights = []
    for _ in range(3):
        response = await binance.get("/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 1000})
        weights.append(int(response.headers["X-MBX-USED-WEIGHT-1M"]))
    # limit 1000 weighs 20 (a minute boundary between the calls would restart the count).
    assert weights[2] - weights[1] == 20 or weights[2] == 20


# -- Bybit -----------------------------------------------------------------------------------
async def test_bybit_orderbook(bybit: httpx.AsyncClient) -> None:
    result = await bybit_result(bybit, "/v5/market/orderbook", symbol="ETHUSDT", limit=3)
    assert list(result) == ["s", "b", "a", "ts", "u", "seq", "cts"]
    assert result["s"] == "ETHUSDT"
    assert len(result["b"]) == len(result["a"]) == 3
    assert float(result["b"][0][0]) < float(result["a"][0][0])
    default = await bybit_result(bybit, "/v5/market/orderbook", symbol="ETHUSDT")
    assert len(default["b"]) == 25


async def test_bybit_tickers(bybit: httpx.AsyncClient) -> None:
    every = await bybit_result(bybit, "/v5/market/tickers")
    assert every["category"] == "linear"
    assert [t["symbol"] for t in every["list"]] == list(SYMBOLS)
    one = await bybit_result(bybit, "/v5/market/tickers", symbol="BTCUSDT")
    (ticker,) = one["list"]
    ws_keys = set(load_jsonl(REAL_TICKERS)[0]["data"])
    # REST tickers carry the WebSocket snapshot's fields except the tick and per-side ones.
    ws_only = {"tickDirection", "singleOpenInterest", "singleOpenInterestValue"}
    assert ws_keys - ws_only <= set(ticker)
    assert float(ticker["bid1Price"]) < float(ticker["ask1Price"])


async def test_bybit_instruments_paginate_with_the_cursor(bybit: httpx.AsyncClient) -> None:
    seen: list[dict[str, Any]] = []
    cursor, pages = "", 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        result = await bybit_result(bybit, "/v5/market/instruments-info", **params)
        assert list(result) == ["category", "list", "nextPageCursor"]
        assert len(result["list"]) <= 2
        seen += result["list"]
        pages += 1
        cursor = result["nextPageCursor"]
        if not cursor:
            break
    assert pages == 3
    names = [item["symbol"] for item in seen]
    assert len(names) == len(set(names)) == len(SYMBOLS) + 2
    full = await bybit_result(bybit, "/v5/market/instruments-info")
    assert [item["symbol"] for item in full["list"]] == names
    assert full["nextPageCursor"] == ""
    usable = {
        item["symbol"]: item
        for item in seen
        if item["status"] == "Trading"
        and item["contractType"] == "LinearPerpetual"
        and item["quoteCoin"] == "USDT"
    }
    assert set(usable) == set(SYMBOLS)
    assert any(item["status"] != "Trading" for item in seen)
    for symbol, item in usable.items():
        spec = profile(symbol).bybit
        assert item["priceFilter"]["tickSize"] == spec.price_str(1)
        assert item["lotSizeFilter"]["qtyStep"] == spec.qty_str(1)
        assert item["fundingInterval"] == 480


async def test_bybit_funding_history(bybit: httpx.AsyncClient) -> None:
    result = await bybit_result(bybit, "/v5/market/funding/history", symbol="SOLUSDT", limit=4)
    rows = result["list"]
    assert [list(r) for r in rows] == [["symbol", "fundingRate", "fundingRateTimestamp"]] * 4
    stamps = [int(r["fundingRateTimestamp"]) for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert all(b - a == 8 * 3_600_000 for a, b in zip(stamps[1:], stamps, strict=False))


@pytest.mark.parametrize(
    "params",
    [
        {"category": "linear", "symbol": "btcusdt"},  # symbols are case-sensitive
        {"category": "linear", "symbol": "FOOUSDT"},
        {"category": "linear"},
        {"category": "spot", "symbol": "BTCUSDT"},
    ],
)
async def test_bybit_errors_come_with_http_200_and_a_ret_code(
    bybit: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await bybit.get("/v5/market/orderbook", params=params)
    assert response.status_code == 200
    body = response.json()
    real = error_body(200, bybit=True)
    assert list(body) == list(real)
    assert body["retCode"] == 10001
    assert body["result"] == {}
    if params.get("symbol", "").lower() == "btcusdt" and params["category"] == "linear":
        assert body["retMsg"] == real["retMsg"]


async def test_rest_requests_are_counted(
    sim: SimulatorServer, binance: httpx.AsyncClient, bybit: httpx.AsyncClient
) -> None:
    await binance.get("/fapi/v1/fundingInfo")
    await bybit_result(bybit, "/v5/market/tickers")
    await bybit_result(bybit, "/v5/market/tickers")
    assert sim.stats.rest_requests == {Exchange.BINANCE: 1, Exchange.BYBIT: 2}
