"""Named leases in the store: who may act alone on this database, for how long (``Store.leases``).

A lease is taken or renewed with a TTL and lapses by itself when its owner dies (``kill -9``):
``outbox:<platform>`` makes one outbox the only sender of a platform's deliveries. The process
that holds the file's :class:`~bot.store.lock.InstanceLock` is the only one alive on it, and
:meth:`Leases.take_over` clears what dead ones left, so its outboxes need not wait for a TTL.
"""

from __future__ import annotations

from bot.store.database import Database


class Leases:
    """Take, renew, release and name the holder of a lease (see module doc)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def acquire(self, name: str, owner: str, now_ms: int, ttl_ms: int) -> bool:
        """Take or renew the named lease; False while another owner holds an unexpired one."""
        with self._db.tx() as conn:
            return bool(
                conn.execute(
                    "INSERT INTO leases (name, owner, expires_ms) VALUES (?, ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                    " expires_ms = excluded.expires_ms"
                    " WHERE leases.owner = excluded.owner OR leases.expires_ms <= ?",
                    (name, owner, now_ms + ttl_ms, now_ms),
                ).rowcount
            )

    def release(self, name: str, owner: str) -> None:
        """Give the lease up (only ``owner``'s), so another may take it at once."""
        with self._db.tx() as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    def holder(self, name: str) -> str | None:
        """Who holds (or last held, if it has lapsed since) the named lease; None: nobody."""
        owner = self._db.scalar("SELECT owner FROM leases WHERE name = ?", (name,))
        return None if owner is None else str(owner)

    def take_over(self) -> int:
        """Delete every lease (call only while holding the instance lock); returns how many."""
        with self._db.tx() as conn:
            return int(conn.execute("DELETE FROM leases").rowcount)
