"""REST clients against a loopback server: bodies as received, typed errors, retries, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from detector.clients.backoff import Backoff
from detector.clients.ratelimit import WeightLimiter
from detector.clients.rest import BinanceClient, BybitClient, RestResult
from detector.errors import ExchangeApiError, ExchangeUnavailable, RateLimited
from detector.models import Exchange
from tests.conftest import load_json, load_jsonl
from tests.detector.clients.conftest import FakeRest, FakeTime, Reply, closed_port

ERROR_BODIES = [line["body"] for line in load_jsonl("error_bodies.jsonl")]
BINANCE_INVALID_SYMBOL = ERROR_BODIES[0]  # {"code": -1121, "msg": "Invalid symbol."}, HTTP 400
BYBIT_PARAMS_ERROR = ERROR_BODIES[1]  # retCode 10001 "params error: symbol invalid", HTTP 200
BINANCE_BAN = ERROR_BODIES[5]  # HTTP 418: "... IP banned until 1620286253180 ..."
DEPTH = load_json("binance_usdm_rest_depth_SUSHIUSDT_limit1000_2021-07-22.json")

# Full-jitter draws at the ceiling: retry n sleeps exactly 0.5 * 2**n.
MAX_JITTER = Backoff(random=lambda: 1.0)


def bybit_ok(result: dict[str, Any]) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 1}


@pytest.fixture
async def binance(rest_server: FakeRest, fake_time: FakeTime) -> AsyncIterator[BinanceClient]:
    async with BinanceClient(
        rest_server.url, clock=fake_time.clock, sleep=fake_time.sleep, backoff=MAX_JITTER
    ) as client:
        yield client


@pytest.fixture
async def bybit(rest_server: FakeRest, fake_time: FakeTime) -> AsyncIterator[BybitClient]:
    async with BybitClient(
        rest_server.url, clock=fake_time.clock, sleep=fake_time.sleep, backoff=MAX_JITTER
    ) as client:
        yield client


# Success


async def test_binance_order_book_returns_the_body_as_received(
    binance: BinanceClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    rest_server.script("/fapi/v1/depth", Reply(DEPTH))
    result = await binance.get_order_book("sushiusdt")
    endpoint = "/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000"
    assert result == RestResult(endpoint, DEPTH, int(fake_time.now * 1000))
    assert rest_server.requests == [endpoint]
    assert binance.limiter.used == 20  # depth weight at limit 1000
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    ("call", "endpoint", "weight"),
    [
        (lambda c: c.get_order_book("BTCUSDT", 100), "/fapi/v1/depth?symbol=BTCUSDT&limit=100", 5),
        (lambda c: c.get_order_book("BTCUSDT", 5), "/fapi/v1/depth?symbol=BTCUSDT&limit=5", 2),
        (lambda c: c.get_funding_rate("ethusdt"), "/fapi/v1/premiumIndex?symbol=ETHUSDT", 1),
        (lambda c: c.get_funding_rate(), "/fapi/v1/premiumIndex", 10),
        (lambda c: c.get_ticker("btcusdt"), "/fapi/v1/ticker/bookTicker?symbol=BTCUSDT", 2),
        (lambda c: c.get_ticker(), "/fapi/v1/ticker/bookTicker", 5),
        (lambda c: c.get_instruments_info(), "/fapi/v1/exchangeInfo", 1),
        (lambda c: c.get_funding_info(), "/fapi/v1/fundingInfo", 1),
    ],
)
async def test_binance_endpoints_and_weights(
    binance: BinanceClient, rest_server: FakeRest, call: Any, endpoint: str, weight: int
) -> None:
    rest_server.script(endpoint.partition("?")[0], Reply([{"any": "body"}]))
    result = await call(binance)
    assert (result.endpoint, result.data) == (endpoint, [{"any": "body"}])
    assert rest_server.requests == [endpoint]
    assert binance.limiter.used == weight


@pytest.mark.parametrize(
    ("call", "endpoint"),
    [
        (
            lambda c: c.get_order_book("btcusdt"),
            "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=200",
        ),
        (
            lambda c: c.get_funding_rate("btcusdt"),
            "/v5/market/funding/history?category=linear&symbol=BTCUSDT&limit=1",
        ),
        (lambda c: c.get_ticker("ethusdt"), "/v5/market/tickers?category=linear&symbol=ETHUSDT"),
        (lambda c: c.get_ticker(), "/v5/market/tickers?category=linear"),
    ],
)
async def test_bybit_endpoints(
    bybit: BybitClient, rest_server: FakeRest, call: Any, endpoint: str
) -> None:
    body = bybit_ok({"list": []})
    rest_server.script(endpoint.partition("?")[0], Reply(body))
    result = await call(bybit)
    assert (result.endpoint, result.data) == (endpoint, body)
    assert rest_server.requests == [endpoint]


async def test_bybit_instruments_follow_the_cursor(
    bybit: BybitClient, rest_server: FakeRest
) -> None:
    # Bybit's cursors look percent-encoded already; they must come back exactly as given.
    cursors = ["first%3DBTCUSDT%26last%3DETHUSDT", "first%3DETHPERP%26last%3DXRPUSDT", ""]
    pages = [
        bybit_ok({"category": "linear", "list": [{"symbol": f"S{i}"}], "nextPageCursor": c})
        for i, c in enumerate(cursors)
    ]
    rest_server.script("/v5/market/instruments-info", *(Reply(p) for p in pages))
    results = await bybit.get_instruments_info()
    assert [r.data for r in results] == pages
    base = "/v5/market/instruments-info?category=linear&limit=1000"
    assert [r.endpoint for r in results] == rest_server.requests
    assert [httpx.URL(r).params.get("cursor") for r in rest_server.requests] == [
        None,
        cursors[0],
        cursors[1],
    ]
    assert rest_server.requests[0] == base


async def test_bybit_instruments_stop_on_a_repeated_cursor(
    bybit: BybitClient, rest_server: FakeRest
) -> None:
    page = bybit_ok({"list": [], "nextPageCursor": "same"})
    rest_server.script("/v5/market/instruments-info", Reply(page))
    with pytest.raises(ExchangeApiError, match="repeats"):
        await bybit.get_instruments_info()
    assert len(rest_server.requests) == 2


# Exchange errors


async def test_binance_error_body_becomes_api_error(
    binance: BinanceClient, rest_server: FakeRest
) -> None:
    rest_server.script("/fapi/v1/depth", Reply(BINANCE_INVALID_SYMBOL, status=400))
    with pytest.raises(ExchangeApiError) as caught:
        await binance.get_order_book("NOPEUSDT")
    error = caught.value
    assert (error.exchange, error.code, error.message, error.http_status) == (
        Exchange.BINANCE,
        -1121,
        "Invalid symbol.",
        400,
    )
    assert len(rest_server.requests) == 1  # not retried


async def test_bybit_ret_code_becomes_api_error(bybit: BybitClient, rest_server: FakeRest) -> None:
    rest_server.script("/v5/market/orderbook", Reply(BYBIT_PARAMS_ERROR))
    with pytest.raises(ExchangeApiError) as caught:
        await bybit.get_order_book("NOPEUSDT")
    error = caught.value
    assert (error.exchange, error.code, error.message, error.http_status) == (
        Exchange.BYBIT,
        10001,
        "params error: symbol invalid",
        200,
    )
    assert len(rest_server.requests) == 1


async def test_non_json_error_body(binance: BinanceClient, rest_server: FakeRest) -> None:
    rest_server.script("/fapi/v1/exchangeInfo", Reply(text="<html>Forbidden</html>", status=403))
    with pytest.raises(ExchangeApiError) as caught:
        await binance.get_instruments_info()
    assert (caught.value.code, caught.value.http_status) == (None, 403)
    assert "Forbidden" in caught.value.message


# Rate limits


async def test_429_sleeps_retry_after_then_succeeds(
    binance: BinanceClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    rest_server.script(
        "/fapi/v1/depth",
        Reply({"code": -1003, "msg": "Too many requests"}, 429, {"Retry-After": "2"}),
        Reply(DEPTH),
    )
    result = await binance.get_order_book("SUSHIUSDT")
    assert result.data == DEPTH
    assert fake_time.sleeps == [2.0]
    assert len(rest_server.requests) == 2


async def test_429_gives_up_after_max_retries(rest_server: FakeRest, fake_time: FakeTime) -> None:
    rest_server.script("/fapi/v1/depth", Reply({}, 429, {"Retry-After": "3"}))
    async with BinanceClient(
        rest_server.url, clock=fake_time.clock, sleep=fake_time.sleep, max_retries=2
    ) as client:
        with pytest.raises(RateLimited) as caught:
            await client.get_order_book("BTCUSDT")
    assert (caught.value.retry_after, caught.value.banned) == (3.0, False)
    assert fake_time.sleeps == [3.0, 3.0]
    assert len(rest_server.requests) == 3


async def test_418_is_a_ban_raised_at_once_and_kept(
    binance: BinanceClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    rest_server.script("/fapi/v1/depth", Reply(BINANCE_BAN, 418, {"Retry-After": "120"}))
    with pytest.raises(RateLimited) as caught:
        await binance.get_order_book("BTCUSDT")
    assert (caught.value.retry_after, caught.value.banned) == (120.0, True)
    assert fake_time.sleeps == []
    assert len(rest_server.requests) == 1
    # During the ban no request leaves: each one would prolong it.
    fake_time.now += 100
    with pytest.raises(RateLimited) as again:
        await binance.get_ticker("BTCUSDT")
    assert again.value.banned
    assert again.value.retry_after == pytest.approx(20.0)
    assert len(rest_server.requests) == 1
    fake_time.now += 21
    rest_server.script("/fapi/v1/ticker/bookTicker", Reply({"symbol": "BTCUSDT"}))
    assert (await binance.get_ticker("BTCUSDT")).data == {"symbol": "BTCUSDT"}


async def test_418_without_retry_after_reads_the_ban_end_from_the_body(
    binance: BinanceClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    fake_time.now = 1620286253.180 - 300  # the body says: banned until 1620286253180
    rest_server.script("/fapi/v1/depth", Reply(BINANCE_BAN, 418))
    with pytest.raises(RateLimited) as caught:
        await binance.get_order_book("BTCUSDT")
    assert caught.value.retry_after == pytest.approx(300.0)


async def test_bybit_too_many_visits_is_retried(
    bybit: BybitClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    reset_ms = str(int(fake_time.now * 1000) + 1500)
    rest_server.script(
        "/v5/market/tickers",
        Reply(
            {"retCode": 10006, "retMsg": "Too many visits!", "result": {}},
            headers={"X-Bapi-Limit-Reset-Timestamp": reset_ms},
        ),
        Reply(bybit_ok({"list": []})),
    )
    result = await bybit.get_ticker()
    assert result.data["retCode"] == 0
    assert fake_time.sleeps == [pytest.approx(1.5)]


async def test_bybit_403_is_a_ban(bybit: BybitClient, rest_server: FakeRest) -> None:
    rest_server.script("/v5/market/orderbook", Reply(text="access too frequent", status=403))
    with pytest.raises(RateLimited) as caught:
        await bybit.get_order_book("BTCUSDT")
    assert caught.value.banned
    assert caught.value.retry_after == 600.0
    assert len(rest_server.requests) == 1


# Transient failures


async def test_500_twice_then_success(
    binance: BinanceClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    rest_server.script(
        "/fapi/v1/premiumIndex",
        Reply(text="oops", status=500),
        Reply({"code": -1008, "msg": "Server is currently overloaded"}, status=503),
        Reply([{"symbol": "BTCUSDT"}]),
    )
    result = await binance.get_funding_rate()
    assert result.data == [{"symbol": "BTCUSDT"}]
    assert fake_time.sleeps == [0.5, 1.0]  # exponential backoff (jitter drawn at its top)
    assert len(rest_server.requests) == 3


async def test_bybit_server_error_code_is_retried(
    bybit: BybitClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    rest_server.script(
        "/v5/market/orderbook",
        Reply({"retCode": 10016, "retMsg": "Internal server error", "result": {}}),
        Reply(bybit_ok({"s": "BTCUSDT"})),
    )
    assert (await bybit.get_order_book("BTCUSDT")).data["result"] == {"s": "BTCUSDT"}
    assert fake_time.sleeps == [0.5]


async def test_5xx_gives_up_after_max_retries(
    binance: BinanceClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    rest_server.script("/fapi/v1/depth", Reply(text="bad gateway", status=502))
    with pytest.raises(ExchangeUnavailable, match="HTTP 502"):
        await binance.get_order_book("BTCUSDT")
    assert fake_time.sleeps == [0.5, 1.0, 2.0]
    assert len(rest_server.requests) == 4


async def test_non_json_success_is_unavailable(
    binance: BinanceClient, rest_server: FakeRest
) -> None:
    rest_server.script("/fapi/v1/depth", Reply(text="<html>maintenance</html>"), Reply(DEPTH))
    assert (await binance.get_order_book("SUSHIUSDT")).data == DEPTH


async def test_connection_refused_is_unavailable_after_retries(fake_time: FakeTime) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    async with BybitClient(
        url, clock=fake_time.clock, sleep=fake_time.sleep, backoff=MAX_JITTER
    ) as client:
        with pytest.raises(ExchangeUnavailable) as caught:
            await client.get_ticker("BTCUSDT")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.exchange == Exchange.BYBIT
    assert fake_time.sleeps == [0.5, 1.0, 2.0]  # max_retries = 3


async def test_timeout_is_unavailable(rest_server: FakeRest, fake_time: FakeTime) -> None:
    rest_server.script("/fapi/v1/exchangeInfo", Reply(hang=True))
    async with BinanceClient(
        rest_server.url, timeout=0.05, clock=fake_time.clock, sleep=fake_time.sleep, max_retries=0
    ) as client:
        with pytest.raises(ExchangeUnavailable, match="timeout") as caught:
            await client.get_instruments_info()
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


# Client-side limit


async def test_limiter_delays_when_the_budget_is_spent(
    rest_server: FakeRest, fake_time: FakeTime
) -> None:
    rest_server.script("/fapi/v1/depth", Reply(DEPTH))
    limiter = WeightLimiter(40, 60.0, clock=fake_time.clock, sleep=fake_time.sleep)
    async with BinanceClient(
        rest_server.url, clock=fake_time.clock, sleep=fake_time.sleep, limiter=limiter
    ) as client:
        await client.get_order_book("SUSHIUSDT")
        fake_time.now += 10
        await client.get_order_book("SUSHIUSDT")
        assert fake_time.sleeps == []
        await client.get_order_book("SUSHIUSDT")  # 60 > 40: waits for the first to expire
    assert fake_time.sleeps == [pytest.approx(50.0)]
    assert len(rest_server.requests) == 3


async def test_used_weight_header_slows_down(
    binance: BinanceClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    # Another process on the IP has spent the whole minute: our next call waits.
    rest_server.script("/fapi/v1/depth", Reply(DEPTH, headers={"X-MBX-USED-WEIGHT-1M": "2400"}))
    await binance.get_order_book("SUSHIUSDT")
    assert fake_time.sleeps == []
    await binance.get_order_book("SUSHIUSDT")
    assert fake_time.sleeps == [pytest.approx(60.0)]


async def test_injected_http_client_stays_open(rest_server: FakeRest) -> None:
    rest_server.script("/fapi/v1/fundingInfo", Reply([]))
    async with httpx.AsyncClient() as http:
        async with BinanceClient(rest_server.url, client=http) as client:
            assert (await client.get_funding_info()).data == []
        assert not http.is_closed
