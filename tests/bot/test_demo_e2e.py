"""``arbwatch demo`` with both platforms configured (fakes on 127.0.0.1): one process, one signal,
delivered to a Telegram user and a Discord user; then a clean, ordered shutdown. Without
``--database`` the demo keeps to a temporary database: the subscribers in DATABASE_PATH get none of
its simulated prices.

The demo runs the real command line in a worker thread (its own event loop, as in production);
the fakes serve from the test's loop. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from bot.app import now_ms
from bot.store import Platform, Store
from detector.signals import SignalStrength
from tests.bot.fakes.fake_discord import DiscordMessage, FakeDiscord
from tests.bot.fakes.fake_telegram import FakeTelegram, SentMessage

TELEGRAM_TOKEN = "123456:SECRET-demo-token"
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.SECRET-demo-discord-token-0123456789"
TELEGRAM_CHAT, DISCORD_USER = 5001, 430_000_000_000_000_001
DEMO_S = 15.0  # the demo's arbitrage window opens 4 s in
WAIT_S = 60.0


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TELEGRAM_TOKEN) as server:
        yield server


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(DISCORD_TOKEN) as server:
        yield server


def telegram_alert(message: SentMessage) -> bool:
    return message.method == "sendMessage" and "arbitrage</b>" in (message.text or "")


def discord_alert(message: DiscordMessage) -> bool:
    return message.kind == "channel" and any(
        "arbitrage" in (e.get("title") or "") for e in message.embeds
    )


def write_env(tmp_path: Path, telegram: FakeTelegram, discord_fake: FakeDiscord) -> Path:
    env = tmp_path / ".env"
    env.write_text(
        "\n".join(
            (
                "SYMBOLS=BTCUSDT,ETHUSDT",
                f"DATABASE_PATH={tmp_path / 'arbwatch.db'}",
                f"TELEGRAM_BOT_TOKEN={TELEGRAM_TOKEN}",
                f"TELEGRAM_API_URL={telegram.base_url}",
                f"DISCORD_BOT_TOKEN={DISCORD_TOKEN}",
                f"DISCORD_API_URL={discord_fake.api_url}",
                f"DISCORD_GATEWAY_URL={discord_fake.gateway_url}",
            )
        )
        + "\n"
    )
    return env


@contextlib.asynccontextmanager
async def demo_process(
    env: Path, database: Path, *options: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``arbwatch demo`` as a process of its own (stderr piped); killed if it outlives the test,
    so that a failed wait never leaves a demo running behind it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "demo",
        "--env-file",
        str(env),
        "--database",
        str(database),
        *options,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def add_subscribers(database: Path) -> None:
    """Two users who subscribed earlier (subscriptions live in the database across restarts)."""
    with Store(database) as store:
        for platform, chat in (
            (Platform.TELEGRAM, str(TELEGRAM_CHAT)),
            (Platform.DISCORD, str(DISCORD_USER)),
        ):
            user = store.register(platform, chat, chat, "trader", now_ms())
            store.subscribe(user.id, "ALL", 0.1, SignalStrength.STRONG, now_ms(), limit=50)


async def test_demo_delivers_the_same_signal_on_telegram_and_discord(
    tmp_path: Path, telegram: FakeTelegram, discord_fake: FakeDiscord
) -> None:
    database = tmp_path / "arbwatch.db"
    env = write_env(tmp_path, telegram, discord_fake)
    add_subscribers(database)
    async with demo_process(env, database, "--duration", str(DEMO_S)) as demo:
        on_telegram = await telegram.wait_for(telegram_alert, WAIT_S)
        on_discord = await discord_fake.wait_for(discord_alert, WAIT_S)
        async with asyncio.timeout(WAIT_S):
            _, err = await demo.communicate()
        assert demo.returncode == 0, err.decode()[-3000:]  # ran its duration, shut down cleanly

    assert on_telegram.chat_id == TELEGRAM_CHAT
    assert on_discord.channel_id == str(discord_fake.dm_channels[DISCORD_USER])
    symbol = "BTCUSDT"
    assert symbol in (on_telegram.text or "")
    assert on_discord.embeds[0]["title"].startswith(f"💱 {symbol} arbitrage")
    net = {f["name"]: f["value"] for f in on_discord.embeds[0]["fields"]}["Net after fees"]
    assert f"Net <b>{net}</b>" in (on_telegram.text or "")
    with Store(database) as store:
        rows = store.db.rows(
            "SELECT u.platform, d.signal, d.status, d.message_id FROM deliveries d"
            " JOIN users u ON u.id = d.user JOIN signals s ON s.id = d.signal"
            " WHERE s.type = 'arbitrage' ORDER BY d.id"
        )
        leases = store.db.rows("SELECT name FROM leases")
    first = {r["platform"]: r for r in reversed(rows)}  # each platform's first arbitrage row
    assert first["telegram"]["signal"] == first["discord"]["signal"]  # the same signal
    assert first["discord"]["message_id"] == f"{on_discord.channel_id}:{on_discord.id}"
    assert all(r["status"] == "sent" for r in rows)  # flushed before the shutdown finished
    assert leases == []  # every lease released: the next start takes over at once
    assert discord_fake.rejected == [] and telegram.rejected == []


async def test_sigterm_shuts_the_whole_process_down_in_order(
    tmp_path: Path, telegram: FakeTelegram, discord_fake: FakeDiscord
) -> None:
    database = tmp_path / "arbwatch.db"
    env = write_env(tmp_path, telegram, discord_fake)
    add_subscribers(database)
    async with demo_process(env, database) as process:
        await telegram.wait_for(telegram_alert, WAIT_S)
        await discord_fake.wait_for(discord_alert, WAIT_S)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT_S):
            _, err = await process.communicate()
    stderr = err.decode()
    assert process.returncode == 0, stderr
    assert "telegram connected" in stderr and "discord connected" in stderr
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM leases").fetchone() == (0,)
        statuses = dict(conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status"))
    assert statuses.get("sent", 0) >= 2 and "failed" not in statuses
    assert not discord_fake.rejected and not telegram.rejected


async def test_after_kill_9_a_restart_starts_at_once_and_delivers(
    tmp_path: Path, telegram: FakeTelegram, discord_fake: FakeDiscord
) -> None:
    """No TTL to wait out: the kernel frees the lock, the new process takes the outboxes."""
    database = tmp_path / "arbwatch.db"
    env = write_env(tmp_path, telegram, discord_fake)
    add_subscribers(database)

    async with demo_process(env, database) as first:
        await telegram.wait_for(telegram_alert, WAIT_S)
        first.kill()  # SIGKILL: no shutdown, no flush, no lease released
        await first.wait()
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM leases").fetchone()[0] >= 1  # left behind
        assert conn.execute("SELECT count(*) FROM subscriptions").fetchone() == (2,)
    seen = len(telegram.sent)

    async with demo_process(env, database) as second:
        # A new alert arrives from the restarted process: it started, and its outbox sends.
        await telegram.wait_for(telegram_alert, WAIT_S, since=seen)
        second.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT_S):
            _, err = await second.communicate()
    stderr = err.decode()
    assert second.returncode == 0, stderr
    assert "another arbwatch" not in stderr
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM leases").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM subscriptions").fetchone() == (2,)


async def test_without_database_the_demo_sends_nothing_to_the_real_subscribers(
    tmp_path: Path, telegram: FakeTelegram, discord_fake: FakeDiscord
) -> None:
    """Tokens set, no --database: the bots run, on a temporary database nobody subscribed in."""
    database = tmp_path / "arbwatch.db"  # DATABASE_PATH: the production file
    env = write_env(tmp_path, telegram, discord_fake)
    add_subscribers(database)
    before = database.read_bytes()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot.cli", "demo", "--duration", "8", "--env-file", str(env)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(WAIT_S):  # the arbitrage window opens 4 s in
        _, err = await process.communicate()
    stderr = err.decode()
    assert process.returncode == 0, stderr
    assert "telegram connected" in stderr and "discord connected" in stderr
    line = next(ln for ln in stderr.splitlines() if "temporary database" in ln)
    assert line == (
        "arbwatch demo: chat tokens are set, but this is a temporary database: nobody"
        f" subscribed in {database} gets these simulated prices (--database PATH to choose)"
    )
    assert re.search(r"\nran \d+ s, \d+ events\n  signals: arbitrage ", stderr)
    assert not [m for m in telegram.sent if telegram_alert(m)]
    assert not [m for m in discord_fake.messages if discord_alert(m)]
    assert database.read_bytes() == before  # not a row written, no lock taken
    assert not database.with_name("arbwatch.db.lock").exists()
