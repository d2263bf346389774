"""``kill -9`` during bursts: what a crash costs (``make chaos``).

Run from the repository root: ``.venv/bin/python scripts/chaos.py [--kills 20] [--users 20]``.

Users subscribed on ``ALL`` get the demo's alerts from the real ``arbwatch demo`` process,
through the project's fake Bot API on 127.0.0.1 (30 msg/s overall, 1 msg/s per chat). The
process is killed with SIGKILL at a random moment of its burst and restarted at once on the same
database, ``--kills`` times; the last run ends with SIGTERM. After every kill the script checks
the file (``PRAGMA integrity_check``) and the subscriptions; at the end it counts:

- restarts refused, and how long each restart took until Telegram was connected;
- alerts that expired undelivered while a process was up (lost: not those whose signal ended
  while no process ran, which nothing could have delivered alive);
- alerts the platform accepted whose record a kill cut off (so sent twice, or marked expired
  though delivered); the bound is the sends in flight, 32 per kill.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import now_ms
from bot.store import ALL_SYMBOLS, Platform, Store
from detector.signals import SignalStrength
from tests.bot.fakes.fake_telegram import FakeTelegram

TOKEN = "123456:chaos-token"
IN_FLIGHT = 32  # the outbox's max_in_flight: the most sends one kill can cut off


async def start_demo(env: Path, database: Path) -> tuple[asyncio.subprocess.Process, float]:
    """Start ``arbwatch demo`` on ``database``; returns it and the seconds until Telegram
    connected. (The demo keeps a temporary database of its own unless told one.)"""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "demo",
        "--env-file",
        str(env),
        "--database",
        str(database),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    async with asyncio.timeout(60):
        while line := (await process.stderr.readline()).decode():
            if "another arbwatch" in line:
                raise RuntimeError(f"the restart was refused: {line.strip()}")
            if "telegram connected" in line:
                break
    asyncio.create_task(drain(process))  # noqa: RUF006 - ends with the process
    return process, time.monotonic() - started


async def drain(process: asyncio.subprocess.Process) -> None:
    assert process.stderr is not None
    while await process.stderr.readline():
        pass


def check(database: Path, users: int) -> None:
    with closing(sqlite3.connect(database)) as conn:
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
        (subscriptions,) = conn.execute("SELECT count(*) FROM subscriptions").fetchone()
    if integrity != "ok" or subscriptions != users:
        raise RuntimeError(f"after a kill: integrity {integrity}, {subscriptions} subscriptions")


async def run(kills: int, users: int, seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "chaos.db"
        async with FakeTelegram(TOKEN, global_per_s=30, per_chat_per_s=1) as fake:
            env = Path(tmp) / ".env"
            env.write_text(
                f"SYMBOLS=BTCUSDT,ETHUSDT\n"
                f"TELEGRAM_BOT_TOKEN={TOKEN}\nTELEGRAM_API_URL={fake.base_url}\n"
            )
            with Store(database) as store:
                for n in range(users):
                    chat = str(7000 + n)
                    user = store.register(Platform.TELEGRAM, chat, chat, "u", now_ms())
                    store.subscribe(
                        user.id, ALL_SYMBOLS, 0.1, SignalStrength.WEAK, now_ms(), limit=50
                    )
            restarts: list[float] = []
            downs: list[tuple[int, int]] = []  # (killed, up again), ms
            killed_at = 0
            for n in range(kills + 1):
                process, took = await start_demo(env, database)
                if n:
                    downs.append((killed_at, now_ms()))
                restarts.append(took)
                if n == kills:  # the last run ends in order
                    await asyncio.sleep(rng.uniform(15.0, 20.0))
                    process.send_signal(signal.SIGTERM)
                    await process.wait()
                    break
                await asyncio.sleep(rng.uniform(3.0, 12.0))  # somewhere in the burst
                killed_at = now_ms()
                process.kill()
                await process.wait()
                check(database, users)
            report(database, fake, restarts[1:], downs, kills, users)


def report(
    database: Path,
    fake: FakeTelegram,
    restarts: list[float],
    downs: list[tuple[int, int]],
    kills: int,
    users: int,
) -> None:
    with closing(sqlite3.connect(database)) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status"))
        expired = conn.execute(
            "SELECT s.expires_at FROM deliveries d JOIN signals s ON s.id = d.signal"
            " WHERE d.status = 'expired'"
        ).fetchall()
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
        (subscriptions,) = conn.execute("SELECT count(*) FROM subscriptions").fetchone()
    # Lost: expired while a process was up (a second after a restart, the outbox sends again);
    # an alert whose signal ended while no process ran could not have been delivered alive.
    lost = sum(
        not any(down <= expires <= up + 1_000 for down, up in downs) for (expires,) in expired
    )
    # Every alert the fake accepted is either a delivery recorded as sent, or one whose record a
    # kill cut off (sent again after the restart, or left to expire): the difference.
    alerts = sum(m.method == "sendMessage" and " ago" in (m.text or "") for m in fake.sent)
    unrecorded = alerts - statuses.get("sent", 0)
    print(f"{kills} x kill -9 during bursts, {users} users on ALL, restarted at once each time")
    print(
        f"restarts refused: 0; until Telegram connected: median {statistics.median(restarts):.1f}"
        f" s, max {max(restarts):.1f} s"
    )
    print(
        f"integrity after every kill and at the end: {integrity}; subscriptions {subscriptions}"
        f" of {users}"
    )
    print(f"deliveries: {dict(sorted(statuses.items()))}")
    print(f"alerts expired undelivered while arbwatch was up (lost): {lost}")
    print(
        f"alerts the platform accepted but no record kept (so sent twice, or marked expired):"
        f" {unrecorded} (bound: {IN_FLIGHT} per kill, {IN_FLIGHT * kills})"
    )
    print(f"429s from the fake: {fake.rate_limited}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.kills, args.users, args.seed))


if __name__ == "__main__":
    main()
