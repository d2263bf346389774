"""Instrument lists of the loopback exchanges: Binance ``exchangeInfo``, Bybit
``instruments-info`` and OKX ``public/instruments``, built from the simulated instruments plus a
few contracts a client must filter out (a quarterly, a pending listing; on OKX a coin-margined
and a USDC swap) — key for key like the real bodies (pure). A symbol listed on some venues only
(:attr:`SymbolProfile.listed_on`) is in their lists only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detector.models import Exchange
from detector.simulator.instruments import InstrumentSpec, SymbolProfile, format_trimmed

BINANCE, BYBIT, OKX = Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX

BINANCE_RATE_LIMITS: list[dict[str, Any]] = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
]
PERPETUAL_DELIVERY_MS = 4_133_404_800_000  # Binance's "never" (2100-12-25)
QUARTER_DELIVERY_MS = 1_798_185_600_000  # 2026-12-25 08:00 UTC
ONBOARD_MS = 1_569_398_400_000
PENDING_SYMBOL = "NEWCOINUSDT"  # listed, not trading yet: clients must skip it


def _base(symbol: str) -> str:
    return symbol.removesuffix("USDT")


def _on_tick(value: float, spec: InstrumentSpec) -> str:
    """A price of ``value`` USDT a coin on the tick, per the venue's unit."""
    return format_trimmed(round(value / spec.tick) * spec.tick * spec.unit, spec.wire_price_dp)


def _max_qty(coins: float, spec: InstrumentSpec) -> str:
    return format_trimmed(coins / spec.unit, spec.wire_qty_dp)


def _binance_symbol(
    symbol: str,
    prof: SymbolProfile,
    *,
    contract_type: str = "PERPETUAL",
    status: str = "TRADING",
    delivery_ms: int = PERPETUAL_DELIVERY_MS,
) -> dict[str, Any]:
    spec = prof.binance
    tick, step = spec.price_str(1), spec.qty_str(1)
    max_qty = _max_qty(prof.level_qty * 4000, spec)
    return {
        "symbol": symbol,
        "pair": prof.symbol,
        "contractType": contract_type,
        "deliveryDate": delivery_ms,
        "onboardDate": ONBOARD_MS,
        "status": status,
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": _base(prof.symbol),
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
        "pricePrecision": spec.wire_price_dp,
        "quantityPrecision": spec.wire_qty_dp,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "filters": [
            {
                "minPrice": _on_tick(prof.start_price * 0.01, spec),
                "maxPrice": _on_tick(prof.start_price * 30, spec),
                "filterType": "PRICE_FILTER",
                "tickSize": tick,
            },
            {"stepSize": step, "filterType": "LOT_SIZE", "maxQty": max_qty, "minQty": step},
            {"stepSize": step, "filterType": "MARKET_LOT_SIZE", "maxQty": max_qty, "minQty": step},
            {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
            {"limit": 10, "filterType": "MAX_NUM_ALGO_ORDERS"},
            {"notional": "5", "filterType": "MIN_NOTIONAL"},
            {
                "multiplierDown": "0.9500",
                "multiplierUp": "1.0500",
                "multiplierDecimal": "4",
                "filterType": "PERCENT_PRICE",
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def binance_exchange_info(profiles: Mapping[str, SymbolProfile], now: int) -> dict[str, Any]:
    """The body of ``GET /fapi/v1/exchangeInfo``."""
    first, last = next(iter(profiles.values())), list(profiles.values())[-1]
    symbols = [
        _binance_symbol(name, prof) for name, prof in profiles.items() if prof.listed(BINANCE)
    ]
    symbols.append(
        _binance_symbol(
            f"{first.symbol}_261225",
            first,
            contract_type="CURRENT_QUARTER",
            delivery_ms=QUARTER_DELIVERY_MS,
        )
    )
    pending = _binance_symbol(PENDING_SYMBOL, last, status="PENDING_TRADING")
    pending["pair"], pending["baseAsset"] = PENDING_SYMBOL, _base(PENDING_SYMBOL)
    symbols.append(pending)
    assets = [
        {"asset": asset, "marginAvailable": True, "autoAssetExchange": exchange}
        for asset, exchange in (("USDT", "-10000"), ("BTC", "-0.10000000"), ("ETH", "-5"))
    ]
    return {
        "timezone": "UTC",
        "serverTime": now,
        "futuresType": "U_MARGINED",
        "rateLimits": BINANCE_RATE_LIMITS,
        "exchangeFilters": [],
        "assets": assets,
        "symbols": symbols,
    }


def _bybit_instrument(
    symbol: str,
    prof: SymbolProfile,
    funding_hours: int,
    *,
    contract_type: str = "LinearPerpetual",
    status: str = "Trading",
    delivery_ms: int = 0,
) -> dict[str, Any]:
    spec = prof.bybit
    step = spec.qty_str(1)
    max_qty = _max_qty(prof.level_qty * 4000, spec)
    return {
        "symbol": symbol,
        "contractType": contract_type,
        "status": status,
        "baseCoin": _base(symbol.partition("-")[0]),
        "quoteCoin": "USDT",
        "launchTime": str(ONBOARD_MS),
        "deliveryTime": str(delivery_ms),
        "deliveryFeeRate": "" if delivery_ms == 0 else "0.0005",
        "priceScale": str(spec.wire_price_dp),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {
            "minPrice": spec.price_str(1),
            "maxPrice": _on_tick(prof.start_price * 30, spec),
            "tickSize": spec.price_str(1),
        },
        "lotSizeFilter": {
            "maxOrderQty": max_qty,
            "minOrderQty": step,
            "qtyStep": step,
            "postOnlyMaxOrderQty": max_qty,
            "maxMktOrderQty": _max_qty(prof.level_qty * 400, spec),
            "minNotionalValue": "5",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": funding_hours * 60,
        "settleCoin": "USDT",
        "copyTrading": "both",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.005", "priceLimitRatioY": "0.01"},
        "displayName": "",
    }


def bybit_instruments(
    profiles: Mapping[str, SymbolProfile], funding_hours: Mapping[str, int]
) -> list[dict[str, Any]]:
    """Every linear instrument, sorted by symbol (one page of ``instruments-info`` is a slice)."""
    first, last = next(iter(profiles.values())), list(profiles.values())[-1]
    items = [
        _bybit_instrument(name, prof, funding_hours[name])
        for name, prof in profiles.items()
        if prof.listed(BYBIT)
    ]
    items.append(
        _bybit_instrument(
            f"{first.symbol}-26DEC26",
            first,
            0,
            contract_type="LinearFutures",
            delivery_ms=QUARTER_DELIVERY_MS,
        )
    )
    items.append(_bybit_instrument(PENDING_SYMBOL, last, 8, status="PreLaunch"))
    return sorted(items, key=lambda item: str(item["symbol"]))


# -- OKX -------------------------------------------------------------------------------------
OKX_INSTRUMENTS_PATH = "/api/v5/public/instruments?instType=SWAP"
OKX_LIST_MS = 1_573_557_408_000


def _okx_swap(
    inst_id: str,
    spec: InstrumentSpec,
    *,
    settle: str = "USDT",
    ct_type: str = "linear",
    ct_val: str | None = None,
    ct_val_ccy: str | None = None,
    state: str = "live",
    group_id: str = "2",
) -> dict[str, Any]:
    base, quote = inst_id.split("-")[:2]
    lot = spec.qty_str(1)
    return {
        "alias": "",
        "auctionEndTime": "",
        "baseCcy": "",
        "category": "1",
        "ctMult": "1",
        "ctType": ct_type,
        "ctVal": ct_val if ct_val is not None else format_trimmed(spec.ct_val, 8),
        "ctValCcy": ct_val_ccy if ct_val_ccy is not None else base,
        "contTdSwTime": "",
        "expTime": "",
        "futureSettlement": False,
        "groupId": group_id,
        "instFamily": f"{base}-{quote}",
        "instId": inst_id,
        "instType": "SWAP",
        "lever": "100",
        "listTime": str(OKX_LIST_MS),
        "lotSz": lot,
        "maxIcebergSz": "100000000.0000000000000000",
        "maxLmtAmt": "20000000",
        "maxLmtSz": "100000000",
        "maxMktAmt": "",
        "maxMktSz": "12000",
        "maxStopSz": "12000",
        "maxTriggerSz": "100000000.0000000000000000",
        "maxTwapSz": "100000000.0000000000000000",
        "minSz": lot,
        "optType": "",
        "openType": "",
        "preMktSwTime": "",
        "quoteCcy": "",
        "tradeQuoteCcyList": [],
        "settleCcy": settle,
        "state": state,
        "ruleType": "normal",
        "stk": "",
        "tickSz": spec.price_str(1),
        "uly": f"{base}-{quote}",
        "instIdCode": 10_000 + sum(map(ord, inst_id)) * 7,
        "instCategory": "1",
        "upcChg": [],
    }


def okx_instruments(profiles: Mapping[str, SymbolProfile]) -> list[dict[str, Any]]:
    """The ``data`` of ``GET /api/v5/public/instruments?instType=SWAP``: the USDT-margined
    swaps of the simulated symbols, plus what a client must filter out (a coin-margined swap,
    a USDC-margined one and a listing in ``preopen``). Sizes count contracts of ``ctVal``."""
    first, last = next(iter(profiles.values())), list(profiles.values())[-1]
    items = [_okx_swap(prof.inst_id, prof.okx) for prof in profiles.values() if prof.listed(OKX)]
    items.append(
        _okx_swap(
            f"{first.base}-USD-SWAP",
            first.okx,
            settle=first.base,
            ct_type="inverse",
            ct_val="100",
            ct_val_ccy="USD",
            group_id="1",
        )
    )
    items.append(_okx_swap(f"{first.base}-USDC-SWAP", first.okx, settle="USDC", group_id="3"))
    items.append(_okx_swap(f"{_base(PENDING_SYMBOL)}-USDT-SWAP", last.okx, state="preopen"))
    return items
