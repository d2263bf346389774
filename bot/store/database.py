"""One SQLite file through sqlite-utils: WAL, foreign keys, migrations, and typed access.

sqlite-utils is untyped in older releases; this wrapper is the only place that touches it, so
the rest of the bot stays typed. Writes go through :meth:`Database.tx` (``BEGIN IMMEDIATE`` …
``COMMIT``, so a method's writes are durable when it returns); a re-entrant lock serialises
callers, so the store may be used from the event loop or from ``asyncio.to_thread`` workers.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.errors import SchemaTooNew, StoreError
from bot.store.schema import MIGRATIONS, SCHEMA_VERSION

_FIX = (
    "; restore it from a backup, or move it away and start on a fresh file (DATABASE_PATH names it)"
)


class Database:
    """An open, migrated database file (see module doc)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        try:
            # isolation_level=None: no implicit transactions; tx() opens and commits them.
            conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except sqlite3.Error as exc:
            raise StoreError(path, f"cannot open: {exc}") from exc
        self.conn = conn
        try:
            self._db: Any = sqlite_utils.Database(conn)
            self._db.enable_wal()
            # FULL: a commit survives a power cut too, not only a crash of the process.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._check_integrity()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(path, f"not a usable arbwatch database: {exc}{_FIX}") from exc
        except StoreError:
            conn.close()
            raise

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @property
    def schema_version(self) -> int:
        return int(self.scalar("PRAGMA user_version"))

    @property
    def journal_mode(self) -> str:
        return str(self._db.journal_mode)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on success; BEGIN IMMEDIATE takes the lock up front."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._db.query(sql, list(params)))

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self.lock:
            row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def median(self, expr: str, source: str, where: str, params: Sequence[Any]) -> float | None:
        """The median of ``expr`` over ``source`` rows matching ``where`` (None: no rows)."""
        n = int(self.scalar(f"SELECT count(*) FROM {source} WHERE {where}", params))
        if n == 0:
            return None
        middle = self.rows(
            f"SELECT {expr} AS v FROM {source} WHERE {where} ORDER BY v LIMIT ? OFFSET ?",
            [*params, 2 - n % 2, (n - 1) // 2],
        )
        return sum(float(r["v"]) for r in middle) / len(middle)

    def _check_integrity(self) -> None:
        """Refuse a damaged file at once, rather than failing every query later.

        ``quick_check`` reads every page (O(size), about a second per few hundred MB) but skips
        the index cross-checks of ``integrity_check``.
        """
        problems = [row[0] for row in self.conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            shown = "; ".join(" ".join(p.split()) for p in problems[:3])  # one line
            shown += " …" if len(problems) > 3 else ""
            raise StoreError(self.path, f"the file is damaged (quick_check: {shown}){_FIX}")

    def _migrate(self) -> None:
        found = self.schema_version
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(self.path, found, SCHEMA_VERSION)
        for version in range(found, SCHEMA_VERSION):
            with self.tx() as conn:
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
