"""The loopback exchange: Binance USDⓈ-M, Bybit v5 linear and OKX v5 swaps over real sockets
(aiohttp).

One port serves every exchange (their paths do not collide: ``/fapi``, ``/public``, ``/market``
for Binance; ``/v5`` for Bybit; ``/api/v5`` and ``/ws/v5/public`` for OKX). The market model runs
in real time — model time is the wall
clock, so receive time minus exchange time is the real latency — and a task pushes each frame
it publishes to the connections subscribed to its stream or topic. The scenario's faults happen
at their scripted times: dropped connections (cut, then refused with HTTP 503 until they end),
stalls and lost or broken updates (the model's), REST errors and refused topics (the server's).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from aiohttp import web

from detector.config import FeedUrls
from detector.models import Exchange
from detector.simulator import wire, wire_okx
from detector.simulator.market import MarketModel
from detector.simulator.scenarios import Scenario, build_scenario
from detector.simulator.server_rest import RestApi
from detector.simulator.server_rest_okx import OkxRestApi
from detector.simulator.server_state import FaultSchedule, ServerContext, ServerStats
from detector.simulator.server_ws import BinanceStreams, BybitStreams, Streams
from detector.simulator.server_ws_okx import OkxStreams
from detector.simulator.state import FeedRates
from detector.simulator.wire import Frame

DEFAULT_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
DEFAULT_PORT = 8790
# @markPrice@1s needs a mark every second; plain @markPrice subscribers get every third one.
LIVE_RATES = FeedRates(binance_mark_ms=1000)


@dataclass(frozen=True, slots=True)
class SimulatorUrls:
    """Where a client finds the simulated exchanges (the ``*_URL`` settings).

    ``okx_ws`` is the public endpoint itself (``ws://host:port/ws/v5/public``, like
    ``wss://ws.okx.com:8443/ws/v5/public``); clients that append ``/public`` themselves (ccxt's
    ``urls['api']['ws']``) take :attr:`okx_ws_base`.
    """

    binance_rest: str
    binance_ws: str
    bybit_rest: str
    bybit_ws: str
    okx_rest: str
    okx_ws: str

    @property
    def okx_ws_base(self) -> str:
        """``okx_ws`` without its ``/public``: ``ws://host:port/ws/v5``."""
        return self.okx_ws.removesuffix("/public")

    def feed_urls(self) -> FeedUrls:
        """The same URLs as the detector's settings take them."""
        return FeedUrls(
            binance_rest=self.binance_rest,
            binance_ws=self.binance_ws,
            bybit_rest=self.bybit_rest,
            bybit_ws=self.bybit_ws,
            okx_rest=self.okx_rest,
            okx_ws=self.okx_ws,
        )

    def env_lines(self) -> list[str]:
        """``BINANCE_REST_URL=...`` lines, ready to paste into ``.env``."""
        return [
            f"BINANCE_REST_URL={self.binance_rest}",
            f"BINANCE_WS_URL={self.binance_ws}",
            f"BYBIT_REST_URL={self.bybit_rest}",
            f"BYBIT_WS_URL={self.bybit_ws}",
            f"OKX_REST_URL={self.okx_rest}",
            f"OKX_WS_URL={self.okx_ws}",
        ]


class SimulatorServer:
    """Every exchange on one loopback port, driven by a :class:`MarketModel` in real time.

    It serves Binance, Bybit and OKX; a scenario's OKX events come with ``build_scenario(...,
    okx=True)`` (a scenario given by name follows :data:`~detector.simulator.scenarios.WITH_OKX`).
    What Binance and Bybit clients get does not depend on OKX being served.
    """

    def __init__(
        self,
        scenario: Scenario | str = "showcase",
        *,
        symbols: Sequence[str] = DEFAULT_SYMBOLS,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        tick_ms: int = 20,
        rates: FeedRates = LIVE_RATES,
    ) -> None:
        if tick_ms <= 0:
            raise ValueError(f"tick_ms must be > 0, got {tick_ms}")
        self.symbols = tuple(symbols)
        self.scenario = (
            build_scenario(scenario, self.symbols) if isinstance(scenario, str) else scenario
        )
        self.seed = seed
        self.stats = ServerStats()
        self._host, self._port = host, port
        self._clock = clock
        self._tick_s = tick_ms / 1000
        self._rates = rates
        self._ctx: ServerContext | None = None
        self._runner: web.AppRunner | None = None
        self._market: asyncio.Task[None] | None = None
        self._binance: BinanceStreams | None = None
        self._bybit: BybitStreams | None = None
        self._okx: OkxStreams | None = None
        self._urls: SimulatorUrls | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind (port 0: any free port) and start the market."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already started")
        start_ms = int(self._clock() * 1000)
        model = MarketModel(
            self.symbols, self.seed, start_ms, self.scenario, self._rates, venues=tuple(Exchange)
        )
        faults = FaultSchedule(self.scenario, start_ms)
        ctx = ServerContext(model, faults, self._clock, self.seed, self.stats)
        app = web.Application()
        RestApi(ctx).add_routes(app)
        OkxRestApi(ctx).add_routes(app)
        self._binance, self._bybit = BinanceStreams(ctx), BybitStreams(ctx)
        self._okx = OkxStreams(ctx)
        self._binance.add_routes(app)
        self._bybit.add_routes(app)
        self._okx.add_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._ctx, self._runner = ctx, runner
        port = runner.addresses[0][1]
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        self._urls = SimulatorUrls(
            binance_rest=f"http://{host}:{port}",
            binance_ws=f"ws://{host}:{port}",
            bybit_rest=f"http://{host}:{port}",
            bybit_ws=f"ws://{host}:{port}{wire.BYBIT_LINEAR}",
            okx_rest=f"http://{host}:{port}",
            okx_ws=f"ws://{host}:{port}{wire_okx.OKX_PUBLIC}",
        )
        self._market = asyncio.create_task(self._run_market(), name="simulator-market")

    async def stop(self) -> None:
        """Close every WebSocket (1001), stop the market and the server; idempotent."""
        runner, market = self._runner, self._market
        if runner is None:
            return
        self._runner = self._market = None
        failure: BaseException | None = None
        if market is not None:
            market.cancel()
            (outcome,) = await asyncio.gather(market, return_exceptions=True)
            if isinstance(outcome, Exception):
                failure = outcome
        for streams in (self._binance, self._bybit, self._okx):
            if streams is not None:
                await streams.close_all()
        await runner.cleanup()
        if failure is not None:
            raise failure

    async def serve_forever(self) -> None:
        """Wait until the server is stopped (or its market fails)."""
        market = self._market
        if market is None:
            raise RuntimeError("the simulator is not started")
        try:
            await asyncio.shield(market)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller is cancelled
            # else stop() cancelled the market: the server is done

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- state ---------------------------------------------------------------------------------
    @property
    def urls(self) -> SimulatorUrls:
        if self._urls is None:
            raise RuntimeError("the simulator is not started")
        return self._urls

    @property
    def okx_rest_url(self) -> str:
        """OKX_REST_URL: the base of ``/api/v5/...``."""
        return self.urls.okx_rest

    @property
    def okx_ws_url(self) -> str:
        """OKX_WS_URL: the public WebSocket endpoint, ``ws://host:port/ws/v5/public``."""
        return self.urls.okx_ws

    @property
    def model(self) -> MarketModel:
        if self._ctx is None:
            raise RuntimeError("the simulator is not started")
        return self._ctx.model

    @property
    def start_ms(self) -> int:
        """Wall-clock ms of scenario time 0."""
        return self.model.start_ms

    # -- the market ----------------------------------------------------------------------------
    async def _run_market(self) -> None:
        while True:
            self._tick()
            await asyncio.sleep(self._tick_s)

    def _tick(self) -> None:
        """Run the model up to now and deliver what it published (the market task's step)."""
        ctx, binance, bybit, okx = self._ctx, self._binance, self._bybit, self._okx
        assert ctx is not None and binance is not None and bybit is not None and okx is not None
        streams: dict[Exchange, Streams] = {
            Exchange.BINANCE: binance,
            Exchange.BYBIT: bybit,
            Exchange.OKX: okx,
        }
        now = ctx.now_ms()
        for output in ctx.model.advance(now):
            if isinstance(output, Frame):
                if output.malformed:
                    self.stats.faults["malformed_frame"] += 1
                ctx.cache.observe(output)
                if output.exchange is Exchange.BINANCE:
                    binance.dispatch(output)
                elif output.exchange is Exchange.BYBIT:
                    bybit.dispatch(output)
                else:
                    okx.dispatch(output)
            else:
                self.stats.faults["disconnect"] += 1
                streams[output.exchange].drop_all()
        bybit.flush(now)
        okx.flush(now)


async def run_simulator(
    scenario: Scenario | str = "showcase",
    port: int = DEFAULT_PORT,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    seed: int = 1,
    *,
    host: str = "127.0.0.1",
    out: TextIO | None = None,
    ready: Callable[[SimulatorServer], None] | None = None,
) -> None:
    """Serve the simulated exchanges until cancelled; print the URLs (``.env`` lines) and the
    scenario's timeline in wall-clock time first. ``ready`` is called once the server is up."""
    stream = out if out is not None else sys.stdout
    async with SimulatorServer(scenario, symbols=symbols, seed=seed, host=host, port=port) as sim:
        for line in describe(sim):
            print(line, file=stream, flush=True)
        if ready is not None:
            ready(sim)
        await sim.serve_forever()


def describe(sim: SimulatorServer) -> list[str]:
    """The URLs as ``.env`` lines, then the scenario as ``#`` comments with wall-clock times."""
    scenario = sim.scenario
    start_s = sim.start_ms / 1000

    def clock(offset_s: float) -> str:
        return time.strftime("%H:%M:%S", time.localtime(start_s + offset_s))

    lines = [
        f"# arbwatch simulator: scenario {scenario.name} ({scenario.description})",
        f"# symbols {' '.join(sim.symbols)}, seed {sim.seed}; paste these into .env:",
        *sim.urls.env_lines(),
        f"# timeline from {clock(0)}; after {clock(scenario.duration_s)} "
        f"(+{scenario.duration_s:.0f}s) the market runs on, calm:",
    ]
    events = sorted(scenario.events, key=lambda e: e.at_s)
    for event, line in zip(events, scenario.timeline(), strict=True):
        lines.append(f"#   {clock(event.at_s)} {line}")
    return lines
