"""How long the store keeps history: pruning old signals, opportunities and finished deliveries.

Deletes go in batches of :data:`_PRUNE_BATCH` rows per transaction, so a prune of a large file
never holds the write lock long enough to delay an alert.
"""

from __future__ import annotations

from bot.messages import DAY_MS
from bot.store.database import Database
from bot.store.models import Pruned

RETENTION_MS = 30 * DAY_MS
"""Default age after which signals, opportunities and finished deliveries are pruned."""

_PRUNE_BATCH = 5_000  # rows per delete transaction, so a prune never holds the lock for long


def prune(db: Database, now_ms: int, max_age_ms: int = RETENTION_MS) -> Pruned:
    """Delete signals, opportunities and finished deliveries older than ``max_age_ms``.

    Pending deliveries, and the signals and broadcasts they need, are kept whatever their age.
    """
    cutoff = now_ms - max_age_ms
    deliveries = _prune_batches(
        db,
        "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE"
        " status != 'pending' AND created_ms < ? LIMIT ?)",
        cutoff,
    )
    signals = _prune_batches(
        db,
        "DELETE FROM signals WHERE id IN (SELECT id FROM signals s WHERE timestamp < ?"
        " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.signal = s.id"
        " AND d.status = 'pending') LIMIT ?)",
        cutoff,
    )
    opportunities = _prune_batches(
        db,
        "DELETE FROM opportunities WHERE id IN (SELECT id FROM opportunities"
        " WHERE last_seen_ms < ? LIMIT ?)",
        cutoff,
    )
    broadcasts = _prune_batches(
        db,
        "DELETE FROM broadcasts WHERE id IN (SELECT id FROM broadcasts b WHERE created_ms < ?"
        " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.broadcast = b.id"
        " AND d.status = 'pending') LIMIT ?)",
        cutoff,
    )
    return Pruned(signals, deliveries, opportunities, broadcasts)


def _prune_batches(db: Database, sql: str, cutoff: int) -> int:
    total = 0
    while True:
        with db.tx() as conn:
            deleted = conn.execute(sql, (cutoff, _PRUNE_BATCH)).rowcount
        total += deleted
        if deleted < _PRUNE_BATCH:
            return total
