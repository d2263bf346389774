"""Instruments of each exchange: contract specs and status (the check of symbols: ``listing``).

Pure: decoded ``/fapi/v1/exchangeInfo``, ``/v5/market/instruments-info`` and
``/api/v5/public/instruments`` bodies in, :class:`Instrument` lists out. Only USDT-margined
perpetuals in trading status are compared across exchanges (EXCHANGES.md, "Cross-exchange
facts").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from detector.errors import FrameError, MalformedFrame
from detector.models import Exchange
from detector.venues._fields import Fields, require


@dataclass(frozen=True, slots=True)
class Instrument:
    """One contract as its exchange lists it; ``tradable``: a USDT perpetual open for trading."""

    exchange: Exchange
    symbol: str
    base: str
    quote: str
    tick_size: float
    step_size: float
    tradable: bool
    status: str = ""  # the exchange's own words: TRADING, SETTLING, Trading, PreLaunch...
    contract_type: str = ""  # PERPETUAL, CURRENT_QUARTER, LinearPerpetual, LinearFutures...
    # Base-coin quantity of one contract: OKX sizes are contracts (ctVal * ctMult); 1.0 where
    # the exchange writes quantities in the coin (Binance, Bybit).
    contract_size: float = 1.0
    # Why a contract otherwise open for trading is not usable (its filters do not parse).
    problem: str = ""


TRADING: dict[Exchange, tuple[str, str]] = {
    Exchange.BINANCE: ("TRADING", "PERPETUAL"),
    Exchange.BYBIT: ("Trading", "LinearPerpetual"),
    Exchange.OKX: ("live", "linear"),
}
"""Each venue's words for a contract open for trading and for a USDT-margined perpetual."""


def _open_usdt_perpetual(ex: Exchange, status: str, contract_type: str, quote: str) -> bool:
    trading, perpetual = TRADING[ex]
    return status == trading and contract_type == perpetual and quote == "USDT"


# Binance


def parse_binance_exchange_info(data: Any) -> list[Instrument]:
    """``GET /fapi/v1/exchangeInfo`` body → every listed symbol, tradable or not."""
    ex = Exchange.BINANCE
    if type(data) is not dict:
        raise MalformedFrame(ex, "exchangeInfo body must be an object", data)
    symbols = require(data, "symbols", ex, "exchangeInfo", data)
    if type(symbols) is not list:
        raise MalformedFrame(ex, "exchangeInfo: 'symbols' must be a list", data)
    return [_binance_instrument(item, data) for item in symbols]


def _binance_instrument(item: Any, frame: Any) -> Instrument:
    ex = Exchange.BINANCE
    if type(item) is not dict:
        raise MalformedFrame(ex, f"exchangeInfo: a symbol must be an object, got {item!r}", frame)
    f = Fields(item, ex, "exchangeInfo symbol", frame)
    symbol = f.symbol("symbol")
    filters = _binance_filters(f.value("filters"), symbol, frame)
    status = str(f.value("status"))
    contract_type = str(f.value("contractType"))
    quote = f.symbol("quoteAsset")
    tick, step, problem = _sizes(
        lambda: Fields(filters.get("PRICE_FILTER") or {}, ex, symbol, frame).price("tickSize"),
        lambda: Fields(filters.get("LOT_SIZE") or {}, ex, symbol, frame).price("stepSize"),
    )
    return Instrument(
        exchange=ex,
        symbol=symbol,
        base=f.symbol("baseAsset"),
        quote=quote,
        tick_size=tick,
        step_size=step,
        tradable=_open_usdt_perpetual(ex, status, contract_type, quote) and not problem,
        status=status,
        contract_type=contract_type,
        problem=problem,
    )


def _sizes(tick: Callable[[], float], step: Callable[[], float]) -> tuple[float, float, str]:
    """(tick size, step size, "") — or zeros and why, for a contract whose filters do not
    parse: listed as not tradable rather than failing the whole list (a real Binance list holds
    a PENDING_TRADING contract with tickSize "0")."""
    try:
        return tick(), step(), ""
    except FrameError as exc:
        return 0.0, 0.0, f"unusable filters: {exc}"


def _binance_filters(raw: Any, symbol: str, frame: Any) -> dict[str, dict[str, Any]]:
    ex = Exchange.BINANCE
    if type(raw) is not list:
        raise MalformedFrame(ex, f"exchangeInfo {symbol}: 'filters' must be a list", frame)
    return {f["filterType"]: f for f in raw if type(f) is dict and "filterType" in f}


# Bybit


def parse_bybit_instruments(pages: list[Any]) -> list[Instrument]:
    """Decoded ``GET /v5/market/instruments-info?category=linear`` pages → every instrument."""
    instruments: list[Instrument] = []
    for page in pages:
        instruments.extend(_bybit_instrument(item, page) for item in _bybit_list(page))
    return instruments


def _bybit_list(page: Any) -> list[Any]:
    ex = Exchange.BYBIT
    if type(page) is not dict:
        raise MalformedFrame(ex, "instruments-info page must be an object", page)
    code = require(page, "retCode", ex, "instruments-info", page)
    if code != 0:
        raise FrameError(ex, f"retCode {code}: {page.get('retMsg', '')}", page)
    result = require(page, "result", ex, "instruments-info", page)
    items = require(result, "list", ex, "instruments-info", page) if type(result) is dict else None
    if type(items) is not list:
        raise MalformedFrame(ex, "instruments-info: 'result.list' must be a list", page)
    return items


def _bybit_instrument(item: Any, frame: Any) -> Instrument:
    ex = Exchange.BYBIT
    if type(item) is not dict:
        raise MalformedFrame(ex, f"instruments-info: an item must be an object: {item!r}", frame)
    f = Fields(item, ex, "instruments-info", frame)
    symbol = f.symbol("symbol")
    price_filter = f.value("priceFilter")
    lot_filter = f.value("lotSizeFilter")
    if type(price_filter) is not dict or type(lot_filter) is not dict:
        raise MalformedFrame(ex, f"instruments-info {symbol}: filters must be objects", frame)
    status = str(f.value("status"))
    contract_type = str(f.value("contractType"))
    quote = f.symbol("quoteCoin")
    tick, step, problem = _sizes(
        lambda: Fields(price_filter, ex, symbol, frame).price("tickSize"),
        lambda: Fields(lot_filter, ex, symbol, frame).price("qtyStep"),
    )
    return Instrument(
        exchange=ex,
        symbol=symbol,
        base=f.symbol("baseCoin"),
        quote=quote,
        tick_size=tick,
        step_size=step,
        tradable=_open_usdt_perpetual(ex, status, contract_type, quote) and not problem,
        status=status,
        contract_type=contract_type,
        problem=problem,
    )


# OKX

OKX_INSTRUMENTS_PATH = "/api/v5/public/instruments"
_OKX_SWAP_SUFFIX = "-USDT-SWAP"


def parse_okx_instruments(data: Any) -> list[Instrument]:
    """``GET /api/v5/public/instruments?instType=SWAP`` body → every listed instrument.

    Tradable: a ``SWAP`` in state ``live``, ``ctType`` linear, settled in USDT, with a usable
    contract size. ``symbol`` is OKX's ``instId`` (``BTC-USDT-SWAP``); ``step_size`` is ``lotSz``
    in base coin (``lotSz`` counts contracts). OKX lists an upcoming contract with its other
    fields empty (docs: "Other fields will be "" temporarily"): such an item, or one whose
    numbers do not parse, is listed as not tradable instead of failing the whole list.
    """
    ex = Exchange.OKX
    if type(data) is not dict:
        raise MalformedFrame(ex, "instruments body must be an object", data)
    code = require(data, "code", ex, "instruments", data)
    if code != "0":
        # Errors come with HTTP 200 and a non-zero code ("51001" instrument does not exist, ...).
        raise FrameError(ex, f"code {code}: {data.get('msg', '')}", data)
    items = require(data, "data", ex, "instruments", data)
    if type(items) is not list:
        raise MalformedFrame(ex, "instruments: 'data' must be a list", data)
    return [_okx_instrument(item, data) for item in items]


def _okx_instrument(item: Any, frame: Any) -> Instrument:
    ex = Exchange.OKX
    if type(item) is not dict:
        raise MalformedFrame(ex, f"instruments: an item must be an object, got {item!r}", frame)
    f = Fields(item, ex, "instruments", frame)
    inst_id = f.symbol("instId")
    state = str(item.get("state", ""))
    ct_type = str(item.get("ctType", ""))
    settle = str(item.get("settleCcy", ""))
    ct_val, ct_mult = _okx_positive(item.get("ctVal")), _okx_positive(item.get("ctMult"))
    tick, lot = _okx_positive(item.get("tickSz")), _okx_positive(item.get("lotSz"))
    contract = None if ct_val is None or ct_mult is None else ct_val * ct_mult
    size = None if contract is None else float(contract)
    tradable = (
        item.get("instType") == "SWAP"
        and _open_usdt_perpetual(ex, state, ct_type, settle)
        and inst_id.endswith(_OKX_SWAP_SUFFIX)
        and size is not None
        and tick is not None
        and lot is not None
    )
    base = str(item.get("ctValCcy") or "") if ct_type == "linear" else ""
    return Instrument(
        exchange=ex,
        symbol=inst_id,
        base=base or inst_id.split("-", 1)[0],
        quote=settle,
        tick_size=float(tick) if tick is not None else 0.0,
        step_size=float(lot * contract) if lot is not None and contract is not None else 0.0,
        tradable=tradable,
        status=state,
        contract_type=ct_type,
        contract_size=size if size is not None else 1.0,
    )


def _okx_positive(value: Any) -> Decimal | None:
    """A decimal string > 0 as an exact Decimal (ctVal * ctMult must stay exact), else None."""
    if type(value) is not str or not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() and number > 0 else None
