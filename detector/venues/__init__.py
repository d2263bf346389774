"""Venue modules: one exchange's stream names; its wire frames in, normalized events out (pure).

A venue is a module here (its parser, stream names and, in :mod:`detector.book`, its book's sync
rules) plus its clients; :func:`make_parser` is where the pipeline finds a venue's parser, so a new
venue is a new module and a line in :data:`PARSERS`.
"""

from __future__ import annotations

from collections.abc import Callable

from detector.models import Exchange
from detector.venues.base import VenueParser
from detector.venues.binance import BinanceParser
from detector.venues.bybit import BybitParser
from detector.venues.okx import OkxParser

PARSERS: dict[Exchange, Callable[[], VenueParser]] = {
    Exchange.BINANCE: BinanceParser,
    Exchange.BYBIT: BybitParser,
    Exchange.OKX: OkxParser,
}
"""Each venue's parser class (a parser keeps per-connection state: one per pipeline)."""


def make_parser(exchange: Exchange) -> VenueParser:
    """A new parser of ``exchange``'s frames; ValueError for a venue without a module."""
    maker = PARSERS.get(exchange)
    if maker is None:
        raise ValueError(f"no venue module for {exchange.value}")
    return maker()
