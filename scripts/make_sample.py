"""Write a simulated recording: ``python scripts/make_sample.py OUT [--scenario showcase]``.

The output is a JSON Lines recording (gzip when OUT ends in ``.gz``) of the market model's
frames as a live client receives them. The same arguments always give the same bytes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from detector.models import Exchange
from detector.recording import write_recording
from detector.simulator.instruments import SUPPORTED_SYMBOLS
from detector.simulator.scenarios import SCENARIOS, build_scenario
from detector.simulator.session import DEFAULT_START_MS, DEFAULT_SYMBOLS, generate_records


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "out", nargs="?", type=Path, help="recording to write (.jsonl or .jsonl.gz)"
    )
    parser.add_argument("--scenario", default="showcase", choices=sorted(SCENARIOS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--symbols",
        default=",".join(DEFAULT_SYMBOLS),
        help=f"comma-separated, from {','.join(SUPPORTED_SYMBOLS)}",
    )
    parser.add_argument(
        "--venues",
        default="binance,bybit",
        help="comma-separated venues to record (default binance,bybit: the shipped sample;"
        " binance,bybit,okx adds OKX and the scenario's OKX events)",
    )
    parser.add_argument("--start-ms", type=int, default=DEFAULT_START_MS)
    parser.add_argument(
        "--duration", type=float, help="seconds of market time (default: scenario's)"
    )
    parser.add_argument("--list", action="store_true", help="print every scenario's timeline")
    args = parser.parse_args(argv)
    if not args.list and args.out is None:
        parser.error("OUT is required (or --list)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    if args.list:
        for name in SCENARIOS:
            scenario = build_scenario(name, symbols)
            print(f"{name} ({scenario.duration_s:.0f} s): {scenario.description}")
            for line in scenario.timeline():
                print(f"  {line}")
        return 0
    started = time.perf_counter()
    venues = [Exchange(v.strip().lower()) for v in args.venues.split(",") if v.strip()]
    records = generate_records(
        args.scenario,
        venues=venues,
        seed=args.seed,
        symbols=symbols,
        start_ms=args.start_ms,
        duration_s=args.duration,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    count = write_recording(args.out, records)
    elapsed = time.perf_counter() - started
    size = args.out.stat().st_size
    print(
        f"{args.out}: {count} records, {size / 1e6:.2f} MB "
        f"({args.scenario}, seed {args.seed}, {','.join(symbols)}; {elapsed:.1f} s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
