"""The ``arbwatch`` command line: run, demo, record, replay, simulate and bench.

``run`` watches the real exchanges (and chats, with a token), ``demo`` the same against the
built-in simulator, ``record`` is ``run`` writing a recording that ``replay`` feeds through the
detector offline; ``simulate`` serves the loopback exchanges, ``bench`` measures the pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import math
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from bot import symbols_cli
from bot.config import LOG_LEVELS, Settings, configure_logging, find_unknown_settings, load_settings
from bot.console import SignalPrinter, console_zone, print_summary
from bot.demo import (
    SHORT_WINDOW_SCENARIOS,
    add_symbol_count_option,
    demo_config,
    describe_database,
    format_warmup,
    simulated_symbols,
)
from bot.errors import BotError, SettingsError
from detector import core_build
from detector.bench import run_benchmark
from detector.config import DetectorConfig
from detector.errors import DetectorError, RecordingError
from detector.models import Exchange
from detector.recording import iter_lines
from detector.replay import iter_lines_tracked, replay_lines
from detector.signals import Signal
from detector.simulator.scenarios import SCENARIOS, Scenario, build_scenario
from detector.simulator.server import SimulatorServer, run_simulator

if TYPE_CHECKING:  # the bots are imported by run and demo only: the rest start 3x sooner
    from bot.app import App

EXIT_RUNTIME, EXIT_USAGE = 1, 2
"""Exit codes: it ran and failed (a port in use, an unreadable file); it cannot run as given."""
PROGRESS_MIN_BYTES = 5_000_000  # files above it get a progress bar when stderr is a terminal
BAD_LINES_SHOWN = 10  # unreadable lines of a replay reported one by one, then only counted
MOSTLY_BAD = 0.5  # a "recording" with more unreadable lines than this share is not one


class CommandError(BotError):
    """A command cannot go on: ``message`` for stderr (one line: the problem and the fix)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        self.message = message
        self.code = code
        super().__init__(message)


class _Parser(argparse.ArgumentParser):
    """argparse with its complaint on one line, naming where to find help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        settings = _settings(args)
        configure_logging(
            getattr(args, "log_level", None) or settings.log_level,
            verbose=getattr(args, "verbose", 0),
            quiet=getattr(args, "quiet", False),
        )
        code: int = args.func(args, settings)
    except CommandError as exc:
        return _fail(exc.message, exc.code)
    except SettingsError as exc:
        where = getattr(args, "env_file", None) or ".env"
        for problem in exc.problems:
            _fail(f"invalid setting {problem}; fix it in {where} or the environment", EXIT_USAGE)
        return EXIT_USAGE
    except (BotError, DetectorError, OSError) as exc:  # OSError: the file system, the network
        return _fail(str(exc), EXIT_RUNTIME)
    except KeyboardInterrupt:
        return 130
    return code


def _fail(message: str, code: int) -> int:
    print(f"arbwatch: {message}", file=sys.stderr)
    return code


def _version() -> str:
    with contextlib.suppress(PackageNotFoundError):  # a source tree never installed has none
        return f"{version('arbwatch')} (detector core: {core_build()})"
    return f"unknown (detector core: {core_build()})"


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, from ``--env-file`` (which must exist) or ``.env`` (which may not)."""
    given: str | None = getattr(args, "env_file", None)
    if given is not None and not Path(given).is_file():
        raise CommandError(
            f"no settings file {given} (--env-file); check the path, or leave the option out"
            " to read .env"
        )
    env_file = given or ".env"
    if not getattr(args, "quiet", False):
        for problem in find_unknown_settings(env_file):
            print(f"arbwatch: warning: {problem}", file=sys.stderr)
    return load_settings(env_file)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="arbwatch",
        description="Cross-exchange arbitrage and market signals for Binance and Bybit perpetuals."
        " New here? `arbwatch demo` runs it all offline, against the built-in simulator.",
        epilog="Exit status: 0 done, 1 failed while running, 2 cannot run as given.",
    )
    parser.add_argument("--version", action="version", version=f"arbwatch {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    replay = sub.add_parser("replay", help="feed a recording through the detector")
    replay.add_argument("file", type=Path, help="recording (.jsonl or .jsonl.gz)")
    replay.add_argument("--json", action="store_true", help="one JSON object per signal")
    _add_console_options(replay)
    replay.set_defaults(func=_cmd_replay)

    run = sub.add_parser("run", help="watch the real exchanges live and print signals")
    run.add_argument("--json", action="store_true", help="one JSON object per signal")
    _add_console_options(run)
    run.add_argument("--duration", type=_seconds, help="stop after this many seconds")
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser("demo", help="run the detector against the built-in simulator")
    demo.add_argument("--json", action="store_true", help="one JSON object per signal")
    _add_console_options(demo)
    demo.add_argument("--duration", type=_seconds, help="stop after this many seconds")
    _add_scenario_option(demo, "demo")
    database_help = "database file (default: a temporary one, removed at exit; never DATABASE_PATH)"
    demo.add_argument("--database", type=Path, metavar="PATH", help=database_help)
    demo.set_defaults(func=_cmd_demo)

    record = sub.add_parser("record", help="record the live feeds for arbwatch replay")
    record.add_argument("--out", type=Path, required=True, help="recording (.jsonl or .jsonl.gz)")
    record.add_argument("--duration", type=_seconds, help="stop after this many seconds")
    record.add_argument("--json", action="store_true", help="print signals as JSON")
    _add_console_options(record)
    record.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    record.set_defaults(func=_cmd_run)

    simulate = sub.add_parser("simulate", help="serve the loopback exchange simulator")
    _add_scenario_option(simulate, "showcase")
    simulate.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.set_defaults(func=_cmd_simulate)

    bench = sub.add_parser("bench", help="measure pipeline throughput against bare JSON parsing")
    bench.add_argument("--frames", type=int, default=500_000, help="frames to generate")
    bench.add_argument("--file", type=Path, help="benchmark this recording instead")
    bench.add_argument("--seed", type=int, default=7)
    add_symbol_count_option(bench)  # e.g. the whole simulated market: --symbols 400
    bench.set_defaults(func=_cmd_bench)
    symbols_cli.add_parser(sub)
    _add_common_options(parser)
    for command in sub.choices.values():
        _add_common_options(command)
    return parser


def _add_scenario_option(parser: argparse.ArgumentParser, default: str) -> None:
    names = ", ".join(SCENARIOS)
    help_text = f"simulator scenario: {names} (default {default})"
    parser.add_argument(
        "--scenario", default=default, choices=SCENARIOS, metavar="NAME", help=help_text
    )
    add_symbol_count_option(parser)


def _add_console_options(parser: argparse.ArgumentParser) -> None:
    """``--wide`` and ``--utc``: how signal lines read (``--json`` output is unaffected)."""
    wide_help = "print every signal's details line, not only when needed"
    parser.add_argument("--wide", action="store_true", help=wide_help)
    parser.add_argument("--utc", action="store_true", help="times in UTC (default: local time)")


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every command takes, before or after its name (``arbwatch -v run``, ``run -v``);
    SUPPRESS: a subcommand's own default must not undo what was given before its name."""
    hidden = argparse.SUPPRESS
    env_help = "settings file (default: .env, if there is one)"
    parser.add_argument("--env-file", default=hidden, metavar="FILE", help=env_help)
    noise = parser.add_mutually_exclusive_group()
    verbose_help = "log more: -v info, -vv debug, -vvv the libraries' debug too"
    noise.add_argument("-v", "--verbose", action="count", default=hidden, help=verbose_help)
    noise.add_argument("-q", "--quiet", action="store_true", default=hidden, help="errors only")
    level_help = "debug, info, warning or error (default: LOG_LEVEL, else warning)"
    noise.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        default=hidden,
        help=level_help,
    )


def _seconds(raw: str) -> float:
    """A ``--duration``: a finite number of seconds above 0 (``nan``, ``inf``, ``-1`` refused)."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"give a number of seconds above 0, not {raw!r}")
    return value


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file
    if not path.is_file():
        raise CommandError(f"no such recording: {path} (arbwatch record --out FILE makes one)")
    config = _offline_config(settings, "replay", path)
    out = sys.stdout.buffer

    def emit_json(signal: Signal) -> None:
        out.write(orjson.dumps(signal.to_dict()))
        out.write(b"\n")

    printer = SignalPrinter(sys.stdout, wide=args.wide, tz=console_zone(args.utc))

    bad_seen = 0

    def report_bad(exc: RecordingError) -> None:
        nonlocal bad_seen
        bad_seen += 1
        if bad_seen <= BAD_LINES_SHOWN:
            print(f"arbwatch: {path}: {exc} (skipped)", file=sys.stderr)
        elif bad_seen == BAD_LINES_SHOWN + 1:
            print(f"arbwatch: {path}: more unreadable lines, counted below", file=sys.stderr)

    size = path.stat().st_size
    bar: Any = None
    lines: Iterable[tuple[int, bytes]] = iter_lines(path)
    if sys.stderr.isatty() and size >= PROGRESS_MIN_BYTES:
        bar = tqdm(total=size, unit="B", unit_scale=True, file=sys.stderr, leave=False)
        lines = iter_lines_tracked(path, lambda position: bar.update(position - bar.n))
    try:
        # Log lines (gaps, stale books) go above the bar, not through it.
        with logging_redirect_tqdm() if bar is not None else contextlib.nullcontext():
            result = replay_lines(
                lines,
                config,
                emit_json if args.json else printer,
                report_bad,
                None if args.json else printer.closed,
            )
    except (OSError, EOFError) as exc:
        raise CommandError(f"cannot read {path}: {exc}", EXIT_RUNTIME) from exc
    finally:
        if bar is not None:
            bar.close()
    out.flush()
    bad = len(result.bad_lines)
    print_summary(result.pipeline, f"replayed {result.lines} lines ({bad} bad)")
    if bad > MOSTLY_BAD * result.lines:
        raise CommandError(
            f"{path}: {bad} of {result.lines} lines are unreadable: not a recording?"
            " (arbwatch record --out FILE makes one)",
            EXIT_RUNTIME,
        )
    return 0


def _cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.frames < 1:
        raise CommandError(f"--frames {args.frames}: give a number of frames above 0")
    if args.file is not None and not args.file.is_file():
        raise CommandError(f"no such recording: {args.file} (--file)")
    if args.symbols is not None and args.file is not None:
        raise CommandError("--symbols N generates a market to measure: leave out --file")
    config = _offline_config(settings, "bench", args.file)
    if args.symbols is not None:
        config = replace(config, symbols=tuple(_simulated(settings.symbols, args.symbols)))
    bars: dict[str, Any] = {}  # one tqdm bar per stage, each with its total and ETA

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = tqdm(
                total=total, desc=stage, unit=" frames", file=sys.stderr, leave=False, mininterval=0
            )
        bars[stage].update(done - bars[stage].n)

    try:
        report = run_benchmark(
            config,
            frames=args.frames,
            seed=args.seed,
            path=args.file,
            progress=progress if sys.stderr.isatty() else None,
        )
    finally:
        for bar in bars.values():
            bar.close()
    if not report.frames:
        raise CommandError(f"{args.file} holds no lines to measure")
    print(report.format())
    return 0


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """``run``, and ``record`` (which is ``run`` with ``--out``)."""
    if getattr(args, "out", None) is not None:
        _check_out(args.out, args.force)
    from bot.app import run_app

    print(f"arbwatch: {format_warmup(settings.detector_config().rules)}", file=sys.stderr)
    started = time.monotonic()
    app = asyncio.run(
        run_app(
            settings,
            settings.detector_config(),
            settings.feed_urls(),
            json_out=args.json,
            wide=args.wide,
            utc=args.utc,
            duration_s=args.duration,
            record_to=getattr(args, "out", None),
        )
    )
    print_summary(app.detector.pipeline, f"ran {time.monotonic() - started:.0f} s")
    return 0


def _check_out(out: Path, force: bool) -> None:
    """Refuse a ``record --out`` that cannot be written, or would overwrite without --force."""
    if out.is_dir():
        raise CommandError(
            f"--out {out} is a folder; give a file name, e.g. {out / 'rec.jsonl.gz'}"
        )
    if not out.parent.is_dir():
        raise CommandError(
            f"cannot record to {out}: there is no folder {out.parent}; create it, or choose"
            " another --out"
        )
    if out.exists() and not force:
        raise CommandError(f"{out} exists; add --force to overwrite it, or choose another --out")


def _offline_config(settings: Settings, command: str, recording: Path | None) -> DetectorConfig:
    try:
        return symbols_cli.offline_config(settings, command, recording)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


def _simulated(symbols: Sequence[str], count: int | None) -> list[str]:
    try:
        return simulated_symbols(symbols, count)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    symbols = _simulated(settings.symbols, args.symbols)
    config = demo_config(settings.detector_config(), args.scenario)
    scenario = build_scenario(args.scenario, symbols, okx=Exchange.OKX in config.exchanges)
    # Never DATABASE_PATH: simulated signals stay out of the real bot's /stats and subscribers.
    with tempfile.TemporaryDirectory(prefix="arbwatch-demo-") as folder:
        database = args.database or Path(folder) / "demo.db"
        chats = settings.telegram_bot_token is not None or settings.discord_bot_token is not None
        note = describe_database(args.database, settings.database_path, chats=chats)
        print(f"arbwatch demo: {note}", file=sys.stderr)
        demo_settings = settings.model_copy(update={"database_path": database})
        started = time.monotonic()
        app = asyncio.run(_run_demo(args, demo_settings, config, scenario, symbols))
    print_summary(app.detector.pipeline, f"ran {time.monotonic() - started:.0f} s")
    return 0


async def _run_demo(
    args: argparse.Namespace,
    settings: Settings,
    config: DetectorConfig,
    scenario: Scenario,
    symbols: list[str],
) -> App:
    from bot.app import run_app

    async with SimulatorServer(scenario, symbols=symbols) as server:
        print(f"arbwatch demo: simulated exchanges at {server.urls.binance_rest}", file=sys.stderr)
        print(f"arbwatch demo: scenario {scenario.name}: {scenario.description}", file=sys.stderr)
        for line in scenario.timeline():
            print(f"  {line}", file=sys.stderr)
        print(f"arbwatch demo: {format_warmup(config.rules)}", file=sys.stderr)
        return await run_app(
            settings,
            config,
            server.urls.feed_urls(),
            json_out=args.json,
            wide=args.wide,
            utc=args.utc,
            duration_s=args.duration,
        )


def _cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    symbols = _simulated(settings.symbols, args.symbols)
    okx = Exchange.OKX in settings.exchanges  # OKX's windows and faults when it is watched
    scenario = build_scenario(args.scenario, symbols, okx=okx)
    if args.scenario in SHORT_WINDOW_SCENARIOS:
        note = "is timed for the demo's short signal windows: arbwatch run against it shows"
        note += " its arbitrage and funding only (arbwatch demo shows every type)"
        print(f"arbwatch simulate: {args.scenario} {note}", file=sys.stderr)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_simulator(scenario, port=args.port, symbols=symbols, seed=args.seed))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise CommandError(
            f"port {args.port} is already in use; choose another with --port P (0: any free one)",
            EXIT_RUNTIME,
        ) from exc
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
