"""The bot's durable state in one SQLite file: users, subscriptions, signal history, the outbox.

Synchronous and fast (every query is indexed): the async frontends may call it directly from the
event loop, or through ``asyncio.to_thread`` (see :mod:`bot.store.database`). Every method that
changes user-visible state commits before it returns, so a crash after a reply loses nothing.
Clocks are passed in as ``now_ms``; the store never reads the time itself.

``Store`` holds users and subscriptions; ``store.history`` the signals and opportunities
(:mod:`bot.store.history`); ``store.deliveries`` the outbox (:mod:`bot.store.deliveries`);
``store.edits`` the closing edits of delivered alerts (:mod:`bot.store.edits`); ``store.digests``
what waits for each user's digest (:mod:`bot.store.digests`); ``store.leases`` who may act alone
on the file (:mod:`bot.store.leases`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bot.errors import SubscriptionLimit, UnknownUser
from bot.messages import DAY_MS
from bot.store.database import Database
from bot.store.deliveries import Deliveries
from bot.store.digests import Digests
from bot.store.edits import Edits
from bot.store.history import SignalHistory
from bot.store.leases import Leases
from bot.store.models import (
    ALL_SYMBOLS,
    Platform,
    Pruned,
    Subscribed,
    Subscriber,
    Subscription,
    User,
    UserCounts,
    subscription_from_row,
    to_json,
    user_from_row,
)
from bot.store.retention import RETENTION_MS, prune
from detector.signals import SignalStrength, SignalType


class Store:
    """Users and subscriptions, with the signal history and the outbox (see module doc)."""

    def __init__(self, path: Path | str) -> None:
        self.db = Database(path)
        self.path = self.db.path
        self.history = SignalHistory(self.db)
        self.deliveries = Deliveries(self.db)
        self.edits = Edits(self.db)
        self.digests = Digests(self.db)
        self.leases = Leases(self.db)
        self._listeners: list[Callable[[int], None]] = []

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_listener(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(user_id)`` after every commit that changes what a user should receive."""
        self._listeners.append(fn)

    def _notify(self, user_id: int) -> None:
        for fn in self._listeners:
            fn(user_id)

    # -- users ------------------------------------------------------------------------------

    def register(
        self,
        platform: Platform,
        chat_id: str,
        user_id: str,
        name: str,
        now_ms: int,
        *,
        is_group: bool = False,
    ) -> User:
        """Create the chat's user, or refresh it (a returning user who had blocked us is active)."""
        with self.db.tx() as conn:
            user_db_id = _upsert_user(conn, platform, chat_id, user_id, name, is_group, now_ms)
        self._notify(user_db_id)
        return self.user(user_db_id)

    def find_user(self, platform: Platform, chat_id: str) -> User | None:
        row = self.db.one(
            "SELECT * FROM users WHERE platform = ? AND chat_id = ?", (platform.value, chat_id)
        )
        return None if row is None else user_from_row(row)

    def user(self, user_id: int) -> User:
        row = self.db.one("SELECT * FROM users WHERE id = ?", (user_id,))
        if row is None:
            raise UnknownUser(self.db.path, user_id)
        return user_from_row(row)

    def set_types(self, user_id: int, types: frozenset[SignalType], now_ms: int) -> None:
        """The signal types the user receives (a subscription's own types override them)."""
        chosen = None if types == frozenset(SignalType) else sorted(t.value for t in types)
        self._set_preference(user_id, "types", chosen, now_ms)

    def set_venues(self, user_id: int, venues: frozenset[str] | None, now_ms: int) -> None:
        """The venues the user trades on (None: every venue, also those added later); routing
        sends only signals about them (:func:`bot.messages.signal_venues`) from now on."""
        chosen = None if venues is None else sorted(venues)
        self._set_preference(user_id, "venues", chosen, now_ms)

    def mute(self, user_id: int, until_ms: int, now_ms: int, symbol: str | None = None) -> int:
        """Mute every alert (or one symbol's) until ``until_ms``.

        Alerts already queued for what is now muted are skipped; returns how many.
        """
        scope = ""
        params: list[str] = []
        with self.db.tx() as conn:
            if symbol is None:
                found = conn.execute(
                    "UPDATE users SET muted_until_ms = ?, updated_ms = ? WHERE id = ?",
                    (until_ms, now_ms, user_id),
                ).rowcount
                if not found:
                    raise UnknownUser(self.db.path, user_id)
            else:
                prefs = self._preferences(user_id)
                mutes = {s: u for s, u in prefs.get("muted_symbols", {}).items() if u > now_ms}
                mutes[symbol] = until_ms
                prefs["muted_symbols"] = mutes
                self._save_preferences(user_id, prefs, now_ms)
                scope = " AND signal IN (SELECT id FROM signals WHERE symbol = ?)"
                params.append(symbol)
            skipped = conn.execute(
                "UPDATE deliveries SET status = 'skipped', last_error = 'muted', finished_ms = ?"
                " WHERE user = ? AND status = 'pending' AND signal IS NOT NULL" + scope,
                (now_ms, user_id, *params),
            ).rowcount
        self._notify(user_id)
        return int(skipped)

    def unmute(self, user_id: int, now_ms: int, symbol: str | None = None) -> bool:
        """Lift the mute (every mute, or one symbol's); False when nothing was muted."""
        user = self.user(user_id)
        if symbol is None:
            if not user.muted(now_ms) and not any(u > now_ms for u in user.muted_symbols.values()):
                return False
        elif user.muted_symbols.get(symbol, 0) <= now_ms:
            return False
        with self.db.tx() as conn:
            prefs = self._preferences(user_id)
            mutes = dict(prefs.get("muted_symbols", {}))
            if symbol is None:
                conn.execute("UPDATE users SET muted_until_ms = NULL WHERE id = ?", (user_id,))
                mutes.clear()
            else:
                mutes.pop(symbol, None)
            prefs["muted_symbols"] = mutes
            if not mutes:
                del prefs["muted_symbols"]
            self._save_preferences(user_id, prefs, now_ms)
        self._notify(user_id)
        return True

    def set_channel(self, user_id: int, channel_id: str | None, now_ms: int) -> None:
        """Send the user's alerts to ``channel_id`` (Discord), or back to their DMs (None).

        Alerts already queued follow the new choice: the outbox reads it when it sends.
        """
        self._set_preference(user_id, "channel", channel_id, now_ms)

    def set_digest(self, user_id: int, period_ms: int | None, now_ms: int) -> int:
        """Gather the user's alerts into one message per ``period_ms`` (None: alerts as they come).

        Alerts already queued for the user join their first digest instead; returns how many.
        """
        with self.db.tx() as conn:
            prefs = self._preferences(user_id)
            if period_ms is None:
                prefs.pop("digest_ms", None)
            else:
                prefs["digest_ms"] = period_ms
            self._save_preferences(user_id, prefs, now_ms)
            moved = 0
            if period_ms is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO digest_items (user, signal, created_ms)"
                    " SELECT user, signal, created_ms FROM deliveries"
                    " WHERE user = ? AND status = 'pending' AND signal IS NOT NULL",
                    (user_id,),
                )
                moved = conn.execute(
                    "UPDATE deliveries SET status = 'skipped', last_error = 'moved to the digest',"
                    " finished_ms = ? WHERE user = ? AND status = 'pending' AND signal IS NOT NULL",
                    (now_ms, user_id),
                ).rowcount
        self._notify(user_id)
        return int(moved)

    def mark_blocked(self, user_id: int, now_ms: int, reason: str = "blocked the bot") -> int:
        """The user blocked the bot (403): deactivate, keep their data, skip what was pending.

        Returns how many pending deliveries were skipped.
        """
        with self.db.tx() as conn:
            found = conn.execute(
                "UPDATE users SET active = 0, blocked_at = ?, updated_ms = ? WHERE id = ?",
                (now_ms, now_ms, user_id),
            ).rowcount
            if not found:
                raise UnknownUser(self.db.path, user_id)
            skipped = conn.execute(
                "UPDATE deliveries SET status = 'skipped', last_error = ?, finished_ms = ?"
                " WHERE user = ? AND status = 'pending'",
                (reason, now_ms, user_id),
            ).rowcount
        self._notify(user_id)
        return skipped

    def user_counts(self, now_ms: int) -> UserCounts:
        row = self.db.one(
            "SELECT count(*) AS total, coalesce(sum(active), 0) AS active,"
            " coalesce(sum(blocked_at IS NOT NULL), 0) AS blocked,"
            " coalesce(sum(active AND muted_until_ms > ?), 0) AS muted FROM users",
            (now_ms,),
        )
        assert row is not None
        platforms = self.db.rows("SELECT platform, count(*) AS n FROM users GROUP BY platform")
        subscribed = self.db.scalar(
            "SELECT count(DISTINCT s.user) FROM subscriptions s JOIN users u ON u.id = s.user"
            " WHERE u.active"
        )
        return UserCounts(
            total=row["total"],
            active=row["active"],
            blocked=row["blocked"],
            muted=row["muted"],
            by_platform={r["platform"]: r["n"] for r in platforms},
            subscribed=int(subscribed),
            subscriptions=int(self.db.scalar("SELECT count(*) FROM subscriptions")),
            pending_deliveries=self.deliveries.pending_count(),
            unqueued_day=self.history.unqueued_count(now_ms - DAY_MS),
        )

    def _preferences(self, user_id: int) -> dict[str, Any]:
        raw = self.db.scalar("SELECT preferences FROM users WHERE id = ?", (user_id,))
        if raw is None:
            raise UnknownUser(self.db.path, user_id)
        prefs: dict[str, Any] = orjson.loads(raw)
        return prefs

    def _set_preference(self, user_id: int, key: str, value: Any, now_ms: int) -> None:
        """Set one key of the user's preferences (None removes it: the default), and notify."""
        with self.db.tx():
            prefs = self._preferences(user_id)
            if value is None:
                prefs.pop(key, None)
            else:
                prefs[key] = value
            self._save_preferences(user_id, prefs, now_ms)
        self._notify(user_id)

    def _save_preferences(self, user_id: int, prefs: dict[str, Any], now_ms: int) -> None:
        self.db.conn.execute(
            "UPDATE users SET preferences = ?, updated_ms = ? WHERE id = ?",
            (to_json(prefs), now_ms, user_id),
        )

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(
        self,
        user_id: int,
        symbol: str,
        threshold_pct: float,
        min_strength: SignalStrength,
        now_ms: int,
        *,
        limit: int,
    ) -> bool:
        """Create or update the user's subscription to ``symbol``; True when it is new.

        Raises :class:`SubscriptionLimit` (and changes nothing) when a new one would exceed
        ``limit``. A subscription's own types survive an update.
        """
        with self.db.tx() as conn:
            created = _upsert_subscription(
                conn, user_id, symbol, threshold_pct, min_strength, now_ms, limit
            )
        self._notify(user_id)
        return created

    def subscribe_chat(
        self,
        platform: Platform,
        chat_id: str,
        user_id: str,
        name: str,
        symbol: str,
        threshold_pct: float,
        min_strength: SignalStrength,
        now_ms: int,
        *,
        limit: int,
        is_group: bool = False,
    ) -> Subscribed:
        """:meth:`register` the chat and :meth:`subscribe` it, in one transaction.

        Everything a ``/subscribe`` reply needs comes back; on :class:`SubscriptionLimit`
        nothing changes (not even the registration).
        """
        with self.db.tx() as conn:
            user_db_id = _upsert_user(conn, platform, chat_id, user_id, name, is_group, now_ms)
            created = _upsert_subscription(
                conn, user_db_id, symbol, threshold_pct, min_strength, now_ms, limit
            )
            has_all = symbol != ALL_SYMBOLS and bool(
                conn.execute(
                    "SELECT 1 FROM subscriptions WHERE user = ? AND symbol = ?",
                    (user_db_id, ALL_SYMBOLS),
                ).fetchone()
            )
        self._notify(user_db_id)
        return Subscribed(self.user(user_db_id), created, has_all)

    def unsubscribe(self, user_id: int, symbol: str | None) -> list[str]:
        """Remove the subscription to ``symbol`` (every one when None); returns the symbols gone."""
        with self.db.tx() as conn:
            if symbol is None:
                rows = conn.execute(
                    "DELETE FROM subscriptions WHERE user = ? RETURNING symbol", (user_id,)
                ).fetchall()
            else:
                rows = conn.execute(
                    "DELETE FROM subscriptions WHERE user = ? AND symbol = ? RETURNING symbol",
                    (user_id, symbol),
                ).fetchall()
        if rows:
            self._notify(user_id)
        return sorted(r[0] for r in rows)

    def set_subscription_types(
        self, user_id: int, symbol: str, types: frozenset[SignalType] | None, now_ms: int
    ) -> bool:
        """Give one subscription its own types (None: back to the user's); False if none."""
        value = None if types is None else to_json(sorted(t.value for t in types))
        with self.db.tx() as conn:
            found = conn.execute(
                "UPDATE subscriptions SET types = ?, updated_ms = ? WHERE user = ? AND symbol = ?",
                (value, now_ms, user_id, symbol),
            ).rowcount
        if found:
            self._notify(user_id)
        return bool(found)

    def subscriptions(self, user_id: int) -> list[Subscription]:
        """The user's subscriptions, ``ALL`` first, then by symbol."""
        rows = self.db.rows(
            "SELECT * FROM subscriptions WHERE user = ? ORDER BY symbol != ?, symbol",
            (user_id, ALL_SYMBOLS),
        )
        return [subscription_from_row(r) for r in rows]

    def subscriber(self, user_id: int) -> Subscriber | None:
        """The user as routing sees them; None when inactive or without subscriptions."""
        user = self.user(user_id)
        subs = self.subscriptions(user_id)
        if not user.active or not subs:
            return None
        return Subscriber(user, tuple(subs))

    def subscribers(self) -> list[Subscriber]:
        """Every active user with at least one subscription (to build the routing index)."""
        users = {
            r["id"]: user_from_row(r)
            for r in self.db.rows(
                "SELECT * FROM users WHERE active AND id IN (SELECT user FROM subscriptions)"
            )
        }
        subs: dict[int, list[Subscription]] = {uid: [] for uid in users}
        for row in self.db.rows("SELECT * FROM subscriptions ORDER BY user, symbol"):
            if row["user"] in subs:
                subs[row["user"]].append(subscription_from_row(row))
        return [Subscriber(users[uid], tuple(subs[uid])) for uid in users]

    # -- housekeeping -------------------------------------------------------------------------

    def prune(self, now_ms: int, max_age_ms: int = RETENTION_MS) -> Pruned:
        """Delete what is older than ``max_age_ms`` (see :func:`bot.store.retention.prune`)."""
        return prune(self.db, now_ms, max_age_ms)


def _upsert_user(
    conn: sqlite3.Connection,
    platform: Platform,
    chat_id: str,
    user_id: str,
    name: str,
    is_group: bool,
    now_ms: int,
) -> int:
    """Create or refresh the chat's user (active again, blocks forgotten); returns its id."""
    row = conn.execute(
        "INSERT INTO users (platform, chat_id, user_id, name, is_group, created_ms, updated_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (platform, chat_id) DO UPDATE SET user_id = excluded.user_id,"
        " name = excluded.name, is_group = excluded.is_group, active = 1,"
        " blocked_at = NULL, updated_ms = excluded.updated_ms RETURNING id",
        (platform.value, chat_id, user_id, name, int(is_group), now_ms, now_ms),
    ).fetchone()
    return int(row[0])


def _upsert_subscription(
    conn: sqlite3.Connection,
    user_id: int,
    symbol: str,
    threshold_pct: float,
    min_strength: SignalStrength,
    now_ms: int,
    limit: int,
) -> bool:
    """Create or update one subscription within ``limit``; True when it is new."""
    exists = conn.execute(
        "SELECT 1 FROM subscriptions WHERE user = ? AND symbol = ?", (user_id, symbol)
    ).fetchone()
    if not exists:
        held = conn.execute(
            "SELECT count(*) FROM subscriptions WHERE user = ?", (user_id,)
        ).fetchone()[0]
        if held >= limit:
            raise SubscriptionLimit(limit)
    conn.execute(
        "INSERT INTO subscriptions (user, symbol, threshold_pct, min_strength, created_ms,"
        " updated_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user, symbol) DO UPDATE SET"
        " threshold_pct = excluded.threshold_pct, min_strength = excluded.min_strength,"
        " updated_ms = excluded.updated_ms",
        (user_id, symbol, threshold_pct, min_strength.value, now_ms, now_ms),
    )
    return not exists
