"""Live benchmark: the detector in this process against a loopback exchange in another.

Two servers. By default the live simulator, whose market is generated as it runs (``--load``
sets how busy it is; it tops out at a few thousand frames/s). With ``--rate N`` the frame pusher
(:mod:`detector.simulator.server_push`): the market of ``--load`` is pre-generated, frames
already encoded, then pushed at N frames/s (``speed`` = N / the market's own frames per second),
so that the server is not the bottleneck.

Reported for the measured window, after ``--warmup`` seconds (books synced):

* frames/s the detector processed; CPU of this whole process per frame (µs) and in % of a core;
* peak RSS of this process;
* receive-to-signal latency inside the process: from the moment the connection's receive loop
  has the message (``ReconnectingWebSocket.received_ns``) to the signal callback, every signal;
* exchange-time latency of arbitrage signals: the exchange time of the frame that triggered the
  signal to the callback (with the pusher: from the moment that frame was due to be sent).

    python scripts/live_bench.py [--seconds 30] [--load normal|high|max] [--rate 10000]
        [--venues binance,bybit] [--compression none|deflate] [--runs 3] [--no-pipeline]
        [--symbols 400] [--sync-limit 120]

``--symbols N`` lists the first N symbols of the simulated market (the majors, then the
generated tail) on every venue; the detector runs with ``SYMBOLS=ALL`` and finds them. The
report says how long after start every book was synced, and, with the pusher, the most Binance
depth weight used in a minute and the 429s it answered (it enforces Binance's 2,400 a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import websockets

from detector.clients.rest import BINANCE_WEIGHT_BUDGET
from detector.config import DetectorConfig, FeedUrls, SignalRules
from detector.engine import Detector
from detector.feeds import snapshot_limit
from detector.models import Exchange
from detector.signals import Signal, SignalType
from detector.simulator.instruments import MAX_SYMBOLS, market_symbols
from detector.simulator.scenarios import ArbitrageWindow, Scenario
from detector.simulator.server import LIVE_RATES, SimulatorServer
from detector.simulator.server_push import FramePusher
from detector.simulator.state import FeedRates
from detector.simulator.timeline import build_timeline

LOADS = {
    "normal": LIVE_RATES,
    "high": replace(
        LIVE_RATES,
        binance_depth_ms=25,
        bybit_book_ms=(5, 20),
        binance_trades_per_s=30.0,
        bybit_trades_per_s=30.0,
    ),
    "max": replace(
        LIVE_RATES,
        binance_depth_ms=10,
        bybit_book_ms=(2, 6),
        binance_trades_per_s=100.0,
        bybit_trades_per_s=100.0,
    ),
}
START_MS = 1_786_540_800_000
SNAPSHOT_EVERY_MS = 500
MARGIN_S = 5.0  # frames generated beyond the runs, for start-up


def windows(seconds: float, symbols: list[str]) -> tuple[ArbitrageWindow, ...]:
    """An arbitrage window every 2 s of market time, rotating symbols and directions."""
    out = []
    at, i = 3.0, 0
    while at < seconds - 2:
        sell_on = Exchange.BYBIT if i % 2 == 0 else Exchange.BINANCE
        symbol = symbols[(i * 7) % len(symbols)]  # majors and tail coins alike
        out.append(ArbitrageWindow(at, 0.8, symbol, sell_on=sell_on, net_pct=0.2))
        at += 2.0
        i += 1
    return tuple(out)


# -- the server process ----------------------------------------------------------------------


def serve(
    queue: Any,
    stop: Any,
    seconds: float,
    rates: FeedRates,
    rate: float | None,
    options: dict[str, Any],
) -> None:
    """Run the live simulator or the frame pusher until ``stop`` is set; report on ``queue``.

    The pusher's market holds the watched venues only (Binance and Bybit always): ``rate`` is
    what the detector gets."""

    async def wait_for_stop() -> None:
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)

    symbols = options["symbols"]

    async def live() -> None:
        scenario = Scenario("bench", "arbitrage windows", seconds, windows(seconds, symbols))
        async with SimulatorServer(scenario, symbols=symbols, tick_ms=5, rates=rates) as server:
            port = int(server.urls.binance_rest.rsplit(":", 1)[1])
            queue.put({"port": port})
            await wait_for_stop()
            queue.put({"frames_sent": sum(server.stats.frames_sent.values())})

    async def pushed() -> None:
        assert rate is not None
        venues = tuple(
            e for e in Exchange if e in options["venues"] or e in (Exchange.BINANCE, Exchange.BYBIT)
        )
        started = time.perf_counter()
        # The market's own frame rate, to script windows over the market time we will need.
        probe = build_timeline(
            Scenario("probe", "", 5.0), symbols=symbols, rates=rates, venues=venues, duration_s=5.0
        )
        frames = int(rate * seconds)
        market_s = frames / probe.frames_per_s * 1.1 + 5
        scenario = Scenario("bench", "arbitrage windows", market_s, windows(market_s, symbols))
        timeline = build_timeline(
            scenario,
            symbols=symbols,
            rates=rates,
            venues=venues,
            start_ms=START_MS,
            max_frames=frames,
            # Snapshots cost memory per book: a big market keeps fewer subscription snapshots
            # (each book waits once, all at the same time), and Binance depth (one book at a
            # time per request in flight) as shallow as the detector will ask for.
            snapshot_every_ms=max(SNAPSHOT_EVERY_MS, 5 * len(symbols)),
            depth_every_ms=SNAPSHOT_EVERY_MS,
            depth_limit=snapshot_limit(len(symbols), BINANCE_WEIGHT_BUDGET),
        )
        built_s = time.perf_counter() - started
        async with FramePusher(timeline, rate=rate, deflate=options["deflate"]) as pusher:
            port = int(pusher.urls.binance_rest.rsplit(":", 1)[1])
            queue.put(
                {
                    "port": port,
                    "started_at": pusher.started_at,
                    "start_ms": timeline.start_ms,
                    "speed": pusher.speed,
                    "market_rate": timeline.frames_per_s,
                    "frames": timeline.frames,
                    "mbytes": timeline.nbytes / 1e6,
                    "built_s": built_s,
                }
            )
            await wait_for_stop()
            s = pusher.stats
            queue.put(
                {
                    "frames_sent": s.frames_sent,
                    "stalls": s.stalls,
                    "stalled_s": s.stalled_s,
                    "max_late_ms": s.max_late_ms,
                    "depth_429s": s.depth_429s,
                    "depth_weight_peak": s.depth_weight_peak,
                    "finished": pusher.finished.is_set(),
                }
            )

    asyncio.run(live() if rate is None else pushed())


# -- the detector ----------------------------------------------------------------------------


@dataclass
class Run:
    frames: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    inproc_us: list[float] = field(default_factory=list)
    exchange_ms: list[float] = field(default_factory=list)
    healthy: str = ""
    sync_s: float = 0.0  # from the detector's start until every book was synced
    gaps: int = 0
    errors: int = 0
    quarantined: list[str] = field(default_factory=list)  # "bybit SIM017USDT", never signalled
    quarantined_signals: int = 0  # signals on a quarantined symbol: must be 0

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.wall_s

    @property
    def cpu_us_per_frame(self) -> float:
        return self.cpu_s / self.frames * 1e6 if self.frames else float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def measure(
    info: dict[str, Any], args: argparse.Namespace, venues: tuple[Exchange, ...]
) -> Run:
    base = f"127.0.0.1:{info['port']}"
    urls = FeedUrls(
        f"http://{base}",
        f"ws://{base}",
        f"http://{base}",
        f"ws://{base}/v5/public/linear",
        f"http://{base}",
        f"ws://{base}/ws/v5/public",
    )
    # Every window is a new opportunity for the latency sample: no flicker guard in this bench.
    config = DetectorConfig(
        symbols=("ALL",),  # found in the simulated instrument lists, as live
        exchanges=venues,
        rules=SignalRules(arb_reopen_quiet_s=0),
        ws_compression=args.compression,
    )
    detector = Detector(config, urls)
    run = Run()
    measuring = False
    if "speed" in info:  # the pusher: a frame's exchange time maps to when it was due
        due0, start_ms, speed = info["started_at"] * 1000, info["start_ms"], info["speed"]

        def due_ms(exchange_ms: int) -> float:
            return due0 + (exchange_ms - start_ms) / speed
    else:

        def due_ms(exchange_ms: int) -> float:
            return float(exchange_ms)

    quarantined: set[str] = set()

    def on_signal(signal: Signal) -> None:
        now_ns = time.perf_counter_ns()
        if signal.symbol in quarantined:
            run.quarantined_signals += 1
        if not measuring:
            return
        run.inproc_us.append((now_ns - detector.received_ns) / 1000)
        exchange_ms = detector.pipeline.last_exchange_ms
        if signal.type is SignalType.ARBITRAGE and exchange_ms is not None:
            run.exchange_ms.append(time.time() * 1000 - due_ms(exchange_ms))

    detector.add_callback(on_signal)
    started = time.perf_counter()
    async with detector:
        if args.no_pipeline:
            detector.pipeline.feed = lambda record: []  # type: ignore[method-assign]
        for _ in range(int(args.sync_limit * 10)):
            health = detector.health()
            quarantined.update(q.split(" ", 1)[1] for q in health.quarantined)
            # Synced: every book but the quarantined ones (two coins behind one name: not
            # watched), listed among the books of the symbols discovered.
            if health.books and all(b.state == "synced" for b in health.books):
                break
            await asyncio.sleep(0.1)
        run.sync_s = time.perf_counter() - started
        await asyncio.sleep(args.warmup)  # rates settled
        frames0 = sum(h.frames for h in detector.health().exchanges.values())
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        wall0 = time.perf_counter()
        measuring = True
        await asyncio.sleep(args.seconds)
        measuring = False
        run.wall_s = time.perf_counter() - wall0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        health = detector.health()
    run.frames = sum(h.frames for h in health.exchanges.values()) - frames0
    run.cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    run.healthy = f"{sum(b.healthy for b in health.books)}/{len(health.books)}"
    run.gaps = sum(h.gaps for h in health.exchanges.values())
    run.errors = health.internal_errors
    run.quarantined = health.quarantined
    return run


def report(run: Run, label: str) -> None:
    print(
        f"{label}: {run.frames:,} frames in {run.wall_s:.1f} s = {run.frames_per_s:,.0f} frames/s;"
        f" CPU {run.cpu_s:.1f} s = {100 * run.cpu_s / run.wall_s:.0f} % of a core"
        f" = {run.cpu_us_per_frame:.1f} µs/frame"
    )
    print(
        f"  in-process latency (receive → signal callback), {len(run.inproc_us)} signals:"
        f" p50 {pct(run.inproc_us, 0.5):,.0f} µs, p99 {pct(run.inproc_us, 0.99):,.0f} µs"
    )
    print(
        f"  exchange-time latency, {len(run.exchange_ms)} arbitrage signals:"
        f" p50 {pct(run.exchange_ms, 0.5):.1f} ms, p99 {pct(run.exchange_ms, 0.99):.1f} ms"
    )
    print(
        f"  books healthy {run.healthy} (all synced {run.sync_s:.1f} s after start), gaps"
        f" {run.gaps}, internal errors {run.errors}"
    )
    print(
        f"  quarantined {len(run.quarantined)} books ({', '.join(run.quarantined) or 'none'}),"
        f" signals on them {run.quarantined_signals}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="before each measurement")
    parser.add_argument("--load", choices=sorted(LOADS), default="normal")
    parser.add_argument(
        "--rate", type=float, help="frames/s pushed by the frame pusher (default: live simulator)"
    )
    parser.add_argument(
        "--venues", default="binance,bybit", help="venues to watch, e.g. binance,bybit,okx"
    )
    parser.add_argument(
        "--compression",
        choices=("none", "deflate"),
        default="none",
        help="permessage-deflate offered by the detector (the pusher then compresses)",
    )
    parser.add_argument("--runs", type=int, default=1, help="detectors run one after another")
    parser.add_argument(
        "--symbols", type=int, default=3, help=f"listed on every venue (1 to {MAX_SYMBOLS})"
    )
    parser.add_argument(
        "--sync-limit", type=float, default=120.0, help="seconds to wait for every book's sync"
    )
    parser.add_argument(
        "--no-pipeline", action="store_true", help="frames go to a no-op: the I/O layer's cost"
    )
    args = parser.parse_args()
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be > 0")
    if not 1 <= args.symbols <= MAX_SYMBOLS:
        parser.error(f"--symbols must be 1 to {MAX_SYMBOLS}")
    symbols = market_symbols(args.symbols)
    venues = tuple(Exchange(v.strip()) for v in args.venues.split(",") if v.strip())
    # + the sync: a big market takes longer, and the timeline must outlast it
    per_run = (
        args.warmup + args.seconds + 2 + (min(args.sync_limit, 90.0) if args.symbols > 3 else 0.0)
    )
    total = per_run * args.runs + MARGIN_S
    ctx = multiprocessing.get_context("spawn")
    queue: Any = ctx.Queue()
    stop = ctx.Event()
    options = {"deflate": args.compression == "deflate", "venues": venues, "symbols": symbols}
    server = ctx.Process(
        target=serve, args=(queue, stop, total, LOADS[args.load], args.rate, options)
    )
    server.start()
    try:
        info = queue.get(timeout=900)
        kind = "live simulator" if args.rate is None else "frame pusher"
        print(
            f"config: {kind}, load {args.load}, venues {','.join(v.value for v in venues)},"
            f" {len(symbols)} symbols, compression {args.compression},"
            f" pipeline {'off' if args.no_pipeline else 'on'}; {args.runs} x {args.seconds:g} s"
            f" after {args.warmup:g} s; Python {platform.python_version()},"
            f" websockets {websockets.__version__}"
        )
        if args.rate is not None:
            print(
                f"  pusher: {args.rate:,.0f} frames/s = {info['speed']:.2f} x a market of"
                f" {info['market_rate']:,.0f} frames/s; {info['frames']:,} frames"
                f" ({info['mbytes']:.0f} MB) pre-built in {info['built_s']:.0f} s"
            )
        runs = []
        for i in range(args.runs):
            run = asyncio.run(measure(info, args, venues))
            report(run, f"run {i + 1}")
            runs.append(run)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if len(runs) > 1:
            med = statistics.median
            print(
                f"median of {len(runs)}: {med(r.frames_per_s for r in runs):,.0f} frames/s,"
                f" {med(r.cpu_us_per_frame for r in runs):.1f} µs/frame,"
                f" in-process p50 {med(pct(r.inproc_us, 0.5) for r in runs):,.0f} µs"
                f" p99 {med(pct(r.inproc_us, 0.99) for r in runs):,.0f} µs,"
                f" exchange-time p50 {med(pct(r.exchange_ms, 0.5) for r in runs):.1f} ms"
                f" p99 {med(pct(r.exchange_ms, 0.99) for r in runs):.1f} ms"
            )
        print(f"peak RSS of the detector process: {rss_mb:.0f} MB")
        stop.set()
        done = queue.get(timeout=30)
        if args.rate is not None:
            print(
                f"  pusher: {done['frames_sent']:,} frames sent, stalls {done['stalls']}"
                f" ({done['stalled_s']:.1f} s), a frame up to {done['max_late_ms']:.0f} ms late,"
                f" timeline {'used up' if done['finished'] else 'not used up'};"
                f" Binance depth weight peak {done['depth_weight_peak']:,}/min of 2,400,"
                f" 429s {done['depth_429s']}"
            )
    finally:
        stop.set()
        server.join(timeout=30)
        if server.is_alive():
            server.terminate()
            server.join()


if __name__ == "__main__":
    main()
