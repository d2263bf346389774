"""Edits of delivered arbitrage alerts once their opportunity closed (``Store.edits``).

An alert says an opportunity is there; once the analyzer closes it, the message should say so,
with how long it lasted and its peak, so nobody acts on a window that has gone. Nothing is
queued for this: an alert is due for its edit when it was delivered (with a message id), its
opportunity is closed, and it has no finished edit. The outbox sends edits after new alerts,
within the same pacing, and records each outcome in ``edits``.
"""

from __future__ import annotations

from bot.messages import MINUTE_MS
from bot.store.database import Database
from bot.store.deliveries import SIGNAL_COLUMNS, due_rows
from bot.store.models import DueEdit, Platform, signal_from_row

EDIT_WITHIN_MS = 10 * MINUTE_MS
"""Opportunities closed this recently get their alerts edited; an edit that could not be made
by then is dropped (the alert has long scrolled by). It also bounds each pass's query to the
deliveries of recently closed opportunities, whatever the size of the history."""

_DUE = (
    "SELECT d.id AS delivery, d.user, d.message_id, d.sent_ms, u.platform, u.chat_id,"
    " u.is_group, o.duration_ms, o.peak_net_pct, coalesce(e.attempts, 0) AS edit_attempts,"
    f" {SIGNAL_COLUMNS}"
    # CROSS JOIN fixes the loop order (SQLite's rule): recently closed opportunities (index),
    # their signals (by key), their deliveries (by signal); never a scan of the history.
    " FROM opportunities o CROSS JOIN signals s ON s.key = 'arbitrage:' || o.id"
    " CROSS JOIN deliveries d ON d.signal = s.id JOIN users u ON u.id = d.user"
    " LEFT JOIN edits e ON e.delivery = d.id"
    " WHERE o.closed_ms >= ? AND d.status = 'sent' AND d.message_id IS NOT NULL"
)


class Edits:
    """Due edits and their outcomes (see module doc)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def due(self, now_ms: int, limit: int = 100, platform: Platform | None = None) -> list[DueEdit]:
        """Alerts due for their closing edit: never tried, or a retry whose time has come."""
        rows = due_rows(
            self._db,
            _DUE + " AND (e.delivery IS NULL OR (e.status = 'pending' AND e.next_attempt_ms <= ?))",
            [now_ms - EDIT_WITHIN_MS, now_ms],
            platform,
            order="d.id",
            limit=limit,
        )
        return [
            DueEdit(
                delivery_id=r["delivery"],
                user_id=r["user"],
                platform=Platform(r["platform"]),
                chat_id=r["chat_id"],
                is_group=bool(r["is_group"]),
                message_id=r["message_id"],
                signal=signal_from_row(r),
                sent_ms=r["sent_ms"],
                closed_after_ms=r["duration_ms"],
                peak_net_pct=float(r["peak_net_pct"]),
                attempts=r["edit_attempts"],
            )
            for r in rows
        ]

    def next_due_ms(self, platform: Platform) -> int | None:
        """When the earliest edit retry is due (edits never tried are due at once)."""
        value = self._db.scalar(
            "SELECT min(e.next_attempt_ms) FROM edits e JOIN deliveries d ON d.id = e.delivery"
            " JOIN users u ON u.id = d.user WHERE e.status = 'pending' AND u.platform = ?",
            (platform.value,),
        )
        return None if value is None else int(value)

    def mark_done(self, delivery_id: int, now_ms: int, error: str | None = None) -> None:
        """Edited (``error`` None), or given up on with the reason."""
        status = "sent" if error is None else "failed"
        with self._db.tx() as conn:
            conn.execute(
                "INSERT INTO edits (delivery, status, attempts, next_attempt_ms, last_error,"
                " finished_ms) VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (delivery) DO UPDATE SET"
                " status = excluded.status, attempts = attempts + 1,"
                " last_error = excluded.last_error, finished_ms = excluded.finished_ms",
                (delivery_id, status, now_ms, error, now_ms),
            )

    def mark_retry(self, delivery_id: int, next_attempt_ms: int, error: str) -> None:
        """A transient failure: try again at ``next_attempt_ms``."""
        with self._db.tx() as conn:
            conn.execute(
                "INSERT INTO edits (delivery, status, attempts, next_attempt_ms, last_error)"
                " VALUES (?, 'pending', 1, ?, ?) ON CONFLICT (delivery) DO UPDATE SET"
                " attempts = attempts + 1, next_attempt_ms = excluded.next_attempt_ms,"
                " last_error = excluded.last_error",
                (delivery_id, next_attempt_ms, error),
            )
