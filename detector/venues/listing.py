"""Which requested symbols trade on which watched venues: the N-venue check of symbols (pure).

A symbol is watched when it trades as a USDT perpetual on two or more of the watched venues
(only then can one venue's book cross another's); it is watched on exactly those venues. A venue
that lacks it is reported, and so is a symbol left with fewer than two venues; a name that no
venue lists looks like a typo and gets the closest tradable name as a hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from detector.models import Exchange
from detector.venues.instruments import TRADING, Instrument


@dataclass(frozen=True, slots=True)
class Listed:
    """The requested symbols split into the watched ones (with their venues) and problems."""

    venues: dict[str, tuple[Exchange, ...]] = field(default_factory=dict)  # in request order
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> list[str]:
        return list(self.venues)


def find_listed(
    requested: Sequence[str],
    instruments: Mapping[Exchange, Sequence[Instrument]],
    venue_name: Callable[[Exchange, str], str],
) -> Listed:
    """Check ``requested`` (canonical names) against each venue's ``instruments``, in the order
    of ``instruments``; ``venue_name(venue, symbol)`` is the symbol's name on that venue."""
    by_name = {venue: {i.symbol: i for i in listed} for venue, listed in instruments.items()}
    listed = Listed()
    for symbol in dict.fromkeys(s.strip().upper() for s in requested):
        trading: list[Exchange] = []
        notes: list[str] = []
        seen = False
        for venue, names in by_name.items():
            name = venue_name(venue, symbol)
            found = names.get(name)
            label = venue.label + ("" if name == symbol else f" {name}")
            if found is None:
                renamed = "" if name == symbol else f" as {name}"
                notes.append(f"{symbol}: not listed on {venue.label}{renamed}")
            elif not found.tradable:
                seen = True
                notes.append(f"{symbol}: {_why_not(found, label)}")
            else:
                seen = True
                trading.append(venue)
        if len(trading) >= 2:
            listed.venues[symbol] = tuple(trading)
            listed.problems.extend(notes)  # watched all the same, on the venues that have it
        elif not seen:
            listed.problems.append(
                f"{symbol}: listed on no watched exchange{_suggest(symbol, instruments)}"
            )
        else:
            listed.problems.append(
                f"{symbol}: tradable on {trading[0].label} only, so not watched"
                if trading
                else f"{symbol}: not tradable on any watched exchange"
            )
            listed.problems.extend(notes)
    return listed


def _why_not(instrument: Instrument, label: str) -> str:
    """Why an instrument is not tradable, naming the first rule it breaks."""
    trading, perpetual = TRADING[instrument.exchange]
    if instrument.problem:
        return f"{label} {instrument.problem}"
    if instrument.status != trading:
        return f"{label} status {instrument.status or '(none)'}"
    if instrument.contract_type != perpetual:
        return f"{label} contract type {instrument.contract_type or '(none)'}, not {perpetual}"
    return f"{label} quote {instrument.quote}, not USDT"


def _suggest(symbol: str, instruments: Mapping[Exchange, Sequence[Instrument]]) -> str:
    """ " (did you mean BTCUSDT?)" for a close match among the canonical-looking names."""
    names = sorted({i.symbol for listed in instruments.values() for i in listed if i.tradable})
    close = difflib.get_close_matches(symbol, names, n=1, cutoff=0.8)
    return f" (did you mean {close[0]}?)" if close else ""
