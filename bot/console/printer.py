"""The console's signal printer: a line (or a JSON object) per signal, and a line per close.

JSON output is exactly :meth:`Signal.to_dict`, one object per line, and nothing else: closes are
told in text mode only. A close is told only for an opportunity whose signal was printed.
"""

from __future__ import annotations

import sys
from datetime import tzinfo
from typing import TextIO

import orjson

from bot.console.signals import format_closed, format_opportunity_stats, format_signal
from detector.analyzer import TrackedOpportunity
from detector.pipeline import Pipeline
from detector.signals import Signal, SignalStrength, SignalType


class SignalPrinter:
    """Call it with each signal; :meth:`closed` with each opportunity that closes."""

    def __init__(
        self,
        out: TextIO,
        *,
        json_out: bool = False,
        wide: bool = False,
        tz: tzinfo | None = None,
    ) -> None:
        self.out = out
        self.json_out = json_out
        self.wide = wide
        self.tz = tz
        # Opportunities announced on this console, with the strength last printed for each.
        self._announced: dict[str, SignalStrength] = {}

    def __call__(self, signal: Signal) -> None:
        if self.json_out:
            self.out.write(orjson.dumps(signal.to_dict()).decode() + "\n")
        else:
            if signal.type is SignalType.ARBITRAGE:
                self._announced[str(signal.details.get("opportunity_id"))] = signal.strength
            self.out.write(format_signal(signal, tz=self.tz, wide=self.wide) + "\n")
        self.out.flush()

    def closed(self, tracked: TrackedOpportunity) -> None:
        """Tell how an announced opportunity ended (its duration, peak and why it closed)."""
        strength = self._announced.pop(tracked.id, None)
        if strength is None:
            return
        self.out.write(format_closed(tracked, strength, tz=self.tz) + "\n")
        self.out.flush()


def signal_printer(
    json_out: bool,
    out: TextIO,
    *,
    wide: bool = False,
    tz: tzinfo | None = None,
) -> SignalPrinter:
    """Print each signal as a readable line, or as one JSON object per line."""
    return SignalPrinter(out, json_out=json_out, wide=wide, tz=tz)


def print_summary(pipeline: Pipeline, headline: str) -> None:
    """What a command ends with, on stderr: ``headline, N events``, then the signals by type,
    the repairs and the opportunities."""
    stats = pipeline.stats.to_dict()
    opp = pipeline.analyzer.stats()
    print(f"{headline}, {stats['events']} events", file=sys.stderr)
    for name in ("signals", "frame_errors", "gaps", "resyncs", "stale", "desyncs"):
        if stats[name]:
            text = ", ".join(f"{k} {v}" for k, v in stats[name].items())
            print(f"  {name.replace('_', ' ')}: {text}", file=sys.stderr)
    if stats["refused_topics"]:
        print(f"  refused topics: {', '.join(stats['refused_topics'])}", file=sys.stderr)
    print(f"  opportunities: {format_opportunity_stats(opp)}", file=sys.stderr)
    for symbol in pipeline.symbols.symbols:
        per_symbol = pipeline.analyzer.stats(symbol)
        if per_symbol.opened:
            print(f"    {symbol}: {format_opportunity_stats(per_symbol)}", file=sys.stderr)
