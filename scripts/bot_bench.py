"""Figures for the bot's heavier steps: chart rendering, finding due closing edits, and a day
of the whole market (``/stats``, ``/chart`` and routing over 50,000 signals on 400 symbols).

Run from the repository root: ``.venv/bin/python scripts/bot_bench.py [--users N]``.
It builds a scratch database (real Store, real Router) and prints one line per figure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import MAX_BURST
from bot.commands import CommandHandler
from bot.commands.reports import gap_chart, stats_chart
from bot.config import Settings
from bot.routing import SEND_RATES, Router
from bot.store import Platform, Store
from detector.signals import SignalType
from tests.bot.factories import T0, arbitrage, closed, other

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


def timed(fn: Callable[[], Any], runs: int) -> tuple[Any, float]:
    fn()  # warm-up (imports, font cache)
    start = time.perf_counter()
    for _ in range(runs):
        result = fn()
    return result, (time.perf_counter() - start) / runs * 1000


def charts(store: Store) -> None:
    """15 opportunities over 10 h on three symbols, each with three signals."""
    for i in range(15):
        opened = T0 + i * 40 * MINUTE_MS
        symbol = ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3]
        for k, net in enumerate((0.12, 0.25, 0.45)):
            at = opened + k * MINUTE_MS
            signal = arbitrage(net, symbol=symbol, opened_ms=opened, timestamp=at)
            store.history.record_signal(signal, at)
    since, until = T0 - HOUR_MS, T0 + 20 * HOUR_MS
    for name, render in (
        ("stats chart", lambda: stats_chart(store, since, until)),
        ("gap chart", lambda: gap_chart(store, "BTCUSDT", since, until)),
    ):
        chart, ms = timed(render, 10)
        print(f"{name}: {chart.width}x{chart.height} px, {len(chart.png):,} bytes, {ms:.0f} ms")


def subscribe_all(store: Store, users: int, prefix: str, at_ms: int) -> None:
    """``users`` Telegram users (chat ids ``prefix`` + n), each subscribed to ALL at 0.1 %."""
    with store.db.tx() as conn:
        for n in range(users):
            conn.execute(
                "INSERT INTO users (platform, chat_id, user_id, name, created_ms, updated_ms)"
                " VALUES ('telegram', ?, ?, 'u', ?, ?)",
                (f"{prefix}{n}", f"{prefix}{n}", at_ms, at_ms),
            )
            conn.execute(
                "INSERT INTO subscriptions (user, symbol, threshold_pct, min_strength,"
                " created_ms, updated_ms) VALUES (last_insert_rowid(), 'ALL', 0.1, 'weak', ?, ?)",
                (at_ms, at_ms),
            )


def edits(store: Store, users: int, episodes: int) -> None:
    subscribe_all(store, users, "9", T0)
    router = Router(store, T0, rates=None)  # every alert delivered: the edits' worst case
    for ep in range(episodes):
        at = T0 + ep * MINUTE_MS
        signal = arbitrage(0.25, opened_ms=at, timestamp=at)
        router.dispatch(signal, at)
        with store.db.tx() as conn:
            conn.execute(
                "UPDATE deliveries SET status = 'sent', sent_ms = ?, message_id = '1'"
                " WHERE status = 'pending'",
                (at,),
            )
        store.history.record_opportunity(closed(signal))
    now = T0 + episodes * MINUTE_MS
    total = store.db.scalar("SELECT count(*) FROM deliveries")
    due, ms = timed(lambda: store.edits.due(now, 500), 5)
    print(f"edits.due: {len(due)} of {total:,} deliveries due, {ms:.1f} ms (none edited yet)")
    with store.db.tx() as conn:
        conn.execute(
            "INSERT INTO edits (delivery, status, attempts, next_attempt_ms)"
            " SELECT id, 'sent', 1, 0 FROM deliveries"
        )
    due, ms = timed(lambda: store.edits.due(now, 500), 5)
    print(f"edits.due: {len(due)} due, {ms:.1f} ms (every alert edited)")
    with store.db.tx() as conn:
        conn.execute("UPDATE opportunities SET closed_ms = NULL")
    due, ms = timed(lambda: store.edits.due(now, 500), 5)
    print(f"edits.due: {len(due)} due, {ms:.2f} ms (nothing closed)")


def market_day(store: Store, signals: int, symbols: int, users: int) -> None:
    """A generated day of the whole market: ``signals`` over 24 h on ``symbols`` symbols (one in
    three an arbitrage with its closed opportunity), then the bot's reads over it and a burst of
    200 signals routed to ``users`` subscribers of ALL."""
    names = [f"COIN{i:03d}USDT" for i in range(symbols)]
    kinds = (SignalType.SPREAD_ANOMALY, SignalType.VOLUME_SPIKE, SignalType.MOMENTUM_BREAKOUT)
    step = 24 * HOUR_MS // signals
    start = time.perf_counter()
    for n in range(signals):  # one transaction each, as the live bot stores them
        at, symbol = T0 + n * step, names[n % symbols]
        if n % 3 == 0:
            signal = arbitrage(0.2 + (n % 7) / 20, symbol=symbol, opened_ms=at, timestamp=at)
            store.history.record_signal(signal, at)
            store.history.record_opportunity(closed(signal))
        else:
            store.history.record_signal(other(kinds[n % 3], symbol=symbol, timestamp=at), at)
    print(
        f"market day: {signals:,} signals on {symbols} symbols stored in "
        f"{time.perf_counter() - start:.1f} s"
    )
    now = T0 + 24 * HOUR_MS
    handler = CommandHandler(store, Settings(_env_file=None), names)  # type: ignore[call-arg]

    def ask(text: str) -> str:
        return handler.handle(text, handler.context(Platform.TELEGRAM, "7", "7", "Ann", now)).text

    for text in ("/stats", "/stats 24h", f"/stats {names[7]} 24h", f"/chart {names[7]}"):
        reply, ms = timed(lambda text=text: ask(text), 5)  # type: ignore[misc]
        print(f"{text}: {ms:.0f} ms ({len(reply)} characters)")
    subscribe_all(store, users, "8", now)
    routing_burst(store, now, names, users, "one by one", 1)


def routing_burst(
    store: Store,
    now: int,
    names: list[str],
    users: int,
    how: str,
    size: int,
    rates: Mapping[Platform, float] | None = SEND_RATES,
) -> None:
    """A burst of 200 arbitrage signals routed ``size`` to a transaction (1: one commit each;
    the bot puts what queued up while it routed into one), queueing per platform what its rate
    sends before each signal expires (``rates`` None: every recipient, as before the cap)."""
    router = Router(store, now, rates=rates)
    burst = [
        arbitrage(0.3, symbol=names[n % len(names)], opened_ms=now + n * 5, timestamp=now + n * 5)
        for n in range(200)
    ]
    queued_before = store.db.scalar("SELECT count(*) FROM deliveries")
    start = time.perf_counter()
    for first in range(0, len(burst), size):
        chunk = burst[first : first + size]
        router.dispatch_many(chunk, chunk[-1].timestamp)
    ms = (time.perf_counter() - start) * 1000
    queued = store.db.scalar("SELECT count(*) FROM deliveries") - queued_before
    print(
        f"routing {how}: 200 signals to {users:,} subscribers of ALL in {ms:.0f} ms "
        f"({ms / 200:.2f} ms a signal, {queued:,} deliveries queued)"
    )


def bursts(store: Store, users: int, symbols: int, uncapped: bool) -> None:
    """The same burst routed again on a fresh database, in batches as the bot makes them
    (at most MAX_BURST a transaction), and all 200 in one; with ``uncapped``, also with every
    recipient queued (minutes at 10,000 users: 2,000,000 rows)."""
    names = [f"COIN{i:03d}USDT" for i in range(symbols)]
    subscribe_all(store, users, "8", T0)
    for size in (MAX_BURST, 200):
        routing_burst(store, T0 + size * HOUR_MS, names, users, f"{size} a transaction", size)
    if uncapped:
        at = T0 + 400 * HOUR_MS
        how = f"{MAX_BURST} a transaction, every recipient queued"
        routing_burst(store, at, names, users, how, MAX_BURST, rates=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--episodes", type=int, default=20, help="one a minute, all closed")
    parser.add_argument("--signals", type=int, default=50_000, help="in the generated market day")
    parser.add_argument("--symbols", type=int, default=400, help="in the generated market day")
    parser.add_argument(
        "--uncapped", action="store_true", help="also route the burst queueing every recipient"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "charts.db") as store:
            charts(store)
        with Store(Path(tmp) / "edits.db") as store:
            edits(store, args.users, args.episodes)
        with Store(Path(tmp) / "market.db") as store:
            market_day(store, args.signals, args.symbols, args.users)
        with Store(Path(tmp) / "bursts.db") as store:
            bursts(store, args.users, args.symbols, args.uncapped)


if __name__ == "__main__":
    main()
