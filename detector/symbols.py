"""Which venue symbol is which canonical symbol, and how to convert its prices and sizes.

Symbols do not map 1:1 across exchanges: Binance ``1000SHIBUSDT`` is Bybit ``SHIB1000USDT``, and
Binance ``1000SATSUSDT`` (1000 SATS per contract) faces Bybit ``10000SATSUSDT`` (10 000 per
contract). The canonical symbol is Binance's name and unit; a Bybit contract worth ``factor``
Binance units converts as ``price / factor`` and ``size * factor``. Digits are never stripped
blindly: a pair is only matched through this table or by identical names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import msgspec

from detector.models import (
    BookTicker,
    DepthDiff,
    DepthSnapshot,
    Exchange,
    FundingInterval,
    FundingRate,
    Level,
    Trade,
)

SymbolEvent = DepthSnapshot | DepthDiff | BookTicker | Trade | FundingRate | FundingInterval
"""The events that concern one symbol."""


@dataclass(frozen=True, slots=True)
class Listing:
    """One exchange's name for a canonical symbol and its unit factor (1 = same unit)."""

    venue_symbol: str
    factor: float = 1.0


# Known renames between Binance (canonical) and Bybit; everything else maps by identical name.
KNOWN_BYBIT_LISTINGS: dict[str, Listing] = {
    "1000SHIBUSDT": Listing("SHIB1000USDT"),
    "1000SATSUSDT": Listing("10000SATSUSDT", factor=10.0),
    "1000LUNCUSDT": Listing("1000LUNCUSDT"),
    "1000XECUSDT": Listing("1000XECUSDT"),
}


def okx_listing(canonical: str) -> Listing:
    """OKX's swap for a canonical symbol: ``BTCUSDT`` → ``BTC-USDT-SWAP``.

    OKX quotes the coin itself where Binance quotes a bundle (``1000PEPEUSDT`` is 1000 PEPE):
    ``PEPE-USDT-SWAP`` is worth a thousandth of a Binance unit (factor 0.001), so its prices
    scale up and its sizes down. (OKX sizes are contracts; the OKX parser turns them into coins
    with each instrument's ``ctVal`` before they get here.)
    """
    base = canonical.removesuffix("USDT")
    if base.startswith("1000") and base[4:5].isalpha():
        return Listing(f"{base[4:]}-USDT-SWAP", factor=0.001)
    return Listing(f"{base}-USDT-SWAP")


class SymbolMap:
    """Canonical symbols and their listing on each exchange."""

    def __init__(
        self,
        symbols: Iterable[str],
        bybit_listings: dict[str, Listing] | None = None,
        listings: Mapping[str, Mapping[Exchange, Listing]] | None = None,
    ) -> None:
        """``listings``: per canonical symbol, each venue's listing as the instrument lists
        mapped it (``detector.universe``); a venue or symbol it lacks gets the name rules."""
        known = KNOWN_BYBIT_LISTINGS if bybit_listings is None else bybit_listings
        mapped = listings or {}
        self.symbols: tuple[str, ...] = tuple(dict.fromkeys(s.upper() for s in symbols))
        self._known = known
        self._listings: dict[Exchange, dict[str, Listing]] = {
            exchange: {
                s: found
                if (found := mapped.get(s, {}).get(exchange))
                else self._default(exchange, s)
                for s in self.symbols
            }
            for exchange in (Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX)
        }
        # venue symbol -> (canonical, factor), per exchange: the lookup done for every frame
        self._reverse: dict[Exchange, dict[str, tuple[str, float]]] = {
            exchange: {lst.venue_symbol: (canon, lst.factor) for canon, lst in listings.items()}
            for exchange, listings in self._listings.items()
        }

    def _default(self, exchange: Exchange, symbol: str) -> Listing:
        """The name rules: Binance's name, Bybit's known renames, OKX's swap."""
        if exchange is Exchange.BINANCE:
            return Listing(symbol)
        if exchange is Exchange.BYBIT:
            return self._known.get(symbol, Listing(symbol))
        return okx_listing(symbol)

    def add(self, symbol: str, listings: Mapping[Exchange, Listing]) -> None:
        """Watch ``symbol`` too (a listing found by a refresh of the market), under ``listings``
        where given and the name rules elsewhere; replaces a symbol already watched."""
        self.remove(symbol)
        self.symbols = (*self.symbols, symbol)
        for exchange, names in self._listings.items():
            found = listings.get(exchange)
            listing = found if found is not None else self._default(exchange, symbol)
            names[symbol] = listing
            self._reverse[exchange][listing.venue_symbol] = (symbol, listing.factor)

    def remove(self, symbol: str) -> None:
        """Stop watching ``symbol``: its venue names map to nothing from now on."""
        if symbol not in self.symbols:
            return
        self.symbols = tuple(s for s in self.symbols if s != symbol)
        for exchange, names in self._listings.items():
            listing = names.pop(symbol)
            self._reverse[exchange].pop(listing.venue_symbol, None)

    def venue_symbol(self, exchange: Exchange, canonical: str) -> str:
        return self._listings[exchange][canonical].venue_symbol

    def canonical(self, exchange: Exchange, venue_symbol: str) -> tuple[str, float] | None:
        """(canonical symbol, factor) of a venue symbol, or None when it is not monitored."""
        return self._reverse[exchange].get(venue_symbol)

    def to_canonical(self, event: SymbolEvent) -> SymbolEvent | None:
        """The event renamed (and rescaled) to canonical terms; None for unmonitored symbols."""
        symbol = event.symbol
        found = self._reverse[event.exchange].get(symbol)
        if found is None:
            return None
        canonical, factor = found
        if factor != 1.0:
            return _rescale(event, canonical, factor)
        if canonical != symbol:
            return msgspec.structs.replace(event, symbol=canonical)
        return event


def _scale_levels(levels: list[Level], factor: float) -> list[Level]:
    return [(p / factor, q * factor) for p, q in levels]


def _rescale(event: SymbolEvent, canonical: str, factor: float) -> SymbolEvent:
    if isinstance(event, DepthSnapshot | DepthDiff):
        return msgspec.structs.replace(
            event,
            symbol=canonical,
            bids=_scale_levels(event.bids, factor),
            asks=_scale_levels(event.asks, factor),
        )
    if isinstance(event, BookTicker):
        return msgspec.structs.replace(
            event,
            symbol=canonical,
            bid_price=event.bid_price / factor,
            bid_qty=event.bid_qty * factor,
            ask_price=event.ask_price / factor,
            ask_qty=event.ask_qty * factor,
        )
    if isinstance(event, Trade):
        return msgspec.structs.replace(
            event, symbol=canonical, price=event.price / factor, qty=event.qty * factor
        )
    if isinstance(event, FundingRate):
        # The rate is a fraction and needs no unit; mark and index prices are per contract.
        return msgspec.structs.replace(
            event,
            symbol=canonical,
            mark_price=None if event.mark_price is None else event.mark_price / factor,
            index_price=None if event.index_price is None else event.index_price / factor,
        )
    return msgspec.structs.replace(event, symbol=canonical)
