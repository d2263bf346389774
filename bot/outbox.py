"""The outbox loop: sends queued deliveries within the platform's limits, and records every outcome.

``Outbox.pump`` is one pass: take (or renew) the sender lease, expire alerts whose signal expired,
read the due deliveries, pick those the :class:`Pacer` admits now (notifying alerts before silent
ones), send them concurrently through a platform :class:`Sender`, and record each outcome:

- sent → ``mark_sent`` with the platform's message id;
- :class:`RateLimited` (429) → pause that chat (every chat when the error has no chat) for
  ``retry_after``; the row stays pending and untouched, so nothing is lost and no attempt counts;
- :class:`Blocked` (403) → ``Store.mark_blocked``: the user is inactive, their pending rows skipped;
- :class:`TransientSendError` (5xx, network) → ``mark_retry`` with exponential backoff, finished
  FAILED with the last error after ``max_attempts``;
- :class:`PermanentSendError` (400) → finished FAILED with the platform's reason.

After the alerts, a pass sends the closing edits that are due (:mod:`bot.edits`), in the same
windows: a delivered arbitrage alert whose opportunity closed is rewritten to say how long it
lasted and its peak. A failed edit never deactivates anyone (the message may simply be gone).

``Outbox.run`` repeats passes until stopped, sleeping until the next pacing slot, the next due
row, or :meth:`Outbox.wake` (called when new deliveries are queued). Without the lease (another
instance on the same database holds it) it sends nothing and retries the lease later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from bot.errors import Blocked, PermanentSendError, RateLimited, SendError, TransientSendError
from bot.records import DeliveryStatus, DueDelivery, DueEdit, Platform
from bot.store import Store

log = logging.getLogger(__name__)

_Job = TypeVar("_Job", DueDelivery, DueEdit)

LEASE_PREFIX = "outbox"
"""Each platform's outbox holds its own lease (``outbox:telegram``, ``outbox:discord``)."""


class Sender(Protocol):
    """A platform's way to deliver one outbox row; raises the :class:`SendError` subclasses."""

    platform: Platform

    async def send(self, delivery: DueDelivery) -> str | None:
        """Deliver ``delivery``; returns the platform's message id (for later edits)."""
        ...

    async def edit(self, edit: DueEdit) -> None:
        """Rewrite a delivered alert to say its opportunity closed (how long, what peak)."""
        ...


@dataclass(frozen=True, slots=True)
class Limits:
    """The platform's flood limits, kept with a safety ``margin`` (clock and network jitter)."""

    global_per_s: float = 30.0
    private_per_s: float = 1.0
    group_per_min: float = 20.0
    margin: float = 0.1  # windows 10 % longer than the platform's


TELEGRAM_LIMITS = Limits()
# Discord: 50 requests/s per bot; a DM or channel takes about 5 messages per 5 s. discord.py
# also waits out the per-route buckets itself; pacing keeps us clear of them in the first place.
DISCORD_LIMITS = Limits(global_per_s=40.0, private_per_s=1.0, group_per_min=50.0)
LIMITS = {Platform.TELEGRAM: TELEGRAM_LIMITS, Platform.DISCORD: DISCORD_LIMITS}


class _Window:
    """At most ``capacity`` sends in any sliding ``period_ms``."""

    __slots__ = ("capacity", "paused_until", "period_ms", "stamps")

    def __init__(self, capacity: int, period_ms: int) -> None:
        self.capacity = capacity
        self.period_ms = period_ms
        self.stamps: deque[int] = deque()
        self.paused_until = 0

    def next_slot(self, now_ms: int) -> int:
        """The earliest time (ms) one more send fits; ``<= now_ms`` means now."""
        while self.stamps and self.stamps[0] <= now_ms - self.period_ms:
            self.stamps.popleft()
        slot = self.paused_until
        if len(self.stamps) >= self.capacity:
            slot = max(slot, self.stamps[-self.capacity] + self.period_ms)
        return slot

    def idle(self, now_ms: int) -> bool:
        return self.paused_until <= now_ms and (
            not self.stamps or self.stamps[-1] <= now_ms - self.period_ms
        )


class Pacer:
    """Per-chat and global send windows (pure: times are passed in, in ms)."""

    def __init__(self, limits: Limits = TELEGRAM_LIMITS) -> None:
        stretch = 1.0 + limits.margin
        self.limits = limits
        self._global = _Window(max(1, int(limits.global_per_s)), round(1000 * stretch))
        self._private = (1, round(1000 / limits.private_per_s * stretch))
        self._group = (max(1, int(limits.group_per_min)), round(60_000 * stretch))
        self._chats: dict[str, _Window] = {}
        self._recorded = 0
        self.horizon_ms = max(self._global.period_ms, self._private[1], self._group[1])
        """How far back a send still counts against some window."""

    def _chat(self, chat_id: str, is_group: bool) -> _Window:
        window = self._chats.get(chat_id)
        if window is None:
            capacity, period = self._group if is_group else self._private
            window = self._chats[chat_id] = _Window(capacity, period)
        return window

    def next_slot(self, chat_id: str, is_group: bool, now_ms: int) -> int:
        """When a send to ``chat_id`` fits both its chat's window and the global one."""
        window = self._chats.get(chat_id)
        chat_slot = 0 if window is None else window.next_slot(now_ms)
        return max(chat_slot, self._global.next_slot(now_ms))

    def record(self, chat_id: str, is_group: bool, now_ms: int) -> None:
        self._chat(chat_id, is_group).stamps.append(now_ms)
        self._global.stamps.append(now_ms)
        self._recorded += 1
        if self._recorded % 1000 == 0:  # forget quiet chats, so memory follows active ones
            self._chats = {c: w for c, w in self._chats.items() if not w.idle(now_ms)}

    def settle(self, sends: list[tuple[str, bool]], started_ms: int, done_ms: int) -> None:
        """Sends recorded at ``started_ms`` completed at ``done_ms``: count them from then.

        The platform saw each one somewhere in between; counting from the completion makes the
        next slot safe whatever the latency (a slow batch never leads to a 429 in the next one).
        """
        if done_ms <= started_ms or not sends:
            return
        for chat_id, is_group in sends:
            stamps = self._chat(chat_id, is_group).stamps
            if stamps and stamps[-1] == started_ms:
                stamps[-1] = done_ms
        stamps = self._global.stamps
        moved = 0
        while moved < len(sends) and stamps and stamps[-1] == started_ms:
            stamps.pop()
            moved += 1
        stamps.extend([done_ms] * moved)

    def pause(self, chat_id: str | None, is_group: bool, until_ms: int) -> None:
        """Nothing to ``chat_id`` (None: to anyone) before ``until_ms`` (a 429's retry_after)."""
        window = self._global if chat_id is None else self._chat(chat_id, is_group)
        window.paused_until = max(window.paused_until, until_ms)


@dataclass(slots=True)
class PassResult:
    """What one :meth:`Outbox.pump` did; ``wake_ms``: when the next pass has work (None: idle)."""

    sent: int = 0
    edited: int = 0  # delivered alerts rewritten to say their opportunity closed
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    blocked: int = 0
    expired: int = 0
    leased: bool = True
    wake_ms: int | None = None
    paced_ms: int | None = None  # when a row that is due now fits its pacing window


class Outbox:
    """Delivers the store's outbox through one platform :class:`Sender` (see module doc)."""

    def __init__(
        self,
        store: Store,
        sender: Sender,
        clock: Callable[[], int],
        *,
        owner: str,
        limits: Limits | None = None,
        max_attempts: int = 5,
        backoff_ms: int = 2_000,
        max_backoff_ms: int = 300_000,
        lease_ttl_ms: int = 30_000,
        batch: int = 500,
        max_in_flight: int = 32,
        idle_ms: int = 5_000,
    ) -> None:
        self.store = store
        self.sender = sender
        self.clock = clock
        self.owner = owner
        self.pacer = Pacer(LIMITS[sender.platform] if limits is None else limits)
        self.lease_name = f"{LEASE_PREFIX}:{sender.platform.value}"
        self.max_attempts = max_attempts
        self.backoff_ms = backoff_ms
        self.max_backoff_ms = max_backoff_ms
        self.lease_ttl_ms = lease_ttl_ms
        self.batch = batch
        self.max_in_flight = max_in_flight
        self.idle_ms = idle_ms
        self.totals = PassResult()
        self._lease_until = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    # -- the loop -------------------------------------------------------------------------------

    def wake(self) -> None:
        """New deliveries were queued: run a pass now (safe to call from the loop's thread)."""
        self._wake.set()

    async def run(self) -> None:
        """Pass after pass until :meth:`stop`; releases the lease on the way out."""
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    result = await self.pump()
                except Exception:  # e.g. the database is locked: keep the loop, try again
                    log.exception("outbox pass failed")
                    await self._sleep(self.idle_ms / 1000)
                    continue
                if result.sent or result.edited or result.retried or result.failed:
                    continue  # more may be admissible right away
                now = self.clock()
                wait_ms = self.idle_ms if result.wake_ms is None else result.wake_ms - now
                wait_ms = max(0, min(wait_ms, self.idle_ms))
                if not result.leased:
                    wait_ms = max(wait_ms, self.lease_ttl_ms // 3)
                await self._sleep(wait_ms / 1000)
        finally:
            await self.release()

    async def release(self) -> None:
        """Give up the sender lease, so another instance may take over at once."""
        if self._lease_until:
            self._lease_until = 0
            await asyncio.to_thread(
                self.store.deliveries.release_lease, self.lease_name, self.owner
            )

    async def _sleep(self, seconds: float) -> None:
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self._stop_wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            for task in waits:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _stop_wait(self) -> None:
        await self._stopping.wait()

    def stop(self) -> None:
        """Ask :meth:`run` to finish: sends in flight complete and are recorded first."""
        self._stopping.set()

    async def flush(self, timeout_s: float) -> PassResult:
        """At shutdown, after :meth:`run` ended: deliver what is due, for up to ``timeout_s``.

        Pacing and 429s still apply; a pass in progress at the deadline completes (a send is
        never cut off between the platform's answer and its record). What is left stays pending
        for the next start.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        flushed = PassResult()
        try:
            while loop.time() < deadline:
                result = await self.pump()
                for name in (
                    "sent",
                    "edited",
                    "failed",
                    "retried",
                    "rate_limited",
                    "blocked",
                    "expired",
                ):
                    setattr(flushed, name, getattr(flushed, name) + getattr(result, name))
                if not result.leased:
                    break  # another instance sends them
                if (
                    result.sent
                    or result.edited
                    or result.failed
                    or result.retried
                    or result.blocked
                ):
                    continue  # more may be admissible right away
                if result.paced_ms is None:
                    break  # nothing due now is left (later retries wait for the next start)
                wait_s = (result.paced_ms - self.clock()) / 1000
                if loop.time() + wait_s >= deadline:
                    break
                await asyncio.sleep(max(0.0, wait_s))
        finally:
            await self.release()
        return flushed

    # -- one pass -------------------------------------------------------------------------------

    async def pump(self) -> PassResult:
        """One pass (see module doc); its sends have completed and been recorded on return."""
        result = PassResult()
        now = self.clock()
        deliveries = self.store.deliveries
        if not await self._hold_lease(now):
            result.leased = False
            return result
        result.expired = await asyncio.to_thread(deliveries.expire_pending, now)
        due = await asyncio.to_thread(deliveries.due, now, self.batch, self.sender.platform)
        # Alerts that notify (strong, moderate, broadcasts) go before silent (weak) ones.
        due.sort(key=lambda d: d.silent)
        chats: set[str] = set()
        chosen, wake = self._admit(due, chats, now, None)
        edits: list[DueEdit] = []
        if len(chosen) < self.max_in_flight:  # closing edits after new alerts, same windows
            due_edits = await asyncio.to_thread(
                self.store.edits.due, now, self.batch, self.sender.platform
            )
            edits, wake = self._admit(due_edits, chats, now, wake, len(chosen))
        jobs: list[DueDelivery | DueEdit] = [*chosen, *edits]
        outcomes = await asyncio.gather(*(self._attempt(job) for job in jobs))
        self.pacer.settle([(j.destination, j.shared) for j in jobs], now, self.clock())
        for job, outcome in zip(jobs, outcomes, strict=True):
            if isinstance(job, DueDelivery):
                await self._record(job, outcome, result)
            else:
                await self._record_edit(job, outcome, result)
            if isinstance(outcome, RateLimited):
                slot = self.pacer.next_slot(job.destination, job.shared, now)
                wake = slot if wake is None else min(wake, slot)
        result.paced_ms = wake  # so far: only due rows held back by pacing or a 429
        platform = self.sender.platform
        for next_due in (
            await asyncio.to_thread(deliveries.next_due_ms, platform),
            await asyncio.to_thread(self.store.edits.next_due_ms, platform),
        ):
            if next_due is not None and next_due > now:
                wake = next_due if wake is None else min(wake, next_due)
        result.wake_ms = wake
        self._add_totals(result)
        return result

    def _admit(
        self, due: Sequence[_Job], chats: set[str], now: int, wake: int | None, taken: int = 0
    ) -> tuple[list[_Job], int | None]:
        """The jobs whose chat window (and the global one) admits a send now, at most one per
        chat and ``max_in_flight`` in all; ``wake``: when a held-back one fits."""
        admitted: list[_Job] = []
        for job in due:
            if taken + len(admitted) >= self.max_in_flight:
                return admitted, now
            where = job.destination
            if where in chats:
                continue  # one send per chat per pass: its window decides the next
            slot = self.pacer.next_slot(where, job.shared, now)
            if slot > now:
                wake = slot if wake is None else min(wake, slot)
                continue
            self.pacer.record(where, job.shared, now)
            chats.add(where)
            admitted.append(job)
        return admitted, wake

    async def _hold_lease(self, now: int) -> bool:
        if self._lease_until - now > self.lease_ttl_ms // 2:
            return True
        held = await asyncio.to_thread(
            self.store.deliveries.acquire_lease,
            self.lease_name,
            self.owner,
            now,
            self.lease_ttl_ms,
        )
        if held and not self._lease_until:
            await self._seed_pacer(now)
        self._lease_until = now + self.lease_ttl_ms if held else 0
        return held

    async def _seed_pacer(self, now: int) -> None:
        """Take over the windows of the previous holder (a restart): what it sent recently."""
        rows = await asyncio.to_thread(
            self.store.db.rows,
            "SELECT u.chat_id, u.is_group, json_extract(u.preferences, '$.channel') AS channel,"
            " d.sent_ms FROM deliveries d"
            " JOIN users u ON u.id = d.user WHERE d.status = 'sent' AND d.sent_ms > ?"
            " AND u.platform = ? ORDER BY d.sent_ms",
            (now - self.pacer.horizon_ms, self.sender.platform.value),
        )
        for row in rows:
            channel = row["channel"]
            where = row["chat_id"] if channel is None else f"channel:{channel}"
            shared = bool(row["is_group"]) or channel is not None
            self.pacer.record(where, shared, int(row["sent_ms"]))

    async def _attempt(self, job: DueDelivery | DueEdit) -> str | SendError | None:
        """Send (or edit) one job; the platform's error, or a sender bug, comes back as a value."""
        try:
            if isinstance(job, DueDelivery):
                return await self.sender.send(job)
            await self.sender.edit(job)
            return None
        except SendError as exc:
            return exc
        except Exception as exc:  # a sender bug: retried, then FAILED with its text, never lost
            log.exception("delivery %s failed unexpectedly", _delivery_id(job))
            return TransientSendError(f"unexpected error: {exc!r}")

    def _pause(self, job: DueDelivery | DueEdit, limited: RateLimited, now: int) -> None:
        """A 429: nothing to the job's chat (or, without a chat, to anyone) for retry_after."""
        chat = None if limited.chat_id is None else job.destination
        self.pacer.pause(chat, job.shared, now + round(limited.retry_after_s * 1000))

    def _retry_at(self, attempts: int, now: int) -> int:
        """Exponential backoff after ``attempts`` failed attempts (the first waits backoff_ms)."""
        return now + min(self.max_backoff_ms, self.backoff_ms << attempts)

    async def _record_edit(
        self, edit: DueEdit, outcome: str | SendError | None, result: PassResult
    ) -> None:
        now = self.clock()
        edits = self.store.edits
        if not isinstance(outcome, SendError):
            await asyncio.to_thread(edits.mark_done, edit.delivery_id, now)
            result.edited += 1
        elif isinstance(outcome, RateLimited):
            self._pause(edit, outcome, now)
            result.rate_limited += 1
        elif isinstance(outcome, PermanentSendError | Blocked):
            # The message is gone, or the chat: nothing to edit. The user stays as they are;
            # only a new alert's send decides whether they blocked the bot.
            await asyncio.to_thread(edits.mark_done, edit.delivery_id, now, outcome.reason)
            result.failed += 1
        elif edit.attempts + 1 >= self.max_attempts:
            reason = f"gave up after {edit.attempts + 1} attempts: {outcome.reason}"
            await asyncio.to_thread(edits.mark_done, edit.delivery_id, now, reason)
            result.failed += 1
        else:
            retry_at = self._retry_at(edit.attempts, now)
            await asyncio.to_thread(edits.mark_retry, edit.delivery_id, retry_at, outcome.reason)
            result.retried += 1

    async def _record(
        self, delivery: DueDelivery, outcome: str | SendError | None, result: PassResult
    ) -> None:
        now = self.clock()
        deliveries = self.store.deliveries
        if not isinstance(outcome, SendError):
            await asyncio.to_thread(deliveries.mark_sent, delivery.id, now, outcome)
            result.sent += 1
        elif isinstance(outcome, RateLimited):
            self._pause(delivery, outcome, now)
            result.rate_limited += 1
        elif isinstance(outcome, Blocked):
            await asyncio.to_thread(self.store.mark_blocked, delivery.user_id, now, outcome.reason)
            result.blocked += 1
        elif isinstance(outcome, PermanentSendError):
            await asyncio.to_thread(
                deliveries.finish, delivery.id, DeliveryStatus.FAILED, now, outcome.reason
            )
            result.failed += 1
        elif delivery.attempts + 1 >= self.max_attempts:
            reason = f"gave up after {delivery.attempts + 1} attempts: {outcome.reason}"
            await asyncio.to_thread(
                deliveries.finish, delivery.id, DeliveryStatus.FAILED, now, reason
            )
            result.failed += 1
        else:
            retry_at = self._retry_at(delivery.attempts, now)
            await asyncio.to_thread(deliveries.mark_retry, delivery.id, retry_at, outcome.reason)
            result.retried += 1

    def _add_totals(self, result: PassResult) -> None:
        totals = self.totals
        totals.sent += result.sent
        totals.edited += result.edited
        totals.failed += result.failed
        totals.retried += result.retried
        totals.rate_limited += result.rate_limited
        totals.blocked += result.blocked
        totals.expired += result.expired


def _delivery_id(job: DueDelivery | DueEdit) -> int:
    return job.id if isinstance(job, DueDelivery) else job.delivery_id
