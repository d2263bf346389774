"""REST clients for Binance USDⓈ-M, Bybit v5 linear and OKX v5: GET, retry, rate-limit, raw JSON.

The clients move bytes only: every method returns the decoded body as received, with the
endpoint and the receive time, for the pure venue parsers (``parse_rest(endpoint, data,
recv_ms)``). Failures become :class:`~detector.errors.ExchangeError` subclasses:

==========================================  ===============================================
exchange answer                              raised (retried?)
==========================================  ===============================================
Binance HTTP 4xx ``{"code","msg"}``          ExchangeApiError(code, msg, status) (no)
Binance HTTP 429                             RateLimited(Retry-After, banned=False) (yes,
                                             after sleeping Retry-After)
Binance HTTP 418                             RateLimited(Retry-After, banned=True) (no; every
                                             call fails fast until the ban ends)
Bybit HTTP 200 ``retCode`` != 0              ExchangeApiError(retCode, retMsg, 200) (no)
Bybit ``retCode`` 10006 (too many visits)    RateLimited(reset time, banned=False) (yes)
Bybit ``retCode`` 10000 / 10016 (server)     ExchangeUnavailable (yes, with backoff)
Bybit HTTP 403 (access too frequent)         RateLimited(600, banned=True) (no; fail fast)
OKX ``code`` != "0" (HTTP 200 or 4xx)        ExchangeApiError(code, msg, status) (no)
OKX HTTP 429, or code 50011 / 50013          RateLimited(Retry-After or 2 s, banned=False) (yes)
OKX code 50001 / 50004 / 50026 (server)      ExchangeUnavailable (yes, with backoff)
HTTP 5xx, timeout, connection error          ExchangeUnavailable(reason) (yes, with backoff)
==========================================  ===============================================
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import urlencode

import httpx
import orjson

from detector.clients.backoff import Backoff
from detector.clients.ratelimit import WeightLimiter
from detector.errors import (
    ExchangeApiError,
    ExchangeError,
    ExchangeUnavailable,
    RateLimited,
)
from detector.models import Exchange
from detector.venues.okx import inst_id as okx_inst_id

log = logging.getLogger(__name__)

Params = Mapping[str, str | int]

# Binance: 2400 request weight per minute per IP (exchangeInfo rateLimits REQUEST_WEIGHT).
# We spend at most 80 % of it: other processes on the IP count too, and the header check below
# only sees them after the fact.
BINANCE_WEIGHT_LIMIT = 2400
BINANCE_WEIGHT_BUDGET = 1920
# Bybit: 600 requests per 5 s per IP, and a violation bans the IP for 10-30 minutes. No header
# reports the IP's usage, so keep half of it.
BYBIT_REQUEST_BUDGET = 300
BYBIT_WINDOW_S = 5.0

# OKX counts per endpoint and 2 s window: instruments 20 (per IP + instType), funding-rate 10
# (per IP + instId), market/books 40 (per IP). One budget of 15 per 2 s over all of them stays
# under the instruments limit; funding is asked per instId, so its 10 is never shared.
OKX_REQUEST_BUDGET = 15
OKX_WINDOW_S = 2.0
_OKX_RATE_LIMITED = frozenset({"50011", "50013"})  # "Rate limit reached", "Systems are busy"
_OKX_TRANSIENT = frozenset({"50001", "50004", "50026"})  # unavailable, timeout, system error

# Bybit asks to stop for at least 10 minutes after a 403 "access too frequent".
BYBIT_BAN_S = 600.0
# Binance bans last 2 minutes to 3 days; used only when neither header nor body says how long.
BINANCE_DEFAULT_BAN_S = 120.0
DEFAULT_RETRY_AFTER_S = 1.0

_BODY_SNIPPET = 200  # characters of a non-JSON error body kept in the exception
_BANNED_UNTIL = re.compile(r"banned until (\d{13})")


@dataclass(frozen=True, slots=True)
class RestResult:
    """One decoded REST body: ``endpoint`` is path + query ("/fapi/v1/depth?symbol=X&limit=5")."""

    endpoint: str
    data: Any
    recv_ms: int


class _RestClient:
    """GET with a client-side limiter, typed errors and retries; the exchange specifics are in
    :meth:`_check` of the subclasses."""

    exchange: ClassVar[Exchange]
    default_url: ClassVar[str]
    budget: ClassVar[float]  # weight (Binance) or requests (Bybit) per window, with a margin
    window_s: ClassVar[float]

    def __init__(
        self,
        base_url: str | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        max_retries: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff: Backoff | None = None,
        limiter: WeightLimiter | None = None,
    ) -> None:
        if base_url is None:
            base_url = self.default_url
        if limiter is None:
            limiter = WeightLimiter(self.budget, self.window_s, clock=clock, sleep=sleep)
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self._base_url = base_url.rstrip("/")
        self._owns_client = client is None
        self._client = httpx.AsyncClient() if client is None else client
        self._timeout = timeout
        self._clock = clock
        self._max_retries = max_retries
        self._sleep = sleep
        self._backoff = backoff or Backoff()
        self.limiter = limiter
        self._banned_until = 0.0  # clock time until which the IP is banned

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it (an injected one stays open)."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _get(self, path: str, params: Params, weight: float) -> RestResult:
        """GET ``path?params``; retries transient failures and rate limits within max_retries."""
        endpoint = f"{path}?{urlencode(params)}" if params else path
        attempt = 0
        while True:
            self._check_ban()
            await self.limiter.acquire(weight)
            try:
                return await self._get_once(endpoint)
            except RateLimited as exc:
                if exc.banned:
                    self._banned_until = max(self._banned_until, self._clock() + exc.retry_after)
                    log.error("%s %s: %s", self.exchange, endpoint, exc)
                    raise
                if attempt >= self._max_retries:
                    raise
                # The limiter holds back this retry and every other request for Retry-After.
                self.limiter.pause(exc.retry_after)
                self._log_retry(endpoint, exc, attempt, exc.retry_after)
            except ExchangeUnavailable as exc:
                if attempt >= self._max_retries:
                    raise
                delay = self._backoff.delay(attempt)
                self._log_retry(endpoint, exc, attempt, delay)
                await self._sleep(delay)
            attempt += 1

    async def _get_once(self, endpoint: str) -> RestResult:
        path = endpoint.partition("?")[0]
        try:
            response = await self._client.get(self._base_url + endpoint, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise ExchangeUnavailable(self.exchange, f"{path}: timeout ({exc!r})") from exc
        except httpx.HTTPError as exc:
            # Connection refused or reset, DNS, protocol errors: the exchange is out of reach.
            raise ExchangeUnavailable(self.exchange, f"{path}: {exc!r}") from exc
        recv_ms = int(self._clock() * 1000)
        return RestResult(endpoint, self._check(path, response), recv_ms)

    def _check(self, path: str, response: httpx.Response) -> Any:
        """The decoded body of a successful response, or the matching ExchangeError."""
        raise NotImplementedError

    def _check_ban(self) -> None:
        # Every request during a ban prolongs it (Binance escalates 2 min → 3 days): fail fast.
        remaining = self._banned_until - self._clock()
        if remaining > 0:
            raise RateLimited(self.exchange, remaining, banned=True)

    def _log_retry(self, endpoint: str, exc: ExchangeError, attempt: int, delay: float) -> None:
        log.warning(
            "%s %s: %s; retry %d/%d in %.2f s",
            self.exchange,
            endpoint,
            exc,
            attempt + 1,
            self._max_retries,
            delay,
        )

    def _decode(self, path: str, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            if response.is_success:
                # A 2xx that is not JSON comes from a proxy or gateway in trouble: transient.
                raise ExchangeUnavailable(
                    self.exchange, f"{path}: HTTP {response.status_code} body is not JSON"
                ) from None
            raise ExchangeApiError(
                self.exchange, None, _snippet(response), response.status_code
            ) from None

    def _retry_after(self, response: httpx.Response, default: float) -> float:
        """``Retry-After`` in seconds (Binance sends it on 429 and 418), else ``default``."""
        value = response.headers.get("Retry-After")
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                pass  # an HTTP date: not sent by these exchanges
        return default


class BinanceClient(_RestClient):
    """Binance USDⓈ-M futures public REST (``https://fapi.binance.com``)."""

    exchange = Exchange.BINANCE
    default_url = "https://fapi.binance.com"
    budget = BINANCE_WEIGHT_BUDGET
    window_s = 60.0

    async def get_order_book(self, symbol: str, limit: int = 1000) -> RestResult:
        """``GET /fapi/v1/depth`` → ``{lastUpdateId, E, T, bids, asks}``."""
        params: Params = {"symbol": symbol.upper(), "limit": limit}
        return await self._get("/fapi/v1/depth", params, depth_weight(limit))

    async def get_funding_rate(self, symbol: str | None = None) -> RestResult:
        """``GET /fapi/v1/premiumIndex``: mark, index, last funding rate (all symbols if None)."""
        return await self._get("/fapi/v1/premiumIndex", _symbol(symbol), 1 if symbol else 10)

    async def get_ticker(self, symbol: str | None = None) -> RestResult:
        """``GET /fapi/v1/ticker/bookTicker``: best bid and ask (all symbols if None)."""
        return await self._get("/fapi/v1/ticker/bookTicker", _symbol(symbol), 2 if symbol else 5)

    async def get_instruments_info(self) -> RestResult:
        """``GET /fapi/v1/exchangeInfo``: symbols, status, filters and rate limits."""
        return await self._get("/fapi/v1/exchangeInfo", {}, 1)

    async def get_funding_info(self) -> RestResult:
        """``GET /fapi/v1/fundingInfo``: funding intervals of the symbols not on 8 h.

        Binance counts it apart (500 calls per 5 min); charged 1 here to stay on the safe side.
        """
        return await self._get("/fapi/v1/fundingInfo", {}, 1)

    def _check(self, path: str, response: httpx.Response) -> Any:
        status = response.status_code
        used = response.headers.get("X-MBX-USED-WEIGHT-1M")
        if used is not None and used.isdigit():
            self.limiter.observe(float(used) * self.limiter.budget / BINANCE_WEIGHT_LIMIT)
        if status == 429:
            raise RateLimited(
                self.exchange, self._retry_after(response, DEFAULT_RETRY_AFTER_S), banned=False
            )
        if status == 418:
            raise RateLimited(self.exchange, self._ban_time(response), banned=True)
        if status >= 500:
            raise ExchangeUnavailable(self.exchange, f"{path}: HTTP {status} {_snippet(response)}")
        data = self._decode(path, response)
        if status >= 400:
            # {"code": -1121, "msg": "Invalid symbol."}
            if type(data) is dict and type(data.get("code")) is int:
                raise ExchangeApiError(self.exchange, data["code"], str(data.get("msg")), status)
            raise ExchangeApiError(self.exchange, None, _snippet(response), status)
        return data

    def _ban_time(self, response: httpx.Response) -> float:
        """Seconds of a 418 ban: ``Retry-After``, else "banned until <ms>" in the body."""
        default = BINANCE_DEFAULT_BAN_S
        match = _BANNED_UNTIL.search(response.text)
        if match:
            default = max(0.0, int(match.group(1)) / 1000 - self._clock())
        return self._retry_after(response, default)


class BybitClient(_RestClient):
    """Bybit v5 public REST, linear category (``https://api.bybit.com``)."""

    exchange = Exchange.BYBIT
    default_url = "https://api.bybit.com"
    budget = BYBIT_REQUEST_BUDGET
    window_s = BYBIT_WINDOW_S

    async def get_order_book(self, symbol: str, limit: int = 200) -> RestResult:
        """``GET /v5/market/orderbook`` → ``result{s, b, a, ts, u, seq, cts}``."""
        params: Params = {"category": "linear", "symbol": symbol.upper(), "limit": limit}
        return await self._get("/v5/market/orderbook", params, 1)

    async def get_funding_rate(self, symbol: str) -> RestResult:
        """``GET /v5/market/funding/history`` with ``limit=1``: the last settled funding rate."""
        params: Params = {"category": "linear", "symbol": symbol.upper(), "limit": 1}
        return await self._get("/v5/market/funding/history", params, 1)

    async def get_ticker(self, symbol: str | None = None) -> RestResult:
        """``GET /v5/market/tickers``: best levels, funding, mark (all symbols if None)."""
        params: dict[str, str | int] = {"category": "linear"}
        params.update(_symbol(symbol))
        return await self._get("/v5/market/tickers", params, 1)

    async def get_instruments_info(self) -> list[RestResult]:
        """``GET /v5/market/instruments-info``, every page (one result each), following
        ``nextPageCursor`` until it is empty."""
        pages: list[RestResult] = []
        seen: set[str] = set()
        cursor = ""
        while True:
            params: dict[str, str | int] = {"category": "linear", "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = await self._get("/v5/market/instruments-info", params, 1)
            pages.append(page)
            cursor = _next_page_cursor(page.data)
            if not cursor:
                return pages
            if cursor in seen:
                raise ExchangeApiError(
                    self.exchange, None, f"instruments-info cursor {cursor!r} repeats", 200
                )
            seen.add(cursor)

    def _check(self, path: str, response: httpx.Response) -> Any:
        status = response.status_code
        if status == 403:
            # "access too frequent": the IP is banned; Bybit asks to stop for >= 10 minutes.
            raise RateLimited(self.exchange, BYBIT_BAN_S, banned=True)
        if status == 429:
            raise RateLimited(
                self.exchange, self._retry_after(response, DEFAULT_RETRY_AFTER_S), banned=False
            )
        if status >= 500:
            raise ExchangeUnavailable(self.exchange, f"{path}: HTTP {status} {_snippet(response)}")
        data = self._decode(path, response)
        code = data.get("retCode") if type(data) is dict else None
        message = str(data.get("retMsg", "")) if type(data) is dict else _snippet(response)
        if status >= 400:
            raise ExchangeApiError(
                self.exchange, code if type(code) is int else None, message, status
            )
        if type(code) is not int:
            raise ExchangeApiError(
                self.exchange, None, f"no retCode in {_snippet(response)}", status
            )
        if code == 0:
            return data
        if code == 10006:  # "Too many visits!"
            raise RateLimited(self.exchange, self._reset_after(response), banned=False)
        if code in (10000, 10016):  # server timeout, server error: transient
            raise ExchangeUnavailable(self.exchange, f"{path}: retCode {code}: {message}")
        raise ExchangeApiError(self.exchange, code, message, status)

    def _reset_after(self, response: httpx.Response) -> float:
        """Seconds until ``X-Bapi-Limit-Reset-Timestamp`` (ms), else Retry-After or 1 s."""
        reset = response.headers.get("X-Bapi-Limit-Reset-Timestamp")
        if reset is not None and reset.isdigit():
            return min(BYBIT_WINDOW_S, max(0.0, int(reset) / 1000 - self._clock()))
        return self._retry_after(response, DEFAULT_RETRY_AFTER_S)


class OkxClient(_RestClient):
    """OKX v5 public REST (``https://www.okx.com``); instruments are OKX's ``instId``
    (``BTC-USDT-SWAP``; a ``BTCUSDT`` is turned into its USDT swap)."""

    exchange = Exchange.OKX
    default_url = "https://www.okx.com"
    budget = OKX_REQUEST_BUDGET
    window_s = OKX_WINDOW_S

    async def get_instruments(self, inst_type: str = "SWAP") -> RestResult:
        """``GET /api/v5/public/instruments``: every instrument of the type, one answer (no
        pages), with ``ctVal``, ``ctMult``, ``tickSz``, ``lotSz``, ``state``."""
        return await self._get("/api/v5/public/instruments", {"instType": inst_type}, 1)

    async def get_instruments_info(self) -> RestResult:
        """The seed's name for :meth:`get_instruments` of the swaps."""
        return await self.get_instruments("SWAP")

    async def get_order_book(self, instrument: str, depth: int = 400) -> RestResult:
        """``GET /api/v5/market/books`` → ``data[{asks, bids, ts, seqId}]``, sizes in contracts."""
        params: Params = {"instId": okx_inst_id(instrument), "sz": depth}
        return await self._get("/api/v5/market/books", params, 1)

    async def get_funding_rate(self, instrument: str = "ANY") -> RestResult:
        """``GET /api/v5/public/funding-rate``: rate, ``fundingTime``, ``nextFundingTime``
        (``ANY``: every swap)."""
        inst = instrument if instrument == "ANY" else okx_inst_id(instrument)
        return await self._get("/api/v5/public/funding-rate", {"instId": inst}, 1)

    async def get_ticker(self, instrument: str | None = None) -> RestResult:
        """``GET /api/v5/market/ticker`` (one instrument) or ``/market/tickers`` (every swap)."""
        if instrument is None:
            return await self._get("/api/v5/market/tickers", {"instType": "SWAP"}, 1)
        return await self._get("/api/v5/market/ticker", {"instId": okx_inst_id(instrument)}, 1)

    def _check(self, path: str, response: httpx.Response) -> Any:
        status = response.status_code
        if status == 429:
            raise RateLimited(
                self.exchange, self._retry_after(response, OKX_WINDOW_S), banned=False
            )
        if status >= 500:
            raise ExchangeUnavailable(self.exchange, f"{path}: HTTP {status} {_snippet(response)}")
        data = self._decode(path, response)
        code = data.get("code") if type(data) is dict else None
        if type(code) is not str:
            raise ExchangeApiError(self.exchange, None, f"no code in {_snippet(response)}", status)
        if code == "0" and status < 400:
            return data
        message = str(data.get("msg", ""))
        if code in _OKX_RATE_LIMITED:
            raise RateLimited(
                self.exchange, self._retry_after(response, OKX_WINDOW_S), banned=False
            )
        if code in _OKX_TRANSIENT:
            raise ExchangeUnavailable(self.exchange, f"{path}: code {code}: {message}")
        # {"code": "51001", "msg": "Instrument ID does not exist", "data": []}, HTTP 200
        raise ExchangeApiError(
            self.exchange, int(code) if code.isdigit() else None, message, status
        )


def depth_weight(limit: int) -> int:
    """Binance futures ``/fapi/v1/depth`` weight: 5-50 → 2, 100 → 5, 500 → 10, 1000 → 20."""
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


def _symbol(symbol: str | None) -> dict[str, str | int]:
    return {"symbol": symbol.upper()} if symbol else {}


def _next_page_cursor(data: Any) -> str:
    """``result.nextPageCursor`` of a Bybit page, "" when absent (the last page)."""
    result = data.get("result") if type(data) is dict else None
    cursor = result.get("nextPageCursor") if type(result) is dict else None
    return cursor if type(cursor) is str else ""


def _snippet(response: httpx.Response) -> str:
    text = response.text.strip()
    return text if len(text) <= _BODY_SNIPPET else text[:_BODY_SNIPPET] + "…"
