"""Which users receive a signal: pure matching over an in-memory index of subscriptions.

A signal goes to every active, unmuted user whose subscription for the signal's symbol matches
(their ``ALL`` default when they have none for that symbol): the signal type is one they chose,
and for ARBITRAGE the net profit reached their threshold, for every other type the strength
reached their minimum. WEAK signals are delivered silently. A user is not sent the same episode
(``signal.key``) again unless it upgraded in strength or, for arbitrage, its net profit grew by
:data:`REGROWTH_PCT` points over what that user was last sent. Expired signals go nowhere.
Users on a digest (``/digest``) take the signal in their next digest instead of as an alert.
Users who chose their venues (``/venues``) get only signals about those venues: an arbitrage
whose two legs are both theirs, a funding divergence whose highest and lowest venue are both
theirs, any other signal of one of theirs (:func:`bot.messages.signal_venues`).

:func:`route` is pure; :class:`Router` is the glue that keeps the index in step with the store,
records each signal with its deliveries in one transaction, and remembers what was queued.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.messages import MINUTE_MS, signal_venues
from bot.pacing import LIMITS
from bot.store import (
    ALL_SYMBOLS,
    DeliveryPlan,
    LedgerRow,
    Platform,
    Store,
    Subscriber,
    Subscription,
    User,
    net_profit_pct,
)
from detector.signals import Signal, SignalStrength, SignalType

REGROWTH_PCT = 0.05
"""Net-profit growth (points) that makes an arbitrage episode news again for a user."""

LEDGER_IDLE_MS = 15 * MINUTE_MS
"""Forget an episode's per-user ledger after this long without a signal about it.

The detector itself only re-emits an episode on an upgrade or a regrowth, so the ledger matters
for replays and restarts (the same signal routed twice) and for users whose thresholds differ;
both happen within minutes.
"""

SEND_RATES: Mapping[Platform, float] = {p: limits.global_per_s for p, limits in LIMITS.items()}
"""Messages a second each platform's outbox sends at most: a burst queues no more rows on a
platform than this rate can send while each signal is alive (``SignalHistory.record_signals``)."""

_EPSILON = 1e-9  # float tolerance of the threshold and regrowth comparisons (0.25 - 0.2)


@dataclass(frozen=True, slots=True)
class _Bucket:
    """The users one (symbol, type) can reach, arranged for a fast cut."""

    thresholds: list[float]  # arbitrage: ascending
    users: list[int]  # arbitrage: in threshold order
    by_rank: tuple[list[int], list[int], list[int]]  # other types: min strength rank <= index


_EMPTY = _Bucket([], [], ([], [], []))


class SubscriptionIndex:
    """Active subscribers indexed by symbol and type; a bucket is built on first use, cached.

    Keep it in step with the store by calling :meth:`update` after a user changes (see
    :class:`Router`); any update drops the cached buckets.
    """

    def __init__(self, subscribers: Iterable[Subscriber] = ()) -> None:
        self._users: dict[int, User] = {}
        self._default: dict[int, Subscription] = {}  # user -> their ALL subscription
        self._specific: dict[str, dict[int, Subscription]] = {}  # symbol -> user -> sub
        self._symbols: dict[int, tuple[str, ...]] = {}  # user -> their specific symbols
        self.mutes: dict[int, User] = {}  # users with a mute set (expired ones are harmless)
        self.digests: set[int] = set()  # users who take their alerts in a digest
        # Users who chose their venues: like mutes, only they are checked, so that users on
        # every venue (the default) cost routing nothing.
        self.venues: dict[int, frozenset[str]] = {}
        self.platforms: dict[Platform, int] = {}  # how many users the index holds on each
        self._cache: dict[tuple[str, SignalType], _Bucket] = {}
        # The ALL subscribers per type, shared by every symbol nobody subscribed to by name.
        self._default_sorted: dict[SignalType, list[tuple[int, Subscription]]] = {}
        self._defaults: dict[SignalType, _Bucket] = {}
        for subscriber in subscribers:
            self._add(subscriber)

    def __len__(self) -> int:
        return len(self._users)

    def update(self, user_id: int, subscriber: Subscriber | None) -> None:
        """Replace what the index knows about ``user_id`` (None or inactive: remove them)."""
        self._remove(user_id)
        if subscriber is not None:
            self._add(subscriber)
        self._cache.clear()
        self._default_sorted.clear()
        self._defaults.clear()

    def bucket(self, symbol: str, kind: SignalType) -> _Bucket:
        key = (symbol, kind)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._build(symbol, kind)
        return found

    def _add(self, subscriber: Subscriber) -> None:
        user = subscriber.user
        if not user.active or not subscriber.subscriptions:
            return
        self._users[user.id] = user
        self.platforms[user.platform] = self.platforms.get(user.platform, 0) + 1
        if user.muted_until_ms is not None or user.muted_symbols:
            self.mutes[user.id] = user
        if user.digest_ms is not None:
            self.digests.add(user.id)
        if user.venues is not None:
            self.venues[user.id] = user.venues
        symbols = []
        for sub in subscriber.subscriptions:
            if sub.symbol == ALL_SYMBOLS:
                self._default[user.id] = sub
            else:
                self._specific.setdefault(sub.symbol, {})[user.id] = sub
                symbols.append(sub.symbol)
        self._symbols[user.id] = tuple(symbols)

    def _remove(self, user_id: int) -> None:
        user = self._users.pop(user_id, None)
        if user is None:
            return
        if self.platforms[user.platform] == 1:
            del self.platforms[user.platform]
        else:
            self.platforms[user.platform] -= 1
        self.mutes.pop(user_id, None)
        self.digests.discard(user_id)
        self.venues.pop(user_id, None)
        self._default.pop(user_id, None)
        for symbol in self._symbols.pop(user_id, ()):
            subs = self._specific[symbol]
            del subs[user_id]
            if not subs:
                del self._specific[symbol]

    def _build(self, symbol: str, kind: SignalType) -> _Bucket:
        specific = self._specific.get(symbol)
        if not specific:  # most symbols: their bucket is the ALL subscribers', built once
            default = self._defaults.get(kind)
            if default is None:
                default = self._defaults[kind] = _arranged(kind, self._default_entries(kind))
            return default
        entries = [e for e in self._default_entries(kind) if e[0] not in specific]
        entries.extend((uid, sub) for uid, sub in specific.items() if self._takes(uid, sub, kind))
        return _arranged(kind, entries)

    def _default_entries(self, kind: SignalType) -> list[tuple[int, Subscription]]:
        """The ALL subscribers of ``kind``, in their bucket's order (cached)."""
        found = self._default_sorted.get(kind)
        if found is None:
            found = [
                (uid, sub) for uid, sub in self._default.items() if self._takes(uid, sub, kind)
            ]
            found.sort(key=_ORDER[kind is SignalType.ARBITRAGE])
            self._default_sorted[kind] = found
        return found

    def _takes(self, user_id: int, sub: Subscription, kind: SignalType) -> bool:
        return kind in (sub.types if sub.types is not None else self._users[user_id].types)


_ORDER = (
    lambda e: e[0],  # every type but arbitrage: by user
    lambda e: (e[1].threshold_pct, e[0]),  # arbitrage: by threshold, then user
)


def _arranged(kind: SignalType, entries: list[tuple[int, Subscription]]) -> _Bucket:
    """The bucket of ``entries`` (sorted here; already in order, the sort costs one pass)."""
    if not entries:
        return _EMPTY
    entries.sort(key=_ORDER[kind is SignalType.ARBITRAGE])
    if kind is SignalType.ARBITRAGE:
        return _Bucket(
            thresholds=[sub.threshold_pct for _, sub in entries],
            users=[uid for uid, _ in entries],
            by_rank=([], [], []),
        )
    weak, moderate, strong = (
        [uid for uid, sub in entries if sub.min_strength.rank <= rank] for rank in range(3)
    )
    return _Bucket([], [], (weak, moderate, strong))


_Sent = dict[int, tuple[int, float | None]]  # user -> (strength rank, net %) of what they got
_Saved = tuple[_Sent | None, int | None]  # an episode's entry and last note, for restore


class SentLedger:
    """Per episode and user, the strongest and largest news queued so far: (rank, net %)."""

    def __init__(self) -> None:
        self._sent: dict[str, _Sent] = {}
        self._touched: dict[str, int] = {}  # episode key -> when a plan about it was last noted

    @classmethod
    def from_rows(cls, rows: Iterable[LedgerRow]) -> SentLedger:
        """Rebuild from the store's deliveries (after a restart)."""
        ledger = cls()
        for row in rows:
            users = ledger._sent.setdefault(row.episode_key, {})
            previous = users.get(row.user_id)
            rank, net = row.strength.rank, row.net_pct
            if previous is not None:
                rank = max(rank, previous[0])
                if previous[1] is not None:
                    net = previous[1] if net is None else max(net, previous[1])
            users[row.user_id] = (rank, net)
            touched = ledger._touched.get(row.episode_key, row.created_ms)
            ledger._touched[row.episode_key] = max(touched, row.created_ms)
        return ledger

    def __len__(self) -> int:
        return len(self._sent)

    def sent(self, episode_key: str) -> Mapping[int, tuple[int, float | None]] | None:
        return self._sent.get(episode_key)

    def note(self, plan: DeliveryPlan, now_ms: int) -> None:
        """Remember that ``plan`` was queued at ``now_ms`` (:meth:`restore` undoes it if the
        store does not commit it)."""
        key = plan.signal.key
        self._touched[key] = max(self._touched.get(key, 0), now_ms)
        if plan.recipients or plan.digest:
            # route() only picks users for whom this is news, so it is each one's new maximum.
            state = (plan.signal.strength.rank, plan.net_pct)
            sent = self._sent.setdefault(key, {})
            sent.update(dict.fromkeys(plan.recipients, state))
            sent.update(dict.fromkeys(plan.digest, state))

    def save(self, keys: Iterable[str]) -> dict[str, _Saved]:
        """What the ledger holds about the episodes ``keys``, for :meth:`restore`."""
        return {
            key: (
                None if (sent := self._sent.get(key)) is None else dict(sent),
                self._touched.get(key),
            )
            for key in keys
        }

    def restore(self, saved: Mapping[str, _Saved]) -> None:
        """Undo the notes taken since :meth:`save` (their transaction did not commit)."""
        for key, (sent, touched) in saved.items():
            if sent is None:
                self._sent.pop(key, None)
            else:
                self._sent[key] = sent
            if touched is None:
                self._touched.pop(key, None)
            else:
                self._touched[key] = touched

    def prune(self, before_ms: int) -> int:
        """Forget episodes not routed since ``before_ms``; returns how many."""
        old = [key for key, at in self._touched.items() if at < before_ms]
        for key in old:
            del self._touched[key]
            self._sent.pop(key, None)
        return len(old)


def route(
    signal: Signal, index: SubscriptionIndex, ledger: SentLedger, now_ms: int
) -> DeliveryPlan:
    """The users who should receive ``signal`` now (pure: changes neither index nor ledger)."""
    net = net_profit_pct(signal)
    silent = signal.strength is SignalStrength.WEAK
    if signal.is_expired(now_ms):
        return DeliveryPlan(signal, silent, ())
    bucket = index.bucket(signal.symbol, signal.type)
    rank = signal.strength.rank
    if net is not None:
        candidates = bucket.users[: bisect_right(bucket.thresholds, net + _EPSILON)]
    else:
        candidates = bucket.by_rank[rank]
    mutes = index.mutes
    sent = ledger.sent(signal.key)
    venues = index.venues
    about = signal_venues(signal) if venues else frozenset()
    chosen: list[int] | None = None
    if mutes or sent or about:
        symbol = signal.symbol
        chosen = []
        for uid in candidates:
            if about:
                theirs = venues.get(uid)
                if theirs is not None and not about <= theirs:
                    continue
            if mutes:
                user = mutes.get(uid)
                if user is not None and user.muted(now_ms, symbol):
                    continue
            if sent:
                previous = sent.get(uid)
                if previous is not None and rank <= previous[0]:
                    last_net = previous[1]
                    if net is None or last_net is None or net < last_net + REGROWTH_PCT - _EPSILON:
                        continue
            chosen.append(uid)
    reached = candidates if chosen is None else chosen
    digests = index.digests
    if not digests:
        return DeliveryPlan(signal, silent, tuple(reached))
    return DeliveryPlan(
        signal,
        silent,
        tuple(uid for uid in reached if uid not in digests),
        tuple(uid for uid in reached if uid in digests),
    )


class Router:
    """Routes each signal and queues its deliveries durably; keeps the index in step.

    ``dispatch`` is synchronous: routing takes a few ms for 10 000 subscribers, and the store
    then writes the signal and a row per recipient in one transaction (about 15 µs a row), at
    most as many rows per platform as its rate (:data:`SEND_RATES`) can send before the signal
    expires, so a frontend with many users should call it via ``asyncio.to_thread``. Calls
    are serialised, and index updates from commands in other threads are safe.
    """

    def __init__(
        self,
        store: Store,
        now_ms: int,
        *,
        ledger_idle_ms: int = LEDGER_IDLE_MS,
        rates: Mapping[Platform, float] | None = SEND_RATES,
    ) -> None:
        self.store = store
        self.rates = rates  # None: queue every recipient, whether it can be sent in time or not
        self.index = SubscriptionIndex(store.subscribers())
        self.ledger = SentLedger.from_rows(store.deliveries.ledger_rows(now_ms - ledger_idle_ms))
        self._idle_ms = ledger_idle_ms
        self._next_prune = now_ms + ledger_idle_ms
        self._dispatching = threading.Lock()  # one signal at a time: route, record, note
        self._indexing = threading.Lock()  # the index is read by route, written by commands
        store.add_listener(self._user_changed)

    def dispatch(self, signal: Signal, now_ms: int) -> DeliveryPlan:
        """Route, then store the signal and its deliveries; returns what was queued."""
        return self.dispatch_many([signal], now_ms)[0]

    def dispatch_many(self, signals: Sequence[Signal], now_ms: int) -> list[DeliveryPlan]:
        """:meth:`dispatch` of a burst, in order, stored in one transaction (one commit for
        all: at 200 signals a second the commits, not the routing, were most of the cost).
        Each signal is routed knowing what the ones before it queued; if the transaction
        fails, nothing of the burst is stored or remembered."""
        with self._dispatching:
            saved = self.ledger.save({signal.key for signal in signals})
            plans: list[DeliveryPlan] = []
            try:
                for signal in signals:
                    with self._indexing:
                        plan = route(signal, self.index, self.ledger, now_ms)
                    self.ledger.note(plan, now_ms)  # the next signal of the burst sees it
                    plans.append(plan)
                self.store.history.record_signals(
                    [(p.signal, p) for p in plans], now_ms, self._rates()
                )
            except BaseException:
                self.ledger.restore(saved)
                raise
            if now_ms >= self._next_prune:
                self.ledger.prune(now_ms - self._idle_ms)
                self._next_prune = now_ms + self._idle_ms
        return plans

    def _rates(self) -> Mapping[Platform, float] | None:
        """The send rates of the platforms the recipients can be on (the others queue none)."""
        if self.rates is None:
            return None
        with self._indexing:
            on = self.index.platforms
            return {platform: rate for platform, rate in self.rates.items() if platform in on}

    def _user_changed(self, user_id: int) -> None:
        subscriber = self.store.subscriber(user_id)
        with self._indexing:
            self.index.update(user_id, subscriber)
