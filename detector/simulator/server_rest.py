"""The REST endpoints of the loopback exchanges (aiohttp): Binance ``/fapi/v1/*``, Bybit
``/v5/market/*``, answered from the market model with the real bodies, headers and errors."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from random import Random
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from detector.models import Exchange
from detector.simulator import wire
from detector.simulator.instruments import (
    SymbolProfile,
    format_decimal,
    format_trimmed,
    profile,
)
from detector.simulator.scenarios import RestFault
from detector.simulator.server_catalog import (
    BINANCE_RATE_LIMITS,
    binance_exchange_info,
    bybit_instruments,
)
from detector.simulator.server_state import ServerContext
from detector.simulator.tickers import next_funding_ms

BINANCE, BYBIT = Exchange.BINANCE, Exchange.BYBIT
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BINANCE_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
BINANCE_WEIGHT_LIMIT = BINANCE_RATE_LIMITS[0]["limit"]  # REQUEST_WEIGHT per minute


def binance_depth_limit(limit: int) -> int:
    """The depth Binance futures answer for ``limit``: they accept 5, 10, 20, 50, 100, 500,
    1000; other limits round up to the next one (1000 at most)."""
    return next((v for v in BINANCE_DEPTH_LIMITS if v >= limit), 1000)


def binance_depth_weight(limit: int) -> int:
    """The request weight of ``GET /fapi/v1/depth`` at ``limit`` (rounded up to 5 … 1000)."""
    limit = binance_depth_limit(limit)
    return 2 if limit <= 50 else 5 if limit == 100 else 10 if limit == 500 else 20


BYBIT_BOOK_LIMIT = (1, 500, 25)  # linear: min, max, default
BYBIT_INSTRUMENTS_LIMIT = (1, 1000, 500)
BYBIT_FUNDING_LIMIT = (1, 200, 200)
DAY_MS = 86_400_000


class BadRequest(Exception):
    """A request the exchange refuses: Binance (HTTP status, code, msg) / Bybit (retCode, msg)."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=wire.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def _int_param(request: web.Request, name: str, default: int) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    return int(text) if text.isdigit() else None


class RestApi:
    """Both exchanges' REST market-data endpoints over one :class:`ServerContext`."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._profiles: dict[str, SymbolProfile] = {s: profile(s) for s in ctx.symbols}
        self._listed = {  # the symbols each venue lists, in order (a few are on one venue only)
            ex: dict.fromkeys(s for s, prof in self._profiles.items() if prof.listed(ex))
            for ex in (BINANCE, BYBIT)
        }
        self._minute = 0
        self._weight = 0  # Binance request weight used in the current minute

    def add_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, Exchange, Callable[[web.Request], Any]]] = [
            ("/fapi/v1/depth", BINANCE, self._binance_depth),
            ("/fapi/v1/exchangeInfo", BINANCE, self._binance_exchange_info),
            ("/fapi/v1/premiumIndex", BINANCE, self._binance_premium_index),
            ("/fapi/v1/ticker/24hr", BINANCE, self._binance_ticker_24hr),
            ("/fapi/v1/ticker/bookTicker", BINANCE, self._binance_book_ticker),
            ("/fapi/v1/fundingInfo", BINANCE, self._binance_funding_info),
            ("/v5/market/orderbook", BYBIT, self._bybit_orderbook),
            ("/v5/market/tickers", BYBIT, self._bybit_tickers),
            ("/v5/market/instruments-info", BYBIT, self._bybit_instruments),
            ("/v5/market/funding/history", BYBIT, self._bybit_funding_history),
        ]
        for path, exchange, answer in routes:
            wrap = self._binance if exchange is BINANCE else self._bybit
            app.router.add_get(path, wrap(answer))

    # -- envelopes, faults, rate limits --------------------------------------------------------
    def _binance(self, answer: Callable[[web.Request], tuple[Any, int]]) -> Handler:
        """Run a Binance endpoint: scripted faults, request weight, -11xx errors as HTTP 400."""

        async def handle(request: web.Request) -> web.StreamResponse:
            ctx = self.ctx
            ctx.stats.rest_requests[BINANCE] += 1
            now = ctx.now_ms()
            scripted = ctx.faults.rest_fault(BINANCE, now)
            if scripted is not None:
                ctx.stats.faults["rest_fault"] += 1
                fault, end = scripted
                return self._binance_error(
                    fault.status, fault.retry_after_s, end, self._used(now, 1)
                )
            if self._used(now, 0) >= BINANCE_WEIGHT_LIMIT:  # the real limit, until the minute ends
                retry_after_s = (60_000 - now % 60_000) / 1000
                return self._binance_error(429, retry_after_s, now, self._weight)
            try:
                body, weight = answer(request)
            except BadRequest as exc:
                headers = {"X-MBX-USED-WEIGHT-1M": str(self._used(now, 1))}
                return _json({"code": exc.code, "msg": exc.msg}, exc.status, headers)
            return _json(body, headers={"X-MBX-USED-WEIGHT-1M": str(self._used(now, weight))})

        return handle

    def _used(self, now: int, weight: int) -> int:
        minute = now // 60_000
        if minute != self._minute:
            self._minute, self._weight = minute, 0
        self._weight += weight
        return self._weight

    @staticmethod
    def _binance_error(
        status: int, retry_after_s: float, banned_until: int, used: int
    ) -> web.Response:
        """Binance's answer with HTTP ``status``: 429/418 with ``Retry-After``, 500, WAF 403."""
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if status in (429, 418):
            headers["Retry-After"] = str(math.ceil(retry_after_s))
        if status == 429:
            msg = (
                f"Too many requests; current limit of IP(127.0.0.1) is {BINANCE_WEIGHT_LIMIT} "
                "requests per minute. Please use the websocket for live updates to avoid "
                "polling the API."
            )
            return _json({"code": -1003, "msg": msg}, 429, headers)
        if status == 418:
            msg = (
                f"Way too much request weight used; IP banned until {banned_until}. Please use the "
                "websocket for live updates to avoid bans."
            )
            return _json({"code": -1003, "msg": msg}, 418, headers)
        if status == 500:
            msg = "Internal error; unable to process your request. Please try again."
            return _json({"code": -1001, "msg": msg}, 500, headers)
        page = "<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1>"
        return web.Response(text=page + "</body></html>", status=403, content_type="text/html")

    def _bybit(self, answer: Callable[[web.Request], Any]) -> Handler:
        """Run a Bybit endpoint: scripted faults, the retCode envelope (errors with HTTP 200)."""

        async def handle(request: web.Request) -> web.StreamResponse:
            ctx = self.ctx
            ctx.stats.rest_requests[BYBIT] += 1
            now = ctx.now_ms()
            scripted = ctx.faults.rest_fault(BYBIT, now)
            if scripted is not None:
                ctx.stats.faults["rest_fault"] += 1
                return self._bybit_fault(scripted[0], now)
            category = request.query.get("category")
            try:
                if category != "linear":
                    raise BadRequest(10001, "params error: category invalid")
                result = answer(request)
            except BadRequest as exc:
                return _json(self._envelope(exc.code, exc.msg, {}, now))
            return _json(self._envelope(0, "OK", result, now))

        return handle

    @staticmethod
    def _envelope(code: int, msg: str, result: Any, now: int) -> dict[str, Any]:
        return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now}

    def _bybit_fault(self, fault: RestFault, now: int) -> web.Response:
        if fault.status == 429:
            reset = now + round(fault.retry_after_s * 1000)
            headers = {
                "X-Bapi-Limit-Status": "0",
                "X-Bapi-Limit": "10",
                "X-Bapi-Limit-Reset-Timestamp": str(reset),
            }
            return _json(self._envelope(10006, "Too many visits!", {}, now), headers=headers)
        if fault.status == 500:
            return _json(self._envelope(10016, "Internal server error.", {}, now))
        return web.Response(text="access too frequent", status=403, content_type="text/plain")

    # -- Binance -------------------------------------------------------------------------------
    def _binance_symbol(self, request: web.Request, required: bool = True) -> str | None:
        symbol = request.query.get("symbol")
        if not symbol:
            if required:
                raise BadRequest(
                    -1102,
                    "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
                )
            return None
        if symbol not in self._listed[BINANCE]:
            raise BadRequest(-1121, "Invalid symbol.")
        return symbol

    def _binance_depth(self, request: web.Request) -> tuple[Any, int]:
        symbol = self._binance_symbol(request)
        assert symbol is not None
        limit = _int_param(request, "limit", 500)
        if limit is None:
            raise BadRequest(
                -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]+$'."
            )
        limit = binance_depth_limit(limit)
        return self.ctx.model.binance_depth_snapshot(symbol, limit), binance_depth_weight(limit)

    def _binance_exchange_info(self, request: web.Request) -> tuple[Any, int]:
        return binance_exchange_info(self._profiles, self.ctx.now_ms()), 1

    def _binance_premium_index(self, request: web.Request) -> tuple[Any, int]:
        symbol = self._binance_symbol(request, required=False)
        if symbol is not None:
            return self._premium(symbol), 1
        return [self._premium(s) for s in self._listed[BINANCE]], 10

    def _premium(self, symbol: str) -> dict[str, Any]:
        mark = self.ctx.cache.binance_mark.get(symbol)
        if mark is None:  # before the first markPriceUpdate: the fair price
            now = self.ctx.now_ms()
            unit = self._profiles[symbol].binance.unit
            fair = format_decimal(self.ctx.model.fair_price(symbol) * unit, 8)
            hours = self.ctx.faults.funding_hours(BINANCE, symbol, now)
            mark = {"p": fair, "i": fair, "P": fair, "r": "0.00010000"}
            mark |= {"T": next_funding_ms(now, hours), "E": now}
        return {
            "symbol": symbol,
            "markPrice": mark["p"],
            "indexPrice": mark["i"],
            "estimatedSettlePrice": mark["P"],
            "lastFundingRate": mark["r"],
            "interestRate": "0.00010000",
            "nextFundingTime": mark["T"],
            "time": mark["E"],
        }

    def _binance_ticker_24hr(self, request: web.Request) -> tuple[Any, int]:
        symbol = self._binance_symbol(request, required=False)
        if symbol is not None:
            return self._ticker_24hr(symbol), 1
        return [self._ticker_24hr(s) for s in self._listed[BINANCE]], 40

    def _ticker_24hr(self, symbol: str) -> dict[str, Any]:
        ctx, prof = self.ctx, self._profiles[symbol]
        spec, now = prof.binance, ctx.now_ms()
        stats = ctx.model.bybit_tickers_snapshot(symbol)["data"]  # the market's 24 h statistics
        # Bybit's figures are per Bybit's unit; these are per Binance's.
        ratio = spec.unit / prof.bybit.unit
        trade = ctx.cache.binance_trade.get(symbol)
        last = float(trade["p"]) if trade else ctx.model.fair_price(symbol) * spec.unit
        open_ = float(stats["prevPrice24h"]) * ratio
        volume, turnover = float(stats["volume24h"]) / ratio, float(stats["turnover24h"])
        last_id = trade["l"] if trade else 7_900_000_000
        count = int(volume * spec.unit / prof.trade_qty) + 1

        def price(value: float) -> str:
            return format_decimal(value, spec.wire_price_dp)

        return {
            "symbol": symbol,
            "priceChange": price(last - open_),
            "priceChangePercent": format_decimal((last / open_ - 1.0) * 100.0, 3),
            "weightedAvgPrice": price(turnover / volume),
            "lastPrice": price(last),
            "lastQty": trade["q"] if trade else spec.qty_str(1),
            "openPrice": price(open_),
            "highPrice": price(max(float(stats["highPrice24h"]) * ratio, last)),
            "lowPrice": price(min(float(stats["lowPrice24h"]) * ratio, last)),
            "volume": format_decimal(volume, spec.wire_qty_dp),
            "quoteVolume": format_decimal(turnover, 2),
            "openTime": now - DAY_MS,
            "closeTime": now,
            "firstId": last_id - count + 1,
            "lastId": last_id,
            "count": count,
        }

    def _binance_book_ticker(self, request: web.Request) -> tuple[Any, int]:
        symbol = self._binance_symbol(request, required=False)
        if symbol is not None:
            return self._book_ticker(symbol), 2
        return [self._book_ticker(s) for s in self._listed[BINANCE]], 5

    def _book_ticker(self, symbol: str) -> dict[str, Any]:
        ctx, spec = self.ctx, self._profiles[symbol].binance
        book = ctx.model.book(BINANCE, symbol)
        (bid, bid_lots), (ask, ask_lots) = book.best_bid(), book.best_ask()
        return {
            "lastUpdateId": ctx.cache.binance_depth_u.get(symbol, 0),
            "symbol": symbol,
            "bidPrice": spec.price_str(bid),
            "bidQty": spec.qty_str(bid_lots),
            "askPrice": spec.price_str(ask),
            "askQty": spec.qty_str(ask_lots),
            "time": ctx.model.now_ms,
        }

    def _binance_funding_info(self, request: web.Request) -> tuple[Any, int]:
        now = self.ctx.now_ms()
        return [
            {
                "symbol": symbol,
                "adjustedFundingRateCap": "0.02000000",
                "adjustedFundingRateFloor": "-0.02000000",
                "fundingIntervalHours": self.ctx.faults.funding_hours(BINANCE, symbol, now),
                "disclaimer": False,
            }
            for symbol in self._listed[BINANCE]
        ], 1

    # -- Bybit ---------------------------------------------------------------------------------
    def _bybit_symbol(self, request: web.Request, required: bool = True) -> str | None:
        symbol = request.query.get("symbol")
        if not symbol:
            if required:
                raise BadRequest(10001, "params error: symbol invalid")
            return None
        # Symbols are case-sensitive: "btcusdt" is invalid.
        if symbol not in self._listed[BYBIT]:
            raise BadRequest(10001, "params error: symbol invalid")
        return symbol

    @staticmethod
    def _bybit_limit(request: web.Request, bounds: tuple[int, int, int]) -> int:
        low, high, default = bounds
        limit = _int_param(request, "limit", default)
        if limit is None or limit < low:
            raise BadRequest(10001, "params error: limit invalid")
        return min(limit, high)

    def _bybit_orderbook(self, request: web.Request) -> Any:
        symbol = self._bybit_symbol(request)
        assert symbol is not None
        limit = self._bybit_limit(request, BYBIT_BOOK_LIMIT)
        frame = self.ctx.model.bybit_orderbook_snapshot(symbol)
        data = frame["data"]
        return {
            "s": symbol,
            "b": data["b"][:limit],
            "a": data["a"][:limit],
            "ts": frame["ts"],
            "u": data["u"],
            "seq": data["seq"],
            "cts": frame["cts"],
        }

    def _bybit_tickers(self, request: web.Request) -> Any:
        symbol = self._bybit_symbol(request, required=False)
        symbols = [symbol] if symbol is not None else list(self._listed[BYBIT])
        return {"category": "linear", "list": [self._bybit_ticker(s) for s in symbols]}

    def _bybit_ticker(self, symbol: str) -> dict[str, Any]:
        f = self.ctx.model.bybit_tickers_snapshot(symbol)["data"]
        return {
            "symbol": symbol,
            "lastPrice": f["lastPrice"],
            "indexPrice": f["indexPrice"],
            "markPrice": f["markPrice"],
            "prevPrice24h": f["prevPrice24h"],
            "price24hPcnt": f["price24hPcnt"],
            "highPrice24h": f["highPrice24h"],
            "lowPrice24h": f["lowPrice24h"],
            "prevPrice1h": f["prevPrice1h"],
            "openInterest": f["openInterest"],
            "openInterestValue": f["openInterestValue"],
            "turnover24h": f["turnover24h"],
            "volume24h": f["volume24h"],
            "fundingRate": f["fundingRate"],
            "nextFundingTime": f["nextFundingTime"],
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "ask1Size": f["ask1Size"],
            "bid1Price": f["bid1Price"],
            "ask1Price": f["ask1Price"],
            "bid1Size": f["bid1Size"],
            "basis": "",
            "preOpenPrice": "",
            "preQty": "",
            "curPreListingPhase": "",
            "fundingIntervalHour": f["fundingIntervalHour"],
            "basisRateYear": "",
            "fundingCap": f["fundingCap"],
        }

    def _bybit_instruments(self, request: web.Request) -> Any:
        limit = self._bybit_limit(request, BYBIT_INSTRUMENTS_LIMIT)
        now = self.ctx.now_ms()
        hours = {s: self.ctx.faults.funding_hours(BYBIT, s, now) for s in self._profiles}
        items = bybit_instruments(self._profiles, hours)
        symbol = request.query.get("symbol")
        if symbol:
            items = [item for item in items if item["symbol"] == symbol]
        start = 0
        cursor = unquote(request.query.get("cursor", ""))
        if cursor:
            last = cursor.rpartition("last=")[2]
            names = [item["symbol"] for item in items]
            if last not in names:
                raise BadRequest(10001, "params error: cursor invalid")
            start = names.index(last) + 1
        page = items[start : start + limit]
        more = start + limit < len(items)
        next_cursor = f"first%3D{page[0]['symbol']}%26last%3D{page[-1]['symbol']}" if more else ""
        return {"category": "linear", "list": page, "nextPageCursor": next_cursor}

    def _bybit_funding_history(self, request: web.Request) -> Any:
        symbol = self._bybit_symbol(request)
        assert symbol is not None
        limit = self._bybit_limit(request, BYBIT_FUNDING_LIMIT)
        now = self.ctx.now_ms()
        end = _int_param(request, "endTime", now)
        if end is None:
            raise BadRequest(10001, "params error: endTime invalid")
        period = self.ctx.faults.funding_hours(BYBIT, symbol, now) * 3_600_000
        settled = next_funding_ms(min(end, now), period // 3_600_000) - period
        rows = []
        for k in range(limit):
            ts = settled - k * period
            rate = 0.0001 + Random(f"{self.ctx.seed}/{symbol}/{ts}").gauss(0.0, 2e-5)
            rows.append(
                {
                    "symbol": symbol,
                    "fundingRate": format_trimmed(rate, 8),
                    "fundingRateTimestamp": str(ts),
                }
            )
        return {"category": "linear", "list": rows}
