"""OkxClient against a loopback server: bodies as received, OKX's codes as typed errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from detector.clients.backoff import Backoff
from detector.clients.rest import OKX_REQUEST_BUDGET, OkxClient, RestResult
from detector.errors import ExchangeApiError, ExchangeUnavailable, RateLimited
from detector.models import Exchange
from tests.detector.clients.conftest import FakeRest, FakeTime, Reply

MAX_JITTER = Backoff(random=lambda: 1.0)  # retry n sleeps exactly 0.5 * 2**n


def ok(data: list[Any]) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": data}


@pytest.fixture
async def okx(rest_server: FakeRest, fake_time: FakeTime) -> AsyncIterator[OkxClient]:
    async with OkxClient(
        rest_server.url, clock=fake_time.clock, sleep=fake_time.sleep, backoff=MAX_JITTER
    ) as client:
        yield client


async def test_instruments_come_back_as_received(
    okx: OkxClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    body = ok([{"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctMult": "1", "state": "live"}])
    rest_server.script("/api/v5/public/instruments", Reply(body))
    result = await okx.get_instruments()
    endpoint = "/api/v5/public/instruments?instType=SWAP"
    assert result == RestResult(endpoint, body, int(fake_time.now * 1000))
    assert rest_server.requests == [endpoint]
    assert (await okx.get_instruments_info()).endpoint == endpoint
    assert okx.limiter.used == 2


@pytest.mark.parametrize(
    ("call", "endpoint"),
    [
        (lambda c: c.get_order_book("BTCUSDT"), "/api/v5/market/books?instId=BTC-USDT-SWAP&sz=400"),
        (
            lambda c: c.get_order_book("ETH-USDT-SWAP", 5),
            "/api/v5/market/books?instId=ETH-USDT-SWAP&sz=5",
        ),
        (
            lambda c: c.get_funding_rate("BTC-USDT-SWAP"),
            "/api/v5/public/funding-rate?instId=BTC-USDT-SWAP",
        ),
        (lambda c: c.get_funding_rate(), "/api/v5/public/funding-rate?instId=ANY"),
        (lambda c: c.get_ticker("btcusdt"), "/api/v5/market/ticker?instId=BTC-USDT-SWAP"),
        (lambda c: c.get_ticker(), "/api/v5/market/tickers?instType=SWAP"),
    ],
)
async def test_endpoints(okx: OkxClient, rest_server: FakeRest, call: Any, endpoint: str) -> None:
    rest_server.script(endpoint.partition("?")[0], Reply(ok([])))
    result = await call(okx)
    assert (result.endpoint, result.data) == (endpoint, ok([]))
    assert rest_server.requests == [endpoint]


async def test_error_code_becomes_api_error(okx: OkxClient, rest_server: FakeRest) -> None:
    # OKX answers HTTP 200 with a code (EXCHANGES.md; docs-v5 error codes: 51001, HTTP 200).
    body = {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
    rest_server.script("/api/v5/market/books", Reply(body))
    with pytest.raises(ExchangeApiError) as caught:
        await okx.get_order_book("NOPE-USDT-SWAP")
    error = caught.value
    assert (error.exchange, error.code, error.message, error.http_status) == (
        Exchange.OKX,
        51001,
        "Instrument ID does not exist",
        200,
    )
    assert len(rest_server.requests) == 1  # not retried


async def test_error_code_with_a_4xx(okx: OkxClient, rest_server: FakeRest) -> None:
    body = {"code": "50014", "msg": "Parameter instId can not be empty.", "data": []}
    rest_server.script("/api/v5/public/funding-rate", Reply(body, status=400))
    with pytest.raises(ExchangeApiError) as caught:
        await okx.get_funding_rate("X")
    assert (caught.value.code, caught.value.http_status) == (50014, 400)


async def test_body_without_a_code(okx: OkxClient, rest_server: FakeRest) -> None:
    rest_server.script("/api/v5/public/instruments", Reply({"data": []}))
    with pytest.raises(ExchangeApiError, match="no code"):
        await okx.get_instruments()


async def test_429_is_rate_limited_and_retried(
    okx: OkxClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    rest_server.script(
        "/api/v5/public/instruments",
        Reply({"code": "50011", "msg": "Too Many Requests"}, status=429),
        Reply(ok([])),
    )
    assert (await okx.get_instruments()).data == ok([])
    assert fake_time.sleeps == [2.0]  # OKX counts per 2 s window; no Retry-After was sent
    assert len(rest_server.requests) == 2


async def test_429_gives_up_after_max_retries(rest_server: FakeRest, fake_time: FakeTime) -> None:
    rest_server.script("/api/v5/market/books", Reply({}, 429, {"Retry-After": "3"}))
    async with OkxClient(
        rest_server.url, clock=fake_time.clock, sleep=fake_time.sleep, max_retries=1
    ) as client:
        with pytest.raises(RateLimited) as caught:
            await client.get_order_book("BTC-USDT-SWAP")
    assert (caught.value.exchange, caught.value.retry_after, caught.value.banned) == (
        Exchange.OKX,
        3.0,
        False,
    )
    assert len(rest_server.requests) == 2


@pytest.mark.parametrize("code", ["50011", "50013"])
async def test_rate_limit_codes_with_http_200(
    okx: OkxClient, rest_server: FakeRest, fake_time: FakeTime, code: str
) -> None:
    rest_server.script(
        "/api/v5/public/funding-rate",
        Reply({"code": code, "msg": "Rate limit reached.", "data": []}),
        Reply(ok([{"instId": "BTC-USDT-SWAP"}])),
    )
    result = await okx.get_funding_rate("BTC-USDT-SWAP")
    assert result.data["data"] == [{"instId": "BTC-USDT-SWAP"}]
    assert fake_time.sleeps == [2.0]


async def test_server_errors_are_retried(
    okx: OkxClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    rest_server.script(
        "/api/v5/market/tickers",
        Reply({"code": "50001", "msg": "Service temporarily unavailable"}, status=503),
        Reply({"code": "50026", "msg": "System error. Try again later", "data": []}),
        Reply(ok([])),
    )
    assert (await okx.get_ticker()).data == ok([])
    assert fake_time.sleeps == [0.5, 1.0]


async def test_server_errors_give_up(
    okx: OkxClient, rest_server: FakeRest, fake_time: FakeTime
) -> None:
    rest_server.script("/api/v5/market/books", Reply({"code": "50004", "msg": "timeout"}))
    with pytest.raises(ExchangeUnavailable, match="50004"):
        await okx.get_order_book("BTC-USDT-SWAP")
    assert fake_time.sleeps == [0.5, 1.0, 2.0]


def test_budget_stays_under_the_tightest_endpoint_limit() -> None:
    # docs-v5: instruments 20 requests per 2 s, funding-rate 10 per instId, books 40.
    assert OkxClient.budget == OKX_REQUEST_BUDGET <= 20
    assert OkxClient.window_s == 2.0
