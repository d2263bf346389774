"""Instruments of each exchange (contract specs and status) and the check of requested symbols.

Pure: decoded ``/fapi/v1/exchangeInfo`` and ``/v5/market/instruments-info`` bodies in,
:class:`Instrument` lists and human-readable problems out. Only USDT-margined perpetuals in
trading status are compared across exchanges (EXCHANGES.md, "Cross-exchange facts").
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class SymbolCheck:
    """Requested symbols split into the usable ones and messages about the others."""

    ok: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _identity(symbol: str) -> str:
    return symbol


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
    return Instrument(
        exchange=ex,
        symbol=symbol,
        base=f.symbol("baseAsset"),
        quote=quote,
        tick_size=Fields(filters["PRICE_FILTER"], ex, symbol, frame).price("tickSize"),
        step_size=Fields(filters["LOT_SIZE"], ex, symbol, frame).price("stepSize"),
        tradable=status == "TRADING" and contract_type == "PERPETUAL" and quote == "USDT",
        status=status,
        contract_type=contract_type,
    )


def _binance_filters(raw: Any, symbol: str, frame: Any) -> dict[str, dict[str, Any]]:
    ex = Exchange.BINANCE
    if type(raw) is not list:
        raise MalformedFrame(ex, f"exchangeInfo {symbol}: 'filters' must be a list", frame)
    filters = {f["filterType"]: f for f in raw if type(f) is dict and "filterType" in f}
    for needed in ("PRICE_FILTER", "LOT_SIZE"):
        if needed not in filters:
            raise MalformedFrame(ex, f"exchangeInfo {symbol}: no {needed} filter", frame)
    return filters


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
    return Instrument(
        exchange=ex,
        symbol=symbol,
        base=f.symbol("baseCoin"),
        quote=quote,
        tick_size=Fields(price_filter, ex, symbol, frame).price("tickSize"),
        step_size=Fields(lot_filter, ex, symbol, frame).price("qtyStep"),
        tradable=status == "Trading" and contract_type == "LinearPerpetual" and quote == "USDT",
        status=status,
        contract_type=contract_type,
    )


# The check


def validate_symbols(
    requested: Sequence[str],
    binance: list[Instrument],
    bybit: list[Instrument],
    bybit_names: Callable[[str], str] = _identity,
) -> SymbolCheck:
    """Which ``requested`` symbols (canonical, Binance names) trade as USDT perpetuals on both.

    ``bybit_names`` maps a canonical symbol to its Bybit name (``1000SHIBUSDT`` →
    ``SHIB1000USDT``). Each problem reads "SYMBOL: what is wrong". A name listed on neither
    exchange looks like a typo: its problem suggests the closest tradable name, if one is close.
    """
    on_binance = {i.symbol: i for i in binance}
    on_bybit = {i.symbol: i for i in bybit}
    check = SymbolCheck()
    for symbol in dict.fromkeys(s.strip().upper() for s in requested):
        b = on_binance.get(symbol)
        bybit_name = bybit_names(symbol)
        y = on_bybit.get(bybit_name)
        if b is None and y is None:
            hint = _suggest(symbol, _tradable(binance) or _tradable(bybit))
            check.problems.append(f"{symbol}: listed on neither Binance nor Bybit{hint}")
            continue
        problems = []
        if b is None:
            problems.append(f"{symbol}: not listed on Binance")
        elif not b.tradable:
            problems.append(f"{symbol}: {_why_not(b, 'Binance', 'TRADING', 'PERPETUAL')}")
        renamed = bybit_name != symbol
        if y is None:
            problems.append(
                f"{symbol}: not listed on Bybit" + (f" as {bybit_name}" if renamed else "")
            )
        elif not y.tradable:
            label = f"Bybit {bybit_name}" if renamed else "Bybit"
            problems.append(f"{symbol}: {_why_not(y, label, 'Trading', 'LinearPerpetual')}")
        if problems:
            check.problems.extend(problems)
        else:
            check.ok.append(symbol)
    return check


def _tradable(instruments: Iterable[Instrument]) -> list[str]:
    return [i.symbol for i in instruments if i.tradable]


def _why_not(instrument: Instrument, label: str, trading: str, perpetual: str) -> str:
    """Why an instrument is not tradable, naming the first rule it breaks."""
    if instrument.status != trading:
        return f"{label} status {instrument.status}"
    if instrument.contract_type != perpetual:
        return f"{label} contract type {instrument.contract_type or '(none)'}, not {perpetual}"
    return f"{label} quote {instrument.quote}, not USDT"


def _suggest(symbol: str, candidates: list[str]) -> str:
    """ " (did you mean BTCUSDT?)" for a close match, else ""."""
    matches = difflib.get_close_matches(symbol, candidates, n=1, cutoff=0.8)
    return f" (did you mean {matches[0]}?)" if matches else ""
