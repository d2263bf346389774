"""The outbox against a scripted in-process sender, on an injected clock (no network, no sleeps)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.errors import Blocked, FloodLimited, PermanentSendError, SendError, TransientSendError
from bot.outbox import Outbox, Verdict, judge
from bot.routing import Router
from bot.store import DueDelivery, DueEdit, Platform, Store
from detector.signals import Signal, SignalStrength
from tests.bot.factories import T0, TTL_MS, arbitrage, closed


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class FakeSender:
    """Records each send; ``script[chat_id]`` lists exceptions to raise before succeeding."""

    platform = Platform.TELEGRAM

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sent: list[tuple[int, str, int]] = []  # (delivery id, chat id, time)
        self.calls = 0
        self.script: dict[str, list[Exception]] = {}
        self.arrived = asyncio.Event()
        self.edited: list[tuple[int, str, str]] = []  # (delivery id, message id, peak)
        self.edit_script: list[Exception] = []

    async def edit(self, edit: DueEdit) -> None:
        if self.edit_script:
            raise self.edit_script.pop(0)
        self.edited.append((edit.delivery_id, edit.message_id, f"{edit.peak_net_pct:.2f}"))

    async def send(self, delivery: DueDelivery) -> str | None:
        self.calls += 1
        queued = self.script.get(delivery.chat_id)
        if queued:
            raise queued.pop(0)
        self.sent.append((delivery.id, delivery.chat_id, self.clock()))
        self.arrived.set()
        return f"m{delivery.id}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sender(clock: Clock) -> FakeSender:
    return FakeSender(clock)


def make_outbox(store: Store, sender: FakeSender, clock: Clock, **options: Any) -> Outbox:
    return Outbox(store, sender, clock, owner="test-1", **options)


def add_users(store: Store, count: int, *, group: bool = False, threshold: float = 0.1) -> None:
    for n in range(count):
        chat = f"-{100 + n}" if group else str(100 + n)
        user = store.register(Platform.TELEGRAM, chat, chat, f"user {n}", T0, is_group=group)
        store.subscribe(user.id, "BTCUSDT", threshold, SignalStrength.WEAK, T0, limit=50)


def episode(n: int, net: float = 0.25) -> Signal:
    """A distinct arbitrage episode (so one user may be queued several alerts)."""
    return arbitrage(net, opened_ms=T0 + n)


def statuses(store: Store) -> list[tuple[str, str | None, int]]:
    return [
        (r["status"], r["last_error"], r["attempts"])
        for r in store.db.rows("SELECT status, last_error, attempts FROM deliveries ORDER BY id")
    ]


async def test_every_delivery_is_sent_once_notifying_before_silent(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    router = Router(store, T0)
    weak = router.dispatch(episode(1, net=0.15), T0)
    strong = router.dispatch(episode(2, net=0.5), T0)
    assert weak.silent and not strong.silent
    outbox = make_outbox(store, sender, clock)
    first = await outbox.pump()
    assert first.sent == 1
    clock.now += 1_100
    assert (await outbox.pump()).sent == 1
    assert (await outbox.pump()).sent == 0
    ids = [r["id"] for r in store.db.rows("SELECT id FROM deliveries ORDER BY id")]
    assert [d for d, _, _ in sender.sent] == [ids[1], ids[0]]  # the strong alert first
    assert statuses(store) == [("sent", None, 1), ("sent", None, 1)]
    rows = store.db.rows("SELECT message_id FROM deliveries ORDER BY id")
    assert [r["message_id"] for r in rows] == [f"m{ids[0]}", f"m{ids[1]}"]


async def test_a_429_pauses_the_chat_then_the_alert_is_sent(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 2)
    Router(store, T0).dispatch(episode(1), T0)
    sender.script["100"] = [FloodLimited(3, chat_id="100")]
    outbox = make_outbox(store, sender, clock)
    result = await outbox.pump()
    assert (result.sent, result.rate_limited) == (1, 1)  # the other chat is not held up
    assert result.wake_ms == T0 + 3_000
    clock.now += 2_000
    assert (await outbox.pump()).sent == 0  # still paused: nothing is sent early
    clock.now += 1_000
    assert (await outbox.pump()).sent == 1
    assert [chat for _, chat, _ in sender.sent] == ["101", "100"]
    # A 429 is not an attempt: the row is untouched until it is sent.
    assert statuses(store) == [("sent", None, 1), ("sent", None, 1)]


async def test_a_429_without_a_chat_pauses_every_chat(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 2)
    Router(store, T0).dispatch(episode(1), T0)
    sender.script["100"] = [FloodLimited(2)]
    outbox = make_outbox(store, sender, clock)
    await outbox.pump()
    clock.now += 1_500
    Router(store, clock.now).dispatch(episode(2), clock.now)
    assert (await outbox.pump()).sent == 0
    clock.now = T0 + 2_000
    assert (await outbox.pump()).sent == 2


async def test_a_403_deactivates_the_user_and_skips_their_alerts(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    router = Router(store, T0)
    router.dispatch(episode(1), T0)
    router.dispatch(episode(2), T0)
    sender.script["100"] = [Blocked("Forbidden: bot was blocked by the user")]
    outbox = make_outbox(store, sender, clock)
    assert (await outbox.pump()).blocked == 1
    user = store.find_user(Platform.TELEGRAM, "100")
    assert user is not None and not user.active and user.blocked_at == T0
    assert statuses(store) == [("skipped", "Forbidden: bot was blocked by the user", 0)] * 2
    assert router.dispatch(episode(3), T0 + 10).recipients == ()  # no more alerts to them
    clock.now += 5_000
    assert (await outbox.pump()).sent == 0
    assert sender.sent == [] and sender.calls == 1


async def test_transient_errors_back_off_then_fail_with_the_reason(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    Router(store, T0).dispatch(episode(1), T0)
    sender.script["100"] = [TransientSendError("bad gateway")] * 3
    outbox = make_outbox(store, sender, clock, max_attempts=3, backoff_ms=2_000)
    waits = []
    for _ in range(3):
        result = await outbox.pump()
        if result.wake_ms is not None:
            waits.append(result.wake_ms - clock.now)
            clock.now = result.wake_ms
    assert waits == [2_000, 4_000]  # exponential backoff
    assert statuses(store) == [("failed", "gave up after 3 attempts: bad gateway", 2)]
    assert sender.sent == []


async def test_a_transient_error_then_success(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    Router(store, T0).dispatch(episode(1), T0)
    sender.script["100"] = [TransientSendError("timed out")]
    outbox = make_outbox(store, sender, clock, backoff_ms=2_000)
    assert (await outbox.pump()).retried == 1
    clock.now += 2_000
    assert (await outbox.pump()).sent == 1
    assert statuses(store) == [("sent", "timed out", 2)]


async def test_a_permanent_error_fails_at_once_with_the_reason(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    Router(store, T0).dispatch(episode(1), T0)
    sender.script["100"] = [PermanentSendError("bad request: can't parse entities")]
    outbox = make_outbox(store, sender, clock)
    assert (await outbox.pump()).failed == 1
    assert statuses(store) == [("failed", "bad request: can't parse entities", 0)]


async def test_a_sender_bug_is_retried_and_never_lost(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    Router(store, T0).dispatch(episode(1), T0)
    sender.script["100"] = [RuntimeError("oops")]
    outbox = make_outbox(store, sender, clock, max_attempts=1)
    await outbox.pump()
    reason = "gave up after 1 attempts: unexpected error: RuntimeError('oops')"
    assert statuses(store) == [("failed", reason, 0)]


async def test_an_alert_whose_signal_expired_is_finished_expired(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    Router(store, T0).dispatch(episode(1), T0)
    clock.now = T0 + TTL_MS
    assert (await make_outbox(store, sender, clock).pump()).expired == 1
    assert statuses(store) == [("expired", "signal expired before delivery", 0)]
    assert sender.calls == 0


async def test_a_second_outbox_on_the_same_file_does_not_send(
    tmp_path: Path, store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 3)
    Router(store, T0).dispatch(episode(1), T0)
    other_sender = FakeSender(clock)
    with Store(tmp_path / "arbwatch.db") as other_store:
        first = make_outbox(store, sender, clock)
        second = Outbox(other_store, other_sender, clock, owner="test-2")
        assert (await first.pump()).sent == 3
        Router(store, T0).dispatch(episode(2), T0)
        clock.now += 1_100
        assert not (await second.pump()).leased
        assert other_sender.calls == 0
        assert (await first.pump()).sent == 3
        # The holder stops (releases the lease): the other takes over.
        await first.release()
        Router(store, T0).dispatch(episode(3), clock.now)
        clock.now += 1_100
        assert (await second.pump()).sent == 3
        assert not (await first.pump()).leased
    assert len(sender.sent) + len(other_sender.sent) == 9


async def test_a_crashed_holder_lease_expires(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    Router(store, T0).dispatch(episode(1), T0)
    assert store.leases.acquire("outbox:telegram", "crashed", T0, 10_000)
    outbox = make_outbox(store, sender, clock)
    assert not (await outbox.pump()).leased
    clock.now += 10_000
    assert (await outbox.pump()).sent == 1


async def test_a_private_chat_gets_at_most_one_message_per_second(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    router = Router(store, T0)
    for n in range(3):
        router.dispatch(episode(n), T0)
    outbox = make_outbox(store, sender, clock)
    assert (await outbox.pump()).sent == 1
    clock.now += 500
    result = await outbox.pump()
    assert result.sent == 0 and result.wake_ms == T0 + 1_100
    clock.now = result.wake_ms
    assert (await outbox.pump()).sent == 1
    clock.now += 1_100
    assert (await outbox.pump()).sent == 1
    assert [t - T0 for _, _, t in sender.sent] == [0, 1_100, 2_200]


async def test_overall_rate_and_concurrency_are_bounded(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 70)
    Router(store, T0).dispatch(episode(1), T0)
    outbox = make_outbox(store, sender, clock, max_in_flight=100)
    first = await outbox.pump()
    # 30 per (1 s + 1 %), one of them kept for command replies.
    assert first.sent == 29 and first.wake_ms == T0 + 1_010
    clock.now = T0 + 1_010
    assert (await outbox.pump()).sent == 29
    clock.now += 1_010
    assert (await outbox.pump()).sent == 12
    assert len({d for d, _, _ in sender.sent}) == 70


async def test_run_wakes_on_new_deliveries_and_releases_the_lease_on_stop(
    store: Store, clock: Clock
) -> None:
    sender = FakeSender(clock)
    add_users(store, 1)
    outbox = make_outbox(store, sender, clock, idle_ms=60_000)
    task = asyncio.create_task(outbox.run())
    Router(store, T0).dispatch(episode(1), T0)
    outbox.wake()
    async with asyncio.timeout(5):
        await sender.arrived.wait()
    outbox.stop()
    async with asyncio.timeout(5):
        await task
    assert statuses(store) == [("sent", None, 1)]
    assert store.leases.acquire("outbox:telegram", "someone else", clock.now, 1_000)


async def test_windows_count_from_when_a_slow_send_completed(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    """The platform saw a send somewhere between start and completion: assume the latest."""

    class SlowSender(FakeSender):
        async def send(self, delivery: DueDelivery) -> str | None:
            self.clock.now = max(self.clock.now, T0 + 300)  # 300 ms of latency
            return await super().send(delivery)

    slow = SlowSender(clock)
    add_users(store, 1)
    router = Router(store, T0)
    router.dispatch(episode(1), T0)
    router.dispatch(episode(2), T0)
    outbox = make_outbox(store, slow, clock)
    assert (await outbox.pump()).sent == 1
    result = await outbox.pump()
    assert result.sent == 0 and result.wake_ms == T0 + 300 + 1_100


async def test_a_new_holder_respects_what_the_previous_one_just_sent(
    tmp_path: Path, store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    router = Router(store, T0)
    router.dispatch(episode(1), T0)
    router.dispatch(episode(2), T0)
    first = make_outbox(store, sender, clock)
    assert (await first.pump()).sent == 1
    await first.release()  # a restart
    clock.now += 500
    with Store(tmp_path / "arbwatch.db") as again:
        second = Outbox(again, sender, clock, owner="test-2")
        result = await second.pump()
        assert result.sent == 0 and result.wake_ms == T0 + 1_100
        clock.now = T0 + 1_100
        assert (await second.pump()).sent == 1


async def test_flush_delivers_what_is_due_and_leaves_later_retries_pending(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 3)
    Router(store, T0).dispatch(episode(1), T0)
    sender.script["102"] = [TransientSendError("502 Bad Gateway")]
    outbox = make_outbox(store, sender, clock)
    flushed = await outbox.flush(timeout_s=5.0)
    # Two sent; the failed one is rescheduled 2 s later (on the injected clock: never due
    # during the flush) and stays pending for the next start, its attempt counted.
    assert (flushed.sent, flushed.retried) == (2, 1)
    assert sorted(s for s, _, _ in statuses(store)) == ["pending", "sent", "sent"]
    assert not store.db.rows("SELECT * FROM leases WHERE name = 'outbox:telegram'")


async def test_flush_without_the_lease_sends_nothing(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    Router(store, T0).dispatch(episode(1), T0)
    assert store.leases.acquire("outbox:telegram", "the other one", T0, 60_000)
    flushed = await make_outbox(store, sender, clock).flush(timeout_s=5.0)
    assert (flushed.sent, flushed.leased) == (0, True) and sender.sent == []


async def test_each_platform_has_its_own_lease_and_rows(store: Store, clock: Clock) -> None:
    for platform in Platform:
        user = store.register(platform, "100", "100", "u", T0)
        store.subscribe(user.id, "BTCUSDT", 0.1, SignalStrength.WEAK, T0, limit=50)
    Router(store, T0).dispatch(episode(1), T0)
    telegram, discord = FakeSender(clock), FakeSender(clock)
    discord.platform = Platform.DISCORD
    assert (await make_outbox(store, telegram, clock).pump()).sent == 1
    assert (await make_outbox(store, discord, clock).pump()).sent == 1
    leases = {r["name"] for r in store.db.rows("SELECT name FROM leases")}
    assert leases == {"outbox:telegram", "outbox:discord"}


async def test_alerts_routed_to_one_discord_channel_are_paced_as_that_channel(
    store: Store, clock: Clock
) -> None:
    for n in range(2):
        user = store.register(Platform.DISCORD, f"{100 + n}", f"{100 + n}", "u", T0)
        store.subscribe(user.id, "BTCUSDT", 0.1, SignalStrength.WEAK, T0, limit=50)
        store.set_channel(user.id, "555", T0)
    Router(store, T0).dispatch(episode(1), T0)
    sender = FakeSender(clock)
    sender.platform = Platform.DISCORD
    outbox = make_outbox(store, sender, clock)
    due = store.deliveries.due(T0, platform=Platform.DISCORD)
    assert {d.destination for d in due} == {"channel:555"} and all(d.shared for d in due)
    assert (await outbox.pump()).sent == 1  # one send per destination per pass
    assert (await outbox.pump()).sent == 1  # a channel takes more than one a second


async def test_a_delivered_alert_is_edited_once_its_opportunity_closed(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 2)
    signal = episode(1, net=0.25)
    Router(store, T0).dispatch(signal, T0)
    outbox = make_outbox(store, sender, clock)
    assert (await outbox.pump()).sent == 2
    clock.now += 1_100
    assert (await outbox.pump()).edited == 0  # still open: nothing to edit
    store.history.record_opportunity(closed(signal, duration_ms=4_200, peak_net=0.31))
    result = await outbox.pump()
    assert result.edited == 2
    ids = [d for d, _, _ in sender.sent]
    assert sorted(sender.edited) == sorted((d, f"m{d}", "0.31") for d in ids)
    clock.now += 1_100
    assert (await outbox.pump()).edited == 0  # each message is edited once
    rows = store.db.rows("SELECT status, attempts, last_error FROM edits")
    assert [(r["status"], r["attempts"], r["last_error"]) for r in rows] == [("sent", 1, None)] * 2


async def test_edits_retry_give_up_on_a_gone_message_and_never_deactivate(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    signal = episode(1, net=0.25)
    Router(store, T0).dispatch(signal, T0)
    outbox = make_outbox(store, sender, clock)
    await outbox.pump()
    store.history.record_opportunity(closed(signal))
    sender.edit_script = [TransientSendError("502"), Blocked("Forbidden: bot was blocked")]
    clock.now += 1_100
    assert (await outbox.pump()).retried == 1
    clock.now += 1_000
    assert (await outbox.pump()).edited == 0  # the retry waits its backoff (2 s)
    clock.now += 1_000
    assert (await outbox.pump()).failed == 1
    row = store.db.one("SELECT status, attempts, last_error FROM edits")
    assert row is not None
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert "blocked" in row["last_error"]
    user = store.find_user(Platform.TELEGRAM, "100")
    assert user is not None and user.active  # only a new alert's send decides that


async def test_new_alerts_go_before_edits_and_share_the_chat_windows(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 1)
    first = episode(1, net=0.25)
    router = Router(store, T0)
    router.dispatch(first, T0)
    outbox = make_outbox(store, sender, clock)
    await outbox.pump()
    store.history.record_opportunity(closed(first))
    router.dispatch(episode(2, net=0.3), T0)
    clock.now += 1_100
    result = await outbox.pump()
    assert (result.sent, result.edited) == (1, 0)  # one send per chat per pass: the alert
    clock.now += 1_100
    assert (await outbox.pump()).edited == 1


@pytest.mark.parametrize(
    ("outcome", "attempts", "verdict", "detail"),
    [
        ("m1", 0, Verdict.DONE, "m1"),
        (None, 4, Verdict.DONE, None),  # an edit: done, whatever came before
        (FloodLimited(3, "100"), 4, Verdict.PAUSE, "rate limited: retry after 3 s"),
        (Blocked("blocked the bot"), 0, Verdict.BLOCKED, "blocked the bot"),
        (PermanentSendError("message too long"), 0, Verdict.FAILED, "message too long"),
        (TransientSendError("502"), 3, Verdict.RETRY, "502"),
        (TransientSendError("502"), 4, Verdict.FAILED, "gave up after 5 attempts: 502"),
    ],
)
def test_each_outcome_has_one_verdict(
    outcome: str | SendError | None, attempts: int, verdict: Verdict, detail: str | None
) -> None:
    assert judge(outcome, attempts, max_attempts=5) == (verdict, detail)


async def test_each_send_is_recorded_as_soon_as_the_platform_accepts_it(
    store: Store, clock: Clock, tmp_path: Path
) -> None:
    """A crash in the middle of a pass repeats only the sends still in flight."""
    for chat in ("100", "200"):
        user = store.register(Platform.TELEGRAM, chat, chat, "u", T0)
        store.subscribe(user.id, "BTCUSDT", 0.1, SignalStrength.WEAK, T0, limit=50)
    Router(store, T0).dispatch(arbitrage(0.25), T0)
    stuck = asyncio.Event()

    class OneStuck(FakeSender):
        async def send(self, delivery: DueDelivery) -> str | None:
            if delivery.chat_id == "200":
                await stuck.wait()  # the platform never answers this one
            return await super().send(delivery)

    sender = OneStuck(clock)
    outbox = Outbox(store, sender, clock, owner="crashing")
    pass_ = asyncio.create_task(outbox.pump())
    await sender.arrived.wait()
    with Store(tmp_path / "arbwatch.db") as other:  # another connection: what a restart reads
        await until_rows(other, {"sent": 1, "pending": 1})
    pass_.cancel()  # the process dies with chat 200's send in flight
    with pytest.raises(asyncio.CancelledError):
        await pass_
    statuses = dict(
        store.db.conn.execute(
            "SELECT u.chat_id, d.status FROM deliveries d JOIN users u ON u.id = d.user"
        ).fetchall()
    )
    assert statuses == {"100": "sent", "200": "pending"}


async def until_rows(store: Store, expected: dict[str, int]) -> None:
    async with asyncio.timeout(10):
        while True:
            rows = store.db.conn.execute(
                "SELECT status, count(*) FROM deliveries GROUP BY status"
            ).fetchall()
            if dict(rows) == expected:
                return
            await asyncio.sleep(0.01)


async def test_a_pass_composes_the_digests_whose_period_ended_and_sends_them(
    store: Store, sender: FakeSender, clock: Clock
) -> None:
    add_users(store, 2)
    digest_user = store.find_user(Platform.TELEGRAM, "100")
    assert digest_user is not None
    store.set_digest(digest_user.id, 60_000, T0)
    router = Router(store, T0)
    for n in range(3):
        router.dispatch(episode(n), T0)
    outbox = make_outbox(store, sender, clock)
    first = await outbox.pump()
    assert (first.sent, first.digests) == (1, 0)  # the other user's first alert; no digest yet
    clock.now = T0 - T0 % 60_000 + 60_000  # the minute is over
    later = await outbox.pump()
    assert later.digests == 1
    digest_sends = [chat for _, chat, _ in sender.sent if chat == "100"]
    assert digest_sends == ["100"]  # one message for three alerts
    clock.now += 1
    assert (await outbox.pump()).digests == 0  # composed once a minute at most
