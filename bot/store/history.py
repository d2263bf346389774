"""What the detector emitted, kept for /stats: signals (with their deliveries) and opportunities."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from bot.store.database import Database
from bot.store.models import (
    DeliveryPlan,
    OpportunityRow,
    OpportunityStats,
    net_profit_pct,
    news_key,
    signal_from_row,
    to_json,
)
from bot.store.schema import SPREAD
from detector.analyzer import TrackedOpportunity
from detector.signals import Signal, SignalStrength, SignalType


class SignalHistory:
    """Signals and arbitrage opportunities in the store (``Store.history``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_signal(self, signal: Signal, now_ms: int, plan: DeliveryPlan | None = None) -> int:
        """Store a signal and queue its deliveries in one transaction; returns the signal's id.

        Idempotent: the same news (:func:`news_key`) recorded again, with the same plan, adds
        nothing. An arbitrage signal also updates its opportunity's row. Older alerts about the
        same episode still queued for these recipients are skipped as superseded. The plan's
        digest users get the signal as an item of their next digest (:mod:`bot.store.digests`).
        """
        with self._db.tx() as conn:
            return _record_signal(conn, signal, now_ms, plan)

    def record_signals(
        self, routed: Sequence[tuple[Signal, DeliveryPlan | None]], now_ms: int
    ) -> list[int]:
        """:meth:`record_signal` of each (signal, plan), in order, in one transaction: a burst
        costs one commit (one fsync), not one a signal. All or nothing."""
        with self._db.tx() as conn:
            return [_record_signal(conn, signal, now_ms, plan) for signal, plan in routed]

    def record_opportunity(self, tracked: TrackedOpportunity) -> None:
        """Store the analyzer's view of an opportunity (authoritative: open, peak and close)."""
        peak = tracked.peak
        with self._db.tx() as conn:
            conn.execute(
                "INSERT INTO opportunities (id, symbol, direction, opened_ms, closed_ms,"
                " last_seen_ms, duration_ms, peak_net_pct, peak_expected_profit, peak_max_volume,"
                " close_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET closed_ms = excluded.closed_ms,"
                " last_seen_ms = excluded.last_seen_ms, duration_ms = excluded.duration_ms,"
                " peak_net_pct = excluded.peak_net_pct,"
                " peak_expected_profit = excluded.peak_expected_profit,"
                " peak_max_volume = excluded.peak_max_volume,"
                " close_reason = excluded.close_reason",
                (
                    tracked.id,
                    tracked.symbol,
                    tracked.direction.value,
                    tracked.opened_ms,
                    tracked.closed_ms,
                    tracked.closed_ms or tracked.last.timestamp,
                    tracked.duration_ms,
                    peak.net_profit_percentage,
                    peak.expected_profit,
                    peak.max_volume,
                    None if tracked.close_reason is None else tracked.close_reason.value,
                ),
            )

    def signal_counts(
        self, since_ms: int, until_ms: int, symbol: str | None = None
    ) -> dict[SignalType, dict[SignalStrength, int]]:
        """Signals stored in [since, until) by type and strength (only non-zero entries)."""
        where, params = _of_symbol("timestamp >= ? AND timestamp < ?", [since_ms, until_ms], symbol)
        sql = f"SELECT type, strength, count(*) AS n FROM signals WHERE {where}"
        counts: dict[SignalType, dict[SignalStrength, int]] = {}
        for row in self._db.rows(sql + " GROUP BY type, strength", params):
            try:
                kind, strength = SignalType(row["type"]), SignalStrength(row["strength"])
            except ValueError:
                continue  # a type this version does not know (written by a newer detector)
            counts.setdefault(kind, {})[strength] = row["n"]
        return counts

    def opportunity_stats(
        self, since_ms: int, until_ms: int, symbol: str | None = None
    ) -> OpportunityStats:
        """Opportunities opened in [since, until)."""
        where, params = _of_symbol("opened_ms >= ? AND opened_ms < ?", [since_ms, until_ms], symbol)
        row = self._db.one(
            "SELECT count(*) AS n, coalesce(sum(closed_ms IS NULL), 0) AS open_now,"
            " avg(peak_net_pct) AS avg_net, max(peak_net_pct) AS max_net,"
            " max(duration_ms) AS max_duration, coalesce(sum(peak_expected_profit), 0) AS total,"
            f" max(peak_expected_profit) AS max_profit FROM opportunities WHERE {where}",
            params,
        )
        assert row is not None
        return OpportunityStats(
            count=row["n"],
            open_now=row["open_now"],
            avg_peak_net_pct=row["avg_net"],
            max_peak_net_pct=row["max_net"],
            median_duration_ms=self._db.median("duration_ms", "opportunities", where, params),
            max_duration_ms=row["max_duration"],
            total_expected_profit=float(row["total"]),
            max_expected_profit=row["max_profit"],
        )

    def opportunities(
        self, since_ms: int, until_ms: int, symbol: str | None = None
    ) -> list[OpportunityRow]:
        """Opportunities whose window overlaps [since, until), oldest first (for charts)."""
        where, params = _of_symbol(
            "opened_ms < ? AND coalesce(closed_ms, last_seen_ms) >= ?", [until_ms, since_ms], symbol
        )
        rows = self._db.rows(
            "SELECT symbol, direction, opened_ms, closed_ms, last_seen_ms, peak_net_pct"
            f" FROM opportunities WHERE {where} ORDER BY opened_ms, symbol, direction",
            params,
        )
        return [
            OpportunityRow(
                symbol=r["symbol"],
                direction=r["direction"],
                opened_ms=r["opened_ms"],
                closed_ms=r["closed_ms"],
                last_seen_ms=r["last_seen_ms"],
                peak_net_pct=float(r["peak_net_pct"]),
            )
            for r in rows
        ]

    def signals(
        self, symbol: str, since_ms: int, until_ms: int, types: Sequence[SignalType]
    ) -> list[Signal]:
        """The symbol's stored signals of ``types`` in [since, until), oldest first."""
        marks = ", ".join("?" * len(types))
        rows = self._db.rows(
            "SELECT * FROM signals WHERE symbol = ? AND timestamp >= ? AND timestamp < ?"
            f" AND type IN ({marks}) ORDER BY timestamp, id",
            [symbol, since_ms, until_ms, *(t.value for t in types)],
        )
        return [signal_from_row(r) for r in rows]

    def alert_count(self, user_id: int, since_ms: int) -> int:
        """Alerts delivered to the user since ``since_ms``."""
        return int(
            self._db.scalar(
                "SELECT count(*) FROM deliveries WHERE user = ? AND signal IS NOT NULL"
                " AND status = 'sent' AND created_ms >= ?",
                (user_id, since_ms),
            )
        )

    def delivery_latency_ms(self, since_ms: int) -> float | None:
        """Median time from a signal to its delivery, over alerts sent since ``since_ms``."""
        return self._db.median(
            "d.sent_ms - s.timestamp",
            "deliveries d JOIN signals s ON s.id = d.signal",
            "d.status = 'sent' AND d.created_ms >= ?",
            [since_ms],
        )


def _record_signal(
    conn: sqlite3.Connection, signal: Signal, now_ms: int, plan: DeliveryPlan | None
) -> int:
    dedup_key = news_key(signal)
    inserted = conn.execute(
        "INSERT OR IGNORE INTO signals (type, symbol, strength, confidence, timestamp,"
        " expires_at, key, net_pct, details, received_ms, dedup_key)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            signal.type.value,
            signal.symbol,
            signal.strength.value,
            signal.confidence,
            signal.timestamp,
            signal.expires_at,
            signal.key,
            net_profit_pct(signal),
            to_json(signal.details),
            now_ms,
            dedup_key,
        ),
    ).rowcount
    signal_id: int = conn.execute(
        "SELECT id FROM signals WHERE dedup_key = ?", (dedup_key,)
    ).fetchone()[0]
    if inserted and signal.type is SignalType.ARBITRAGE:
        _upsert_opportunity_from_signal(conn, signal)
    if plan is not None and plan.recipients:
        silent = int(plan.silent)
        order_key = 2 * (0 if signal.type is SignalType.ARBITRAGE else 1) + silent
        conn.executemany(
            "INSERT OR IGNORE INTO deliveries (signal, user, next_attempt_ms, silent,"
            " created_ms, platform, order_key, signal_ts, spread)"
            " SELECT ?1, id, ?2, ?3, ?2, platform, ?4, ?5,"
            f" {SPREAD.format(user='id', item='?1')} FROM users WHERE id = ?6",
            [
                (signal_id, now_ms, silent, order_key, signal.timestamp, uid)
                for uid in plan.recipients
            ],
        )
        _supersede(conn, signal.key, signal_id, now_ms)
    if plan is not None and plan.digest:
        conn.executemany(
            "INSERT OR IGNORE INTO digest_items (user, signal, created_ms) VALUES (?, ?, ?)",
            [(uid, signal_id, now_ms) for uid in plan.digest],
        )
    return signal_id


def _supersede(conn: sqlite3.Connection, episode_key: str, signal_id: int, now_ms: int) -> None:
    """Coalesce per user: a newer alert about an episode replaces the older ones still queued
    for the same users, so nobody waits behind news that is already out of date."""
    conn.execute(
        "UPDATE deliveries SET status = 'skipped', last_error = 'superseded by a newer alert',"
        " finished_ms = ? WHERE status = 'pending'"
        " AND signal IN (SELECT id FROM signals WHERE key = ? AND id != ?)"
        " AND user IN (SELECT user FROM deliveries WHERE signal = ?)",
        (now_ms, episode_key, signal_id, signal_id),
    )


def _of_symbol(where: str, params: list[Any], symbol: str | None) -> tuple[str, list[Any]]:
    """``where`` narrowed to one symbol's rows (None: every symbol)."""
    if symbol is None:
        return where, params
    return f"{where} AND symbol = ?", [*params, symbol]


def _upsert_opportunity_from_signal(conn: sqlite3.Connection, signal: Signal) -> None:
    """Keep an opportunity's row from its signals alone (``record_opportunity`` refines it)."""
    d = signal.details
    opportunity_id = str(d.get("opportunity_id") or signal.key.removeprefix("arbitrage:"))
    opened = opportunity_id.rsplit(":", 1)[-1]
    opened_ms = int(opened) if opened.isdigit() else signal.timestamp
    net = float(d.get("net_profit_percentage", 0.0))
    conn.execute(
        "INSERT INTO opportunities (id, symbol, direction, opened_ms, last_seen_ms, duration_ms,"
        " peak_net_pct, peak_expected_profit, peak_max_volume) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET"
        " last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),"
        " duration_ms = CASE WHEN closed_ms IS NULL"
        " THEN max(duration_ms, excluded.duration_ms) ELSE duration_ms END,"
        " peak_expected_profit = CASE WHEN excluded.peak_net_pct > peak_net_pct"
        " THEN excluded.peak_expected_profit ELSE peak_expected_profit END,"
        " peak_max_volume = CASE WHEN excluded.peak_net_pct > peak_net_pct"
        " THEN excluded.peak_max_volume ELSE peak_max_volume END,"
        " peak_net_pct = max(peak_net_pct, excluded.peak_net_pct)",
        (
            opportunity_id,
            signal.symbol,
            str(d.get("direction", "")),
            opened_ms,
            signal.timestamp,
            max(0, signal.timestamp - opened_ms),
            net,
            float(d.get("expected_profit", 0.0)),
            float(d.get("max_volume", 0.0)),
        ),
    )
