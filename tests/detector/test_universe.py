"""The whole market mapped by coin and multiplier, on the venues' real instrument lists."""

from __future__ import annotations

import pytest

from detector.models import Exchange
from detector.symbols import Listing, SymbolMap
from detector.universe import build_universe, coin_unit
from detector.venues.instruments import (
    Instrument,
    parse_binance_exchange_info,
    parse_bybit_instruments,
    parse_okx_instruments,
)
from tests.conftest import load_json

BINANCE, BYBIT, OKX = Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX


@pytest.fixture(scope="module")
def real() -> dict[Exchange, list[Instrument]]:
    return {
        BINANCE: parse_binance_exchange_info(
            load_json("binance_usdm_rest_exchangeInfo_2025-12-24.json")
        ),
        BYBIT: parse_bybit_instruments(
            [load_json("bybit_v5_rest_instruments_info_linear_2026-08-09.json")]
        ),
        OKX: parse_okx_instruments(load_json("okx_v5_rest_instruments_SWAP_2022-05-13.json")),
    }


def one(instruments: list[Instrument], symbol: str) -> Instrument:
    return next(i for i in instruments if i.symbol == symbol)


@pytest.mark.parametrize(
    ("venue", "symbol", "unit"),
    [
        (BINANCE, "1000SHIBUSDT", ("SHIB", 1000.0)),
        (BINANCE, "1000SATSUSDT", ("SATS", 1000.0)),
        (BINANCE, "1MBABYDOGEUSDT", ("BABYDOGE", 1e6)),
        (BINANCE, "1000000MOGUSDT", ("MOG", 1e6)),
        (BINANCE, "1INCHUSDT", ("1INCH", 1.0)),  # a coin whose name starts with a digit
        (BINANCE, "BTCUSDT", ("BTC", 1.0)),
        (BYBIT, "SHIB1000USDT", ("SHIB", 1000.0)),
        (BYBIT, "10000SATSUSDT", ("SATS", 10000.0)),
        (BYBIT, "1000000BABYDOGEUSDT", ("BABYDOGE", 1e6)),
        (BYBIT, "1000PEPEUSDT", ("PEPE", 1000.0)),
        (BYBIT, "1INCHUSDT", ("1INCH", 1.0)),
        (OKX, "SHIB-USDT-SWAP", ("SHIB", 1.0)),  # prices per coin; sizes via ctVal
    ],
)
def test_coin_and_multiplier_of_real_contracts(
    real: dict[Exchange, list[Instrument]], venue: Exchange, symbol: str, unit: tuple[str, float]
) -> None:
    assert coin_unit(one(real[venue], symbol)) == unit


def test_the_real_market_maps_by_identity(real: dict[Exchange, list[Instrument]]) -> None:
    universe = build_universe(real)
    markets = universe.markets
    shib = markets["1000SHIBUSDT"]
    assert shib.listings == {
        BINANCE: Listing("1000SHIBUSDT"),
        BYBIT: Listing("SHIB1000USDT"),
        OKX: Listing("SHIB-USDT-SWAP", factor=0.001),
    }
    assert markets["1000SATSUSDT"].listings == {
        BINANCE: Listing("1000SATSUSDT"),
        BYBIT: Listing("10000SATSUSDT", factor=10.0),
    }
    assert markets["1MBABYDOGEUSDT"].listings[BYBIT] == Listing("1000000BABYDOGEUSDT")
    assert markets["BTCUSDT"].listings[OKX] == Listing("BTC-USDT-SWAP")
    # Bybit's USDC perpetual of the same coin (SHIB1000PERP) and Binance's quarterlies and
    # TRADIFI_PERPETUAL are not USDT perpetuals: never mapped.
    names = {lst.venue_symbol for m in markets.values() for lst in m.listings.values()}
    assert "SHIB1000PERP" not in names and "XAUUSDT" not in names
    assert not any("_" in name for name in names)
    # A coin on one venue only is reported, not watched.
    assert universe.one_venue and set(universe.one_venue).isdisjoint(names)
    # Every mapped name is unique per venue, and canonical names are Binance's where it lists it.
    for venue in (BINANCE, BYBIT, OKX):
        listed = [m.listings[venue].venue_symbol for m in markets.values() if venue in m.listings]
        assert len(listed) == len(set(listed))
    binance_tradable = {i.symbol for i in real[BINANCE] if i.tradable}
    for symbol, market in markets.items():
        assert (BINANCE in market.listings) == (symbol in binance_tradable)
        assert len(market.listings) >= 2
    assert len(markets) > 400  # the real common market of 2025-26, not three majors


def test_a_bybit_and_okx_coin_takes_the_bybit_name(real: dict[Exchange, list[Instrument]]) -> None:
    universe = build_universe({BYBIT: real[BYBIT], OKX: real[OKX]})
    assert universe.markets["SHIB1000USDT"].listings[OKX] == Listing("SHIB-USDT-SWAP", 0.001)
    assert universe.markets["SHIB1000USDT"].multiplier == 1000.0


def test_exclusions_match_any_venue_name(real: dict[Exchange, list[Instrument]]) -> None:
    universe = build_universe(real, exclude=["shib1000usdt", " BTCUSDT", ""])
    assert "1000SHIBUSDT" not in universe.markets and "BTCUSDT" not in universe.markets
    assert sorted(universe.excluded) == ["1000SHIBUSDT", "BTCUSDT"]
    assert "ETHUSDT" in universe.markets
    assert "2 excluded" in universe.summary()


def test_the_symbol_map_converts_with_the_universe_factors(
    real: dict[Exchange, list[Instrument]],
) -> None:
    universe = build_universe(real)
    mapping = SymbolMap(universe.symbols, listings=universe.listings())
    assert mapping.canonical(BYBIT, "10000SATSUSDT") == ("1000SATSUSDT", 10.0)
    assert mapping.canonical(OKX, "SHIB-USDT-SWAP") == ("1000SHIBUSDT", 0.001)
    assert mapping.venue_symbol(BYBIT, "1000SHIBUSDT") == "SHIB1000USDT"
    assert mapping.canonical(BYBIT, "SHIB1000PERP") is None


def instrument(venue: Exchange, symbol: str, base: str, tradable: bool = True) -> Instrument:
    return Instrument(venue, symbol, base, "USDT", 0.1, 1.0, tradable)


def test_a_coin_listed_twice_on_one_venue_keeps_the_shared_multiplier() -> None:
    universe = build_universe(
        {
            BINANCE: [instrument(BINANCE, "1000XUSDT", "1000X")],
            BYBIT: [
                instrument(BYBIT, "XUSDT", "X"),
                instrument(BYBIT, "1000XUSDT", "1000X"),
            ],
            OKX: [instrument(OKX, "Y-USDT-SWAP", "Y", tradable=False)],
        }
    )
    assert universe.markets["1000XUSDT"].listings[BYBIT] == Listing("1000XUSDT")
    assert universe.problems == ["X: Bybit lists it 2 times; watching 1000XUSDT, not XUSDT"]
    assert universe.one_venue == {}  # the untradable OKX contract is not even one-venue


def test_the_summary_counts(real: dict[Exchange, list[Instrument]]) -> None:
    universe = build_universe(real)
    summary = universe.summary()
    assert summary.startswith(f"{len(universe.markets)} symbols on two or more venues (Binance ")
    assert f"{len(universe.one_venue)} on one venue only" in summary
