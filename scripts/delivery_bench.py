"""Delivery at audience scale: N users on ``/subscribe ALL``, the demo's bursts, 30 msg/s.

Run from the repository root: ``.venv/bin/python scripts/delivery_bench.py --users 2000``.

The real python-telegram-bot, store, router and outbox deliver to the project's fake Bot API,
which enforces Telegram's limits (30 msg/s overall, 1 msg/s per chat) and answers 429 past
them. The signals are the demo's: funding at 2 s (alive 600 s), arbitrage at 4 s (30 s) and
its regrowth at 6 s, a spread anomaly at 9 s, a volume spike at 11 s, a breakout at 14.5 s (30 s
each). While they go out, ``--askers`` users send ``/list`` at random moments. Printed: per
signal, the deliveries that arrived alive, late or not at all (expired, or superseded by a
newer alert of the same episode), and the alive ones against what 30 msg/s allows in the
signal's lifetime; the replies' latency; the 429s; the outbox's pass time. A 600 s funding
alert is still being delivered when the run ends: it yields the rate to shorter-lived ones.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from bot.app import now_ms
from bot.commands import CommandHandler
from bot.config import Settings
from bot.outbox import Outbox
from bot.platforms import TelegramFrontend
from bot.routing import SEND_RATES, Router
from bot.store import ALL_SYMBOLS, Platform, Store, news_key
from detector.signals import Signal, SignalStrength, SignalType
from detector.simulator.instruments import SUPPORTED_SYMBOLS
from tests.bot.factories import arbitrage, other
from tests.bot.fakes.fake_telegram import FakeTelegram

TOKEN = "123456:bench-token"
RATE = 30.0  # Telegram's overall limit, msg/s
FUNDING_TTL_MS = 600_000


def burst(start_ms: int) -> list[tuple[float, Signal]]:
    """The demo's signals, at their offsets in seconds (all on BTCUSDT, strong: they notify)."""
    strong = SignalStrength.STRONG

    def at(offset_s: float, signal: Signal, ttl_ms: int = 30_000) -> tuple[float, Signal]:
        ts = start_ms + int(offset_s * 1000)
        return offset_s, replace(signal, timestamp=ts, expires_at=ts + ttl_ms)

    opened = start_ms + 4_000
    funding = other(SignalType.FUNDING_RATE_DIVERGENCE, SignalStrength.MODERATE)
    return [
        at(2.0, funding, FUNDING_TTL_MS),
        at(4.0, arbitrage(0.5, opened_ms=opened, timestamp=opened)),
        at(6.0, arbitrage(0.6, opened_ms=opened, timestamp=opened, reason="regrowth")),
        at(9.0, other(SignalType.SPREAD_ANOMALY, strong, start_ms=start_ms + 9_000)),
        at(11.0, other(SignalType.VOLUME_SPIKE, strong, start_ms=start_ms + 11_000)),
        at(14.5, other(SignalType.MOMENTUM_BREAKOUT, strong, start_ms=start_ms + 14_500)),
    ]


async def run(users: int, askers: int, seed: int, uncapped: bool) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeTelegram(TOKEN, global_per_s=RATE, per_chat_per_s=1.0) as fake:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_path=Path(tmp) / "bench.db",
                telegram_bot_token=SecretStr(TOKEN),
                telegram_api_url=fake.base_url,
            )
            store = Store(settings.database_path)
            chats = [10_000 + n for n in range(users)]
            for chat in chats:
                user = store.register(Platform.TELEGRAM, str(chat), str(chat), "u", now_ms())
                store.subscribe(user.id, ALL_SYMBOLS, 0.1, SignalStrength.WEAK, now_ms(), limit=50)
            router = Router(store, now_ms(), rates=None if uncapped else SEND_RATES)
            handler = CommandHandler(store, settings, SUPPORTED_SYMBOLS)  # what /list names
            frontend = TelegramFrontend(settings, handler, poll_timeout_s=0.5)
            outbox = Outbox(store, frontend, now_ms, owner="bench")
            frontend.pacer, frontend.after_command = outbox.pacer, outbox.wake
            passes: list[float] = []
            pump = outbox.pump

            async def timed_pump() -> object:
                started = time.perf_counter()
                result = await pump()
                passes.append((time.perf_counter() - started) * 1000)
                return result

            outbox.pump = timed_pump  # type: ignore[method-assign]
            await frontend.start()
            task = asyncio.create_task(outbox.run())
            start = now_ms()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            plan = burst(start)
            asked: dict[int, float] = {}
            ask_at = sorted(rng.uniform(3.0, 20.0) for _ in range(askers))
            ask_chats = rng.sample(chats, askers)
            asks = [(t, "ask", c) for t, c in zip(ask_at, ask_chats, strict=True)]
            events = sorted([(t, "signal", s) for t, s in plan] + asks, key=lambda e: e[0])
            for offset, kind, what in events:
                await asyncio.sleep(max(0.0, t0 + offset - loop.time()))
                if kind == "signal":
                    assert isinstance(what, Signal)
                    await asyncio.to_thread(router.dispatch, what, now_ms())
                    outbox.wake()
                else:
                    assert isinstance(what, int)
                    asked[what] = time.monotonic()
                    fake.send_user_message(what, "/list")
            # Until the last 30 s signal has expired, and a little more.
            await asyncio.sleep(max(0.0, t0 + 14.5 + 31.0 - loop.time()))
            outbox.stop()
            await task
            await frontend.stop()
            report(store, plan, fake, asked, passes, users)
            store.close()


def report(
    store: Store,
    plan: list[tuple[float, Signal]],
    fake: FakeTelegram,
    asked: dict[int, float],
    passes: list[float],
    users: int,
) -> None:
    print(f"{users} users on ALL, {RATE:g} msg/s overall, 1 msg/s per chat")
    print(
        f"{'signal':<28}{'queued':>7}{'unqueued':>9}{'alive':>7}{'late':>6}{'expired':>8}"
        f"{'superseded':>11}{'alive/capacity':>15}"
    )
    for _, signal in plan:
        rows = store.db.rows(
            "SELECT d.status, d.sent_ms, d.last_error FROM deliveries d"
            " JOIN signals s ON s.id = d.signal WHERE s.dedup_key = ?",
            (news_key(signal),),
        )
        unqueued = store.db.scalar(
            "SELECT unqueued FROM signals WHERE dedup_key = ?", (news_key(signal),)
        )
        alive = sum(r["status"] == "sent" and r["sent_ms"] <= signal.expires_at for r in rows)
        late = sum(r["status"] == "sent" and r["sent_ms"] > signal.expires_at for r in rows)
        expired = sum(r["status"] == "expired" for r in rows)
        superseded = sum((r["last_error"] or "").startswith("superseded") for r in rows)
        lifetime_s = (signal.expires_at - signal.timestamp) / 1000
        # What 30 msg/s allows in its lifetime, for the recipients it still had to reach
        # (a superseded alert was replaced by a newer one about the same episode).
        # Those it was routed to: queued or left out as more than the rate could send.
        capacity = min(len(rows) + unqueued - superseded, RATE * lifetime_s)
        name = f"{signal.type.value} {signal.details.get('reason', '')}".strip()
        ratio = f"{alive / capacity:.0%}" if capacity else "-"
        print(
            f"{name:<28}{len(rows):>7}{unqueued:>9}{alive:>7}{late:>6}{expired:>8}"
            f"{superseded:>11}{ratio:>15}"
        )
    latencies = []
    for chat, at in asked.items():
        replies = [
            m for m in fake.sent if m.chat_id == chat and "Your subscriptions" in (m.text or "")
        ]
        latencies.append(replies[0].time - at if replies else float("inf"))
    lost = sum(lat == float("inf") for lat in latencies)
    got = sorted(lat for lat in latencies if lat != float("inf"))
    if got:
        p99 = got[min(len(got) - 1, int(len(got) * 0.99))]
        print(
            f"replies: {len(got)}/{len(latencies)} arrived, lost {lost}, latency p50"
            f" {statistics.median(got):.2f} s, p99 {p99:.2f} s, max {got[-1]:.2f} s"
        )
    sends = sorted(m.time for m in fake.sent if m.method == "sendMessage")
    if len(sends) > 1:
        rate = (len(sends) - 1) / (sends[-1] - sends[0])
        print(f"messages: {len(sends)}, {rate:.1f} msg/s from the first to the last")
    print(f"429s from the fake: {fake.rate_limited}")
    print(
        f"outbox passes: {len(passes)}, median {statistics.median(passes):.1f} ms,"
        f" p99 {sorted(passes)[int(len(passes) * 0.99)]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--askers", type=int, default=16, help="users who send /list")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--uncapped",
        action="store_true",
        help="queue every recipient, even past what the rate sends before the signal expires",
    )
    args = parser.parse_args()
    asyncio.run(run(args.users, args.askers, args.seed, args.uncapped))


if __name__ == "__main__":
    main()
