"""The live detector end to end: real clients against the loopback simulator on 127.0.0.1.

Every wait is bounded and waits for a condition, never for a fixed time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import msgspec
import orjson
import pytest

from detector.clients.backoff import Backoff
from detector.config import DetectorConfig
from detector.engine import Detector
from detector.models import Exchange, Source
from detector.recording import Record, RecordingWriter, read_recording
from detector.replay import replay_records
from detector.signals import Signal, SignalType
from detector.simulator.scenarios import (
    ArbitrageWindow,
    ConnectionDrop,
    MalformedFrame,
    RefusedTopic,
    RestFault,
    Scenario,
    ScenarioEvent,
    SequenceGap,
    SequenceReset,
    StaleFeed,
    okx_topic,
)
from detector.simulator.server import SimulatorServer

SYMBOLS = ("BTCUSDT", "ETHUSDT")
OKX = Exchange.OKX
CONFIG = DetectorConfig(symbols=SYMBOLS, stale_after_s=2.0)
FAST_BACKOFF = Backoff(initial_s=0.05, max_s=0.2)
BOOK_SIGNALS = {SignalType.ARBITRAGE, SignalType.SPREAD_ANOMALY, SignalType.MOMENTUM_BREAKOUT}


@dataclass
class Run:
    server: SimulatorServer
    detector: Detector
    signals: list[Signal] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    async def until(self, condition: Callable[[], bool], limit_s: float = 20.0) -> None:
        """Wait (bounded by ``limit_s``) until ``condition()`` holds.

        The state it looks at changes in synchronous callbacks of the detector, so the predicate
        is polled at a fine pace; the bound, not the pace, is what the test relies on.
        """
        async with asyncio.timeout(limit_s):
            while not condition():  # noqa: ASYNC110 - see the docstring
                await asyncio.sleep(0.02)

    def arbitrage(self) -> list[Signal]:
        return [s for s in self.signals if s.type is SignalType.ARBITRAGE]


@asynccontextmanager
async def live(
    events: tuple[ScenarioEvent, ...],
    recorder: Callable[[Record], None] | None = None,
    config: DetectorConfig = CONFIG,
    **ws_options: object,
) -> AsyncIterator[Run]:
    scenario = Scenario("test", "a short live test", 60.0, events)
    async with SimulatorServer(scenario, symbols=SYMBOLS, seed=5) as server:
        detector = Detector(
            config,
            server.urls.feed_urls(),
            recorder=recorder,
            ws_options={"backoff": FAST_BACKOFF, **ws_options},
        )
        run = Run(server, detector)

        def check(signal: Signal) -> None:
            # Checked at the moment of emission: a book signal needs healthy books behind it.
            run.signals.append(signal)
            if signal.type not in BOOK_SIGNALS:
                return
            d = signal.details
            exchanges = (
                [Exchange(d["buy_exchange"]), Exchange(d["sell_exchange"])]
                if signal.type is SignalType.ARBITRAGE
                else [Exchange(d["exchange"])]
            )
            for exchange in exchanges:
                if not detector.pipeline.is_healthy(exchange, signal.symbol):
                    run.violations.append(f"{signal.type} from unhealthy {exchange}")
            if signal.type is SignalType.ARBITRAGE:
                # The prices are the books' own tops at the moment of emission.
                books = {b.exchange: b for b in detector.pipeline.books(signal.symbol)}
                ask = books[exchanges[0]].levels.best_ask()
                bid = books[exchanges[1]].levels.best_bid()
                if (
                    ask is None
                    or bid is None
                    or (d["buy_price"], d["sell_price"])
                    != (
                        ask[0],
                        bid[0],
                    )
                ):
                    run.violations.append(f"{d['direction']} prices are not the books' tops")

        detector.add_callback(check)
        async with detector:
            yield run


def books_healthy(run: Run) -> bool:
    return all(b.healthy for b in run.detector.health().books)


async def test_scripted_arbitrage_window_arrives_with_its_prices() -> None:
    window = ArbitrageWindow(2.0, 3.0, "BTCUSDT", sell_on=Exchange.BYBIT, net_pct=0.2)
    async with live((window,)) as run:

        def broken_consumer(signal: Signal) -> None:
            raise RuntimeError("a consumer bug")

        run.detector.add_callback(broken_consumer)

        async def first_from_iterator() -> Signal:
            async for signal in run.detector.signals():
                return signal
            raise AssertionError("the iterator ended")

        iterated = asyncio.create_task(first_from_iterator())
        await run.until(lambda: bool(run.arbitrage()))
        # The async iterator sees the same signals as the callbacks.
        assert await asyncio.wait_for(iterated, 5) in run.signals
        # The failing consumer was counted, the others (and the detector) went on.
        assert run.detector.internal_errors >= 1
        signal = run.arbitrage()[0]
        d = signal.details
        assert d["buy_exchange"] == "binance" and d["sell_exchange"] == "bybit"
        assert d["net_profit_percentage"] == pytest.approx(0.2, abs=0.03)
        assert d["max_volume"] * d["buy_price"] >= 100
        health = run.detector.health()
        assert health.latency_p50_ms is not None
        assert not run.violations


@pytest.mark.parametrize(
    ("fault", "survived"),
    [
        (SequenceGap(1.5, Exchange.BINANCE, "BTCUSDT"), "gaps"),
        (SequenceGap(1.5, Exchange.BYBIT, "BTCUSDT"), "gaps"),
        (MalformedFrame(1.5, Exchange.BYBIT, "BTCUSDT"), "frame_errors"),
        (ConnectionDrop(1.5, 1.0, Exchange.BINANCE), "reconnects"),
        (ConnectionDrop(1.5, 1.0, Exchange.BYBIT), "reconnects"),
        # 3.6 s of silence against STALE_AFTER_S 2: on a loaded machine the frames before the
        # stall go out late, which narrows the silence the detector sees.
        (StaleFeed(1.5, 3.6, Exchange.BYBIT), "stale"),
        # Silent for longer than twice STALE_AFTER_S: the watchdog replaces the connection.
        (StaleFeed(1.5, 6.0, Exchange.BINANCE), "reconnects"),
    ],
    ids=[
        "binance-gap",
        "bybit-gap",
        "malformed",
        "binance-drop",
        "bybit-drop",
        "stall",
        "long-stall",
    ],
)
async def test_faults_are_survived_and_detection_resumes(
    fault: ScenarioEvent, survived: str
) -> None:
    window = ArbitrageWindow(7.0, 3.0, "BTCUSDT", sell_on=Exchange.BYBIT, net_pct=0.2)
    async with live((fault, window)) as run:
        stats = run.detector.pipeline.stats
        exchange = fault.exchange  # type: ignore[union-attr]

        def fault_seen() -> bool:
            if survived == "reconnects":
                return run.detector.health().exchanges[exchange].feed.reconnects > 0
            counter = getattr(stats, survived)
            return any(k.startswith(exchange.value) for k in counter)

        await run.until(fault_seen)
        await run.until(lambda: books_healthy(run))  # resynced / reconnected / fresh again
        await run.until(lambda: bool(run.arbitrage()))  # and detection goes on
        assert not run.violations
        assert run.detector.internal_errors == 0


async def test_record_then_replay_gives_the_signals_seen_live(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl.gz"
    events = (
        SequenceGap(1.5, Exchange.BINANCE, "ETHUSDT"),
        ArbitrageWindow(2.5, 2.0, "ETHUSDT", sell_on=Exchange.BINANCE, net_pct=0.25),
        ArbitrageWindow(5.5, 2.0, "BTCUSDT", sell_on=Exchange.BYBIT, net_pct=0.15),
    )
    with RecordingWriter(path) as writer:
        async with live(events, recorder=writer) as run:
            await run.until(lambda: {s.symbol for s in run.arbitrage()} == set(SYMBOLS))
            live_signals = [s.to_dict() for s in run.signals]
    records = [r for r in read_recording(path) if isinstance(r, Record)]
    assert len(records) == writer.count
    # The start-up REST calls the pipeline uses are recorded too (funding intervals, snapshots).
    endpoints = {r.endpoint.split("?")[0] for r in records if r.source.value == "rest"}
    assert {"/fapi/v1/fundingInfo", "/fapi/v1/depth"} <= endpoints
    replayed = [s.to_dict() for s in replay_records(records, CONFIG)]
    assert replayed[: len(live_signals)] == live_signals


async def test_rest_rate_limit_during_a_resync_is_waited_out() -> None:
    events = (
        RestFault(1.0, 2.5, Exchange.BINANCE, status=429, retry_after_s=1.0),
        SequenceGap(1.5, Exchange.BINANCE, "ETHUSDT"),  # its snapshot refetch meets the 429
        ArbitrageWindow(6.0, 3.0, "ETHUSDT", sell_on=Exchange.BINANCE, net_pct=0.2),
    )
    async with live(events) as run:
        stats = run.detector.pipeline.stats
        await run.until(lambda: stats.gaps.get("binance:ETHUSDT", 0) >= 1)
        await run.until(lambda: stats.resyncs.get("binance:ETHUSDT", 0) >= 1)
        await run.until(lambda: bool(run.arbitrage()))
        assert run.server.stats.faults.get("rest_fault", 0) >= 1
        assert not run.violations


async def test_a_refused_topic_is_reported_and_the_rest_keeps_working() -> None:
    events = (
        RefusedTopic(0.0, 60.0, Exchange.BYBIT, "publicTrade.ETHUSDT"),
        ArbitrageWindow(2.0, 3.0, "ETHUSDT", sell_on=Exchange.BYBIT, net_pct=0.2),
    )
    async with live(events) as run:
        await run.until(lambda: bool(run.arbitrage()))
        bybit = run.detector.health().exchanges[Exchange.BYBIT].feed
        assert bybit.refused_topics == ["publicTrade.ETHUSDT"]
        assert books_healthy(run)


async def test_unknown_symbols_are_reported_not_fatal() -> None:
    config = DetectorConfig(symbols=("BTCUSDT", "ETHUSDT", "FOOUSDT"), stale_after_s=2.0)
    window = ArbitrageWindow(2.0, 3.0, "BTCUSDT", sell_on=Exchange.BYBIT, net_pct=0.2)
    async with live((window,), config=config) as run:
        assert run.detector.config.symbols == ("BTCUSDT", "ETHUSDT")
        assert any("FOOUSDT" in p for p in run.detector.symbol_problems)
        await run.until(lambda: bool(run.arbitrage()))


THREE_VENUES = replace(CONFIG, exchanges=(Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX))


async def test_okx_windows_with_binance_and_with_bybit_arrive_in_coins() -> None:
    windows = (
        ArbitrageWindow(2.0, 4.0, "BTCUSDT", sell_on=Exchange.BINANCE, net_pct=0.2, buy_on=OKX),
        ArbitrageWindow(2.0, 4.0, "ETHUSDT", sell_on=OKX, net_pct=0.2, buy_on=Exchange.BYBIT),
    )
    wanted = {"buy_okx_sell_binance", "buy_bybit_sell_okx"}
    async with live(windows, config=THREE_VENUES) as run:
        await run.until(lambda: wanted <= {s.details["direction"] for s in run.arbitrage()})
        for direction in wanted:
            signal = next(s for s in run.arbitrage() if s.details["direction"] == direction)
            d = signal.details
            assert d["net_profit_percentage"] == pytest.approx(0.2, abs=0.03), direction
            # Sizes are coins on every venue (OKX contracts times ctVal 0.01 BTC, 0.1 ETH): a
            # window rests at least depth_usd = 50 000 USDT at its crossing level, and the walk
            # adds the levels up to the gap (about 0.6-1 M USDT here). Contracts taken for coins
            # would be 10-100 times off either way.
            assert 50_000 <= d["notional"] <= 2_000_000, (direction, d["notional"])
        assert not run.violations
        healthy = {(b.exchange, b.symbol) for b in run.detector.health().books if b.healthy}
        assert {(OKX, "BTCUSDT"), (OKX, "ETHUSDT")} <= healthy


@pytest.mark.parametrize(
    ("fault", "survived"),
    [
        (SequenceGap(1.5, OKX, "BTCUSDT"), "gaps"),
        (ConnectionDrop(1.5, 1.0, OKX), "reconnects"),
    ],
    ids=["okx-gap", "okx-drop"],
)
async def test_okx_faults_are_survived_and_its_windows_resume(
    fault: ScenarioEvent, survived: str
) -> None:
    window = ArbitrageWindow(7.0, 3.0, "BTCUSDT", sell_on=OKX, net_pct=0.2, buy_on=Exchange.BYBIT)
    async with live((fault, window), config=THREE_VENUES) as run:
        stats = run.detector.pipeline.stats

        def fault_seen() -> bool:
            if survived == "reconnects":
                return run.detector.health().exchanges[OKX].feed.reconnects > 0
            return any(k.startswith("okx") for k in getattr(stats, survived))

        await run.until(fault_seen)
        await run.until(lambda: books_healthy(run))
        await run.until(
            lambda: any(s.details["direction"] == "buy_bybit_sell_okx" for s in run.arbitrage())
        )
        assert not run.violations
        assert run.detector.internal_errors == 0


async def test_an_okx_maintenance_reset_keeps_the_book_and_a_refused_instrument_the_rest() -> None:
    events = (
        SequenceReset(1.5, OKX, "BTCUSDT"),
        RefusedTopic(0.0, 30.0, OKX, okx_topic("books", "ETHUSDT")),
        ArbitrageWindow(4.0, 3.0, "BTCUSDT", sell_on=Exchange.BINANCE, net_pct=0.2, buy_on=OKX),
    )
    async with live(events, config=THREE_VENUES) as run:
        await run.until(
            lambda: any(s.details["direction"] == "buy_okx_sell_binance" for s in run.arbitrage())
        )
        stats = run.detector.pipeline.stats
        assert "okx:BTCUSDT" not in stats.gaps  # a reset is no gap: the chain goes on
        assert any("ETH-USDT-SWAP" in topic for topic in stats.refused_topics)
        assert not run.detector.pipeline.is_healthy(OKX, "ETHUSDT")
        assert run.detector.pipeline.is_healthy(OKX, "BTCUSDT")
        assert not run.violations


async def test_recorded_okx_traffic_replays_to_the_signals_seen_live(tmp_path: Path) -> None:
    path = tmp_path / "okx.jsonl.gz"
    events = (
        SequenceGap(1.5, OKX, "ETHUSDT"),
        ArbitrageWindow(2.5, 2.0, "ETHUSDT", sell_on=OKX, net_pct=0.25, buy_on=Exchange.BINANCE),
        ArbitrageWindow(4.5, 2.0, "BTCUSDT", sell_on=Exchange.BYBIT, net_pct=0.2, buy_on=OKX),
    )
    with RecordingWriter(path) as writer:
        async with live(events, recorder=writer, config=THREE_VENUES) as run:
            await run.until(lambda: {s.symbol for s in run.arbitrage()} == set(SYMBOLS))
            live_signals = [s.to_dict() for s in run.signals]
    records = [r for r in read_recording(path) if isinstance(r, Record)]
    # The instruments answer (with each contract's ctVal) is recorded: the replay converts
    # contracts to coins exactly as the live run did.
    assert any(r.exchange is OKX and "instruments" in r.endpoint for r in records)
    replayed = [s.to_dict() for s in replay_records(records, THREE_VENUES)]
    assert replayed[: len(live_signals)] == live_signals
    assert {"buy_binance_sell_okx", "buy_okx_sell_bybit"} <= {
        s["details"]["direction"] for s in live_signals if s["type"] == "arbitrage"
    }


@pytest.mark.parametrize(
    ("exclude", "watched"),
    [((), ("BTCUSDT", "ETHUSDT")), (("ETHUSDT",), ("BTCUSDT",))],
    ids=["all", "all-but-eth"],
)
async def test_symbols_all_discovers_the_common_market(
    exclude: tuple[str, ...], watched: tuple[str, ...]
) -> None:
    # The loopback venues list BTCUSDT and ETHUSDT, a quarterly and a pending listing: ALL
    # watches the perpetuals trading on both, minus the exclusions, and finds their windows.
    config = replace(CONFIG, symbols=("ALL",), symbols_exclude=exclude)
    window = ArbitrageWindow(2.0, 3.0, "BTCUSDT", sell_on=Exchange.BYBIT, net_pct=0.2)
    async with live((window,), config=config) as run:
        assert run.detector.config.symbols == watched
        summary = run.detector.universe_summary
        assert summary.startswith(f"{len(watched)} symbols on two or more venues (Binance ")
        assert ("1 excluded" in summary) is bool(exclude)
        assert run.detector.pipeline.symbols.venue_symbol(Exchange.BYBIT, "BTCUSDT") == "BTCUSDT"
        await run.until(lambda: bool(run.arbitrage()))
        assert {s.symbol for s in run.signals} <= set(watched)


async def test_sharded_connections_carry_their_own_symbols_and_reconnect_alone() -> None:
    # One symbol a connection: what the whole market does with 100 (Binance, Bybit) a connection.
    windows = tuple(
        ArbitrageWindow(2.0, 2.5, symbol, sell_on=Exchange.BYBIT, net_pct=0.2) for symbol in SYMBOLS
    )
    records: list[Record] = []
    async with live(windows, records.append, symbols_per_connection=1) as run:
        binance, bybit = run.detector.feeds[Exchange.BINANCE], run.detector.feeds[Exchange.BYBIT]
        assert (len(binance.connections), len(bybit.connections)) == (4, 2)
        assert [c.topics for c in bybit.ws] == [
            ("orderbook.50.BTCUSDT", "tickers.BTCUSDT", "publicTrade.BTCUSDT"),
            ("orderbook.50.ETHUSDT", "tickers.ETHUSDT", "publicTrade.ETHUSDT"),
        ]
        await run.until(lambda: {s.symbol for s in run.arbitrage()} == set(SYMBOLS))

        def snapshots(symbol: str, since: int) -> int:
            frames = [
                orjson.loads(bytes(r.data)) if isinstance(r.data, msgspec.Raw) else r.data
                for r in records[since:]
                if r.exchange is Exchange.BYBIT and r.source is Source.WS
            ]
            return sum(
                type(f) is dict
                and f.get("topic") == f"orderbook.50.{symbol}"
                and f.get("type") == "snapshot"
                for f in frames
            )

        mark = len(records)
        first, second = bybit.ws
        await first.reconnect("test: one connection only")
        # The dropped connection subscribes its own topics again, so a fresh BTCUSDT snapshot
        # comes; ETHUSDT, on the other connection, never noticed.
        await run.until(lambda: snapshots("BTCUSDT", mark) > 0)
        await run.until(lambda: run.detector.pipeline.is_healthy(Exchange.BYBIT, "BTCUSDT"))
        assert (first.connects, second.connects, second.reconnects) == (2, 1, 0)
        assert snapshots("ETHUSDT", mark) == 0
        assert run.detector.pipeline.is_healthy(Exchange.BYBIT, "ETHUSDT")
        assert not run.violations
