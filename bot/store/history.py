"""What the detector emitted, kept for /stats: signals (with their deliveries) and opportunities."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from bot.store.database import Database
from bot.store.models import (
    DeliveryPlan,
    OpportunityRow,
    OpportunityStats,
    Platform,
    net_profit_pct,
    news_key,
    signal_from_row,
    to_json,
)
from bot.store.schema import SPREAD
from detector.analyzer import TrackedOpportunity
from detector.signals import Signal, SignalStrength, SignalType

SEND_MARGIN = 1.25
"""A capped signal queues this many times the sends its platform's rate allows before it expires:
a retry, a chat that is paced or paused, a user who blocked the bot each leave their slot to
the next row in line."""


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
        return self.record_signals([(signal, plan)], now_ms)[0]

    def record_signals(
        self,
        routed: Sequence[tuple[Signal, DeliveryPlan | None]],
        now_ms: int,
        rates: Mapping[Platform, float] | None = None,
    ) -> list[int]:
        """:meth:`record_signal` of each (signal, plan), in order, in one transaction: a burst
        costs one commit (one fsync), not one a signal. All or nothing.

        With ``rates`` (each platform's messages a second; a platform left out queues
        nothing: the caller knows none of the recipients is on it), no more rows are queued on a
        platform than its rate can send while the signal is alive (times :data:`SEND_MARGIN`),
        taken in the outbox's own order (``DUE_ORDER``): the burst's signals that go out first
        take their share of the platform first, and each signal's recipients come in their
        ``spread`` order. The rows left out are the ones the outbox could only ever have
        expired unsent (2,000,000 of them for 200 signals to 10,000 users); they are counted
        on the signal (``unqueued``).
        """
        with self._db.tx() as conn:
            ids = [_insert_signal(conn, signal, now_ms) for signal, _ in routed]
            used = dict.fromkeys(Platform, 0)  # rows queued on each platform by this burst
            alerts = [(i, p) for i, (_, p) in enumerate(routed) if p is not None and p.recipients]
            for i, alert in sorted(alerts, key=lambda entry: _due_rank(entry[1], entry[0])):
                room = _room(alert.signal, now_ms, rates, used)
                _queue(conn, ids[i], alert, now_ms, room, used)
            for (signal, plan), signal_id in zip(routed, ids, strict=True):
                if plan is not None and plan.recipients:
                    _supersede(conn, signal.key, signal_id, now_ms)
                if plan is not None and plan.digest:
                    conn.executemany(
                        "INSERT OR IGNORE INTO digest_items (user, signal, created_ms)"
                        " VALUES (?, ?, ?)",
                        [(uid, signal_id, now_ms) for uid in plan.digest],
                    )
            return ids

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

    def unqueued_count(self, since_ms: int) -> int:
        """Recipients of the signals since ``since_ms`` not queued (:meth:`record_signals`)."""
        return int(
            self._db.scalar(
                "SELECT coalesce(sum(unqueued), 0) FROM signals WHERE timestamp >= ?", (since_ms,)
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


def _insert_signal(conn: sqlite3.Connection, signal: Signal, now_ms: int) -> int:
    """The signal's row (the existing one for news already stored); returns its id."""
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
    return signal_id


def _order_key(signal: Signal, silent: bool) -> int:
    """The outbox's class of a signal's rows (schema 4): arbitrage first, notifying first."""
    return 2 * (0 if signal.type is SignalType.ARBITRAGE else 1) + int(silent)


def _due_rank(plan: DeliveryPlan, position: int) -> tuple[int, int, int]:
    """Where a burst's signal stands in ``DUE_ORDER``: its class, the newest first (and of
    two at the same time, the later in the burst)."""
    return (_order_key(plan.signal, plan.silent), -plan.signal.timestamp, -position)


def _room(
    signal: Signal,
    now_ms: int,
    rates: Mapping[Platform, float] | None,
    used: Mapping[Platform, int],
) -> dict[Platform, int] | None:
    """The rows ``signal`` may still queue on each platform (None: no cap): what the rate
    sends before the signal expires, less what the burst's signals ahead of it queued."""
    if rates is None:
        return None
    alive_s = max(0, signal.expires_at - now_ms) / 1000
    return {
        platform: max(0, math.ceil(rates.get(platform, 0) * alive_s * SEND_MARGIN) - used[platform])
        for platform in Platform
    }


_CAPS = " ".join(f"WHEN '{p.value}' THEN ?{n}" for n, p in enumerate(Platform, start=7))
_QUEUE = (
    "INSERT OR IGNORE INTO deliveries (signal, user, next_attempt_ms, silent, created_ms,"
    " platform, order_key, signal_ts, spread)"
    " SELECT ?1, id, ?2, ?3, ?2, platform, ?4, ?5, spread FROM ("
    " SELECT id, platform, spread,"
    " row_number() OVER (PARTITION BY platform ORDER BY spread, id) AS place FROM ("
    f" SELECT u.id, u.platform, {SPREAD.format(user='u.id', item='?1')} AS spread"
    " FROM json_each(?6) j JOIN users u ON u.id = j.value))"
    f" WHERE place <= coalesce(CASE platform {_CAPS} END, place)"
)
"""Queue a signal's recipients (a JSON array), at most a cap per platform (NULL: all), each
platform's first in ``spread`` order: those the outbox sends first."""


def _queue(
    conn: sqlite3.Connection,
    signal_id: int,
    plan: DeliveryPlan,
    now_ms: int,
    room: Mapping[Platform, int] | None,
    used: dict[Platform, int],
) -> None:
    """Queue the plan's recipients within ``room``; count the rows on ``used``, the rest on
    the signal's ``unqueued``."""
    signal = plan.signal
    caps = [None if room is None else room[platform] for platform in Platform]
    if all(cap == 0 for cap in caps):
        queued: dict[str, int] = {}
    else:
        conn.execute(
            _QUEUE,
            (
                signal_id,
                now_ms,
                int(plan.silent),
                _order_key(signal, plan.silent),
                signal.timestamp,
                to_json(plan.recipients),
                *caps,
            ),
        )
        queued = dict(
            conn.execute(
                "SELECT platform, count(*) FROM deliveries WHERE signal = ? GROUP BY platform",
                (signal_id,),
            ).fetchall()
        )
    for platform in Platform:
        used[platform] += queued.get(platform.value, 0)
    left_out = len(plan.recipients) - sum(queued.values())
    if left_out > 0:
        conn.execute("UPDATE signals SET unqueued = ? WHERE id = ?", (left_out, signal_id))


def _supersede(conn: sqlite3.Connection, episode_key: str, signal_id: int, now_ms: int) -> None:
    """Coalesce per user: a newer alert about an episode replaces the older ones still queued
    for the same users, so nobody waits behind news that is already out of date. Newer: stored
    later (a larger id), so that old news recorded again never cancels what came after it."""
    conn.execute(
        "UPDATE deliveries SET status = 'skipped', last_error = 'superseded by a newer alert',"
        " finished_ms = ? WHERE status = 'pending'"
        " AND signal IN (SELECT id FROM signals WHERE key = ? AND id < ?)"
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
