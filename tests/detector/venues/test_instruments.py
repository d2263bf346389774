"""Instruments: real Binance exchangeInfo, Bybit pages in the real v5 shape, the symbol check."""

from __future__ import annotations

from typing import Any

import pytest

from detector.errors import FrameError, MalformedFrame
from detector.models import Exchange
from detector.symbols import KNOWN_BYBIT_LISTINGS
from detector.venues.instruments import (
    Instrument,
    parse_binance_exchange_info,
    parse_bybit_instruments,
)
from detector.venues.listing import find_listed
from tests.conftest import load_json


def bybit_item(
    symbol: str,
    base: str,
    *,
    quote: str = "USDT",
    status: str = "Trading",
    contract_type: str = "LinearPerpetual",
    tick: str = "0.10",
    step: str = "0.001",
) -> dict[str, Any]:
    """One ``result.list`` item as Bybit v5 writes it (fields trimmed to the usual ones)."""
    return {
        "symbol": symbol,
        "contractType": contract_type,
        "status": status,
        "baseCoin": base,
        "quoteCoin": quote,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": tick},
        "lotSizeFilter": {
            "maxOrderQty": "1190.000",
            "minOrderQty": "0.001",
            "qtyStep": step,
            "postOnlyMaxOrderQty": "1190.000",
            "maxMktOrderQty": "500.000",
            "minNotionalValue": "5",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": quote,
        "copyTrading": "both",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": False,
        "preListingInfo": None,
    }


def bybit_page(items: list[dict[str, Any]], cursor: str) -> dict[str, Any]:
    return {
        "retCode": 0,
        "retMsg": "OK",
        "result": {"category": "linear", "list": items, "nextPageCursor": cursor},
        "retExtInfo": {},
        "time": 1786540363844,
    }


BYBIT_PAGES = [
    bybit_page(
        [bybit_item("BTCUSDT", "BTC"), bybit_item("ETHUSDT", "ETH", tick="0.01", step="0.01")],
        "first%3D10000SATSUSDT%26last%3DETHUSDT",
    ),
    bybit_page(
        [
            bybit_item("SHIB1000USDT", "SHIB1000", tick="0.000001", step="10"),
            bybit_item("BTCUSDT-26DEC26", "BTC", contract_type="LinearFutures"),
            bybit_item("ETHPERP", "ETH", quote="USDC"),
        ],
        "first%3DETHPERP%26last%3DXRPUSDT",
    ),
    bybit_page([bybit_item("XRPUSDT", "XRP", status="PreLaunch", tick="0.0001", step="1")], ""),
]


@pytest.fixture(scope="module")
def binance() -> list[Instrument]:
    return parse_binance_exchange_info(load_json("binance_usdm_rest_exchangeInfo_2021-07-21.json"))


@pytest.fixture(scope="module")
def bybit() -> list[Instrument]:
    return parse_bybit_instruments(BYBIT_PAGES)


def names(venue: Exchange, symbol: str) -> str:
    """A canonical symbol's name on ``venue`` (Bybit's known renames)."""
    return bybit_name(symbol) if venue is Exchange.BYBIT else symbol


def bybit_name(symbol: str) -> str:
    listing = KNOWN_BYBIT_LISTINGS.get(symbol)
    return symbol if listing is None else listing.venue_symbol


# Parsing


def test_binance_exchange_info_lists_every_symbol(binance: list[Instrument]) -> None:
    assert len(binance) == 122
    assert sum(i.tradable for i in binance) == 117  # the USDT perpetuals in TRADING
    btc = next(i for i in binance if i.symbol == "BTCUSDT")
    assert btc == Instrument(
        Exchange.BINANCE, "BTCUSDT", "BTC", "USDT", 0.01, 0.001, True, "TRADING", "PERPETUAL"
    )


@pytest.mark.parametrize(
    ("symbol", "status", "contract_type", "quote"),
    [
        ("BTCBUSD", "TRADING", "PERPETUAL", "BUSD"),
        ("BTCSTUSDT", "PENDING_TRADING", "", "USDT"),
        ("BTCUSDT_210924", "TRADING", "CURRENT_QUARTER", "USDT"),
    ],
)
def test_binance_untradable_contracts(
    binance: list[Instrument], symbol: str, status: str, contract_type: str, quote: str
) -> None:
    instrument = next(i for i in binance if i.symbol == symbol)
    assert (instrument.status, instrument.contract_type, instrument.quote) == (
        status,
        contract_type,
        quote,
    )
    assert not instrument.tradable


def test_bybit_pages_are_joined(bybit: list[Instrument]) -> None:
    assert [i.symbol for i in bybit] == [
        "BTCUSDT",
        "ETHUSDT",
        "SHIB1000USDT",
        "BTCUSDT-26DEC26",
        "ETHPERP",
        "XRPUSDT",
    ]
    assert [i.symbol for i in bybit if i.tradable] == ["BTCUSDT", "ETHUSDT", "SHIB1000USDT"]
    shib = bybit[2]
    assert (shib.base, shib.quote, shib.tick_size, shib.step_size) == (
        "SHIB1000",
        "USDT",
        0.000001,
        10.0,
    )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ([], MalformedFrame),
        ({"symbols": "x"}, MalformedFrame),
        ({"symbols": [{"symbol": "BTCUSDT"}]}, MalformedFrame),
    ],
)
def test_binance_malformed(data: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_binance_exchange_info(data)


def test_unusable_filters_leave_one_contract_untradable_not_the_list() -> None:
    item = {
        "symbol": "BTCUSDT",
        "status": "TRADING",
        "contractType": "PERPETUAL",
        "baseAsset": "BTC",
        "quoteAsset": "USDT",
        "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01"}],  # no LOT_SIZE
    }
    eth = {**item, "symbol": "ETHUSDT", "baseAsset": "ETH"}
    eth["filters"] = [*item["filters"], {"filterType": "LOT_SIZE", "stepSize": "0.001"}]
    btc, ok = parse_binance_exchange_info({"symbols": [item, eth]})
    assert not btc.tradable and "stepSize" in btc.problem and ok.tradable
    (bad,) = parse_bybit_instruments([bybit_page([bybit_item("BTCUSDT", "BTC", tick="0")], "")])
    assert not bad.tradable and bad.problem.startswith("unusable filters: bybit: field 'tickSize'")
    check = find_listed(["BTCUSDT"], {Exchange.BINANCE: [btc], Exchange.BYBIT: [bad]}, names)
    assert check.problems[0] == "BTCUSDT: not tradable on any watched exchange"
    assert check.problems[1] == (
        "BTCUSDT: Binance unusable filters: binance: BTCUSDT: missing field 'stepSize'"
    )


def test_a_real_list_with_a_zero_tick_parses() -> None:
    # Binance 2025-12-24: OPENUSDT, PENDING_TRADING, has tickSize "0".
    data = load_json("binance_usdm_rest_exchangeInfo_2025-12-24.json")
    listed = {i.symbol: i for i in parse_binance_exchange_info(data)}
    assert len(listed) == 660 and not listed["OPENUSDT"].tradable
    assert listed["1000PEPEUSDT"].tradable and listed["1MBABYDOGEUSDT"].tradable


@pytest.mark.parametrize(
    ("page", "error"),
    [
        ({"retCode": 10001, "retMsg": "params error", "result": {}}, FrameError),
        ({"retCode": 0, "result": {"list": None}}, MalformedFrame),
        ({"retCode": 0, "result": {"list": [{"symbol": "BTCUSDT"}]}}, MalformedFrame),
    ],
)
def test_bybit_malformed(page: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_bybit_instruments([page])


# the check of requested symbols (detector.venues.listing) on the real lists


@pytest.mark.parametrize(
    ("requested", "ok", "problems"),
    [
        (["btcusdt", "ETHUSDT"], ["BTCUSDT", "ETHUSDT"], []),
        (["1000SHIBUSDT"], ["1000SHIBUSDT"], []),
        (
            ["SUSHIUSDT"],
            [],
            [
                "SUSHIUSDT: tradable on Binance only, so not watched",
                "SUSHIUSDT: not listed on Bybit",
            ],
        ),
        (
            ["BTCSTUSDT"],
            [],
            [
                "BTCSTUSDT: not tradable on any watched exchange",
                "BTCSTUSDT: Binance status PENDING_TRADING",
                "BTCSTUSDT: not listed on Bybit",
            ],
        ),
        (
            ["XRPUSDT"],
            [],
            [
                "XRPUSDT: tradable on Binance only, so not watched",
                "XRPUSDT: Bybit status PreLaunch",
            ],
        ),
        (
            ["BTCUSDT_210924"],
            [],
            [
                "BTCUSDT_210924: not tradable on any watched exchange",
                "BTCUSDT_210924: Binance contract type CURRENT_QUARTER, not PERPETUAL",
                "BTCUSDT_210924: not listed on Bybit",
            ],
        ),
        (
            ["BTCBUSD"],
            [],
            [
                "BTCBUSD: not tradable on any watched exchange",
                "BTCBUSD: Binance quote BUSD, not USDT",
                "BTCBUSD: not listed on Bybit",
            ],
        ),
        (["BTCUSTD"], [], ["BTCUSTD: listed on no watched exchange (did you mean BTCUSDT?)"]),
        (["QQQQQQ"], [], ["QQQQQQ: listed on no watched exchange"]),
        (["ETHUSDT", " ethusdt "], ["ETHUSDT"], []),  # duplicates collapse
    ],
)
def test_the_check_of_symbols_on_the_real_lists(
    binance: list[Instrument],
    bybit: list[Instrument],
    requested: list[str],
    ok: list[str],
    problems: list[str],
) -> None:
    check = find_listed(requested, {Exchange.BINANCE: binance, Exchange.BYBIT: bybit}, names)
    assert check.ok == ok
    assert check.problems == problems


def test_the_check_names_the_bybit_listing(binance: list[Instrument]) -> None:
    bybit = parse_bybit_instruments(
        [bybit_page([bybit_item("SHIB1000USDT", "SHIB1000", status="Closed")], "")]
    )
    check = find_listed(
        ["1000SHIBUSDT", "1000SATSUSDT"], {Exchange.BINANCE: binance, Exchange.BYBIT: bybit}, names
    )
    assert check.ok == []
    assert check.problems == [
        "1000SHIBUSDT: tradable on Binance only, so not watched",
        "1000SHIBUSDT: Bybit SHIB1000USDT status Closed",
        "1000SATSUSDT: listed on no watched exchange",
    ]


def test_the_check_without_binance_suggests_bybit_names() -> None:
    bybit = parse_bybit_instruments([bybit_page([bybit_item("ETHUSDT", "ETH")], "")])
    check = find_listed(
        ["ETHUSDTT", "ETHUSDT"], {Exchange.BINANCE: [], Exchange.BYBIT: bybit}, names
    )
    assert check.problems == [
        "ETHUSDTT: listed on no watched exchange (did you mean ETHUSDT?)",
        "ETHUSDT: tradable on Bybit only, so not watched",
        "ETHUSDT: not listed on Binance",
    ]


def test_the_check_names_a_missing_bybit_listing(binance: list[Instrument]) -> None:
    check = find_listed(
        ["ETHUSDT"],
        {Exchange.BINANCE: binance, Exchange.BYBIT: []},
        lambda venue, s: "ETH1000USDT" if venue is Exchange.BYBIT else s,
    )
    assert check.problems == [
        "ETHUSDT: tradable on Binance only, so not watched",
        "ETHUSDT: not listed on Bybit as ETH1000USDT",
    ]
