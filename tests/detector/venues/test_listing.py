"""The N-venue check of symbols: watched on the venues that trade them, if two or more do."""

from __future__ import annotations

from detector.models import Exchange
from detector.symbols import SymbolMap
from detector.venues.instruments import Instrument
from detector.venues.listing import find_listed

BINANCE, BYBIT, OKX = Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX


def inst(venue: Exchange, symbol: str, *, tradable: bool = True, quote: str = "USDT") -> Instrument:
    status = "live" if tradable else "suspend"
    return Instrument(venue, symbol, symbol[:3], quote, 0.1, 0.01, tradable, status, "SWAP")


def check(requested: list[str], listed: dict[Exchange, list[Instrument]]) -> tuple[dict, list]:
    mapping = SymbolMap(requested)
    found = find_listed(requested, listed, mapping.venue_symbol)
    return found.venues, found.problems


def test_a_symbol_is_watched_on_every_venue_that_trades_it() -> None:
    venues, problems = check(
        ["BTCUSDT", "ETHUSDT"],
        {
            BINANCE: [inst(BINANCE, "BTCUSDT"), inst(BINANCE, "ETHUSDT")],
            BYBIT: [inst(BYBIT, "BTCUSDT")],
            OKX: [inst(OKX, "BTC-USDT-SWAP"), inst(OKX, "ETH-USDT-SWAP")],
        },
    )
    assert venues == {"BTCUSDT": (BINANCE, BYBIT, OKX), "ETHUSDT": (BINANCE, OKX)}
    assert problems == ["ETHUSDT: not listed on Bybit"]


def test_one_venue_only_or_none_is_not_watched_and_says_why() -> None:
    venues, problems = check(
        ["SOLUSDT", "BTCUSTD", "1000PEPEUSDT"],
        {
            BINANCE: [inst(BINANCE, "SOLUSDT"), inst(BINANCE, "BTCUSDT")],
            BYBIT: [inst(BYBIT, "SOLUSDT", tradable=False)],
            OKX: [inst(OKX, "PEPE-USDT-SWAP"), inst(OKX, "BTC-USDT-SWAP")],
        },
    )
    assert venues == {}
    assert problems == [
        "SOLUSDT: tradable on Binance only, so not watched",
        "SOLUSDT: Bybit status suspend",
        "SOLUSDT: not listed on OKX as SOL-USDT-SWAP",
        "BTCUSTD: listed on no watched exchange (did you mean BTCUSDT?)",
        "1000PEPEUSDT: tradable on OKX only, so not watched",
        "1000PEPEUSDT: not listed on Binance",
        "1000PEPEUSDT: not listed on Bybit",
    ]
