"""The outbox in the store: deliveries to send, their outcomes, and broadcasts.

An outbox loop calls :meth:`Deliveries.due` (or waits until :meth:`Deliveries.next_due_ms`),
sends each one, and records the outcome with ``mark_sent``/``mark_retry``/``finish``; a 403 goes
to ``Store.mark_blocked``. Rows survive restarts, so nothing queued is lost.
"""

from __future__ import annotations

from typing import Any

from bot.store.database import Database
from bot.store.digests import load_digest
from bot.store.models import (
    DeliveryStatus,
    DueDelivery,
    LedgerRow,
    Platform,
    RecentSend,
    SentMessage,
    signal_from_row,
)
from bot.store.schema import SPREAD
from detector.signals import SignalStrength

SIGNAL_COLUMNS = (
    "s.type, s.symbol, s.strength, s.confidence, s.timestamp, s.expires_at, s.key, s.details"
)
"""The columns of ``signals s`` that :func:`~bot.store.models.signal_from_row` reads."""


DUE_ORDER = "d.order_key, d.signal_ts DESC, d.next_attempt_ms, d.spread"
"""What goes first when not everything fits the platform's rate: arbitrage, then the other
signals, then broadcasts (which never expire); notifying before silent; the newest signal first;
retries in their turn. Within one signal the recipients come in an order that differs from
signal to signal (``spread``, a hash of user and signal), so no user is always last. The
``deliveries_next`` index (schema 4) holds rows in this order per platform."""


def due_rows(
    db: Database,
    sql: str,
    params: list[Any],
    platform: Platform | None,
    *,
    order: str,
    limit: int,
    platform_column: str = "u.platform",
) -> list[dict[str, Any]]:
    """The rows of a due-work query, of one platform or all, in order."""
    if platform is not None:
        sql += f" AND {platform_column} = ?"
        params = [*params, platform.value]
    return db.rows(f"{sql} ORDER BY {order} LIMIT ?", [*params, limit])


class Deliveries:
    """Outbox rows (``Store.deliveries``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def due(
        self, now_ms: int, limit: int = 100, platform: Platform | None = None
    ) -> list[DueDelivery]:
        """Pending deliveries whose next attempt is due, most valuable first (:data:`DUE_ORDER`)."""
        rows = due_rows(
            self._db,
            "SELECT d.id, d.user, d.silent, d.attempts, d.created_ms, u.platform, u.chat_id,"
            " u.is_group, json_extract(u.preferences, '$.channel') AS channel_id,"
            " d.broadcast, b.text AS broadcast_text, b.kind, b.from_ms, b.to_ms,"
            f" {SIGNAL_COLUMNS} FROM deliveries d"
            " JOIN users u ON u.id = d.user LEFT JOIN signals s ON s.id = d.signal"
            " LEFT JOIN broadcasts b ON b.id = d.broadcast"
            " WHERE d.status = 'pending' AND d.next_attempt_ms <= ?",
            [now_ms],
            platform,
            order=DUE_ORDER,
            limit=limit,
            platform_column="d.platform",
        )
        return [
            DueDelivery(
                id=r["id"],
                user_id=r["user"],
                platform=Platform(r["platform"]),
                chat_id=r["chat_id"],
                is_group=bool(r["is_group"]),
                signal=None if r["type"] is None else signal_from_row(r),
                broadcast_text=None if r["kind"] == "digest" else r["broadcast_text"],
                silent=bool(r["silent"]),
                attempts=r["attempts"],
                created_ms=r["created_ms"],
                channel_id=r["channel_id"],
                digest=(
                    load_digest(self._db, r["broadcast"], r["from_ms"], r["to_ms"])
                    if r["kind"] == "digest"
                    else None
                ),
            )
            for r in rows
        ]

    def next_due_ms(self, platform: Platform | None = None) -> int | None:
        """When the earliest pending delivery (for ``platform``) is due (None: nothing pending)."""
        sql = "SELECT min(next_attempt_ms) FROM deliveries WHERE status = 'pending'"
        params: list[Any] = []
        if platform is not None:
            sql += " AND user IN (SELECT id FROM users WHERE platform = ?)"
            params.append(platform.value)
        value = self._db.scalar(sql, params)
        return None if value is None else int(value)

    def recent_sends(self, platform: Platform, since_ms: int) -> list[RecentSend]:
        """What was delivered on ``platform`` after ``since_ms``, oldest first (for pacing)."""
        rows = self._db.rows(
            "SELECT u.chat_id, u.is_group, json_extract(u.preferences, '$.channel') AS channel,"
            " d.sent_ms FROM deliveries d"
            " JOIN users u ON u.id = d.user WHERE d.status = 'sent' AND d.sent_ms > ?"
            " AND u.platform = ? ORDER BY d.sent_ms",
            (since_ms, platform.value),
        )
        return [
            RecentSend(r["chat_id"], bool(r["is_group"]), r["channel"], int(r["sent_ms"]))
            for r in rows
        ]

    def pending_count(self) -> int:
        return int(self._db.scalar("SELECT count(*) FROM deliveries WHERE status = 'pending'"))

    def mark_sent(self, delivery_id: int, now_ms: int, message_id: str | None = None) -> None:
        """Delivered; ``message_id`` is the platform's id of the message, for later edits."""
        with self._db.tx() as conn:
            conn.execute(
                "UPDATE deliveries SET status = 'sent', sent_ms = ?, finished_ms = ?,"
                " message_id = ?, attempts = attempts + 1 WHERE id = ?",
                (now_ms, now_ms, message_id, delivery_id),
            )

    def mark_retry(self, delivery_id: int, next_attempt_ms: int, error: str) -> None:
        """A transient failure: try again at ``next_attempt_ms``."""
        with self._db.tx() as conn:
            conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, next_attempt_ms = ?,"
                " last_error = ? WHERE id = ? AND status = 'pending'",
                (next_attempt_ms, error, delivery_id),
            )

    def finish(self, delivery_id: int, status: DeliveryStatus, now_ms: int, reason: str) -> None:
        """End a delivery without sending it (failed, expired, skipped), recording why."""
        if status in (DeliveryStatus.PENDING, DeliveryStatus.SENT):
            raise ValueError(f"finish() records failures, not {status.value}; see mark_sent()")
        with self._db.tx() as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, last_error = ?, finished_ms = ?"
                " WHERE id = ? AND status = 'pending'",
                (status.value, reason, now_ms, delivery_id),
            )

    def expire_pending(self, now_ms: int, margin_ms: int = 0, *, after_ms: int = 0) -> int:
        """Mark pending alerts expired whose signal expires within ``margin_ms``; how many.

        The margin is how long a send may take: one started later could not arrive alive.
        ``after_ms`` skips signals that expired before it (a previous call saw to them), so a
        pass reads only the signals that expired since, not every pending row.
        """
        with self._db.tx() as conn:
            return int(
                conn.execute(
                    "UPDATE deliveries SET status = 'expired', finished_ms = ?,"
                    " last_error = 'signal expired before delivery' WHERE status = 'pending'"
                    " AND signal IN (SELECT id FROM signals WHERE expires_at <= ?"
                    " AND expires_at > ?)",
                    (now_ms, now_ms + margin_ms, after_ms),
                ).rowcount
            )

    def sent_for_episode(self, episode_key: str) -> list[SentMessage]:
        """Alerts delivered about an episode (e.g. to edit them when the opportunity closes)."""
        rows = self._db.rows(
            "SELECT d.id, d.user, d.message_id, u.platform, u.chat_id, s.* FROM deliveries d"
            " JOIN users u ON u.id = d.user JOIN signals s ON s.id = d.signal"
            " WHERE s.key = ? AND d.status = 'sent' ORDER BY d.id",
            (episode_key,),
        )
        return [
            SentMessage(
                delivery_id=r["id"],
                user_id=r["user"],
                platform=Platform(r["platform"]),
                chat_id=r["chat_id"],
                message_id=r["message_id"],
                signal=signal_from_row(r),
            )
            for r in rows
        ]

    def ledger_rows(self, since_ms: int) -> list[LedgerRow]:
        """What each user was queued (pending or sent) about each episode since ``since_ms``."""
        rows = self._db.rows(
            "SELECT d.user, s.key, s.strength, s.net_pct, d.created_ms FROM deliveries d"
            " JOIN signals s ON s.id = d.signal"
            " WHERE d.status IN ('pending', 'sent') AND d.created_ms >= ? ORDER BY d.id",
            (since_ms,),
        )
        return [
            LedgerRow(
                r["user"],
                r["key"],
                SignalStrength(r["strength"]),
                r["net_pct"],
                r["created_ms"],
            )
            for r in rows
        ]

    def enqueue_broadcast(self, text: str, sender: str, now_ms: int) -> int:
        """Queue ``text`` for every active user (silently for muted ones); returns how many."""
        with self._db.tx() as conn:
            broadcast_id = conn.execute(
                "INSERT INTO broadcasts (text, sender, created_ms) VALUES (?, ?, ?)",
                (text, sender, now_ms),
            ).lastrowid
            return int(
                conn.execute(
                    "INSERT INTO deliveries (user, broadcast, next_attempt_ms, silent, created_ms,"
                    " platform, order_key, signal_ts, spread)"
                    " SELECT id, ?1, ?2, coalesce(muted_until_ms > ?2, 0), ?2, platform,"
                    " 4 + coalesce(muted_until_ms > ?2, 0), ?2,"
                    f" {SPREAD.format(user='id', item='?1')} FROM users WHERE active",
                    (broadcast_id, now_ms),
                ).rowcount
            )
