"""The outbox loop: sends queued deliveries within the platform's limits, and records every outcome.

``Outbox.pump`` is one pass: take (or renew) the sender lease, expire the alerts that could no
longer arrive alive, read the due deliveries most valuable first (the store's ``DUE_ORDER``:
arbitrage, notifying, newest, each signal's users in an order of its own), pick those the
:class:`~bot.pacing.Pacer` admits now, send them concurrently through a platform
:class:`Sender`, and record each outcome as soon as it comes (:func:`judge` says what it means):

- sent → ``mark_sent`` with the platform's message id;
- :class:`FloodLimited` (429) → pause that chat (every chat when the error has no chat) for
  ``retry_after``; the row stays pending and untouched, so nothing is lost and no attempt counts;
- :class:`Blocked` (403) → ``Store.mark_blocked``: the user is inactive, their pending rows skipped;
- :class:`TransientSendError` (5xx, network) → ``mark_retry`` with exponential backoff, finished
  FAILED with the last error after ``max_attempts``;
- :class:`PermanentSendError` (400) → finished FAILED with the platform's reason.

Once a minute a pass first composes the digests whose period ended (:mod:`bot.store.digests`):
each is one more due row, sent like a broadcast. After the alerts, a pass sends the closing
edits that are due (:mod:`bot.store.edits`), in the same windows: a delivered arbitrage alert
whose opportunity closed is rewritten to say how long it lasted and its peak. A failed edit
never deactivates anyone (the message may simply be gone).

``Outbox.run`` repeats passes until stopped, sleeping until the next pacing slot, the next due
row, or :meth:`Outbox.wake` (called when new deliveries are queued). Without the lease (another
instance on the same database holds it) it sends nothing and retries the lease later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from bot.errors import Blocked, FloodLimited, PermanentSendError, SendError, TransientSendError
from bot.pacing import LIMITS, Limits, Pacer
from bot.store import DIGEST_STEP_MS, DeliveryStatus, DueDelivery, DueEdit, Platform, Store

log = logging.getLogger(__name__)

_Job = TypeVar("_Job", DueDelivery, DueEdit)

ALIVE_MARGIN_MS = 500
"""How long a send may take (a slow API answer): an alert expiring sooner is not sent."""

EXPIRY_OVERLAP_MS = 60_000
"""Each pass looks this far behind the previous one's cutoff: a signal routed just before its
end, or a pass that ran late, still has its rows expired."""

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
    digests: int = 0  # digests composed (queued as deliveries) this pass
    leased: bool = True
    wake_ms: int | None = None
    paced_ms: int | None = None  # when a row that is due now fits its pacing window

    def add(self, other: PassResult) -> None:
        """Count ``other``'s outcomes into these (totals, or a flush's passes)."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_COUNTS = (
    "sent",
    "edited",
    "failed",
    "retried",
    "rate_limited",
    "blocked",
    "expired",
    "digests",
)
"""The outcome counters of a pass."""


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
        batch: int = 200,
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
        self._expired_until = 0  # signals expiring up to here have had their rows expired
        self._next_digests_ms = 0  # when the next digests are composed (a whole minute)
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
            await asyncio.to_thread(self.store.leases.release, self.lease_name, self.owner)

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
                flushed.add(result)
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
        # Never start a send that could no longer arrive while its signal is true. Only the
        # signals that expired lately: older ones' rows were expired by earlier passes.
        after = max(0, self._expired_until - EXPIRY_OVERLAP_MS)
        result.expired = await asyncio.to_thread(
            deliveries.expire_pending, now, ALIVE_MARGIN_MS, after_ms=after
        )
        self._expired_until = now + ALIVE_MARGIN_MS
        if now >= self._next_digests_ms:  # periods end on whole minutes: one look a minute
            result.digests = await asyncio.to_thread(
                self.store.digests.compose_due, now, self.sender.platform
            )
            self._next_digests_ms = now - now % DIGEST_STEP_MS + DIGEST_STEP_MS
        # Most valuable first: arbitrage, notifying, newest (the store's DUE_ORDER).
        due = await asyncio.to_thread(deliveries.due, now, self.batch, self.sender.platform)
        chats: set[str] = set()
        chosen, wake = self._admit(due, chats, now, None)
        edits: list[DueEdit] = []
        if len(chosen) < self.max_in_flight:  # closing edits after new alerts, same windows
            due_edits = await asyncio.to_thread(
                self.store.edits.due, now, self.batch, self.sender.platform
            )
            edits, wake = self._admit(due_edits, chats, now, wake, len(chosen))
        jobs: list[DueDelivery | DueEdit] = [*chosen, *edits]
        answers = await asyncio.gather(*(self._send_and_record(job, result) for job in jobs))
        self.pacer.settle(
            [(j.destination, j.shared, done) for j, (_, done) in zip(jobs, answers, strict=True)],
            now,
        )
        for job, (outcome, _) in zip(jobs, answers, strict=True):
            if isinstance(outcome, FloodLimited):
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
        result.wake_ms = wake  # an idle loop still passes every idle_ms: digests are that late
        self.totals.add(result)
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
            self.store.leases.acquire,
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
        sends = await asyncio.to_thread(
            self.store.deliveries.recent_sends, self.sender.platform, now - self.pacer.horizon_ms
        )
        for sent in sends:
            self.pacer.record(sent.destination, sent.shared, sent.sent_ms)

    async def _send_and_record(
        self, job: DueDelivery | DueEdit, result: PassResult
    ) -> tuple[str | SendError | None, int]:
        """One attempt, committed the moment the platform answers, whatever its neighbours do;
        returns the outcome and when the platform answered.

        So a crash (``kill -9``) can repeat only the sends in flight, at most ``max_in_flight``
        per platform: those the platform accepted but whose record had not committed yet.
        """
        outcome = await self._attempt(job)
        done_ms = self.clock()
        await self._record(job, outcome, result)
        return outcome, done_ms

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

    def _pause(self, job: DueDelivery | DueEdit, limited: FloodLimited, now: int) -> None:
        """A 429: nothing to the job's chat (or, without a chat, to anyone) for retry_after."""
        chat = None if limited.chat_id is None else job.destination
        self.pacer.pause(chat, job.shared, now + round(limited.retry_after_s * 1000))

    def _retry_at(self, attempts: int, now: int) -> int:
        """Exponential backoff after ``attempts`` failed attempts (the first waits backoff_ms)."""
        return now + min(self.max_backoff_ms, self.backoff_ms << attempts)

    async def _record(
        self, job: DueDelivery | DueEdit, outcome: str | SendError | None, result: PassResult
    ) -> None:
        """Write one attempt's outcome (see module doc) and count it in ``result``."""
        now = self.clock()
        verdict, detail = judge(outcome, job.attempts, self.max_attempts)
        if verdict is Verdict.PAUSE:
            assert isinstance(outcome, FloodLimited)
            self._pause(job, outcome, now)
            result.rate_limited += 1
            return
        if verdict is Verdict.BLOCKED and isinstance(job, DueEdit):
            # The message is gone, or the chat: nothing to edit. The user stays as they are;
            # only a new alert's send decides whether they blocked the bot.
            verdict = Verdict.FAILED
        await asyncio.to_thread(self._write, job, verdict, detail, now)
        if verdict is Verdict.DONE:
            if isinstance(job, DueDelivery):
                result.sent += 1
            else:
                result.edited += 1
        elif verdict is Verdict.BLOCKED:
            result.blocked += 1
        elif verdict is Verdict.FAILED:
            result.failed += 1
        else:
            result.retried += 1

    def _write(
        self, job: DueDelivery | DueEdit, verdict: Verdict, detail: str | None, now: int
    ) -> None:
        """The store's record of a verdict: on the delivery row, or on the alert's edit."""
        retry_at = self._retry_at(job.attempts, now)
        reason = detail or ""
        if isinstance(job, DueEdit):
            if verdict is Verdict.RETRY:
                self.store.edits.mark_retry(job.delivery_id, retry_at, reason)
            else:
                self.store.edits.mark_done(job.delivery_id, now, detail)
            return
        deliveries = self.store.deliveries
        if verdict is Verdict.DONE:
            deliveries.mark_sent(job.id, now, detail)
        elif verdict is Verdict.BLOCKED:
            self.store.mark_blocked(job.user_id, now, reason)
        elif verdict is Verdict.FAILED:
            deliveries.finish(job.id, DeliveryStatus.FAILED, now, reason)
        else:
            deliveries.mark_retry(job.id, retry_at, reason)


class Verdict(StrEnum):
    """What one attempt's outcome means for its row."""

    DONE = "done"  # sent (or edited)
    PAUSE = "pause"  # 429: wait, the row untouched
    BLOCKED = "blocked"  # 403: the user cannot be reached
    FAILED = "failed"  # never: a permanent error, or out of attempts
    RETRY = "retry"  # later, with backoff


def judge(
    outcome: str | SendError | None, attempts: int, max_attempts: int
) -> tuple[Verdict, str | None]:
    """The verdict on one attempt, with its detail: the message id when done, else the reason.

    ``attempts`` counts the row's earlier attempts; this one is the ``attempts + 1``-th.
    """
    if not isinstance(outcome, SendError):
        return Verdict.DONE, outcome
    if isinstance(outcome, FloodLimited):
        return Verdict.PAUSE, outcome.reason
    if isinstance(outcome, Blocked):
        return Verdict.BLOCKED, outcome.reason
    if isinstance(outcome, PermanentSendError):
        return Verdict.FAILED, outcome.reason
    if attempts + 1 >= max_attempts:
        return Verdict.FAILED, f"gave up after {attempts + 1} attempts: {outcome.reason}"
    return Verdict.RETRY, outcome.reason


def _delivery_id(job: DueDelivery | DueEdit) -> int:
    return job.id if isinstance(job, DueDelivery) else job.delivery_id
