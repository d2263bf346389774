"""The live detector: every watched venue's feed and the pure pipeline in one loop, with health.

A venue's I/O is its REST client, its feed and its instruments list: :meth:`Detector._make_feed`
and :data:`INSTRUMENTS` are the two places that know each one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from detector.analyzer import TrackedOpportunity
from detector.clients.connection import ReconnectingWebSocket
from detector.clients.rest import BinanceClient, BybitClient, OkxClient, RestResult
from detector.config import DetectorConfig, FeedUrls
from detector.errors import ConfigError, ExchangeError
from detector.feeds import (
    STOP_WAIT_S,
    BinanceFeed,
    BybitFeed,
    Feed,
    FeedHealth,
    OkxFeed,
    decode,
)
from detector.models import Exchange, Source
from detector.pipeline import BookNeed, Pipeline
from detector.recording import Record
from detector.signals import Signal
from detector.symbols import Listing, SymbolMap
from detector.universe import ALL, Universe, build_universe
from detector.venues.instruments import (
    Instrument,
    parse_binance_exchange_info,
    parse_bybit_instruments,
    parse_okx_instruments,
)
from detector.venues.listing import find_listed

RestClient = BinanceClient | BybitClient | OkxClient

INSTRUMENTS: dict[Exchange, Callable[[list[RestResult]], list[Instrument]]] = {
    Exchange.BINANCE: lambda answers: parse_binance_exchange_info(answers[0].data),
    Exchange.BYBIT: lambda answers: parse_bybit_instruments([a.data for a in answers]),
    Exchange.OKX: lambda answers: parse_okx_instruments(answers[0].data),
}
"""Each venue's instruments list, from its ``get_instruments_info`` answers (pages)."""

log = logging.getLogger(__name__)

TICK_S = 0.1  # clock tick: staleness, book repairs, the silence watchdog
LATENCY_SAMPLES = 10_000  # detection latencies kept for percentiles
RATE_WINDOW = 100  # ticks of frame counts behind frames/s (10 s)


@dataclass(frozen=True, slots=True)
class BookHealth:
    exchange: Exchange
    symbol: str
    state: str
    healthy: bool
    age_ms: int | None
    gaps: int
    resyncs: int
    stale: int = 0  # fresh -> stale transitions, so that a short stall between two looks shows


@dataclass(frozen=True, slots=True)
class ExchangeHealth:
    feed: FeedHealth
    frames: int
    frames_per_s: float
    last_frame_age_ms: int | None
    gaps: int
    resyncs: int
    frame_errors: int


@dataclass(frozen=True, slots=True)
class Health:
    """A snapshot of the detector's health, for the console line and ``/status``."""

    now_ms: int
    exchanges: dict[Exchange, ExchangeHealth]
    books: list[BookHealth]
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    signals: int
    internal_errors: int
    symbol_problems: list[str]
    # "binance XUSDT" of each quarantined book (two coins behind one name), never signalled
    quarantined: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MarketChange:
    """What a refresh of ``SYMBOLS=ALL`` changed: the symbols that joined and that left."""

    added: tuple[str, ...]
    removed: tuple[str, ...]

    def __str__(self) -> str:
        def names(symbols: tuple[str, ...]) -> str:
            shown = ", ".join(symbols[:10])
            return shown + (f" and {len(symbols) - 10} more" if len(symbols) > 10 else "")

        parts = []
        if self.added:
            parts.append(f"{len(self.added)} listed ({names(self.added)})")
        if self.removed:
            parts.append(f"{len(self.removed)} delisted ({names(self.removed)})")
        return "; ".join(parts) or "no change"


class Detector:
    """Runs the feeds and the pipeline; emits signals to callbacks and async iterators."""

    def __init__(
        self,
        config: DetectorConfig,
        urls: FeedUrls | None = None,
        *,
        clock: Callable[[], float] = time.time,
        recorder: Callable[[Record], None] | None = None,
        validate_symbols: bool = True,
        ws_options: dict[str, Any] | None = None,
        rest_options: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.urls = urls or FeedUrls()
        self._clock = clock
        self._recorder = recorder
        self._validate = validate_symbols
        self._ws_options = ws_options or {}
        rest = rest_options or {}
        self.binance_rest = BinanceClient(self.urls.binance_rest, clock=clock, **rest)
        self.bybit_rest = BybitClient(self.urls.bybit_rest, clock=clock, **rest)
        self.okx_rest = OkxClient(self.urls.okx_rest, clock=clock, **rest)
        self.rest: dict[Exchange, RestClient] = {
            Exchange.BINANCE: self.binance_rest,
            Exchange.BYBIT: self.bybit_rest,
            Exchange.OKX: self.okx_rest,
        }
        self._opportunity_callbacks: list[Callable[[TrackedOpportunity], None]] = []
        self._venues: dict[str, tuple[Exchange, ...]] | None = None  # from the symbol check
        self._listings: dict[str, dict[Exchange, Listing]] | None = None  # SYMBOLS=ALL's map
        self.universe_summary = ""  # SYMBOLS=ALL: what discovery found, one line
        self.pipeline = self._new_pipeline(config)
        self.feeds: dict[Exchange, Feed] = {}
        self.symbol_problems: list[str] = []
        self.latencies: deque[int] = deque(maxlen=LATENCY_SAMPLES)
        self.internal_errors = 0
        self.signal_count = 0
        self._frames = dict.fromkeys(config.exchanges, 0)
        # (time, frames of each watched venue in config.exchanges' order), every tick
        self._rates: deque[tuple[int, tuple[int, ...]]] = deque(maxlen=RATE_WINDOW)
        # perf_counter_ns() when the message behind the signals being delivered reached arbwatch
        # (its connection's receive loop; a REST answer: when it was handed on): callbacks read
        # it for the in-process latency. Set only when a message caused signals.
        self.received_ns = 0
        self._callbacks: list[Callable[[Signal], None]] = []
        self._queues: list[asyncio.Queue[Signal]] = []
        self._tick_task: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._discovering = False  # SYMBOLS=ALL: the market is read again every refresh
        self._universe_callbacks: list[Callable[[tuple[str, ...]], None]] = []

    # -- wiring --------------------------------------------------------------------------

    def add_callback(self, fn: Callable[[Signal], None]) -> None:
        """``fn(signal)`` runs for every signal, in order, inside the event loop."""
        self._callbacks.append(fn)

    def add_universe_callback(self, fn: Callable[[tuple[str, ...]], None]) -> None:
        """``fn(symbols)`` runs whenever a refresh of the market changes the watched symbols."""
        self._universe_callbacks.append(fn)

    def add_opportunity_callback(self, fn: Callable[[TrackedOpportunity], None]) -> None:
        """``fn(tracked)`` runs for every opportunity that closes, with its final figures."""
        self._opportunity_callbacks.append(fn)

    def _new_pipeline(self, config: DetectorConfig) -> Pipeline:
        mapping = (
            None if self._listings is None else SymbolMap(config.symbols, listings=self._listings)
        )
        pipeline = Pipeline(config, symbol_map=mapping, venues=self._venues)
        pipeline.on_opportunity_closed = self._opportunity_closed
        return pipeline

    def _opportunity_closed(self, tracked: TrackedOpportunity) -> None:
        for fn in self._opportunity_callbacks:
            try:
                fn(tracked)
            except Exception:  # as for signal callbacks: counted, logged, the rest go on
                self.internal_errors += 1
                log.exception("opportunity callback %r failed", fn)

    async def signals(self) -> AsyncIterator[Signal]:
        """Every signal from now on, as an async iterator."""
        queue: asyncio.Queue[Signal] = asyncio.Queue()
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Validate the symbols, open the feeds and start the clock."""
        if self.config.symbols == (ALL,):
            self._discovering = True
            symbols = await self._discovered_symbols()
        elif self._validate:
            symbols = await self._checked_symbols()
        else:
            symbols = list(self.config.symbols)
        if tuple(symbols) != self.config.symbols:
            self.config = replace(self.config, symbols=tuple(symbols))
            self.pipeline = self._new_pipeline(self.config)
        mapping = self.pipeline.symbols
        venues = self._venues
        self.feeds = {}
        for exchange in self.config.exchanges:
            listed = [s for s in symbols if venues is None or exchange in venues.get(s, ())]
            if listed:
                names = [mapping.venue_symbol(exchange, s) for s in listed]
                self.feeds[exchange] = self._make_feed(exchange, names)
        await self._load_funding_intervals()
        for feed in self.feeds.values():
            await feed.start()
        self._tick_task = asyncio.create_task(self._tick_loop(), name="detector clock")
        if self._discovering:
            self._refresh_task = asyncio.create_task(self._refresh_loop(), name="market refresh")

    async def stop(self) -> None:
        """Close the feeds and the REST clients; safe to call more than once."""
        for task in (self._tick_task, self._refresh_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tick_task = self._refresh_task = None
        await asyncio.gather(*(feed.stop() for feed in self.feeds.values()))
        for client in self.rest.values():
            try:
                async with asyncio.timeout(STOP_WAIT_S):
                    await client.aclose()
            except TimeoutError:
                log.warning(
                    "%s REST client did not close within %g s", client.exchange, STOP_WAIT_S
                )

    async def __aenter__(self) -> Detector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the hot path --------------------------------------------------------------------

    def ingest(self, exchange: Exchange, source: Source, endpoint: str, data: Any, ts: int) -> None:
        """One received message: record it, feed it, deliver what it caused."""
        if self._recorder is not None and type(data) is msgspec.Raw:
            # A recording keeps the payload as JSON values (its text if it is none): a frame
            # that is not JSON must not break its line.
            data = decode(bytes(data))
        record = Record(ts, exchange, source, endpoint, data)
        self._frames[exchange] += 1
        if self._recorder is not None:
            self._recorder(record)
        try:
            signals = self.pipeline.feed(record)
        except Exception:  # a bug must not take the feed down with it; it is counted and logged
            self.internal_errors += 1
            log.exception("internal error on a %s message from %s", exchange, endpoint)
            return
        if signals:
            received = ReconnectingWebSocket.received_ns
            self.received_ns = received if source is Source.WS else time.perf_counter_ns()
            started = self.pipeline.last_exchange_ms
            if started is not None:
                self.latencies.append(int(self._clock() * 1000) - started)
            self._deliver(signals)

    def _deliver(self, signals: list[Signal]) -> None:
        for signal in signals:
            self.signal_count += 1
            for fn in self._callbacks:
                try:
                    fn(signal)
                except Exception:  # one failing consumer must not starve the others
                    self.internal_errors += 1
                    log.exception("signal callback %r failed", fn)
            for queue in self._queues:
                queue.put_nowait(signal)

    async def _tick_loop(self) -> None:
        silent_ms = 2 * self.config.stale_after_ms
        while True:
            try:
                await self._tick(silent_ms)
            except Exception:  # the clock must keep ticking: it is what notices silent feeds
                self.internal_errors += 1
                log.exception("detector clock tick failed")
            await asyncio.sleep(TICK_S)

    async def _tick(self, silent_ms: int) -> None:
        now = int(self._clock() * 1000)
        self._deliver(self.pipeline.advance(now))
        self._rates.append((now, tuple(self._frames.values())))
        # Every feed repairs from one look at the books (no await in between: no frame can
        # change them), then the silent ones reconnect. One walk over the books a tick, not
        # one per feed: at the whole market that is a thousand books or more.
        needs: dict[Exchange, list[BookNeed]] = {}
        for need in self.pipeline.needs():
            needs.setdefault(need.exchange, []).append(need)
        for exchange, feed in self.feeds.items():
            feed.repair(needs.get(exchange, []))
        for feed in list(self.feeds.values()):
            await feed.reconnect_silent(silent_ms)

    # -- start-up checks -----------------------------------------------------------------

    def _make_feed(self, exchange: Exchange, names: list[str]) -> Feed:
        """The feed of ``exchange`` for its ``names`` of the watched symbols."""
        ws = {"compression": self.config.ws_compression, **self._ws_options}
        if exchange is Exchange.BINANCE:
            return BinanceFeed(
                names, self.ingest, self.binance_rest, self.urls.binance_ws, self._clock, **ws
            )
        if exchange is Exchange.BYBIT:
            depth = self.config.bybit_book_depth
            return BybitFeed(names, self.ingest, self.urls.bybit_ws, self._clock, depth, **ws)
        # OKX's WebSocket takes the common options only, not Bybit's ping interval.
        okx_options = {k: v for k, v in ws.items() if k in ("backoff", "compression")}
        return OkxFeed(
            names, self.ingest, self.okx_rest, self.urls.okx_ws, self._clock, **okx_options
        )

    async def _load_funding_intervals(self) -> None:
        """Binance symbols not on 8 h funding are listed by /fapi/v1/fundingInfo (recorded too)."""
        if Exchange.BINANCE not in self.config.exchanges:
            return
        try:
            result = await self.binance_rest.get_funding_info()
        except ExchangeError as exc:
            log.warning("funding intervals unknown, assuming 8 h: %s", exc)
            return
        self.ingest(Exchange.BINANCE, Source.REST, result.endpoint, result.data, result.recv_ms)

    async def _instruments(self, hand_on_okx: bool = False) -> dict[Exchange, list[Instrument]]:
        """Every watched venue's instrument list (Bybit: every page). ``hand_on_okx``: OKX's
        goes to the pipeline too, whose parser sizes each swap's contracts with it."""
        instruments: dict[Exchange, list[Instrument]] = {}
        for exchange in self.config.exchanges:
            answers = await self.rest[exchange].get_instruments_info()
            pages = answers if isinstance(answers, list) else [answers]
            instruments[exchange] = INSTRUMENTS[exchange](pages)
            if hand_on_okx and exchange is Exchange.OKX and isinstance(answers, RestResult):
                self.ingest(exchange, Source.REST, answers.endpoint, answers.data, answers.recv_ms)
        return instruments

    async def discover(self, hand_on_okx: bool = False) -> Universe:
        """The mapped market of the watched venues, from their instrument lists now (every coin
        tradable on two or more of them, by coin and multiplier), minus ``symbols_exclude``."""
        try:
            instruments = await self._instruments(hand_on_okx)
        except ExchangeError as exc:
            raise ConfigError(f"the instrument lists are needed: {exc}") from exc
        return build_universe(instruments, self.config.symbols_exclude)

    async def _discovered_symbols(self) -> list[str]:
        """``SYMBOLS=ALL``: what :meth:`discover` finds, watched on the venues that trade it."""
        try:
            universe = await self.discover()
        except ConfigError as exc:
            raise ConfigError(f"SYMBOLS=ALL: {exc}") from exc
        if not universe.markets:
            raise ConfigError(
                f"SYMBOLS=ALL: no coin trades on two watched venues ({universe.summary()})"
            )
        self.universe_summary = universe.summary()
        self.symbol_problems = list(universe.problems)
        log.info("symbols: %s", self.universe_summary)
        self._venues = universe.venues()
        self._listings = universe.listings()
        return universe.symbols

    # -- the market, read again ---------------------------------------------------------

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.symbols_refresh_s)
            try:
                await self.refresh()
            except ConfigError as exc:  # a venue out of reach: the market stays as it was
                log.warning("symbols not refreshed: %s", exc)
            except Exception:
                self.internal_errors += 1
                log.exception("symbols refresh failed")

    async def refresh(self) -> MarketChange:
        """``SYMBOLS=ALL``: read the instrument lists again; new listings join (their books and
        connections start), delisted or remapped symbols leave (their open opportunities close
        as delisted, their streams are dropped). The rest runs on untouched."""
        universe = await self.discover(hand_on_okx=True)
        old_venues, old_listings = self._venues or {}, self._listings or {}
        venues, listings = universe.venues(), universe.listings()

        def same(symbol: str) -> bool:
            return old_venues.get(symbol) == venues.get(symbol) and old_listings.get(
                symbol
            ) == listings.get(symbol)

        removed = [s for s in self.config.symbols if s not in venues or not same(s)]
        added = [s for s in universe.symbols if s not in old_venues or not same(s)]
        mapping = self.pipeline.symbols
        leaving = {
            exchange: [
                mapping.venue_symbol(exchange, s)
                for s in removed
                if exchange in old_venues.get(s, ())
            ]
            for exchange in self.feeds
        }
        for symbol in removed:
            self._deliver(self.pipeline.remove_symbol(symbol))
        for exchange, names in leaving.items():
            if names:
                await self.feeds[exchange].remove_symbols(names)
        for symbol in added:
            self.pipeline.add_symbol(symbol, venues[symbol], listings[symbol])
        for exchange in self.config.exchanges:
            names = [mapping.venue_symbol(exchange, s) for s in added if exchange in venues[s]]
            if not names:
                continue
            if exchange in self.feeds:
                await self.feeds[exchange].add_symbols(names)
            else:
                self.feeds[exchange] = self._make_feed(exchange, names)
                await self.feeds[exchange].start()
        self._venues, self._listings = venues, listings
        self.config = replace(self.config, symbols=tuple(universe.symbols))
        self.universe_summary = universe.summary()
        self.symbol_problems = list(universe.problems)
        change = MarketChange(tuple(added), tuple(removed))
        if added or removed:
            log.info("symbols: %s; now %s", change, self.universe_summary)
            for fn in self._universe_callbacks:
                try:
                    fn(self.config.symbols)
                except Exception:
                    self.internal_errors += 1
                    log.exception("universe callback %r failed", fn)
        return change

    async def _checked_symbols(self) -> list[str]:
        """The configured symbols that trade on two or more watched venues (each watched on the
        venues that list it); the others are reported."""
        requested = list(self.config.symbols)
        mapping = self.pipeline.symbols
        try:
            instruments = await self._instruments()
        except ExchangeError as exc:
            self.symbol_problems = [f"symbols not validated: {exc}"]
            log.warning("could not validate symbols (%s); watching %s", exc, ", ".join(requested))
            return requested
        check = find_listed(requested, instruments, mapping.venue_symbol)
        self.symbol_problems = list(check.problems)
        for problem in check.problems:
            log.warning("symbol: %s", problem)
        if not check.venues:
            problems = "; ".join(check.problems)
            raise ConfigError(f"no symbol is tradable on two watched exchanges: {problems}")
        self._venues = check.venues
        self.pipeline = self._new_pipeline(self.config)
        return check.ok

    # -- health --------------------------------------------------------------------------

    def health(self) -> Health:
        now = int(self._clock() * 1000)
        stats = self.pipeline.stats
        exchanges: dict[Exchange, ExchangeHealth] = {}
        for exchange, feed in self.feeds.items():
            last = feed.last_message_ms()
            exchanges[exchange] = ExchangeHealth(
                feed=feed.health(),
                frames=self._frames[exchange],
                frames_per_s=self._rate(exchange),
                last_frame_age_ms=None if last is None else now - last,
                gaps=sum(v for k, v in stats.gaps.items() if k.startswith(exchange.value)),
                resyncs=sum(v for k, v in stats.resyncs.items() if k.startswith(exchange.value)),
                frame_errors=stats.frame_errors.get(exchange.value, 0),
            )
        books = [
            BookHealth(
                exchange=book.exchange,
                symbol=symbol,
                state=book.state.value,
                healthy=self.pipeline.is_healthy(book.exchange, symbol),
                age_ms=book.age_ms(now),
                gaps=book.gaps,
                resyncs=book.resyncs,
                stale=stats.stale.get(f"{book.exchange.value}:{symbol}", 0),
            )
            for symbol in self.config.symbols
            for book in self.pipeline.books(symbol)
        ]
        latencies = sorted(self.latencies)
        return Health(
            now_ms=now,
            exchanges=exchanges,
            books=books,
            latency_p50_ms=statistics.median(latencies) if latencies else None,
            latency_p99_ms=_percentile(latencies, 0.99),
            signals=self.signal_count,
            internal_errors=self.internal_errors,
            symbol_problems=[
                *self.symbol_problems,
                *(
                    f"{exchange.label} {symbol} quarantined: {why}"
                    for (exchange, symbol), why in self.pipeline.quarantined.items()
                ),
                *(
                    f"{exchange.label} {symbol} held: its price disagrees with another venue's;"
                    " unused until a third venue's book tells which is another coin"
                    for exchange, symbol in self.pipeline.held
                ),
            ],
            quarantined=[f"{e.value} {s}" for e, s in self.pipeline.quarantined],
        )

    def _rate(self, exchange: Exchange) -> float:
        if len(self._rates) < 2:
            return 0.0
        column = self.config.exchanges.index(exchange)
        first, last = self._rates[0], self._rates[-1]
        seconds = (last[0] - first[0]) / 1000
        return (last[1][column] - first[1][column]) / seconds if seconds > 0 else 0.0


def _percentile(ordered: list[int], q: float) -> float | None:
    if not ordered:
        return None
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])
