"""Live benchmark: the detector in this process against the simulator in another, on loopback.

Reports the frame rate the detector processed, its CPU share, and detection latency (the exchange
time of the frame that triggered a signal to the moment the signal was emitted) at that rate.

    python scripts/live_bench.py [--seconds 60] [--load normal|high|max]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import time
from dataclasses import replace

from detector.config import DetectorConfig, SignalRules
from detector.engine import Detector
from detector.models import Exchange
from detector.signals import Signal, SignalType
from detector.simulator.scenarios import ArbitrageWindow, Scenario
from detector.simulator.server import LIVE_RATES, SimulatorServer
from detector.simulator.state import FeedRates

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
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


def windows(seconds: float) -> tuple[ArbitrageWindow, ...]:
    """An arbitrage window every 2 s, rotating symbols and directions, for the latency sample."""
    out = []
    at, i = 3.0, 0
    while at < seconds - 2:
        sell_on = Exchange.BYBIT if i % 2 == 0 else Exchange.BINANCE
        out.append(ArbitrageWindow(at, 0.8, SYMBOLS[i % 3], sell_on=sell_on, net_pct=0.2))
        at += 2.0
        i += 1
    return tuple(out)


def serve(port_queue: multiprocessing.Queue[int], seconds: float, rates: FeedRates) -> None:
    async def main() -> None:
        scenario = Scenario("bench", "arbitrage windows", seconds + 30, windows(seconds))
        async with SimulatorServer(scenario, symbols=SYMBOLS, tick_ms=5, rates=rates) as server:
            port_queue.put(int(server.urls.binance_rest.rsplit(":", 1)[1]))
            await asyncio.sleep(seconds + 30)

    asyncio.run(main())


async def measure(port: int, seconds: float, venues: tuple[Exchange, ...]) -> None:
    from detector.config import FeedUrls

    base = f"127.0.0.1:{port}"
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
        symbols=SYMBOLS, exchanges=venues, rules=SignalRules(arb_reopen_quiet_s=0)
    )
    detector = Detector(config, urls)
    latencies: list[int] = []

    def on_signal(signal: Signal) -> None:
        if signal.type is SignalType.ARBITRAGE and detector.pipeline.last_exchange_ms is not None:
            latencies.append(int(time.time() * 1000) - detector.pipeline.last_exchange_ms)

    detector.add_callback(on_signal)
    async with detector:
        await asyncio.sleep(3)  # books synced, rates settled
        frames0 = sum(h.frames for h in detector.health().exchanges.values())
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        wall0 = time.perf_counter()
        await asyncio.sleep(seconds)
        wall = time.perf_counter() - wall0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        health = detector.health()
    frames = sum(h.frames for h in health.exchanges.values()) - frames0
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    latencies.sort()

    def pct(q: float) -> str:
        return (
            f"{latencies[min(len(latencies) - 1, int(q * len(latencies)))]} ms"
            if latencies
            else "-"
        )

    print(f"frames processed: {frames} in {wall:.1f} s = {frames / wall:,.0f} frames/s")
    print(f"detector CPU: {cpu:.1f} s = {100 * cpu / wall:.0f} % of one core")
    print(f"arbitrage signals: {len(latencies)}, latency p50 {pct(0.5)}, p99 {pct(0.99)}")
    print(
        f"gaps {sum(h.gaps for h in health.exchanges.values())}, internal errors "
        f"{health.internal_errors}, books healthy {sum(b.healthy for b in health.books)}"
        f"/{len(health.books)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--load", choices=sorted(LOADS), default="normal")
    parser.add_argument(
        "--venues", default="binance,bybit", help="venues to watch, e.g. binance,bybit,okx"
    )
    args = parser.parse_args()
    venues = tuple(Exchange(v.strip()) for v in args.venues.split(",") if v.strip())
    ctx = multiprocessing.get_context("spawn")
    port_queue: multiprocessing.Queue[int] = ctx.Queue()
    server = ctx.Process(target=serve, args=(port_queue, args.seconds + 5, LOADS[args.load]))
    server.start()
    try:
        port = port_queue.get(timeout=30)
        print(f"load {args.load}: simulator on 127.0.0.1:{port}, {args.seconds:.0f} s")
        asyncio.run(measure(port, args.seconds, venues))
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
