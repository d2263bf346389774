"""The offline demo: a short scenario on the loopback simulator, with signal windows to match.

The default signal windows need a minute or two of history before spread, volume and momentum
can speak; the ``demo`` scenario (``detector.simulator.scenarios.demo``), which should show
every type within ~20 s, runs them with short windows. That is the one thing the demo changes,
and only for that scenario: the exchanges are simulated, the rest is the live detector, and
every other scenario (``showcase`` …) runs with the default windows, as ``run`` would.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from detector.config import DetectorConfig, SignalRules
from detector.simulator.instruments import (
    MAX_SYMBOLS,
    SUPPORTED_SYMBOLS,
    market_symbols,
    profile,
)

DEMO_RULES = SignalRules(
    spread_sample_s=0.25,
    spread_window=40,
    spread_warmup=12,
    volume_bucket_s=1.0,
    volume_history=8,
    volume_warmup=5,
    # One-second buckets of a calm market swing more than five-second ones: higher tiers keep
    # the demo's volume signals to the scripted spike.
    volume_ratio=(6.0, 10.0, 18.0),
    momentum_bar_s=0.5,
    momentum_window=10,
)
"""Short windows: warm-ups of 3 s (spread), 5 s (volume) and 5 s (momentum)."""

SHORT_WINDOW_SCENARIOS = frozenset({"demo"})
"""The scenarios sized for :data:`DEMO_RULES`; the others keep the configured windows."""


def demo_config(config: DetectorConfig, scenario: str = "demo") -> DetectorConfig:
    """``config`` with the demo's short signal windows if ``scenario`` is sized for them."""
    if scenario not in SHORT_WINDOW_SCENARIOS:
        return config
    return replace(config, rules=DEMO_RULES)


def warmup_s(rules: SignalRules) -> float:
    """Seconds of history the spread, volume and momentum detectors need before they speak."""
    return max(
        rules.spread_warmup * rules.spread_sample_s,
        rules.volume_warmup * rules.volume_bucket_s,
        rules.momentum_window * rules.momentum_bar_s,
    )


def format_warmup(rules: SignalRules) -> str:
    """The one-line note printed at start: which detectors wait, and for about how long."""
    return (
        f"spread, volume and momentum warm up for about {warmup_s(rules):.0f} s; "
        "arbitrage and funding can signal at once"
    )


def add_symbol_count_option(parser: argparse.ArgumentParser) -> None:
    """``--symbols N`` of ``demo``, ``simulate`` and ``bench``: how much of the simulated market is
    listed (or measured)."""
    help_text = "list the first N of the simulated market (3 majors, then SIM000USDT …; 1 to"
    help_text += f" {MAX_SYMBOLS}; default: the majors, or SYMBOLS when it names some)"
    parser.add_argument("--symbols", type=_symbol_count, metavar="N", help=help_text)


def _symbol_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_SYMBOLS:
        raise argparse.ArgumentTypeError(f"a count of 1 to {MAX_SYMBOLS}, not {text!r}")
    return int(text)


def simulated_symbols(symbols: Sequence[str], count: int | None = None) -> list[str]:
    """The symbols the simulator is to list for ``SYMBOLS``: for ``ALL``, the first ``count``
    of its market (:func:`~detector.simulator.instruments.market_symbols`: the three majors,
    then the generated tail ``SIM000USDT`` …) or, with no count, the majors (the detector then
    finds them in the simulated instrument lists, as it would live); else ``symbols``, which
    must be among the listed when ``count`` is given. ValueError naming what it does not model."""
    listed = market_symbols(count) if count is not None else None
    if list(symbols) == ["ALL"]:
        return listed if listed is not None else list(SUPPORTED_SYMBOLS)
    if listed is not None:
        missing = [s for s in symbols if s not in listed]
        if missing:
            raise ValueError(
                f"--symbols {count} lists {', '.join(listed[:3])} … {listed[-1]}, not"
                f" {', '.join(missing)}: set SYMBOLS=ALL, or to some of the listed"
            )
        return listed
    unknown = []
    for symbol in symbols:
        try:
            profile(symbol)
        except ValueError:
            unknown.append(symbol)
    if unknown:
        raise ValueError(
            f"the simulator has no {', '.join(unknown)}; it simulates"
            f" {', '.join(SUPPORTED_SYMBOLS)} and SIM000USDT to SIM999USDT: set SYMBOLS to"
            " some of them, or ALL (with --symbols N for the first N of them)"
        )
    return list(symbols)


def describe_database(given: Path | None, production: Path, *, chats: bool) -> str:
    """One line: which database the demo uses (``given``, else a temporary one) and so who
    gets its simulated alerts when chat tokens are set."""
    if given is not None:
        return f"database {given}" + (": its subscribers get the simulated alerts" if chats else "")
    if chats:
        return (
            "chat tokens are set, but this is a temporary database: nobody subscribed in"
            f" {production} gets these simulated prices (--database PATH to choose)"
        )
    return "a temporary database, removed at exit (--database PATH keeps one)"
