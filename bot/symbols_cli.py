"""``arbwatch symbols``: the mapped universe of the watched venues, as a table or as JSON.

It reads each venue's instrument list now (as ``SYMBOLS=ALL`` does at start) and prints one row
per coin: the canonical symbol, each venue's own name with its multiplier (coins per quoted
unit), and its status — ``watched`` (two or more venues), ``excluded`` (``SYMBOLS_EXCLUDE``) or
``one venue``. Quarantines are found on prices once books sync, so they show in ``/status`` and
the health line of a running arbwatch, not here.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from bot.config import Settings
from detector.config import DetectorConfig
from detector.models import Exchange
from detector.recording import iter_lines
from detector.replay import recorded_symbols
from detector.simulator.instruments import SUPPORTED_SYMBOLS
from detector.symbols import SymbolMap
from detector.universe import ALL, Universe


def add_parser(sub: Any) -> None:
    """Register ``symbols`` on the CLI's subcommands."""
    symbols = sub.add_parser("symbols", help="list the mapped market of the watched exchanges")
    symbols.add_argument("--json", action="store_true", help="one JSON object per symbol")
    one_help = "also list the coins that trade on one watched exchange only"
    symbols.add_argument("--all", action="store_true", help=one_help)
    symbols.set_defaults(func=cmd_symbols)


def offline_config(settings: Settings, command: str, recording: Path | None) -> DetectorConfig:
    """The detector settings of ``replay`` and ``bench``, which read no instrument list:
    ``SYMBOLS=ALL`` there is every symbol the recording carries from two or more watched venues
    (less ``SYMBOLS_EXCLUDE``), or the simulator's market for a generated bench; ValueError
    when the recording carries none."""
    config = settings.detector_config()
    if settings.symbols != (ALL,):
        return config
    if recording is None:
        return replace(config, symbols=SUPPORTED_SYMBOLS)
    found = recorded_symbols(iter_lines(recording), settings.exchanges)
    names = SymbolMap(found)
    excluded = {s.upper() for s in settings.symbols_exclude}
    kept = tuple(
        s
        for s in found
        if not any(names.venue_symbol(e, s) in excluded for e in Exchange) and s not in excluded
    )
    venues = ", ".join(e.value for e in settings.exchanges)
    if not kept:
        raise ValueError(
            f"SYMBOLS=ALL: {recording} carries no symbol from two of {venues}"
            f" ({len(found)} found, {len(found) - len(kept)} of them excluded): is it a"
            " recording? Replay another file, or name the symbols in SYMBOLS"
        )
    shown = ", ".join(kept[:10]) + (f" and {len(kept) - 10} more" if len(kept) > 10 else "")
    print(f"arbwatch {command}: SYMBOLS=ALL: {len(kept)} recorded ({shown})", file=sys.stderr)
    return replace(config, symbols=kept)


def cmd_symbols(args: argparse.Namespace, settings: Settings) -> int:
    universe = asyncio.run(_discover(settings))
    venues = settings.exchanges
    rows = universe_rows(universe, venues, with_one_venue=args.all)
    if args.json:
        for row in rows:
            print(orjson.dumps(row).decode())
    else:
        print(format_table(rows, venues))
        print(universe.summary())
    for problem in universe.problems:
        print(f"note: {problem}")
    return 0


async def _discover(settings: Settings) -> Universe:
    # Imported here: the engine pulls in the network clients, which the other commands that
    # load this module (every one, through the CLI) do not need at start-up.
    from detector.engine import Detector

    detector = Detector(settings.detector_config(), settings.feed_urls())
    try:
        return await detector.discover()
    finally:
        await detector.stop()


def universe_rows(
    universe: Universe, venues: tuple[Exchange, ...], *, with_one_venue: bool = False
) -> list[dict[str, Any]]:
    """One plain row per coin: symbol, coin, status and, per venue, name and multiplier."""
    rows: list[dict[str, Any]] = []
    excluded = set(universe.excluded)
    for symbol, market in sorted(universe.markets.items()):
        listed = {
            venue.value: {
                "symbol": market.listings[venue].venue_symbol,
                "multiplier": market.multipliers[venue],
            }
            for venue in venues
            if venue in market.listings
        }
        row = {"symbol": symbol, "coin": market.coin, "status": "watched", "venues": listed}
        rows.append(row)
    for symbol in sorted(excluded):
        rows.append({"symbol": symbol, "coin": "", "status": "excluded", "venues": {}})
    if with_one_venue:
        for name, venue in sorted(universe.one_venue.items()):
            entry = {"symbol": name, "multiplier": None}
            rows.append(
                {"symbol": name, "coin": "", "status": "one venue", "venues": {venue.value: entry}}
            )
    return rows


def format_table(rows: list[dict[str, Any]], venues: tuple[Exchange, ...]) -> str:
    """Aligned columns: symbol, one per venue (``SHIB1000USDT x1000``), status."""

    def cell(row: dict[str, Any], venue: Exchange) -> str:
        entry = row["venues"].get(venue.value)
        if entry is None:
            return "-"
        multiplier = entry["multiplier"]
        scale = "" if multiplier in (None, 1.0) else f" x{multiplier:g}"
        return f"{entry['symbol']}{scale}"

    header = ["symbol", *(venue.value for venue in venues), "status"]
    table = [
        header,
        *([row["symbol"], *(cell(row, v) for v in venues), row["status"]] for row in rows),
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    )
