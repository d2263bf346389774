"""The ``arbwatch`` command line: run, demo, record, replay, simulate and bench.

``run`` watches the real exchanges (and chats, with a token), ``demo`` the same against the
built-in simulator, ``record`` is ``run`` writing a recording that ``replay`` feeds through the
detector offline; ``simulate`` serves the loopback exchanges, ``bench`` measures the pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import orjson

from bot.app import run_app
from bot.config import load_settings
from bot.console import format_opportunity_stats, format_signal
from bot.demo import demo_config, demo_scenario
from bot.errors import BotError
from detector.bench import run_benchmark
from detector.errors import DetectorError, RecordingError
from detector.pipeline import Pipeline
from detector.recording import iter_lines
from detector.replay import replay_lines
from detector.signals import Signal
from detector.simulator.scenarios import build_scenario
from detector.simulator.server import SimulatorServer, run_simulator

# Files above this size get a progress bar when stderr is a terminal.
PROGRESS_MIN_BYTES = 5_000_000


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args)
    except (BotError, DetectorError) as exc:
        print(f"arbwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arbwatch",
        description="Cross-exchange arbitrage and market signals for Binance and Bybit perpetuals.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    replay = sub.add_parser("replay", help="feed a recording through the detector")
    replay.add_argument("file", type=Path, help="recording (.jsonl or .jsonl.gz)")
    replay.add_argument("--json", action="store_true", help="one JSON object per signal")
    replay.add_argument("--env-file", default=".env", help="settings file (default .env)")
    replay.set_defaults(func=_cmd_replay)

    run = sub.add_parser("run", help="watch the real exchanges live and print signals")
    run.add_argument("--json", action="store_true", help="one JSON object per signal")
    run.add_argument("--duration", type=_seconds, help="stop after this many seconds")
    run.add_argument("--env-file", default=".env", help="settings file (default .env)")
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser("demo", help="run the detector against the built-in simulator")
    demo.add_argument("--json", action="store_true", help="one JSON object per signal")
    demo.add_argument("--duration", type=_seconds, help="stop after this many seconds")
    demo.add_argument("--scenario", default="demo", help="simulator scenario (default demo)")
    demo.add_argument("--env-file", default=".env", help="settings file (default .env)")
    demo.set_defaults(func=_cmd_demo)

    record = sub.add_parser("record", help="record the live feeds for arbwatch replay")
    record.add_argument("--out", type=Path, required=True, help="recording (.jsonl or .jsonl.gz)")
    record.add_argument("--duration", type=_seconds, help="stop after this many seconds")
    record.add_argument("--json", action="store_true", help="print signals as JSON")
    record.add_argument("--env-file", default=".env", help="settings file (default .env)")
    record.set_defaults(func=_cmd_run)

    simulate = sub.add_parser("simulate", help="serve the loopback exchange simulator")
    simulate.add_argument("--scenario", default="showcase", help="scenario (default showcase)")
    simulate.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--env-file", default=".env", help="settings file (default .env)")
    simulate.set_defaults(func=_cmd_simulate)

    bench = sub.add_parser("bench", help="measure pipeline throughput against bare JSON parsing")
    bench.add_argument("--frames", type=int, default=500_000, help="frames to generate")
    bench.add_argument("--file", type=Path, help="benchmark this recording instead")
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument("--env-file", default=".env", help="settings file (default .env)")
    bench.set_defaults(func=_cmd_bench)
    return parser


def _seconds(raw: str) -> float:
    """A ``--duration``: a finite number of seconds above 0 (``nan``, ``inf``, ``-1`` refused)."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"give a number of seconds above 0, not {raw!r}")
    return value


def _cmd_replay(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    path: Path = args.file
    if not path.is_file():
        print(f"arbwatch: no such recording: {path}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer

    def emit_json(signal: Signal) -> None:
        out.write(orjson.dumps(signal.to_dict()))
        out.write(b"\n")

    def emit_text(signal: Signal) -> None:
        out.write(format_signal(signal).encode())
        out.write(b"\n")

    def report_bad(exc: RecordingError) -> None:
        print(f"arbwatch: {path}: {exc} (skipped)", file=sys.stderr)

    lines: Iterable[tuple[int, bytes]] = iter_lines(path)
    if sys.stderr.isatty() and path.stat().st_size >= PROGRESS_MIN_BYTES:
        from tqdm import tqdm

        lines = tqdm(lines, unit=" lines", file=sys.stderr, leave=False)
    try:
        result = replay_lines(
            lines,
            settings.detector_config(),
            emit_json if args.json else emit_text,
            report_bad,
        )
    except (OSError, EOFError) as exc:
        print(f"arbwatch: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    out.flush()
    _print_summary(result.pipeline, result.lines, len(result.bad_lines))
    return 0


def _print_summary(pipeline: Pipeline, lines: int, bad: int) -> None:
    stats = pipeline.stats.to_dict()
    opp = pipeline.analyzer.stats()
    print(f"replayed {lines} lines ({bad} bad), {stats['events']} events", file=sys.stderr)
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


def _cmd_bench(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    report = run_benchmark(
        settings.detector_config(), frames=args.frames, seed=args.seed, path=args.file
    )
    print(report.format())
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """``run``, and ``record`` (which is ``run`` with ``--out``)."""
    settings = load_settings(args.env_file)
    asyncio.run(
        run_app(
            settings,
            settings.detector_config(),
            settings.feed_urls(),
            json_out=args.json,
            duration_s=args.duration,
            record_to=getattr(args, "out", None),
        )
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    config = demo_config(settings.detector_config())
    symbols = list(config.symbols)
    scenario = (
        demo_scenario(symbols)
        if args.scenario == "demo"
        else build_scenario(args.scenario, symbols)
    )

    async def main() -> None:
        async with SimulatorServer(scenario, symbols=symbols) as server:
            print(
                f"arbwatch demo: simulated exchanges at {server.urls.binance_rest}", file=sys.stderr
            )
            print(
                f"arbwatch demo: scenario {scenario.name}: {scenario.description}", file=sys.stderr
            )
            for line in scenario.timeline():
                print(f"  {line}", file=sys.stderr)
            await run_app(
                settings,
                config,
                server.urls.feed_urls(),
                json_out=args.json,
                duration_s=args.duration,
            )

    asyncio.run(main())
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_simulator(args.scenario, port=args.port, symbols=settings.symbols, seed=args.seed)
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
