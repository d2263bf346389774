"""The detector pipeline: received messages in, signals out, with the clock passed in (pure).

Replay and live share it: a live feed wraps each received message in a :class:`Record` with its
receive time, exactly as a recording line, and calls :meth:`Pipeline.feed`.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from detector.aggregator import RealtimeSignalAggregator
from detector.analyzer import (
    CrossExchangeAnalyzer,
    OpportunityEventKind,
    TrackedOpportunity,
)
from detector.book import ApplyResult, SyncedBook
from detector.config import DetectorConfig
from detector.errors import FrameError
from detector.models import (
    BookTicker,
    DepthDiff,
    DepthSnapshot,
    Event,
    Exchange,
    FundingInterval,
    FundingRate,
    Need,
    Source,
    SubscriptionAck,
    Trade,
)
from detector.processor import OrderBookProcessor
from detector.recording import Record
from detector.signals import Signal
from detector.symbols import Listing, SymbolMap
from detector.venues import make_parser
from detector.venues._typed import decode_json
from detector.venues.okx import BOOKS_DEPTH as OKX_BOOK_DEPTH

log = logging.getLogger(__name__)

# How often (in clock time) books are checked for staleness when frames keep coming.
STALE_CHECK_EVERY_MS = 100
# bookTicker frames kept per symbol until the depth event with their id arrives.
MAX_PENDING_TICKERS = 64
# How long two new books that disagree wait for a third venue's book of the symbol to sync
# and tell which of them is another coin (Binance syncs over REST, after Bybit and OKX).
HOLD_FOR_THIRD_MS = 60_000
# The events of the market, the most frequent first (tuples: a union such as ``A | B`` is
# built anew each time the expression runs, and isinstance reads a tuple faster).
_DEPTH = (DepthDiff, DepthSnapshot)
_MARKET = (DepthDiff, DepthSnapshot, BookTicker, Trade, FundingRate)


@dataclass(slots=True)
class PipelineStats:
    """Counters of what the pipeline saw; all deterministic for a given input."""

    records: int = 0
    events: int = 0
    frame_errors: Counter[str] = field(default_factory=Counter)  # per exchange
    unmonitored: int = 0  # events for symbols we do not watch
    other_depth: int = 0  # Bybit book topics of another depth than the configured one
    gaps: Counter[str] = field(default_factory=Counter)  # per "exchange:symbol"
    resyncs: Counter[str] = field(default_factory=Counter)
    stale: Counter[str] = field(default_factory=Counter)  # fresh -> stale transitions
    desyncs: Counter[str] = field(default_factory=Counter)  # book top disagreed with bookTicker
    ticker_checks: int = 0  # bookTicker frames compared with the book at the same update id
    refused_topics: list[str] = field(default_factory=list)
    signals: Counter[str] = field(default_factory=Counter)  # per signal type
    clock_regressions: int = 0  # records older than the clock (kept, clock not moved back)
    # "exchange:symbol" -> why: books whose prices say another coin (see Pipeline._verify)
    quarantined: dict[str, str] = field(default_factory=dict)
    quarantined_events: int = 0  # events of quarantined books, dropped

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "events": self.events,
            "frame_errors": dict(sorted(self.frame_errors.items())),
            "unmonitored": self.unmonitored,
            "other_depth": self.other_depth,
            "gaps": dict(sorted(self.gaps.items())),
            "resyncs": dict(sorted(self.resyncs.items())),
            "stale": dict(sorted(self.stale.items())),
            "desyncs": dict(sorted(self.desyncs.items())),
            "ticker_checks": self.ticker_checks,
            "refused_topics": list(self.refused_topics),
            "signals": dict(sorted(self.signals.items())),
            "clock_regressions": self.clock_regressions,
            # Only when something was quarantined: the outputs of sound runs stay as they were.
            **({"quarantined": dict(sorted(self.quarantined.items()))} if self.quarantined else {}),
            **({"quarantined_events": self.quarantined_events} if self.quarantined_events else {}),
        }


@dataclass(frozen=True, slots=True)
class BookNeed:
    """A book that the I/O layer must repair: fetch a snapshot or resubscribe.

    It carries everything a feed looks at to decide whether to act now: feeds never see a book.
    """

    exchange: Exchange
    symbol: str  # canonical
    venue_symbol: str
    need: Need
    # Binance: diff events held while the book waits for its REST snapshot (always 0 for Bybit).
    # The snapshot is only worth asking for once the stream is buffering.
    buffered: int
    # The book had been live (it applied an update, broke or was restored) and lost its sync.
    # False for a book still waiting for its first snapshot, which its subscription may bring.
    broken: bool


class Pipeline:
    """Frames in, signals out: parsers → books → analyzer → aggregator."""

    def __init__(
        self,
        config: DetectorConfig,
        symbol_map: SymbolMap | None = None,
        venues: Mapping[str, Sequence[Exchange]] | None = None,
    ) -> None:
        """``venues``: the watched venues that list each symbol (by default every watched one);
        a symbol gets a book on each of them, and only their pairs are evaluated."""
        self.config = config
        self.symbols = symbol_map or SymbolMap(config.symbols)
        self.processor = OrderBookProcessor()
        self.analyzer = CrossExchangeAnalyzer(config)
        self.aggregator = RealtimeSignalAggregator(config)
        self.exchanges = config.exchanges
        self.parsers = {exchange: make_parser(exchange) for exchange in self.exchanges}
        self.stats = PipelineStats()
        self.now_ms = 0
        self.last_exchange_ms: int | None = None
        # Called with every opportunity the analyzer closes (its final open/peak/close figures).
        self.on_opportunity_closed: Callable[[TrackedOpportunity], None] | None = None
        self._stale_ms = config.stale_after_ms
        # The book depth each venue's topics must have (Bybit and OKX have several per symbol).
        self._depths = {Exchange.BYBIT: config.bybit_book_depth, Exchange.OKX: OKX_BOOK_DEPTH}
        self._next_stale_check = 0
        # Per book: was it usable and fresh the last time we looked? Drives the transitions.
        self._healthy: dict[tuple[Exchange, str], bool] = {}
        # Per symbol, one book per watched venue, in the order of config.exchanges.
        self._books: dict[str, tuple[SyncedBook, ...]] = {}
        self._pending_tickers: dict[str, deque[BookTicker]] = {}
        # Identity: books not yet compared with another venue's book of their symbol (all, at
        # first), and the quarantined ones (canonical key -> why). See _verify.
        ratio = config.max_price_ratio_pct
        self._max_ratio = 1.0 + ratio / 100.0 if ratio > 0 else 0.0
        self._unverified: set[tuple[Exchange, str]] = set()
        self.quarantined: dict[tuple[Exchange, str], str] = {}
        # The newest funding rate of each unverified book, held back: a rate compared across
        # venues must be the same coin's (released when the book is verified, dropped if not).
        self._held_funding: dict[tuple[Exchange, str], FundingRate] = {}
        # Two unverified books that disagree while a third venue's book of the symbol is still
        # syncing: held (not compared, not signalled, their trades not counted) since when, so
        # that the third book can tell which one is the odd coin. See _verify.
        self._held: dict[tuple[Exchange, str], int] = {}
        for symbol in self.symbols.symbols:
            self._add_books(symbol, self.exchanges if venues is None else venues.get(symbol, ()))

    def _add_books(self, symbol: str, listed: Sequence[Exchange]) -> None:
        books = tuple(
            self.processor.book(exchange, symbol)
            for exchange in self.exchanges
            if exchange in listed
        )
        self._books[symbol] = books
        for book in books:
            self._healthy[(book.exchange, symbol)] = False
            if self._max_ratio:
                self._unverified.add((book.exchange, symbol))

    # -- the watched market ------------------------------------------------------------------

    def add_symbol(
        self, symbol: str, venues: Sequence[Exchange], listings: Mapping[Exchange, Listing]
    ) -> None:
        """Watch ``symbol`` (a new listing) on ``venues``: its books start empty, awaiting a
        snapshot, and unverified, as at start."""
        if symbol in self._books:
            self.remove_symbol(symbol)
        self.symbols.add(symbol, listings)
        self._add_books(symbol, venues)

    def remove_symbol(self, symbol: str) -> list[Signal]:
        """Stop watching ``symbol`` (delisted): its open opportunities close as DELISTED (their
        signals retired), its books and identity state go; its frames are ignored from now on.
        Returns what the closing caused (nothing is signalled about a book that left)."""
        books = self._books.pop(symbol, None)
        if books is None:
            return []
        for book in books:
            key = (book.exchange, symbol)
            if self._healthy.pop(key, False):
                self.aggregator.on_book_unusable(book.exchange, symbol, self.now_ms)
            self._unverified.discard(key)
            self.quarantined.pop(key, None)
            self._held_funding.pop(key, None)
            self._held.pop(key, None)
            self.processor.forget(book.exchange, symbol)
        self._pending_tickers.pop(symbol, None)
        self.symbols.remove(symbol)
        events = self.analyzer.forget(symbol, self.now_ms)
        if not events:
            return []
        if self.on_opportunity_closed is not None:
            for event in events:
                self.on_opportunity_closed(event.tracked)
        return self._emit(self.aggregator.on_opportunities(events, books, self.now_ms))

    # -- input ------------------------------------------------------------------------------

    def feed(self, record: Record) -> list[Signal]:
        """Process one received message; returns the signals it caused, in order.

        ``record.data`` is the decoded payload, or the payload as received (a
        :class:`msgspec.Raw`), which the venue's parser decodes typed: same events, less work.
        """
        self.stats.records += 1
        signals = self.advance(record.ts)
        parser = self.parsers.get(record.exchange)
        if parser is None:  # a venue this configuration does not watch (e.g. in a recording)
            self.stats.unmonitored += 1
            return signals
        data = record.data
        try:
            if type(data) is msgspec.Raw:  # undecoded (a lazy recording line): typed decoding
                if record.source is Source.WS:
                    events = parser.parse_ws_raw(data, record.ts)
                else:
                    body = decode_json(data, record.exchange)
                    events = parser.parse_rest(record.endpoint, body, record.ts)
            elif record.source is Source.WS:
                events = parser.parse_ws_message(data, record.ts)
            else:
                events = parser.parse_rest(record.endpoint, data, record.ts)
        except FrameError as exc:
            # One bad frame is logged and skipped: no book is reset, nothing else is lost.
            self.stats.frame_errors[record.exchange.value] += 1
            log.warning("skipped a frame from %s %s: %s", record.exchange, record.endpoint, exc)
            return signals
        for event in events:
            self.stats.events += 1
            self._dispatch(event, signals)
        return signals

    def advance(self, now_ms: int) -> list[Signal]:
        """Move the clock to ``now_ms`` and close what went stale; call it when no frames come."""
        if now_ms < self.now_ms:
            self.stats.clock_regressions += 1
            return []
        self.now_ms = now_ms
        if now_ms < self._next_stale_check:
            return []
        self._next_stale_check = now_ms + STALE_CHECK_EVERY_MS
        signals: list[Signal] = []
        for symbol, books in self._books.items():
            # Every book is looked at (no short-circuit): each transition counts when it happens.
            changed = [self._became_unhealthy(book, symbol) for book in books]
            if any(changed):
                self._analyze(symbol, signals)
        return signals

    # -- queries ----------------------------------------------------------------------------

    def needs(self) -> list[BookNeed]:
        """Books that wait for a snapshot or a resubscription, for the live feeds to act on."""
        return [
            BookNeed(
                exchange=book.exchange,
                symbol=symbol,
                venue_symbol=self.symbols.venue_symbol(book.exchange, symbol),
                need=need,
                buffered=book.buffered,
                broken=book.gaps > 0 or book.resyncs > 0 or book.applied > 0,
            )
            for symbol, books in self._books.items()
            for book in books
            if (need := book.need) is not Need.NOTHING
        ]

    def books(self, symbol: str) -> tuple[SyncedBook, ...]:
        """The books of a canonical symbol, one per watched venue (config.exchanges' order);
        none for a symbol not watched."""
        return self._books.get(symbol, ())

    @property
    def held(self) -> list[tuple[Exchange, str]]:
        """Books held for a third venue's verdict on their coin (see _verify): not yet used."""
        return list(self._held)

    def is_healthy(self, exchange: Exchange, symbol: str) -> bool:
        """True while the book is synced, not crossed and fresh (False: no such book)."""
        return self._healthy.get((exchange, symbol), False)

    # -- internals --------------------------------------------------------------------------

    def _dispatch(self, raw: Event, signals: list[Signal]) -> None:
        if not isinstance(raw, _MARKET):
            if isinstance(raw, SubscriptionAck):
                if not raw.success:
                    self.stats.refused_topics.append(raw.topic or raw.message)
            elif isinstance(raw, FundingInterval):
                found = self.symbols.canonical(raw.exchange, raw.symbol)
                if found is not None:
                    self.aggregator.set_funding_interval(raw.exchange, found[0], raw.interval_hours)
            return
        # The exchange's own time of the newest market event: the start of detection latency.
        self.last_exchange_ms = raw.trade_time_ms if isinstance(raw, Trade) else raw.event_time_ms
        event = self.symbols.to_canonical(raw)
        if event is None:
            self.stats.unmonitored += 1
            return
        if self.quarantined and (event.exchange, event.symbol) in self.quarantined:
            self.stats.quarantined_events += 1
            return
        now = self.now_ms
        if isinstance(event, _DEPTH):
            self._on_depth(event, signals)
        elif isinstance(event, Trade):
            if self._held and (event.exchange, event.symbol) in self._held:
                return  # which coin it trades is not known yet
            signals.extend(self._emit(self.aggregator.on_trade(event.symbol, event, now)))
        elif isinstance(event, FundingRate):
            if self._unverified and (event.exchange, event.symbol) in self._unverified:
                self._held_funding[(event.exchange, event.symbol)] = event
                return
            signals.extend(self._emit(self.aggregator.on_funding(event.symbol, event, now)))
        elif isinstance(event, BookTicker):
            self._on_book_ticker(event, signals)

    def _on_depth(self, event: DepthSnapshot | DepthDiff, signals: list[Signal]) -> None:
        exchange, symbol = event.exchange, event.symbol
        if (exchange, symbol) not in self._healthy:  # a venue that does not list it for us
            self.stats.unmonitored += 1
            return
        depth = self._depths.get(exchange)
        if depth is not None and event.depth not in (None, depth):
            self.stats.other_depth += 1  # e.g. Bybit orderbook.1, OKX books5: not our book
            return
        book = self.processor.book(exchange, symbol)
        gaps_before, resyncs_before = book.gaps, book.resyncs
        if isinstance(event, DepthSnapshot):
            result = book.apply_snapshot(event)
        else:
            result = book.apply_diff(event)
        if book.gaps != gaps_before:
            key = f"{exchange.value}:{symbol}"
            self.stats.gaps[key] += book.gaps - gaps_before
            log.warning("%s: %s, needs %s", key, book.last_gap, book.need.value)
        if book.resyncs != resyncs_before:
            self.stats.resyncs[f"{exchange.value}:{symbol}"] += book.resyncs - resyncs_before
        if result is ApplyResult.GAP:
            self._pending_tickers.pop(symbol, None)
        elif exchange is Exchange.BINANCE and result in (ApplyResult.APPLIED, ApplyResult.RESET):
            self._verify_pending_tickers(book, symbol)
        if result in (ApplyResult.APPLIED, ApplyResult.RESET, ApplyResult.GAP):
            self._book_changed(book, symbol, signals)

    def _on_book_ticker(self, event: BookTicker, signals: list[Signal]) -> None:
        symbol = event.symbol
        if event.exchange is Exchange.BYBIT or (event.exchange, symbol) not in self._healthy:
            return  # Bybit's tickers come on another connection than its book: no proof
        book = self.processor.book(event.exchange, symbol)
        if event.exchange is Exchange.OKX:
            # bbo-tbt and tickers share the book's connection, and OKX sends a book nothing
            # while it does not change: its tops prove the book's feed alive, as bookTicker
            # does Binance's. (OKX ids differ by channel: no cross-check of the top.)
            book.touch(event.recv_ms)
            return
        # bookTicker shares the depth stream's connection: it proves the book's feed is alive.
        book.touch(event.recv_ms)
        last, update_id = book.last_update_id, event.update_id
        if update_id is None or last is None or not book.synced:
            return
        # Binance ids are shared by depth and bookTicker: the book right after the depth event
        # with id u must show the top of the bookTicker with id u. The real-time bookTicker
        # usually arrives before the 100 ms depth batch that contains its update: keep it until
        # then.
        if update_id == last:
            if not self._top_matches(book, event):
                self._desync(book, symbol, event, signals)
        elif update_id > last:
            pending = self._pending_tickers.setdefault(symbol, deque(maxlen=MAX_PENDING_TICKERS))
            pending.append(event)

    def _verify_pending_tickers(self, book: SyncedBook, symbol: str) -> None:
        pending = self._pending_tickers.get(symbol)
        last = book.last_update_id
        if not pending or last is None:
            return
        while pending and (pending[0].update_id or 0) <= last:
            ticker = pending.popleft()
            if ticker.update_id == last and not self._top_matches(book, ticker):
                self._desync(book, symbol, ticker, None)
                return

    def _top_matches(self, book: SyncedBook, ticker: BookTicker) -> bool:
        self.stats.ticker_checks += 1
        bid, ask = book.levels.best_bid(), book.levels.best_ask()
        return (
            bid is not None
            and ask is not None
            and bid == (ticker.bid_price, ticker.bid_qty)
            and ask == (ticker.ask_price, ticker.ask_qty)
        )

    def _desync(
        self, book: SyncedBook, symbol: str, ticker: BookTicker, signals: list[Signal] | None
    ) -> None:
        """The book contradicts the exchange's own top of book: discard it and ask for a resync."""
        key = f"{book.exchange.value}:{symbol}"
        self.stats.desyncs[key] += 1
        log.warning("%s: book top disagrees with bookTicker u=%s", key, ticker.update_id)
        book.invalidate()
        self._pending_tickers.pop(symbol, None)
        if signals is not None:
            self._book_changed(book, symbol, signals)

    def _book_changed(self, book: SyncedBook, symbol: str, signals: list[Signal]) -> None:
        healthy = self._check_health(book, symbol)
        if healthy and self._unverified and (book.exchange, symbol) in self._unverified:
            self._verify(symbol, signals)
            key = (book.exchange, symbol)
            if key in self.quarantined or key in self._held:
                self._analyze(symbol, signals)
                return
        if healthy:
            signals.extend(
                self._emit(self.aggregator.on_book(book.exchange, symbol, book, self.now_ms))
            )
        self._analyze(symbol, signals)

    def _verify(self, symbol: str, signals: list[Signal]) -> None:
        """Compare the mids of the symbol's healthy books, once per book: one that differs from
        every other by more than ``max_price_ratio_pct`` is another coin behind the same name
        (or a multiplier read wrong), quarantined before it is ever compared for arbitrage. Two
        new books that disagree are held while a third venue's book of the symbol syncs (for up
        to ``HOLD_FOR_THIRD_MS``): it tells which of them is the odd one. Without a third, both
        are quarantined: which one is right cannot be told."""
        mids: dict[Exchange, float] = {}
        for book in self._books[symbol]:
            bid, ask = book.levels.best_bid(), book.levels.best_ask()
            if self._healthy[(book.exchange, symbol)] and bid is not None and ask is not None:
                mids[book.exchange] = (bid[0] + ask[0]) / 2
        if len(mids) < 2:
            return
        odd: list[tuple[SyncedBook, str]] = []
        for book in self._books[symbol]:
            key = (book.exchange, symbol)
            mid = mids.get(book.exchange)
            if key not in self._unverified or mid is None:
                continue
            others = {e: m for e, m in mids.items() if e is not book.exchange}
            if any(max(mid, m) / min(mid, m) <= self._max_ratio for m in others.values()):
                self._unverified.discard(key)
                self._held.pop(key, None)
                held = self._held_funding.pop(key, None)
                if held is not None:
                    on_funding = self.aggregator.on_funding(symbol, held, self.now_ms)
                    signals.extend(self._emit(on_funding))
                continue
            seen = ", ".join(f"{e.label} {m:.8g}" for e, m in others.items())
            odd.append((book, f"mid {mid:.8g} against {seen}: not the same coin"))
        if (
            len(odd) == 2
            and len(mids) == 2
            and len(self._books[symbol]) > 2
            and self._hold(odd[0][0], odd[1][0], symbol)
        ):
            return
        for book, why in odd:
            self._quarantine(book, symbol, why)

    def _hold(self, first: SyncedBook, second: SyncedBook, symbol: str) -> bool:
        """Hold two disagreeing books for a third venue's verdict; False once the hold is over."""
        keys = ((first.exchange, symbol), (second.exchange, symbol))
        since = min(self._held.get(key, self.now_ms) for key in keys)
        if self.now_ms - since >= HOLD_FOR_THIRD_MS:
            return False
        for key in keys:
            if key not in self._held:
                log.warning("%s %s held: its price disagrees, a third venue will tell", *key)
            self._held[key] = since
        return True

    def _quarantine(self, book: SyncedBook, symbol: str, why: str) -> None:
        key = (book.exchange, symbol)
        self.quarantined[key] = why
        self.stats.quarantined[f"{book.exchange.value}:{symbol}"] = why
        self._unverified.discard(key)
        self._held_funding.pop(key, None)
        self._held.pop(key, None)
        del self._healthy[key]  # its frames now count as quarantined events
        self._books[symbol] = tuple(b for b in self._books[symbol] if b is not book)
        if book.exchange is Exchange.BINANCE:
            self._pending_tickers.pop(symbol, None)
        self.aggregator.on_book_unusable(book.exchange, symbol, self.now_ms)
        log.warning("%s %s quarantined: %s", book.exchange, symbol, why)

    def _analyze(self, symbol: str, signals: list[Signal]) -> None:
        books = self._books[symbol]
        if self._held and any((b.exchange, symbol) in self._held for b in books):
            # A new tuple: the analyzer plans its pairs afresh (only while the hold lasts).
            books = tuple(b for b in books if (b.exchange, symbol) not in self._held)
        events = self.analyzer.update(symbol, books, self.now_ms)
        if events:
            if self.on_opportunity_closed is not None:
                for event in events:
                    if event.kind is OpportunityEventKind.CLOSED:
                        self.on_opportunity_closed(event.tracked)
            signals.extend(self._emit(self.aggregator.on_opportunities(events, books, self.now_ms)))

    def _check_health(self, book: SyncedBook, symbol: str) -> bool:
        """Update the book's healthy flag; tell the aggregator when it turns unhealthy."""
        age = book.age_ms(self.now_ms)
        healthy = book.usable and age is not None and age <= self._stale_ms
        key = (book.exchange, symbol)
        if self._healthy[key] and not healthy:
            self.aggregator.on_book_unusable(book.exchange, symbol, self.now_ms)
        self._healthy[key] = healthy
        return healthy

    def _became_unhealthy(self, book: SyncedBook, symbol: str) -> bool:
        key = (book.exchange, symbol)
        if not self._healthy[key]:
            return False
        if self._check_health(book, symbol):
            return False
        if book.usable:  # still synced: it went quiet
            self.stats.stale[f"{book.exchange.value}:{symbol}"] += 1
            log.warning("%s %s: no book frame for %d ms", book.exchange, symbol, self._stale_ms)
        return True

    def _emit(self, signals: list[Signal]) -> list[Signal]:
        for signal in signals:
            self.stats.signals[signal.type.value] += 1
        return signals
