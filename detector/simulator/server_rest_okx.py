"""The OKX v5 REST endpoints of the loopback exchange (aiohttp): instruments, funding rate,
order book, ticker and time, answered from the market model in OKX's envelope and errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from detector.models import Exchange
from detector.simulator import wire, wire_okx
from detector.simulator.instruments import SymbolProfile, profile
from detector.simulator.scenarios import RestFault
from detector.simulator.server_catalog import okx_instruments
from detector.simulator.server_state import ServerContext

OKX = Exchange.OKX
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OKX_BOOK_SZ = (1, 400, 1)  # GET /api/v5/market/books: min, max, default levels a side
INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")


class OkxError(Exception):
    """A request OKX refuses: its ``code`` and ``msg``, with the HTTP status it sends."""

    def __init__(self, code: str, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=wire.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def _empty(name: str) -> OkxError:
    return OkxError("50014", f"Parameter {name} can not be empty.", 400)


class OkxRestApi:
    """OKX's public market-data endpoints over one :class:`ServerContext`."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._profiles: dict[str, SymbolProfile] = {s: profile(s) for s in ctx.symbols}
        self._by_inst = {
            prof.inst_id: symbol
            for symbol, prof in self._profiles.items()
            if prof.listed(Exchange.OKX)
        }

    def add_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, Callable[[web.Request], list[Any]]]] = [
            ("/api/v5/public/instruments", self._instruments),
            ("/api/v5/public/funding-rate", self._funding_rate),
            ("/api/v5/public/time", self._time),
            ("/api/v5/market/books", self._books),
            ("/api/v5/market/ticker", self._ticker),
            ("/api/v5/market/tickers", self._tickers),
        ]
        for path, answer in routes:
            app.router.add_get(path, self._okx(answer))

    def _okx(self, answer: Callable[[web.Request], list[Any]]) -> Handler:
        """Run an endpoint: scripted faults, then ``{"code","data","msg"}`` (errors keep HTTP
        200 and ``data`` [] unless OKX sends another status)."""

        async def handle(request: web.Request) -> web.StreamResponse:
            ctx = self.ctx
            ctx.stats.rest_requests[OKX] += 1
            scripted = ctx.faults.rest_fault(OKX, ctx.now_ms())
            if scripted is not None:
                ctx.stats.faults["rest_fault"] += 1
                return self._fault(scripted[0])
            try:
                data = answer(request)
            except OkxError as exc:
                return _json(wire_okx.rest([], exc.code, exc.msg), exc.status)
            return _json(wire_okx.rest(data))

        return handle

    @staticmethod
    def _fault(fault: RestFault) -> web.Response:
        """OKX's answer to a scripted fault: 429 code 50011 (OKX has no 418 ban: a 418 is a
        429 too), a server error as HTTP 503 code 50001, 403 from the CDN in front of it."""
        if fault.status in (429, 418):
            return _json(wire_okx.rest([], "50011", "Too Many Requests"), 429)
        if fault.status == 500:
            msg = "Service temporarily unavailable. Please try again later."
            return _json(wire_okx.rest([], "50001", msg), 503)
        page = "<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1>"
        return web.Response(text=page + "</body></html>", status=403, content_type="text/html")

    def _symbol(self, request: web.Request) -> str:
        inst_id = request.query.get("instId")
        if not inst_id:
            raise _empty("instId")
        symbol = self._by_inst.get(inst_id)
        if symbol is None:  # instIds are case-sensitive: "btc-usdt-swap" does not exist
            raise OkxError(wire_okx.CODE_INSTRUMENT_MISSING, "Instrument ID does not exist")
        return symbol

    # -- endpoints -----------------------------------------------------------------------------
    def _instruments(self, request: web.Request) -> list[Any]:
        inst_type = request.query.get("instType")
        if not inst_type:
            raise _empty("instType")
        if inst_type not in INST_TYPES:
            raise OkxError("51000", "Parameter instType error")
        if inst_type != "SWAP":
            return []  # the simulator lists perpetual swaps only
        items = okx_instruments(self._profiles)
        inst_id = request.query.get("instId")
        if inst_id:
            items = [item for item in items if item["instId"] == inst_id]
            if not items:
                raise OkxError(wire_okx.CODE_INSTRUMENT_MISSING, "Instrument ID does not exist")
        return items

    def _funding_rate(self, request: web.Request) -> list[Any]:
        return [self.ctx.model.okx_funding_rest(self._symbol(request))]

    def _time(self, request: web.Request) -> list[Any]:
        return [{"ts": str(self.ctx.now_ms())}]

    def _books(self, request: web.Request) -> list[Any]:
        symbol = self._symbol(request)
        low, high, default = OKX_BOOK_SZ
        text = request.query.get("sz", "")
        if text and not text.isdigit():
            raise OkxError("51000", "Parameter sz error")
        depth = min(high, max(low, int(text))) if text else default
        return [self.ctx.model.okx_rest_books(symbol, depth)]

    def _ticker(self, request: web.Request) -> list[Any]:
        data: dict[str, Any] = self.ctx.model.okx_ticker(self._symbol(request))["data"][0]
        return [data]

    def _tickers(self, request: web.Request) -> list[Any]:
        inst_type = request.query.get("instType")
        if not inst_type:
            raise _empty("instType")
        if inst_type not in INST_TYPES:
            raise OkxError("51000", "Parameter instType error")
        if inst_type != "SWAP":
            return []
        return [self.ctx.model.okx_ticker(symbol)["data"][0] for symbol in self._by_inst.values()]
