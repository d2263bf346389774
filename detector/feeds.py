"""Live feeds: each exchange's WebSocket connections and REST client, driving the book sync (I/O).

A feed moves bytes only. Every message it receives is handed to ``ingest`` with its receive time
(Binance's and Bybit's undecoded, as a :class:`msgspec.Raw`); the pure pipeline decides what it
means. The feed then looks at what the books need, as the pipeline reports it
(:class:`~detector.pipeline.BookNeed`) — a REST snapshot for a Binance book, a resubscription for
a Bybit topic — and does it. Stream and topic names come from the venue modules.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import orjson

from detector.clients.backoff import Backoff
from detector.clients.connection import ReconnectingWebSocket
from detector.clients.okx_ws import OkxWebSocket, connect_limiter
from detector.clients.rest import BinanceClient, OkxClient, RestResult, depth_weight
from detector.clients.ws import (
    BYBIT_MAX_TOPIC_CHARS,
    BYBIT_MAX_TOPICS,
    MAX_STREAMS_PER_CONNECTION,
    BinanceWebSocket,
    BybitWebSocket,
    shard,
)
from detector.errors import ConfigError, ExchangeError, FrameError
from detector.models import Exchange, Need, Source
from detector.pipeline import BookNeed
from detector.venues.binance import (
    agg_trade_stream,
    book_ticker_stream,
    depth_stream,
    mark_price_stream,
)
from detector.venues.bybit import orderbook_topic, tickers_topic, trade_topic
from detector.venues.instruments import parse_okx_instruments
from detector.venues.okx import (
    arg_key,
    books_arg,
    funding_arg,
    inst_id,
    key_arg,
    tickers_arg,
    trades_arg,
)

log = logging.getLogger(__name__)

Ingest = Callable[[Exchange, Source, str, Any, int], None]
"""``ingest(exchange, source, endpoint, data, recv_ms)``: hand one received message on."""

# A Bybit topic whose snapshot has not come this long after (re)subscribing is asked again.
BYBIT_SNAPSHOT_WAIT_MS = 5_000
# Never resubscribe one topic (or refetch one snapshot) more often than this.
MIN_REPAIR_INTERVAL_MS = 2_000
# OKX: "If you need to subscribe to many 50 or 400 depth level channels, it is recommended to
# subscribe through multiple websocket connections, with each of less than 30 channels."
OKX_BOOKS_PER_CONNECTION = 20
OKX_SNAPSHOT_WAIT_MS = 5_000
# A resubscription costs 2 of a connection's 480 requests an hour (docs-v5 "Connect"): one book
# repaired every 10 s at most leaves the budget to the others.
OKX_MIN_REPAIR_INTERVAL_MS = 10_000
OKX_ENDPOINT = "/ws/v5/public"
# How long stop() waits for the connections to close (a close handshake waits 2 s), then for
# what it cancelled.
STOP_WAIT_S = 5.0


class Connection(Protocol):
    """What a feed needs of a WebSocket client (both exchanges' clients have it)."""

    connected: bool
    connects: int
    reconnects: int
    last_message_ms: int | None
    last_error: str | None

    async def run(self) -> None: ...
    async def stop(self) -> None: ...
    async def reconnect(self, reason: str) -> None: ...


async def _settle(tasks: Sequence[asyncio.Task[Any]], within_s: float) -> list[asyncio.Task[Any]]:
    """Wait up to ``within_s`` for ``tasks``; those still pending (their exceptions retrieved
    for the rest: a shutdown reports no "exception never retrieved")."""
    if not tasks:
        return []
    done, pending = await asyncio.wait(tasks, timeout=within_s)
    for task in done:
        if not task.cancelled():
            task.exception()
    return [task for task in tasks if task in pending]


def decode(text: str | bytes) -> Any:
    """A received frame as JSON, or the raw text when it is not JSON (the parser reports it)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text if isinstance(text, str) else text.decode("utf-8", "replace")


@dataclass(slots=True)
class FeedHealth:
    """Connection-level health of one exchange."""

    exchange: Exchange
    connected: bool
    connects: int
    reconnects: int
    last_message_ms: int | None
    repairs: int
    rest_errors: int
    last_error: str | None = None
    refused_topics: list[str] = field(default_factory=list)


class Feed:
    """Common behaviour of both exchanges' feeds."""

    exchange: Exchange
    min_repair_interval_ms = MIN_REPAIR_INTERVAL_MS
    # The venue's parser decodes its hot frames typed from their bytes (Pipeline.feed takes a
    # msgspec.Raw): no dict is built for them. OKX's is not typed and reads its text "pong".
    raw_frames = True

    def __init__(self, ingest: Ingest, clock: Callable[[], float]) -> None:
        self._ingest = ingest
        self._clock = clock
        self.connections: list[Connection] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False  # start() has run: new connections open at once
        self._repairs: set[asyncio.Task[None]] = set()  # snapshot fetches, resubscriptions
        self._last_repair: dict[str, int] = {}
        self.repairs = 0
        self.rest_errors = 0
        self.last_error: str | None = None
        # id(connection) -> when it last (re)connected, for the connections _track_connects
        self._connected_ms: dict[int, int] = {}

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def receiver(self, endpoint: str) -> Callable[[bytes, int], None]:
        """The ``on_bytes`` of a connection to ``endpoint``: hand each message on (the hot path),
        as received (a :class:`msgspec.Raw`, which the pipeline decodes typed) when
        :attr:`raw_frames`, else decoded."""
        ingest, exchange, source = self._ingest, self.exchange, Source.WS
        if self.raw_frames:

            def receive(data: bytes, recv_ms: int) -> None:
                ingest(exchange, source, endpoint, msgspec.Raw(data), recv_ms)

        else:

            def receive(data: bytes, recv_ms: int) -> None:
                ingest(exchange, source, endpoint, decode(data), recv_ms)

        return receive

    async def start(self) -> None:
        self._started = True
        for conn in self.connections:
            self._tasks.append(asyncio.create_task(conn.run(), name=f"{self.exchange} ws"))

    async def stop(self) -> None:
        """Close every connection, then cancel what is left; bounded, so that a shutdown always
        ends: a connection that has not closed within STOP_WAIT_S is cancelled, and a task that
        ignores its cancellation is logged with its stack and left behind."""
        stops = [asyncio.create_task(conn.stop()) for conn in self.connections]
        unclosed = await _settle(stops, STOP_WAIT_S)
        if unclosed:
            log.warning(
                "%s: %d connection(s) did not close within %g s; cancelling them",
                self.exchange,
                len(unclosed),
                STOP_WAIT_S,
            )
        tasks = [*self._tasks, *self._repairs, *unclosed]
        for task in tasks:
            task.cancel()
        for task in await _settle(tasks, STOP_WAIT_S):
            stack = io.StringIO()
            task.print_stack(file=stack)
            log.error(
                "%s: a task ignores its cancellation; left behind\n%s",
                self.exchange,
                stack.getvalue(),
            )
        self._tasks.clear()
        self._repairs.clear()

    async def add_symbols(self, names: Sequence[str]) -> None:
        """Watch ``names`` (venue symbols, new listings) too, on connections of their own: the
        running ones keep their subscriptions untouched."""
        fresh = self._open_connections(names)
        self.connections.extend(fresh)
        if self._started:
            for conn in fresh:
                self._tasks.append(asyncio.create_task(conn.run(), name=f"{self.exchange} ws"))

    async def remove_symbols(self, names: Sequence[str]) -> None:
        """Stop watching ``names`` (delisted): unsubscribed where the venue allows it, never
        subscribed again; a connection left with nothing closes."""
        emptied = self._forget(set(names))
        for conn in emptied:
            if conn in self.connections:
                self.connections.remove(conn)
        await asyncio.gather(*(conn.stop() for conn in emptied), return_exceptions=True)

    def _open_connections(self, names: Sequence[str]) -> list[Connection]:
        """New connections carrying every stream of ``names``."""
        raise NotImplementedError

    def _forget(self, names: set[str]) -> list[Connection]:
        """Take ``names`` off every connection; those left carrying nothing."""
        raise NotImplementedError

    def _track_connects(self, conn: ReconnectingWebSocket) -> None:
        """Note in ``_connected_ms`` when ``conn`` (re)connects: a book that never had its
        snapshot waits that long for what the fresh subscription brings before a repair."""

        def on_connect() -> None:
            self._connected_ms[id(conn)] = self._now_ms()

        conn.on_connect = on_connect

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._repairs.add(task)
        task.add_done_callback(self._repairs.discard)

    def last_message_ms(self) -> int | None:
        times = [c.last_message_ms for c in self.connections if c.last_message_ms is not None]
        return min(times) if len(times) == len(self.connections) and times else None

    async def reconnect_silent(self, silent_after_ms: int) -> None:
        """Reconnect every connection that has been silent for ``silent_after_ms``."""
        now = self._now_ms()
        for conn in self.connections:
            last = conn.last_message_ms
            if conn.connected and last is not None and now - last > silent_after_ms:
                log.warning("%s: no message for %d ms, reconnecting", self.exchange, now - last)
                await conn.reconnect(f"silent for {(now - last) / 1000:.1f} s")

    def repair(self, needs: Sequence[BookNeed]) -> None:
        """Act on what the books of this feed's exchange need (``Pipeline.needs()``)."""
        raise NotImplementedError

    def _may_repair(self, key: str) -> bool:
        now = self._now_ms()
        interval = self.min_repair_interval_ms
        if now - self._last_repair.get(key, -interval) < interval:
            return False
        self._last_repair[key] = now
        self.repairs += 1
        return True

    def health(self) -> FeedHealth:
        return FeedHealth(
            exchange=self.exchange,
            connected=all(c.connected for c in self.connections),
            connects=sum(c.connects for c in self.connections),
            reconnects=sum(c.reconnects for c in self.connections),
            last_message_ms=self.last_message_ms(),
            repairs=self.repairs,
            rest_errors=self.rest_errors,
            last_error=next(
                (c.last_error for c in self.connections if not c.connected and c.last_error),
                self.last_error,
            ),
        )


SNAPSHOTS_IN_FLIGHT = 4
"""Binance depth snapshots requested at once; the rest wait their turn in the feed."""


def snapshot_limit(books: int, budget: float) -> int:
    """The deepest Binance snapshot (``/fapi/v1/depth`` ``limit``) whose weight for the first
    sync of all ``books`` fits in one window of ``budget``: 1000 (weight 20) up to 96 books at
    the default budget of 1,920, 500 (10) up to 192, 100 (5) up to 384, else 50 (2). Deeper
    levels than the snapshot's come with the diffs; the detector reads the top of each book."""
    for limit in (1000, 500, 100):
        if books * depth_weight(limit) <= budget:
            return limit
    return 50


def _symbols_per_connection(ws_options: dict[str, Any], most: int) -> int:
    """``symbols_per_connection`` from a feed's options (taken out of them), at most ``most``:
    the venue's limit by default; fewer to shard a few symbols, as tests do."""
    per = int(ws_options.pop("symbols_per_connection", most))
    if not 1 <= per <= most:
        raise ConfigError(f"symbols_per_connection must be in 1..{most}, got {per}")
    return per


class BinanceFeed(Feed):
    """``/public`` (diff depth, bookTicker) and ``/market`` (markPrice, aggTrade) connections,
    plus REST depth snapshots whenever a book needs one."""

    exchange = Exchange.BINANCE

    def __init__(
        self,
        symbols: Sequence[str],
        ingest: Ingest,
        rest: BinanceClient,
        ws_url: str,
        clock: Callable[[], float],
        **ws_options: Any,
    ) -> None:
        super().__init__(ingest, clock)
        self.rest = rest
        self._per = _symbols_per_connection(ws_options, MAX_STREAMS_PER_CONNECTION // 2)
        self._ws_url, self._ws_options = ws_url, ws_options
        self._on_public = self.receiver("/public/stream")
        self._on_market = self.receiver("/market/stream")
        self.public: list[BinanceWebSocket] = []
        self.market: list[BinanceWebSocket] = []
        self.connections = list(self._open_connections(symbols))
        # Snapshots: as deep as every book's first sync fits one window of the weight budget;
        # waiting ones (symbol -> a resync of a broken book?) go out a few at a time, resyncs
        # first, each paced by the client's weight limiter.
        self.snapshot_limit = snapshot_limit(len(dict.fromkeys(symbols)), rest.limiter.budget)
        self._wanted: dict[str, bool] = {}
        self._in_flight: set[str] = set()
        self.snapshots = 0  # fetched
        self.resyncs_ahead = 0  # resyncs sent ahead of first syncs that waited longer

    def _open_connections(self, symbols: Sequence[str]) -> list[Connection]:
        # A symbol's depth and bookTicker share a connection (the ticker proves the book's feed
        # alive); at most MAX_STREAMS_PER_CONNECTION streams a connection, so 100 symbols.
        per, url, clock, options = self._per, self._ws_url, self._clock, self._ws_options
        public = [
            BinanceWebSocket(
                url, "public", streams, on_bytes=self._on_public, clock=clock, **options
            )
            for streams in shard(
                symbols, lambda s: (depth_stream(s), book_ticker_stream(s)), 2 * per
            )
        ]
        market = [
            BinanceWebSocket(
                url, "market", streams, on_bytes=self._on_market, clock=clock, **options
            )
            for streams in shard(
                symbols,
                lambda s: (mark_price_stream(s, every_second=True), agg_trade_stream(s)),
                2 * per,
            )
        ]
        self.public.extend(public)
        self.market.extend(market)
        return [*public, *market]

    def _forget(self, symbols: set[str]) -> list[Connection]:
        prefixes = {s.lower() for s in symbols}
        emptied: list[Connection] = []
        for conn in [*self.public, *self.market]:
            gone = [s for s in conn.streams if s.partition("@")[0] in prefixes]
            if gone:
                conn.drop(gone)
                if not conn.streams:
                    emptied.append(conn)
                    (self.public if conn.path == "public" else self.market).remove(conn)
        for symbol in symbols:
            self._wanted.pop(symbol, None)
        return emptied

    def repair(self, needs: Sequence[BookNeed]) -> None:
        for book in needs:
            symbol = book.venue_symbol
            # Documented procedure: the stream must already be buffering when we ask for the
            # snapshot, or its lastUpdateId may fall before the first buffered event.
            if (
                book.need is Need.SNAPSHOT
                and book.buffered > 0
                and symbol not in self._in_flight
                and symbol not in self._wanted
                and self._may_repair(symbol)
            ):
                self._wanted[symbol] = book.broken
        self._send_snapshots()

    def _send_snapshots(self) -> None:
        while self._wanted and len(self._in_flight) < SNAPSHOTS_IN_FLIGHT:
            # A broken book (its symbol was live and lost its sync) before any first sync.
            symbol = next((s for s, broken in self._wanted.items() if broken), None)
            if symbol is None:
                symbol = next(iter(self._wanted))
            elif not next(iter(self._wanted.values())):
                self.resyncs_ahead += 1
            del self._wanted[symbol]
            self._in_flight.add(symbol)
            self._spawn(self._fetch(symbol), f"binance snapshot {symbol}")

    async def stop(self) -> None:
        self._wanted.clear()  # a fetch cancelled by stop() must not start the next one
        await super().stop()

    @property
    def snapshots_waiting(self) -> int:
        return len(self._wanted) + len(self._in_flight)

    async def _fetch(self, symbol: str) -> None:
        try:
            result: RestResult = await self.rest.get_order_book(symbol, self.snapshot_limit)
        except ExchangeError as exc:
            self.rest_errors += 1
            self.last_error = str(exc)
            log.warning("binance %s: snapshot failed: %s", symbol, exc)
            return
        finally:
            self._in_flight.discard(symbol)
            self._send_snapshots()
        self.snapshots += 1
        self._ingest(self.exchange, Source.REST, result.endpoint, result.data, result.recv_ms)


class BybitFeed(Feed):
    """``/v5/public/linear`` connections (as many as the topics need, each symbol's on one):
    orderbook.50, tickers and publicTrade per symbol."""

    exchange = Exchange.BYBIT

    def __init__(
        self,
        symbols: Sequence[str],
        ingest: Ingest,
        ws_url: str,
        clock: Callable[[], float],
        depth: int = 50,
        **ws_options: Any,
    ) -> None:
        super().__init__(ingest, clock)
        self.depth = depth
        self._per = _symbols_per_connection(ws_options, BYBIT_MAX_TOPICS // 3)
        self._ws_url, self._ws_options = ws_url, ws_options
        self._receive = self.receiver("/v5/public/linear")
        self.ws: list[BybitWebSocket] = []
        self._conn_of: dict[str, BybitWebSocket] = {}  # book topic -> the connection carrying it
        self.connections = list(self._open_connections(symbols))

    def _topics(self, symbol: str) -> tuple[str, ...]:
        return orderbook_topic(symbol, self.depth), tickers_topic(symbol), trade_topic(symbol)

    def _open_connections(self, symbols: Sequence[str]) -> list[Connection]:
        fresh: list[Connection] = []
        for topics in shard(symbols, self._topics, 3 * self._per, BYBIT_MAX_TOPIC_CHARS):
            conn = BybitWebSocket(
                self._ws_url, topics, on_bytes=self._receive, clock=self._clock, **self._ws_options
            )
            self._track_connects(conn)
            self.ws.append(conn)
            self._conn_of.update((t, conn) for t in topics if t.startswith("orderbook."))
            self._connected_ms[id(conn)] = self._now_ms()  # its subscription is on the way
            fresh.append(conn)
        return fresh

    def _forget(self, symbols: set[str]) -> list[Connection]:
        topics = {t for s in symbols for t in self._topics(s)}
        emptied: list[Connection] = []
        for conn in list(self.ws):
            gone = [t for t in conn.topics if t in topics]
            if gone:
                conn.drop(gone)
                for topic in gone:
                    self._conn_of.pop(topic, None)
                if not conn.topics:
                    emptied.append(conn)
                    self.ws.remove(conn)
        return emptied

    def repair(self, needs: Sequence[BookNeed]) -> None:
        now = self._now_ms()
        for book in needs:
            topic = orderbook_topic(book.venue_symbol, self.depth)
            conn = self._conn_of.get(topic)
            if book.need is not Need.RESUBSCRIBE or conn is None or not conn.connected:
                continue
            if topic in conn.refused:
                continue
            # A book that never had a snapshot waits for the subscription in flight; after a gap
            # (or if the snapshot never came) the topic is asked again, on its own connection.
            waited = now - self._connected_ms[id(conn)]
            if not book.broken and waited < BYBIT_SNAPSHOT_WAIT_MS:
                continue
            if self._may_repair(topic):
                self._spawn(conn.resubscribe(topic), f"bybit resubscribe {topic}")

    def health(self) -> FeedHealth:
        health = super().health()
        health.refused_topics = sorted(t for conn in self.ws for t in conn.refused)
        return health


class OkxFeed(Feed):
    """OKX ``/ws/v5/public`` connections: books, tickers, trades and funding-rate per swap.

    ``instruments`` are OKX's ``instId`` (``BTC-USDT-SWAP``; ``BTCUSDT`` is taken as its USDT
    swap), cut into connections of ``books_per_connection``. :meth:`start` first fetches the
    instruments list (retrying until it comes) and hands it on like any message: the parser
    needs each contract's size, and a recording keeps it. Instruments that are not live
    USDT-settled linear swaps are not subscribed (listed in ``untradable``). Only then do the
    connections open; a gap resubscribes that one instrument's books on its own connection.
    """

    exchange = Exchange.OKX
    min_repair_interval_ms = OKX_MIN_REPAIR_INTERVAL_MS
    raw_frames = False

    def __init__(
        self,
        instruments: Sequence[str],
        ingest: Ingest,
        rest: OkxClient,
        ws_url: str,
        clock: Callable[[], float],
        *,
        books_per_connection: int = OKX_BOOKS_PER_CONNECTION,
        backoff: Backoff | None = None,
        **ws_options: Any,
    ) -> None:
        super().__init__(ingest, clock)
        if books_per_connection < 1:
            raise ValueError(f"books_per_connection must be >= 1, got {books_per_connection}")
        self.rest = rest
        self.untradable: list[str] = []
        self.instruments_loaded = False
        self._backoff = backoff or Backoff()
        # Connection attempts count per IP (3 per second): one limiter for every connection.
        connects = connect_limiter(time.monotonic, self._backoff.sleep)
        self.ws: list[OkxWebSocket] = []
        self._conn_of: dict[str, OkxWebSocket] = {}  # books key → the connection carrying it
        self._per, self._connects = books_per_connection, connects
        self._ws_url, self._ws_options = ws_url, {"backoff": backoff, **ws_options}
        self._receive = self.receiver(OKX_ENDPOINT)
        self.instruments: list[str] = []
        self.connections = list(self._open_connections(instruments))

    def _open_connections(self, symbols: Sequence[str]) -> list[Connection]:
        instruments = list(dict.fromkeys(inst_id(s) for s in symbols))
        self.instruments.extend(i for i in instruments if i not in self.instruments)
        fresh: list[Connection] = []
        n = self._per
        for group in (instruments[i : i + n] for i in range(0, len(instruments), n)):
            args = [
                make(inst)
                for make in (books_arg, tickers_arg, trades_arg, funding_arg)
                for inst in group
            ]
            conn = OkxWebSocket(
                self._ws_url,
                args,
                on_bytes=self._receive,
                clock=self._clock,
                connects=self._connects,
                **self._ws_options,
            )
            self._track_connects(conn)
            self.ws.append(conn)
            self._conn_of.update((arg_key(books_arg(inst)), conn) for inst in group)
            fresh.append(conn)
        return fresh

    def _forget(self, symbols: set[str]) -> list[Connection]:
        gone_ids = {inst_id(s) for s in symbols}
        self.instruments = [i for i in self.instruments if i not in gone_ids]
        emptied: list[Connection] = []
        for conn in list(self.ws):
            gone = [k for k in conn.keys if key_arg(k)["instId"] in gone_ids]
            if gone:
                conn.drop(gone)
                for key in gone:
                    self._conn_of.pop(key, None)
                if not conn.keys:
                    emptied.append(conn)
                    self.ws.remove(conn)
        return emptied

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._start(), name="okx start"))

    async def _start(self) -> None:
        await self.load_instruments()
        # A connection with nothing to subscribe would be cut by OKX after 30 s, again and again.
        self.connections = [c for c in self.ws if any(k not in c.refused for k in c.keys)]
        if not self.connections:
            log.warning("okx: none of %s is a live USDT swap", ", ".join(self.instruments))
        await super().start()

    async def load_instruments(self) -> None:
        """``GET /api/v5/public/instruments?instType=SWAP`` until it answers; hand it on."""
        attempt = 0
        while True:
            try:
                result = await self.rest.get_instruments()
                listed = parse_okx_instruments(result.data)
                break
            except (ExchangeError, FrameError) as exc:
                self.rest_errors += 1
                self.last_error = f"instruments: {exc}"
                delay = self._backoff.delay(attempt)
                attempt += 1
                log.warning("okx: instruments failed (%s); retrying in %.2f s", exc, delay)
                await self._backoff.sleep(delay)
        self._ingest(self.exchange, Source.REST, result.endpoint, result.data, result.recv_ms)
        tradable = {i.symbol for i in listed if i.tradable}
        self.untradable = [i for i in self.instruments if i not in tradable]
        for conn in self.ws:
            for key in conn.keys:
                if key_arg(key)["instId"] not in tradable:
                    conn.refuse(key, "not a live USDT-settled linear swap on OKX")
        self.instruments_loaded = True

    def repair(self, needs: Sequence[BookNeed]) -> None:
        now = self._now_ms()
        for book in needs:
            if book.need is not Need.RESUBSCRIBE:
                continue
            key = arg_key(books_arg(book.venue_symbol))
            conn = self._conn_of.get(key)
            if conn is None or not conn.connected or key in conn.refused:
                continue
            # A book that never had a snapshot waits for the subscription in flight; after a
            # gap (or if the snapshot never came) its books channel is asked again.
            since = now - self._connected_ms.get(id(conn), now)
            if not book.broken and since < OKX_SNAPSHOT_WAIT_MS:
                continue
            if self._may_repair(key):
                self._spawn(conn.resubscribe(key), f"okx resubscribe {key}")

    def health(self) -> FeedHealth:
        health = super().health()
        health.refused_topics = sorted(key for conn in self.ws for key in conn.refused)
        return health
