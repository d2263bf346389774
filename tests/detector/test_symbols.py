"""Symbol mapping across exchanges: renames and unit factors, never digit-stripping."""

from __future__ import annotations

import pytest

from detector.models import DepthDiff, Exchange, FundingRate, Side, Trade
from detector.symbols import SymbolMap


def _diff(exchange: Exchange, symbol: str) -> DepthDiff:
    return DepthDiff(exchange, symbol, [(0.05, 10.0)], [(0.06, 0.0)], 5, 5, None, 1, 2)


def test_identity_for_plain_symbols() -> None:
    symbols = SymbolMap(["btcusdt", "ETHUSDT", "BTCUSDT"])
    assert symbols.symbols == ("BTCUSDT", "ETHUSDT")
    event = _diff(Exchange.BYBIT, "BTCUSDT")
    assert symbols.to_canonical(event) is event  # no copy on the hot path
    assert symbols.venue_symbol(Exchange.BYBIT, "ETHUSDT") == "ETHUSDT"


def test_unmonitored_symbols_are_none() -> None:
    symbols = SymbolMap(["BTCUSDT"])
    assert symbols.to_canonical(_diff(Exchange.BINANCE, "ETHUSDT")) is None
    # Digits are not stripped: Bybit 1000BTCUSDT is not BTCUSDT.
    assert symbols.canonical(Exchange.BYBIT, "1000BTCUSDT") is None


def test_bybit_rename_same_unit() -> None:
    symbols = SymbolMap(["1000SHIBUSDT"])
    assert symbols.venue_symbol(Exchange.BYBIT, "1000SHIBUSDT") == "SHIB1000USDT"
    event = symbols.to_canonical(_diff(Exchange.BYBIT, "SHIB1000USDT"))
    assert isinstance(event, DepthDiff)
    assert event.symbol == "1000SHIBUSDT"
    assert event.bids == [(0.05, 10.0)]
    assert symbols.to_canonical(_diff(Exchange.BYBIT, "1000SHIBUSDT")) is None


def test_bybit_contract_ten_times_larger_is_rescaled() -> None:
    symbols = SymbolMap(["1000SATSUSDT"])
    event = symbols.to_canonical(_diff(Exchange.BYBIT, "10000SATSUSDT"))
    assert isinstance(event, DepthDiff)
    assert event.symbol == "1000SATSUSDT"
    ((price, size),) = event.bids
    assert price == pytest.approx(0.005) and size == pytest.approx(100.0)
    assert event.asks == [(pytest.approx(0.006), 0.0)]
    trade = Trade(Exchange.BYBIT, "10000SATSUSDT", 0.05, 3.0, Side.BUY, 1, 2)
    scaled = symbols.to_canonical(trade)
    assert isinstance(scaled, Trade)
    assert (scaled.price, scaled.qty) == (pytest.approx(0.005), pytest.approx(30.0))
    funding = FundingRate(Exchange.BYBIT, "10000SATSUSDT", 0.0001, 8, None, 0.05, None, 1, 2)
    scaled_funding = symbols.to_canonical(funding)
    assert isinstance(scaled_funding, FundingRate)
    assert scaled_funding.rate == 0.0001
    assert scaled_funding.mark_price == pytest.approx(0.005)
    # The Binance side is the canonical unit and stays untouched.
    binance = _diff(Exchange.BINANCE, "1000SATSUSDT")
    assert symbols.to_canonical(binance) is binance
