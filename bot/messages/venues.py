"""Which venues a signal is about, read from its details for any number of venues (pure).

The detector names venues by their ``Exchange`` value (``binance``, ``bybit``, ``okx``, …).
Arbitrage has two legs (``buy_exchange``, ``sell_exchange``, or its ``direction``
``buy_<venue>_sell_<venue>``); funding divergence a ``higher_exchange`` and a
``lower_exchange`` and per-venue keys ``<venue>_rate_8h_pct``, ``<venue>_next_funding_ms``,
``<venue>_interval_hours``; the other types one ``exchange``; momentum the other venues' mids in
``other_mids``. Signals stored before venues became N carry older keys (funding without
``lower_exchange`` and with a signed ``diff_pct``, momentum's ``other_exchange_mid``); every
reader here accepts both, since users' databases keep those signals for weeks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from detector.models import Exchange
from detector.signals import Signal, SignalType

VENUES: tuple[str, ...] = tuple(e.value for e in Exchange)
"""Every venue arbwatch knows, in its own order (the order venues are listed in)."""

_LABELS = {e.value: e.label for e in Exchange}  # OKX, not Okx: the detector names its venues
_OLD_PAIR = ("binance", "bybit")  # the two venues of signals from before N venues
_DIRECTION = re.compile(r"^buy_([a-z0-9]+)_sell_([a-z0-9]+)$")
_RATE_8H = "_rate_8h_pct"


def venue_name(value: Any) -> str:
    """``Binance`` for ``binance``, ``OKX`` for ``okx``; ``?`` when missing."""
    text = str(value or "?")
    return _LABELS.get(text, text.capitalize())


def venue_key(venue: str) -> tuple[int, str]:
    """Sort key: known venues in :data:`VENUES` order, then any other by name."""
    return (VENUES.index(venue) if venue in VENUES else len(VENUES), venue)


def arbitrage_legs(d: Mapping[str, Any]) -> tuple[str, str] | None:
    """(buy venue, sell venue) of an arbitrage signal's details; None when it does not say."""
    buy, sell = d.get("buy_exchange"), d.get("sell_exchange")
    if isinstance(buy, str) and isinstance(sell, str) and buy and sell:
        return buy, sell
    match = _DIRECTION.match(str(d.get("direction", "")))
    return None if match is None else (match.group(1), match.group(2))


@dataclass(frozen=True, slots=True)
class Funding:
    """A funding divergence as read from its details: each venue's 8-hour rate in percent,
    highest first, the venues of the highest and the lowest rate, and how far apart they are."""

    rates: tuple[tuple[str, float], ...]
    higher: str | None
    lower: str | None
    diff_pct: float  # higher minus lower, per 8 h, percentage points (NaN when unknown)


def read_funding(d: Mapping[str, Any]) -> Funding:
    """The funding figures of ``d``, new keys or old (see module doc)."""
    found = {
        key.removesuffix(_RATE_8H): float(value)
        for key, value in d.items()
        if key.endswith(_RATE_8H) and isinstance(value, int | float)
    }
    rates = tuple(sorted(found.items(), key=lambda vr: (-vr[1], venue_key(vr[0]))))
    higher = d.get("higher_exchange")
    higher = higher if isinstance(higher, str) and higher else (rates[0][0] if rates else None)
    lower = d.get("lower_exchange")
    if not (isinstance(lower, str) and lower):
        # Before N venues: two rates, so the lower one is the other venue's.
        others = [venue for venue, _ in rates if venue != higher]
        lower = others[-1] if others else None
    if higher in found and lower in found:
        diff = found[higher] - found[lower]
    else:
        raw = d.get("diff_pct")  # old signals: binance minus bybit, signed
        diff = abs(float(raw)) if isinstance(raw, int | float) else float("nan")
    return Funding(rates, higher, lower, diff)


def other_mids(d: Mapping[str, Any]) -> dict[str, float | None]:
    """A momentum signal's mids of the other venues (None: that venue had no live mid), in
    venue order; from ``other_mids``, or from an old signal's ``other_exchange_mid``."""
    mids: dict[str, float | None] = {}
    given = d.get("other_mids")
    if isinstance(given, Mapping):
        for venue, mid in given.items():
            mids[str(venue)] = float(mid) if isinstance(mid, int | float) else None
    elif "other_exchange_mid" in d and d.get("exchange") in _OLD_PAIR:
        other = _OLD_PAIR[1] if d.get("exchange") == _OLD_PAIR[0] else _OLD_PAIR[0]
        mid = d.get("other_exchange_mid")
        mids[other] = float(mid) if isinstance(mid, int | float) else None
    return dict(sorted(mids.items(), key=lambda item: venue_key(item[0])))


def signal_venues(signal: Signal) -> frozenset[str]:
    """The venues a signal is about: both legs of an arbitrage, the higher and lower venue of a
    funding divergence, the one venue of any other type; empty when the details do not say."""
    d = signal.details
    if signal.type is SignalType.ARBITRAGE:
        legs = arbitrage_legs(d)
        return frozenset(legs) if legs else frozenset()
    if signal.type is SignalType.FUNDING_RATE_DIVERGENCE:
        funding = read_funding(d)
        return frozenset(v for v in (funding.higher, funding.lower) if v is not None)
    venue = d.get("exchange")
    return frozenset((venue,)) if isinstance(venue, str) and venue else frozenset()


def venue_list(venues: Iterable[str]) -> str:
    """``Binance, Bybit and OKX``: venue names in venue order, joined for a sentence."""
    names = [venue_name(v) for v in sorted(venues, key=venue_key)]
    if len(names) < 2:
        return names[0] if names else "no venue"
    return f"{', '.join(names[:-1])} and {names[-1]}"
