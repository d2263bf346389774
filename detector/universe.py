"""The whole market: which contracts of the watched venues are one coin, and in what unit (pure).

Names do not say which coins are the same: Binance ``1000SHIBUSDT`` is Bybit ``SHIB1000USDT``
and OKX ``SHIB-USDT-SWAP``; Binance ``1000SATSUSDT`` (1,000 SATS a unit) faces Bybit
``10000SATSUSDT`` (10,000). Contracts are matched by **identity**: the base coin and the number of
coins one quoted unit stands for (the multiplier), read from each venue's instrument list —
Binance ``baseAsset`` and Bybit ``baseCoin`` carry it as a power-of-ten prefix or suffix
(``1000SHIB``, ``SHIB1000``, ``10000SATS``, ``1MBABYDOGE``); OKX quotes the coin itself
(``ctValCcy``; its sizes are turned into coins with ``ctVal`` by the parser).

A coin traded on two or more venues becomes one canonical symbol, named and measured as on the
first venue of :data:`CANONICAL_ORDER` that lists it; every other venue's listing carries the
factor its prices are divided by (and sizes multiplied by) to reach that unit. A multiplier read
wrongly (a coin whose real name starts with ``1000``) or two coins behind one name is caught
later, on prices: see ``detector.quarantine``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from detector.models import Exchange
from detector.symbols import Listing
from detector.venues.instruments import Instrument

CANONICAL_ORDER = (Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX)
"""Whose name and unit a canonical symbol takes, first listed first."""

ALL = "ALL"
"""``SYMBOLS=ALL``: every coin that trades on two or more watched venues."""

_PREFIX = re.compile(r"^(1(?:0{3,})|1M)([A-Z][A-Z0-9]*)$")
_SUFFIX = re.compile(r"^([A-Z][A-Z0-9]*?[A-Z])(1(?:0{3,}))$")


def coin_unit(instrument: Instrument) -> tuple[str, float]:
    """(coin, coins per quoted unit) of a contract: ``1000SHIB`` → ``("SHIB", 1000.0)``.

    Only powers of ten from 1,000 count as multipliers (``1INCH`` is a coin, not 1 INCH), and
    ``1M`` is a million. OKX prices are per coin: its multiplier is always 1.
    """
    base = instrument.base.upper()
    if instrument.exchange is Exchange.OKX:
        return base, 1.0
    prefix = _PREFIX.match(base)
    if prefix is not None:
        digits, coin = prefix.groups()
        return coin, 1e6 if digits == "1M" else float(digits)
    suffix = _SUFFIX.match(base)
    if suffix is not None:
        coin, digits = suffix.groups()
        return coin, float(digits)
    return base, 1.0


@dataclass(frozen=True, slots=True)
class Market:
    """One coin on the venues that trade it, in the canonical symbol's unit."""

    symbol: str  # canonical: the name on the first venue of CANONICAL_ORDER that lists it
    coin: str
    multiplier: float  # coins per canonical unit
    listings: dict[Exchange, Listing]  # the venue's name and factor to the canonical unit
    multipliers: dict[Exchange, float]  # coins per unit on each venue, as listed


@dataclass(frozen=True, slots=True)
class Universe:
    """The mapped market of the watched venues."""

    markets: dict[str, Market] = field(default_factory=dict)  # canonical symbol -> market
    one_venue: dict[str, Exchange] = field(default_factory=dict)  # venue symbol -> its venue
    excluded: list[str] = field(default_factory=list)  # canonical symbols left out on request
    problems: list[str] = field(default_factory=list)  # one line each

    @property
    def symbols(self) -> list[str]:
        return list(self.markets)

    def listings(self) -> dict[str, dict[Exchange, Listing]]:
        return {symbol: market.listings for symbol, market in self.markets.items()}

    def venues(self) -> dict[str, tuple[Exchange, ...]]:
        return {symbol: tuple(market.listings) for symbol, market in self.markets.items()}

    def summary(self) -> str:
        """One line: how many coins are watched, on which venues, and what was left out."""
        per_venue = {
            venue.label: sum(venue in m.listings for m in self.markets.values())
            for venue in CANONICAL_ORDER
            if any(venue in m.listings for m in self.markets.values())
        }
        venues = ", ".join(f"{label} {count}" for label, count in per_venue.items())
        scaled = sum(len(set(m.multipliers.values())) > 1 for m in self.markets.values())
        parts = [
            f"{len(self.markets)} symbols on two or more venues ({venues or 'none'})",
            f"{scaled} with different multipliers",
            f"{len(self.one_venue)} on one venue only",
        ]
        if self.excluded:
            parts.append(f"{len(self.excluded)} excluded")
        return "; ".join(parts)


def build_universe(
    instruments: Mapping[Exchange, Sequence[Instrument]],
    exclude: Iterable[str] = (),
) -> Universe:
    """Map the tradable instruments of each venue (in ``instruments``) by coin and multiplier.

    ``exclude`` names are matched against canonical symbols and every venue's own name, so
    ``SHIB1000USDT`` excludes the whole SHIB market. A venue listing one coin twice (two
    multipliers) keeps the contract whose multiplier another venue shares, else the smaller one.
    """
    skip = {name.strip().upper() for name in exclude if name.strip()}
    by_coin: dict[str, dict[Exchange, list[tuple[float, Instrument]]]] = {}
    for venue in _ordered(instruments):
        for instrument in instruments[venue]:
            if not instrument.tradable:
                continue
            coin, multiplier = coin_unit(instrument)
            by_coin.setdefault(coin, {}).setdefault(venue, []).append((multiplier, instrument))
    universe = Universe()
    for coin in sorted(by_coin):
        chosen = _one_per_venue(coin, by_coin[coin], universe.problems)
        if len(chosen) < 2:
            for venue, (_, instrument) in chosen.items():
                universe.one_venue[instrument.symbol] = venue
            continue
        market = _market(coin, chosen)
        names = {market.symbol, *(listing.venue_symbol for listing in market.listings.values())}
        if names & skip:
            universe.excluded.append(market.symbol)
            continue
        universe.markets[market.symbol] = market
    return universe


def _ordered(instruments: Mapping[Exchange, Sequence[Instrument]]) -> list[Exchange]:
    return [venue for venue in CANONICAL_ORDER if venue in instruments] + [
        venue for venue in instruments if venue not in CANONICAL_ORDER
    ]


def _one_per_venue(
    coin: str,
    listed: dict[Exchange, list[tuple[float, Instrument]]],
    problems: list[str],
) -> dict[Exchange, tuple[float, Instrument]]:
    everywhere = [multiplier for contracts in listed.values() for multiplier, _ in contracts]
    chosen: dict[Exchange, tuple[float, Instrument]] = {}
    for venue, contracts in listed.items():
        if len(contracts) == 1:
            chosen[venue] = contracts[0]
            continue
        shared = [c for c in contracts if everywhere.count(c[0]) > 1]
        pick = min(shared or contracts, key=lambda c: c[0])
        chosen[venue] = pick
        others = ", ".join(i.symbol for _, i in contracts if i is not pick[1])
        problems.append(
            f"{coin}: {venue.label} lists it {len(contracts)} times; "
            f"watching {pick[1].symbol}, not {others}"
        )
    return chosen


def _market(coin: str, chosen: dict[Exchange, tuple[float, Instrument]]) -> Market:
    first_venue = next(iter(chosen))
    canonical_multiplier, first = chosen[first_venue]
    symbol = f"{coin}USDT" if first_venue is Exchange.OKX else first.symbol
    listings = {
        venue: Listing(instrument.symbol, factor=multiplier / canonical_multiplier)
        for venue, (multiplier, instrument) in chosen.items()
    }
    return Market(
        symbol=symbol,
        coin=coin,
        multiplier=canonical_multiplier,
        listings=listings,
        multipliers={venue: multiplier for venue, (multiplier, _) in chosen.items()},
    )
