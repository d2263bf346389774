"""Local order books: price levels plus the sync state machine of each exchange (pure, no I/O)."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Iterator
from enum import StrEnum
from itertools import islice

from detector.errors import SequenceGap
from detector.models import DepthDiff, DepthSnapshot, Exchange, Level, Need, Source

# Binance: how many diff events we hold while waiting for a REST snapshot. At 10 events/s per
# symbol this covers minutes of a slow snapshot; beyond it the oldest go and the snapshot that
# finally arrives is detected as too old (its lastUpdateId falls before the first buffered U).
MAX_BUFFERED_DIFFS = 5000


class BookState(StrEnum):
    """Sync state of a local book."""

    AWAITING_SNAPSHOT = "awaiting_snapshot"  # nothing usable; see ``need``
    BRIDGING = "bridging"  # Binance: REST snapshot applied, waiting for the event that spans it
    SYNCED = "synced"


class ApplyResult(StrEnum):
    """What applying one event did to a book."""

    APPLIED = "applied"  # levels changed, the book is synced
    RESET = "reset"  # a snapshot replaced the book
    BUFFERED = "buffered"  # Binance: held until the REST snapshot arrives
    DROPPED = "dropped"  # older than the book (u < lastUpdateId, or a repeated u)
    IGNORED = "ignored"  # the book cannot use it in its state (Bybit delta before a snapshot)
    GAP = "gap"  # the chain broke: the book was discarded and now needs ``need``


class OrderBook:
    """Price levels of one book. Bids and asks are kept as dicts plus sorted price lists, and
    the best of each side once per change (it is read several times for each change)."""

    __slots__ = (
        "_ask_prices",
        "_asks",
        "_best_ask",
        "_best_bid",
        "_bid_prices",
        "_bids",
        "_crossed",
    )

    def __init__(self) -> None:
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._bid_prices: list[float] = []  # ascending: best bid is the last
        self._ask_prices: list[float] = []  # ascending: best ask is the first
        self._best_bid: Level | None = None
        self._best_ask: Level | None = None
        self._crossed = False  # best bid >= best ask: read several times a frame, set per change

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()
        self._best_bid = self._best_ask = None
        self._crossed = False

    def _tops(self) -> None:
        bid_prices, ask_prices = self._bid_prices, self._ask_prices
        if bid_prices:
            bid = bid_prices[-1]
            self._best_bid = (bid, self._bids[bid])
        else:
            self._best_bid = None
        if ask_prices:
            ask = ask_prices[0]
            self._best_ask = (ask, self._asks[ask])
            self._crossed = bool(bid_prices) and bid_prices[-1] >= ask
        else:
            self._best_ask = None
            self._crossed = False

    def replace(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace both sides; zero sizes are left out."""
        self._bids = {p: q for p, q in bids if q > 0.0}
        self._asks = {p: q for p, q in asks if q > 0.0}
        self._bid_prices = sorted(self._bids)
        self._ask_prices = sorted(self._asks)
        self._tops()

    def update(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Apply absolute sizes: size 0 removes the level (removing an unknown level is normal)."""
        _update_side(self._bids, self._bid_prices, bids)
        _update_side(self._asks, self._ask_prices, asks)
        self._tops()

    def best_bid(self) -> Level | None:
        return self._best_bid

    def best_ask(self) -> Level | None:
        return self._best_ask

    def iter_bids(self) -> Iterator[Level]:
        """Bids from the best (highest) down."""
        bids = self._bids
        return ((p, bids[p]) for p in reversed(self._bid_prices))

    def iter_asks(self) -> Iterator[Level]:
        """Asks from the best (lowest) up."""
        asks = self._asks
        return ((p, asks[p]) for p in self._ask_prices)

    def top_bids(self, n: int) -> list[Level]:
        return list(islice(self.iter_bids(), n))

    def top_asks(self, n: int) -> list[Level]:
        return list(islice(self.iter_asks(), n))

    @property
    def bid_count(self) -> int:
        return len(self._bid_prices)

    @property
    def ask_count(self) -> int:
        return len(self._ask_prices)

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask: no real book looks like that."""
        return self._crossed


def _update_side(sizes: dict[float, float], prices: list[float], levels: Iterable[Level]) -> None:
    # One hash lookup a level: a new price is told by the dict growing, a removed one by pop.
    for price, size in levels:
        if size > 0.0:
            count = len(sizes)
            sizes[price] = size
            if len(sizes) != count:
                insort(prices, price)
        elif sizes.pop(price, None) is not None:
            del prices[bisect_left(prices, price)]


class SyncedBook:
    """A book of one (exchange, symbol) with the exchange's sync rules; subclasses add the rules."""

    exchange: Exchange

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.levels = OrderBook()
        self.state = BookState.AWAITING_SNAPSHOT
        self.need = Need.SNAPSHOT
        self.last_update_id: int | None = None
        self.last_event_ms: int | None = None  # exchange time of the newest applied update
        self.last_recv_ms: int | None = None  # our receive time of the newest frame for this book
        self.last_gap: SequenceGap | None = None
        self.gaps = 0
        self.resyncs = 0  # snapshots that restored the book after it was discarded
        self.applied = 0
        self.dropped = 0
        self._recovering = False  # discarded after a gap or a failed check, not yet restored

    @property
    def synced(self) -> bool:
        return self.state is BookState.SYNCED

    @property
    def usable(self) -> bool:
        """Synced and not crossed: only such a book may feed the analyzer."""
        return self.state is BookState.SYNCED and not self.levels.is_crossed()

    @property
    def buffered(self) -> int:
        """Diff events held until a snapshot arrives; only Binance books hold any."""
        return 0

    def age_ms(self, now_ms: int) -> int | None:
        """Milliseconds since the last frame for this book, or None if none came yet."""
        return None if self.last_recv_ms is None else now_ms - self.last_recv_ms

    def touch(self, recv_ms: int, event_ms: int | None = None) -> None:
        """Record that a frame for this book arrived (a bookTicker counts as a sign of life)."""
        if self.last_recv_ms is None or recv_ms > self.last_recv_ms:
            self.last_recv_ms = recv_ms
        if event_ms is not None and (self.last_event_ms is None or event_ms > self.last_event_ms):
            self.last_event_ms = event_ms

    def invalidate(self) -> None:
        """Discard the book after an outside check proved it wrong (it then needs a resync)."""
        raise NotImplementedError

    def apply_snapshot(self, snapshot: DepthSnapshot) -> ApplyResult:
        raise NotImplementedError

    def apply_diff(self, diff: DepthDiff) -> ApplyResult:
        raise NotImplementedError

    def _replace(self, snapshot: DepthSnapshot, state: BookState) -> None:
        if self._recovering:
            self.resyncs += 1
            self._recovering = False
        self.levels.replace(snapshot.bids, snapshot.asks)
        self.state = state
        self.need = Need.NOTHING
        self.last_update_id = snapshot.update_id
        self.touch(snapshot.recv_ms, snapshot.event_time_ms)

    def _apply(self, diff: DepthDiff) -> ApplyResult:
        self.levels.update(diff.bids, diff.asks)
        self.last_update_id = diff.final_update_id
        self.state = BookState.SYNCED
        self.applied += 1
        self.touch(diff.recv_ms, diff.event_time_ms)
        return ApplyResult.APPLIED

    def _break(self, expected: int, got: int, need: Need) -> ApplyResult:
        self.last_gap = SequenceGap(self.exchange, self.symbol, expected, got)
        self.gaps += 1
        self._reset(need)
        return ApplyResult.GAP

    def _reset(self, need: Need) -> None:
        self._recovering = True
        self.levels.clear()
        self.state = BookState.AWAITING_SNAPSHOT
        self.need = need
        self.last_update_id = None


class BinanceBook(SyncedBook):
    """Binance USDⓈ-M futures diff-depth sync (the documented "local order book" procedure)."""

    exchange = Exchange.BINANCE

    def __init__(self, symbol: str) -> None:
        super().__init__(symbol)
        self._buffer: deque[DepthDiff] = deque(maxlen=MAX_BUFFERED_DIFFS)

    def invalidate(self) -> None:
        self._reset(Need.SNAPSHOT)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def apply_snapshot(self, snapshot: DepthSnapshot) -> ApplyResult:
        self.touch(snapshot.recv_ms)
        if snapshot.source is Source.WS:
            # A partial-depth frame (@depth20) is a whole top-N book: it simply replaces.
            self._replace(snapshot, BookState.SYNCED)
            return ApplyResult.RESET
        # REST snapshot: apply it, then replay the buffered stream over it.
        self._replace(snapshot, BookState.BRIDGING)
        pending = list(self._buffer)
        self._buffer.clear()
        for diff in pending:
            if self.state is BookState.AWAITING_SNAPSHOT:
                self._buffer.append(diff)  # a gap inside the buffer: keep what follows it
            else:
                self._apply_stream(diff)
        return ApplyResult.RESET

    def apply_diff(self, diff: DepthDiff) -> ApplyResult:
        self.touch(diff.recv_ms)
        if self.state is BookState.AWAITING_SNAPSHOT:
            self._buffer.append(diff)
            return ApplyResult.BUFFERED
        return self._apply_stream(diff)

    def _apply_stream(self, diff: DepthDiff) -> ApplyResult:
        last = self.last_update_id
        assert last is not None  # BRIDGING and SYNCED always have an id
        if self.state is BookState.BRIDGING:
            # Drop events with u < lastUpdateId; the first applied must have U <= lastUpdateId <= u.
            if diff.final_update_id < last:
                self.dropped += 1
                return ApplyResult.DROPPED
            if diff.first_update_id > last:
                result = self._break(last, diff.first_update_id, Need.SNAPSHOT)
                self._buffer.append(diff)
                return result
            return self._apply(diff)
        # Futures rule: each event's pu must equal the previous event's u (ids are not contiguous).
        if diff.final_update_id <= last:
            self.dropped += 1
            return ApplyResult.DROPPED
        if diff.prev_update_id != last:
            result = self._break(last, diff.prev_update_id or 0, Need.SNAPSHOT)
            self._buffer.append(diff)
            return result
        return self._apply(diff)


class BybitBook(SyncedBook):
    """Bybit v5 orderbook topic sync: snapshot (or u == 1) resets, u grows by 1, a jump is a gap."""

    exchange = Exchange.BYBIT

    def __init__(self, symbol: str) -> None:
        super().__init__(symbol)
        self.need = Need.RESUBSCRIBE

    def invalidate(self) -> None:
        self._reset(Need.RESUBSCRIBE)

    def apply_snapshot(self, snapshot: DepthSnapshot) -> ApplyResult:
        if snapshot.source is Source.REST:
            # REST books carry the u of another depth's sequence: they cannot seed a WS topic book.
            return ApplyResult.IGNORED
        self._replace(snapshot, BookState.SYNCED)
        return ApplyResult.RESET

    def apply_diff(self, diff: DepthDiff) -> ApplyResult:
        self.touch(diff.recv_ms)
        if self.state is not BookState.SYNCED:
            return ApplyResult.IGNORED
        last = self.last_update_id
        assert last is not None
        if diff.final_update_id <= last:
            self.dropped += 1
            return ApplyResult.DROPPED
        if diff.final_update_id != last + 1:
            return self._break(last + 1, diff.final_update_id, Need.RESUBSCRIBE)
        return self._apply(diff)


class OkxBook(SyncedBook):
    """OKX ``books`` sync: a snapshot replaces; each update's prevSeqId must be the last seqId.

    The rule, from OKX's "Sequence ID" notes: a snapshot has ``prevSeqId = -1``; "the prevSeqId
    in the new message matches with seqId of the previous message"; a frame with no levels and
    ``seqId == prevSeqId`` says the book did not change (a keepalive, about every 60 s of quiet);
    after maintenance "users will receive an incremental message with seqId smaller than
    prevSeqId", and later frames chain to that new seqId. Ids are compared by identity, never by
    arithmetic: they are not contiguous and may fall, so an old or repeated frame is a gap too.
    Anything else is a gap: the book is discarded and needs a resubscription of its channel.
    Ids as the parser maps them: seqId → ``final_update_id``, prevSeqId → ``prev_update_id``.
    """

    exchange = Exchange.OKX

    def __init__(self, symbol: str) -> None:
        super().__init__(symbol)
        self.need = Need.RESUBSCRIBE
        self.keepalives = 0
        self.resets = 0  # maintenance resets followed (seqId fell below prevSeqId)

    def invalidate(self) -> None:
        self._reset(Need.RESUBSCRIBE)

    def apply_snapshot(self, snapshot: DepthSnapshot) -> ApplyResult:
        if snapshot.source is Source.REST:
            # GET /api/v5/market/books is a 50 ms cache: nothing ties its seqId to the stream.
            return ApplyResult.IGNORED
        self._replace(snapshot, BookState.SYNCED)
        return ApplyResult.RESET

    def apply_diff(self, diff: DepthDiff) -> ApplyResult:
        self.touch(diff.recv_ms)
        if self.state is not BookState.SYNCED:
            return ApplyResult.IGNORED  # an update before the snapshot: the snapshot is coming
        last = self.last_update_id
        assert last is not None
        prev, seq = diff.prev_update_id, diff.final_update_id
        if prev != last:
            return self._break(last, -1 if prev is None else prev, Need.RESUBSCRIBE)
        if seq == prev and not diff.bids and not diff.asks:
            self.keepalives += 1  # no change: only a sign of life
            self.touch(diff.recv_ms, diff.event_time_ms)
            return ApplyResult.APPLIED
        if seq < prev:
            self.resets += 1
        return self._apply(diff)


def make_book(exchange: Exchange, symbol: str) -> SyncedBook:
    """A new, empty book with the sync rules of ``exchange``."""
    if exchange is Exchange.BINANCE:
        return BinanceBook(symbol)
    if exchange is Exchange.OKX:
        return OkxBook(symbol)
    return BybitBook(symbol)
