"""What the store holds, as typed values (users, subscriptions, outbox rows, figures), from rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from detector.signals import Signal, SignalStrength, SignalType

ALL_SYMBOLS = "ALL"
"""The symbol of a user's default subscription; a symbol-specific one overrides it."""

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


class Platform(StrEnum):
    """A chat platform arbwatch talks on."""

    TELEGRAM = "telegram"
    DISCORD = "discord"


class DeliveryStatus(StrEnum):
    """The life of one outbox row: pending until sent, or finished for a recorded reason."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up: a permanent error, or too many attempts
    EXPIRED = "expired"  # the signal expired before it could be delivered
    SKIPPED = "skipped"  # blocked, inactive, muted, or superseded by a newer alert


@dataclass(frozen=True, slots=True)
class Subscription:
    """One user's rule for one symbol (or ``ALL``)."""

    symbol: str
    threshold_pct: float  # arbitrage: alert from this net profit, in percent
    min_strength: SignalStrength  # every other type: alert from this strength
    types: frozenset[SignalType] | None  # None: the user's own choice of types applies
    created_ms: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class User:
    """A chat that talks to the bot (a private chat is one person, a group is shared)."""

    id: int
    platform: Platform
    chat_id: str
    user_id: str
    name: str
    is_group: bool
    active: bool
    blocked_at: int | None
    muted_until_ms: int | None
    created_ms: int
    types: frozenset[SignalType]  # signal types this user receives
    muted_symbols: dict[str, int] = field(default_factory=dict)  # symbol -> muted until, ms
    channel_id: str | None = None  # Discord: alerts go to this channel instead of a DM
    digest_ms: int | None = None  # alerts gathered into one message per this period (/digest)
    venues: frozenset[str] | None = None  # the venues the user trades on (/venues); None: all

    def muted(self, now_ms: int, symbol: str | None = None) -> bool:
        """Whether alerts are muted at ``now_ms`` (for ``symbol``, when given)."""
        if self.muted_until_ms is not None and self.muted_until_ms > now_ms:
            return True
        return symbol is not None and self.muted_symbols.get(symbol, 0) > now_ms


@dataclass(frozen=True, slots=True)
class Subscriber:
    """An active user with their subscriptions: what routing needs to know about them."""

    user: User
    subscriptions: tuple[Subscription, ...]


def net_profit_pct(signal: Signal) -> float | None:
    """An arbitrage signal's net profit in percent; None for every other type."""
    if signal.type is not SignalType.ARBITRAGE:
        return None
    return float(signal.details.get("net_profit_percentage", 0.0))


def news_key(signal: Signal) -> str:
    """What a signal says: its episode, strength and (arbitrage) net %, e.g.
    ``arbitrage:BTCUSDT:buy_binance_sell_bybit:1786000000000|moderate|0.2100``.

    Routing sends a user an episode again only on a higher strength or a net 0.05 points
    higher than anything they had, so one user's keys never repeat, while the same signal
    recorded twice (a replay after a restart) has the same key and is stored and queued once.
    """
    key = f"{signal.key}|{signal.strength.value}"
    net = net_profit_pct(signal)
    return key if net is None else f"{key}|{net:.4f}"


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    """Who receives one signal: the routing's output, queued by ``SignalHistory.record_signal``.

    The store keeps one signal row per :func:`news_key` and at most one delivery per (signal,
    user), so the same news is never queued twice for one user; a recipient past what the
    platform can send before the signal expires gets none (``SignalHistory.record_signals``).
    """

    signal: Signal
    silent: bool  # WEAK: deliver without a notification sound
    recipients: tuple[int, ...]  # user ids, sent the alert now
    digest: tuple[int, ...] = ()  # user ids who take it in their next digest (/digest)

    @property
    def dedup_key(self) -> str:
        return news_key(self.signal)

    @property
    def net_pct(self) -> float | None:
        return net_profit_pct(self.signal)


class _Routed:
    """Where a message to a user goes, from their chat and routed channel (a mixin of rows)."""

    __slots__ = ()
    chat_id: str
    is_group: bool
    channel_id: str | None

    @property
    def destination(self) -> str:
        """Where the message goes, as pacing counts it: the routed channel, or the user's chat."""
        return self.chat_id if self.channel_id is None else f"channel:{self.channel_id}"

    @property
    def shared(self) -> bool:
        """A group or a channel: paced like a group, and alerts may mention the user."""
        return self.is_group or self.channel_id is not None


@dataclass(frozen=True, slots=True)
class DueDelivery(_Routed):
    """A pending outbox row whose time has come, with everything needed to send it."""

    id: int
    user_id: int
    platform: Platform
    chat_id: str
    is_group: bool
    signal: Signal | None  # None for a broadcast or a digest
    broadcast_text: str | None
    silent: bool
    attempts: int
    created_ms: int
    channel_id: str | None = None  # Discord: the channel the user routed alerts to (else a DM)
    digest: Digest | None = None  # one user's digest of a period, instead of one signal


@dataclass(frozen=True, slots=True)
class Digest:
    """What one user's filters caught in ``[from_ms, to_ms)``: the newest signal of each episode,
    oldest first, and how many signals the period held in all."""

    from_ms: int
    to_ms: int
    signals: tuple[Signal, ...]
    caught: int


@dataclass(frozen=True, slots=True)
class RecentSend(_Routed):
    """A message an outbox sent lately: where and when (seeds the next holder's pacing)."""

    chat_id: str
    is_group: bool
    channel_id: str | None
    sent_ms: int


@dataclass(frozen=True, slots=True)
class DueEdit:
    """A delivered arbitrage alert whose opportunity has closed: edit in how it ended."""

    delivery_id: int
    user_id: int
    platform: Platform
    chat_id: str
    is_group: bool
    message_id: str
    signal: Signal
    sent_ms: int
    closed_after_ms: int  # the opportunity's duration, open to close
    peak_net_pct: float
    attempts: int

    @property
    def destination(self) -> str:
        """Paced with the chat it was sent to (an alert sent to a channel, and every Discord
        message, has the id ``channel:message``)."""
        if ":" in self.message_id:
            return "channel:" + self.message_id.split(":", 1)[0]
        return self.chat_id

    @property
    def shared(self) -> bool:
        return self.is_group or self.destination != self.chat_id


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A delivered alert about an episode: where to edit it when the episode closes."""

    delivery_id: int
    user_id: int
    platform: Platform
    chat_id: str
    message_id: str | None
    signal: Signal


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """What one user was last queued about one episode (for per-user dedup after a restart)."""

    user_id: int
    episode_key: str
    strength: SignalStrength
    net_pct: float | None
    created_ms: int


@dataclass(frozen=True, slots=True)
class OpportunityRow:
    """One arbitrage opportunity as stored (``closed_ms`` is None while it is open)."""

    symbol: str
    direction: str
    opened_ms: int
    closed_ms: int | None
    last_seen_ms: int
    peak_net_pct: float

    @property
    def end_ms(self) -> int:
        return self.last_seen_ms if self.closed_ms is None else self.closed_ms


@dataclass(frozen=True, slots=True)
class Subscribed:
    """What :meth:`Store.subscribe_chat` did: the (registered) user, and whether it was new."""

    user: User
    created: bool
    has_all_default: bool  # the user also holds an ALL subscription (this one overrides it)


@dataclass(frozen=True, slots=True)
class OpportunityStats:
    """Arbitrage opportunities opened in a period (duration: open to close, or so far)."""

    count: int
    open_now: int
    avg_peak_net_pct: float | None
    max_peak_net_pct: float | None
    median_duration_ms: float | None
    max_duration_ms: int | None
    total_expected_profit: float  # at each opportunity's peak, quote currency
    max_expected_profit: float | None


@dataclass(frozen=True, slots=True)
class UserCounts:
    """Admin figures for ``/users``."""

    total: int
    active: int
    blocked: int
    muted: int
    by_platform: dict[str, int]
    subscribed: int  # active users with at least one subscription
    subscriptions: int
    pending_deliveries: int
    unqueued_day: int = 0  # recipients of the last 24 h's signals beyond the platforms' rates


@dataclass(frozen=True, slots=True)
class Pruned:
    """Rows removed by :meth:`Store.prune`."""

    signals: int
    deliveries: int
    opportunities: int
    broadcasts: int


def to_json(value: Any) -> str:
    return orjson.dumps(value, option=_JSON_OPTIONS).decode()


def _types(values: list[str]) -> frozenset[SignalType]:
    known = {t.value for t in SignalType}
    return frozenset(SignalType(v) for v in values if v in known)


def user_from_row(row: dict[str, Any]) -> User:
    prefs = orjson.loads(row["preferences"])
    types = prefs.get("types")
    venues = prefs.get("venues")
    return User(
        id=row["id"],
        platform=Platform(row["platform"]),
        chat_id=row["chat_id"],
        user_id=row["user_id"],
        name=row["name"],
        is_group=bool(row["is_group"]),
        active=bool(row["active"]),
        blocked_at=row["blocked_at"],
        muted_until_ms=row["muted_until_ms"],
        created_ms=row["created_ms"],
        types=frozenset(SignalType) if types is None else _types(types),
        muted_symbols={str(s): int(u) for s, u in prefs.get("muted_symbols", {}).items()},
        channel_id=prefs.get("channel"),
        digest_ms=prefs.get("digest_ms"),
        venues=None if venues is None else frozenset(str(v) for v in venues),
    )


def subscription_from_row(row: dict[str, Any]) -> Subscription:
    types = row["types"]
    return Subscription(
        symbol=row["symbol"],
        threshold_pct=row["threshold_pct"],
        min_strength=SignalStrength(row["min_strength"]),
        types=None if types is None else _types(orjson.loads(types)),
        created_ms=row["created_ms"],
        updated_ms=row["updated_ms"],
    )


def signal_from_row(row: dict[str, Any]) -> Signal:
    return Signal(
        type=SignalType(row["type"]),
        symbol=row["symbol"],
        strength=SignalStrength(row["strength"]),
        confidence=row["confidence"],
        timestamp=row["timestamp"],
        expires_at=row["expires_at"],
        key=row["key"],
        details=orjson.loads(row["details"]),
    )
