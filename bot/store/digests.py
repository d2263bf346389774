"""Digests in the store: the signals waiting for a user's next digest, and composing it.

A user on ``/digest 5m`` receives no alert as it happens: :meth:`SignalHistory.record_signal`
keeps each signal that reaches them as a *digest item*. Periods are whole minutes aligned to the
clock (a 5 m digest covers 12:00-12:05, 12:05-12:10, ...), so :meth:`Digests.compose_due` need
run only once a minute: each user whose oldest waiting item lies before the last boundary gets
one digest message, a ``broadcasts`` row of kind ``digest`` with a single delivery, and the
outbox sends it like a broadcast (paced, retried, never expired). A process that was down for
several periods sends one digest covering them all, not one per period. A user who turned the
digest off gets what was waiting at the next minute.
"""

from __future__ import annotations

import sqlite3

from bot.messages import MINUTE_MS
from bot.store.database import Database
from bot.store.models import Digest, Platform, signal_from_row
from bot.store.schema import SPREAD

DIGEST_STEP_MS = MINUTE_MS
"""Digest periods are whole multiples of this, aligned to the clock: composing need only run
once per step."""

DIGEST_ORDER_KEY = 2
"""Digests go with the other signals' alerts (before broadcasts); a silent one after them."""


class Digests:
    """Digest items and digest messages (``Store.digests``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def waiting(self, user_id: int) -> int:
        """How many signals wait for the user's next digest."""
        return int(
            self._db.scalar(
                "SELECT count(*) FROM digest_items WHERE user = ? AND digest IS NULL", (user_id,)
            )
        )

    def compose_due(self, now_ms: int, platform: Platform | None = None) -> int:
        """Turn every digest whose period ended into a queued message; returns how many.

        One transaction: items, message and delivery appear together or not at all.
        """
        boundary = now_ms - now_ms % DIGEST_STEP_MS
        sql = (
            "SELECT i.user, min(i.created_ms) AS first_ms, u.platform,"
            " coalesce(json_extract(u.preferences, '$.digest_ms'), 0) AS period"
            " FROM digest_items i JOIN users u ON u.id = i.user"
            " WHERE i.digest IS NULL AND u.active"
        )
        params: list[object] = []
        if platform is not None:
            sql += " AND u.platform = ?"
            params.append(platform.value)
        params.append(boundary)
        with self._db.tx() as conn:
            due = conn.execute(sql + " GROUP BY i.user HAVING min(i.created_ms) < ?", params)
            composed = 0
            for user_id, first_ms, user_platform, period in due.fetchall():
                # No period (the digest was turned off): what waits goes at the next minute.
                period = int(period) or DIGEST_STEP_MS
                to_ms = now_ms - now_ms % period
                if first_ms >= to_ms:
                    continue  # this user's period has not ended yet
                _compose(conn, user_id, user_platform, first_ms - first_ms % period, to_ms, now_ms)
                composed += 1
        return composed


def _compose(
    conn: sqlite3.Connection, user_id: int, platform: str, from_ms: int, to_ms: int, now_ms: int
) -> None:
    digest_id = conn.execute(
        "INSERT INTO broadcasts (text, sender, created_ms, kind, from_ms, to_ms)"
        " VALUES ('', 'digest', ?, 'digest', ?, ?)",
        (now_ms, from_ms, to_ms),
    ).lastrowid
    conn.execute(
        "UPDATE digest_items SET digest = ? WHERE user = ? AND digest IS NULL AND created_ms < ?",
        (digest_id, user_id, to_ms),
    )
    silent = int(
        conn.execute(
            "SELECT coalesce(min(s.strength = 'weak'), 1) FROM digest_items i"
            " JOIN signals s ON s.id = i.signal WHERE i.digest = ?",
            (digest_id,),
        ).fetchone()[0]
    )
    conn.execute(
        "INSERT INTO deliveries (user, broadcast, next_attempt_ms, silent, created_ms, platform,"
        " order_key, signal_ts, spread)"
        f" VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?6, ?3, {SPREAD.format(user='?1', item='?2')})",
        (user_id, digest_id, now_ms, silent, platform, DIGEST_ORDER_KEY + silent),
    )


def load_digest(db: Database, digest_id: int, from_ms: int, to_ms: int) -> Digest:
    """A composed digest with its signals: the newest of each episode, oldest first."""
    rows = db.rows(
        "SELECT s.* FROM digest_items i JOIN signals s ON s.id = i.signal"
        " WHERE i.digest = ? ORDER BY s.timestamp, s.id",
        (digest_id,),
    )
    newest = {row["key"]: signal_from_row(row) for row in rows}
    signals = sorted(newest.values(), key=lambda s: s.timestamp)
    return Digest(from_ms, to_ms, tuple(signals), caught=len(rows))
