"""The composition root: detector → router → store → outboxes → Telegram and Discord, one loop.

The detector's callback only queues each signal; one routing task dispatches them in order
through ``asyncio.to_thread`` (routing is ~1-1.5 ms for 10 000 users, but storing the signal
and one delivery row per recipient is a durable commit, too slow for the feeds' loop), then
wakes the outbox. Commands also run in worker threads (see ``bot.platforms``), so they read a
health snapshot refreshed here in the loop rather than the live detector.

Each configured frontend gets its own outbox (its own lease and pacing). A frontend that cannot
start (a rejected token, an unreachable API) is reported and left out; the detector, the store
and the other frontend keep running. :meth:`App.stop` shuts down in order: stop taking commands,
stop the feeds, route what was queued, flush what is due (bounded by ``FLUSH_S``), close the
platforms, then release the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal as signals_module
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from bot.commands import CommandHandler
from bot.config import Settings
from bot.console import (
    HEALTH_CHECK_S,
    HEALTH_EVERY_S,
    HealthWatch,
    console_zone,
    feed_hosts,
    format_health,
    signal_printer,
)
from bot.errors import FrontendError
from bot.outbox import Outbox
from bot.platforms import POLL_TIMEOUT_S, DiscordFrontend, Frontend, TelegramFrontend
from bot.routing import Router
from bot.store import InstanceLock, Platform, Store
from detector.analyzer import TrackedOpportunity
from detector.clients.backoff import Backoff
from detector.config import DetectorConfig, FeedUrls
from detector.engine import Detector, Health
from detector.recording import RecordingWriter
from detector.signals import Signal

log = logging.getLogger(__name__)

NO_TOKEN = "neither TELEGRAM_BOT_TOKEN nor DISCORD_BOT_TOKEN is set: alerts go to the console only"
START_BACKOFF = Backoff(initial_s=2.0, max_s=120.0)
"""Between attempts to start a chat platform that failed for a reason that may pass."""
FLUSH_S = 5.0
"""At shutdown, how long the outboxes may keep delivering what is already due."""
SNAPSHOT_EVERY_S = 1.0
PRUNE_EVERY_S = 3600.0
MAX_BURST = 20
"""Signals routed and stored in one transaction at most (those waiting when routing is free).
Measured (``scripts/bot_bench.py``): before delivery rows were capped (200 users), 10-50 a
transaction routed a burst fastest and 200 at once were slower than one by one; with the cap
(10,000 users) 20 a transaction take 2.05 ms a signal, 200 at once 0.89 ms. The bound keeps a
burst's first signal from waiting for the routing of a long queue behind it."""
_NOTHING = object()


def now_ms() -> int:
    return int(time.time() * 1000)


class App:
    """Everything ``arbwatch run`` runs; ``start``/``stop`` (or ``async with``)."""

    def __init__(
        self,
        settings: Settings,
        detector_config: DetectorConfig,
        urls: FeedUrls,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
        json_out: bool = False,
        wide: bool = False,
        utc: bool = False,
        record_to: Path | None = None,
        console: bool = True,
        detector_options: Mapping[str, Any] | None = None,
        poll_timeout_s: float | None = None,
        start_backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.writer = RecordingWriter(record_to) if record_to is not None else None
        self.detector = Detector(
            detector_config, urls, recorder=self.writer, **dict(detector_options or {})
        )
        self.zone = console_zone(utc)  # None: the local time zone
        if console:
            printer = signal_printer(json_out, self.out, wide=wide, tz=self.zone)
            self.detector.add_callback(printer)
            self.detector.add_opportunity_callback(printer.closed)
        # Signals and closed opportunities reach the store in the order the detector saw them.
        self._signals: asyncio.Queue[Signal | TrackedOpportunity | None] = asyncio.Queue()
        self.detector.add_callback(self._signals.put_nowait)
        self.detector.add_opportunity_callback(self._signals.put_nowait)
        self.store = Store(settings.database_path)
        self.lock = InstanceLock(settings.database_path)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.router = Router(self.store, now_ms())
        self._health: Health | None = None
        self._stats: Mapping[str, Any] | None = None
        self.handler = CommandHandler(
            self.store,
            settings,
            detector_config.symbols,
            venues=[e.value for e in detector_config.exchanges],
            health_provider=lambda: self._health,
            stats_provider=lambda: self._stats,
            chats_provider=lambda: self.chat_summary(),
        )
        # A fresh frontend for each attempt to start: a failed one is not reused.
        self._makers: dict[Platform, Callable[[], Frontend]] = {}
        if settings.telegram_bot_token is not None:
            timeout_s = poll_timeout_s or POLL_TIMEOUT_S
            self._makers[Platform.TELEGRAM] = lambda: TelegramFrontend(
                settings, self.handler, clock=now_ms, poll_timeout_s=timeout_s
            )
        if settings.discord_bot_token is not None:
            self._makers[Platform.DISCORD] = lambda: DiscordFrontend(
                settings, self.handler, clock=now_ms
            )
        self.frontends: list[Frontend] = [make() for make in self._makers.values()]
        self.start_backoff = start_backoff or START_BACKOFF
        self.outboxes: dict[Platform, Outbox] = {}
        self.frontend_states: dict[Platform, str] = {f.platform: "starting" for f in self.frontends}
        self._live: list[Frontend] = []
        self._retries: list[asyncio.Task[None]] = []
        self._outbox_tasks: list[asyncio.Task[None]] = []
        self._router_task: asyncio.Task[None] | None = None
        self._snapshot_task: asyncio.Task[None] | None = None
        self.routed = 0
        self._stopped = False

    @property
    def telegram(self) -> TelegramFrontend | None:
        """The Telegram frontend (the latest, after a retried start), if configured."""
        return next((f for f in self.frontends if isinstance(f, TelegramFrontend)), None)

    @property
    def discord(self) -> DiscordFrontend | None:
        return next((f for f in self.frontends if isinstance(f, DiscordFrontend)), None)

    async def start(self) -> None:
        """Open the feeds, start routing, then each frontend with its outbox; undone on failure.

        A frontend that fails to start is reported on stderr and left out; the rest run.
        """
        if not self.frontends:
            self.err.write(f"arbwatch: {NO_TOKEN}\n")
        try:
            await self._claim_database()
            await asyncio.to_thread(self.store.prune, now_ms())
            await self.detector.start()
            self.handler.watch(self.detector.config.symbols)  # SYMBOLS=ALL: found now
            self.detector.add_universe_callback(self.handler.watch)  # and at every refresh
            self._snapshot()
            self._router_task = asyncio.create_task(self._route_loop(), name="router")
            self._snapshot_task = asyncio.create_task(self._snapshot_loop(), name="snapshots")
            for frontend in self.frontends:
                await self._start_frontend(frontend)
        except BaseException:
            await self.stop()
            raise
        watched = self.detector.universe_summary or ", ".join(self.detector.config.symbols)
        self.err.write(f"arbwatch: watching {watched}\n")
        for problem in self.detector.symbol_problems:
            self.err.write(f"arbwatch: {problem}\n")

    async def _start_frontend(self, frontend: Frontend) -> None:
        """Start one frontend with its outbox; a failure that may pass is retried meanwhile."""
        platform = frontend.platform
        try:
            await self._connect(frontend)
        except FrontendError as exc:
            if not exc.retry:
                self._give_up(exc, platform)
                return
            self.frontend_states[platform] = f"retrying: {exc.reason}"
            self.err.write(f"arbwatch: {exc}; trying again in the background\n")
            task = asyncio.create_task(self._retry_start(platform), name=f"start-{platform}")
            self._retries.append(task)

    def _give_up(self, exc: FrontendError, platform: Platform) -> None:
        """A failure retrying cannot fix: say so once; everything else runs on."""
        self.frontend_states[platform] = f"failed: {exc.reason}"
        self.err.write(f"arbwatch: {exc}; running without {platform.value}\n")

    async def _connect(self, frontend: Frontend) -> None:
        """Wire the frontend to a new outbox, start it (or raise FrontendError), run the outbox."""
        platform = frontend.platform
        outbox = Outbox(self.store, frontend, now_ms, owner=self.owner)
        # Before the first command: its replies take their slots in the outbox's windows.
        frontend.pacer = outbox.pacer
        # A command may queue deliveries on every platform (an admin's /broadcast).
        frontend.after_command = self._wake_outboxes
        await frontend.start()
        self._live.append(frontend)
        self.outboxes[platform] = outbox
        self._outbox_tasks.append(asyncio.create_task(outbox.run(), name=f"outbox-{platform}"))
        self.frontend_states[platform] = "connected"
        self.err.write(f"arbwatch: {platform.value} connected\n")

    async def _retry_start(self, platform: Platform) -> None:
        """A fresh frontend after each backoff, until one connects or the failure is final."""
        attempt = 0
        while True:
            attempt += 1
            await self.start_backoff.sleep(self.start_backoff.delay(attempt))
            fresh = self._makers[platform]()
            self.frontends = [fresh if f.platform is platform else f for f in self.frontends]
            try:
                await self._connect(fresh)
                return
            except FrontendError as exc:
                if not exc.retry:
                    self._give_up(exc, platform)
                    return
                self.frontend_states[platform] = f"retrying (attempt {attempt}): {exc.reason}"

    def _wake_outboxes(self) -> None:
        for outbox in self.outboxes.values():
            outbox.wake()

    async def stop(self) -> None:
        """Shut down in order (see module doc); the database is left consistent and released.

        Safe to call again: only the first call does anything.
        """
        if self._stopped:
            return
        self._stopped = True
        for task in self._retries:  # no more attempts to start a platform
            task.cancel()
        for task in self._retries:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._retries = []
        try:
            for frontend in self._live:  # no new commands; running ones answer first
                await _logged(frontend.stop_receiving(), f"stopping {frontend.platform} commands")
            await self.detector.stop()
            if self._router_task is not None:
                self._signals.put_nowait(None)
                await self._router_task
            for outbox in self.outboxes.values():
                outbox.stop()
            for task in self._outbox_tasks:
                await task
            for platform, outbox in self.outboxes.items():
                flushed = await outbox.flush(FLUSH_S)
                if flushed.sent:
                    self.err.write(f"arbwatch: {platform.value}: flushed {flushed.sent} alerts\n")
            if self._snapshot_task is not None:
                self._snapshot_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._snapshot_task
        finally:
            self._router_task = self._snapshot_task = None
            self._outbox_tasks = []
            for frontend in self.frontends:
                await _logged(frontend.close(), f"closing {frontend.platform}")
                if self.frontend_states.get(frontend.platform) == "connected":
                    self.frontend_states[frontend.platform] = "stopped"
            self._live = []
            self.store.close()
            self.lock.release()  # last: until here, nobody else may open the file
            if self.writer is not None:
                self.writer.close()
                self.err.write(
                    f"arbwatch: recorded {self.writer.count} messages to {self.writer.path}\n"
                )

    def chat_summary(self) -> str:
        """``telegram connected · discord failed: ...`` for /status and the console health line."""
        live = {f.platform: f.status for f in self._live}
        states = {p: live.get(p, state) for p, state in self.frontend_states.items()}
        return " · ".join(f"{p.value} {state}" for p, state in states.items())

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _route_loop(self) -> None:
        item = await self._signals.get()
        while item is not None:
            if isinstance(item, TrackedOpportunity):
                await self._record_opportunity(item)
                item = await self._signals.get()
                continue
            # What queued up meanwhile goes in one transaction (a burst: one commit, not one
            # per signal), up to the next opportunity or the end, which keep their place.
            burst: list[Signal] = [item]
            after: object = _NOTHING
            while len(burst) < MAX_BURST and not self._signals.empty():
                head = self._signals.get_nowait()
                if head is None or isinstance(head, TrackedOpportunity):
                    after = head
                    break
                burst.append(head)
            await self._dispatch(burst)
            item = await self._signals.get() if after is _NOTHING else after  # type: ignore[assignment]

    async def _record_opportunity(self, tracked: TrackedOpportunity) -> None:
        try:  # its final duration and peak, for /stats and the alerts' closing edits
            await asyncio.to_thread(self.store.history.record_opportunity, tracked)
        except Exception:
            log.exception("recording opportunity %s failed", tracked.id)
            return
        if tracked.closed_ms is not None:  # its alerts are due for their closing edit
            self._wake_outboxes()

    async def _dispatch(self, burst: list[Signal]) -> None:
        try:
            plans = await asyncio.to_thread(self.router.dispatch_many, burst, now_ms())
        except Exception:
            if len(burst) == 1:  # one bad signal (or a full disk) must not stop routing
                log.exception("routing a %s signal failed", burst[0].type)
                return
            # One bad signal must not cost the burst: each alone, so only it is lost.
            for signal in burst:
                await self._dispatch([signal])
            return
        self.routed += len(plans)
        if any(plan.recipients for plan in plans):
            self._wake_outboxes()

    def _snapshot(self) -> None:
        self._health = self.detector.health()
        self._stats = self.detector.pipeline.aggregator.stats()

    async def _claim_database(self) -> None:
        """Refuse to run beside another instance on the same database (it would double-send).

        The lock is the kernel's: it is free the moment its holder dies, so a restart after a
        crash starts at once. Holding it proves every lease in the file belongs to a dead
        process, so they go too, and the outboxes take over without waiting out a TTL.
        """
        self.lock.acquire(self.owner)
        taken = await asyncio.to_thread(self.store.leases.take_over)
        if taken:
            log.info("took over %d leases of a process that has ended", taken)

    async def _snapshot_loop(self) -> None:
        next_prune = time.monotonic() + PRUNE_EVERY_S
        while True:
            await asyncio.sleep(SNAPSHOT_EVERY_S)
            self._snapshot()
            if time.monotonic() >= next_prune:
                next_prune += PRUNE_EVERY_S
                await asyncio.to_thread(self.store.prune, now_ms())


async def run_app(
    settings: Settings,
    detector_config: DetectorConfig,
    urls: FeedUrls,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    duration_s: float | None = None,
    json_out: bool = False,
    wide: bool = False,
    utc: bool = False,
    record_to: Path | None = None,
    health_every_s: float = HEALTH_EVERY_S,
    health_check_s: float = HEALTH_CHECK_S,
) -> App:
    """Run everything until ``duration_s`` passes, or SIGINT/SIGTERM; stop cleanly.

    Every ``health_check_s`` each change of health gets a line on stderr; every
    ``health_every_s`` the short health line.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signals_module.SIGINT, signals_module.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    app = App(
        settings,
        detector_config,
        urls,
        out=out,
        err=err,
        json_out=json_out,
        wide=wide,
        utc=utc,
        record_to=record_to,
    )
    try:
        async with app:
            watch = HealthWatch(app.zone, feed_hosts(urls), app.detector.config.stale_after_ms)
            deadline = None if duration_s is None else loop.time() + duration_s
            next_line = loop.time() + health_every_s
            while not stop.is_set():
                timeout = min(health_check_s, next_line - loop.time())
                if deadline is not None:
                    timeout = min(timeout, deadline - loop.time())
                    if timeout <= 0:
                        break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, timeout))
                health = app.detector.health()
                for change in watch.update(health):
                    app.err.write(change + "\n")
                if loop.time() >= next_line:
                    next_line += health_every_s
                    text = format_health(health, tz=app.zone)
                    chats = app.chat_summary()
                    app.err.write(f"{text} · {chats}\n" if chats else text + "\n")
                app.err.flush()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return app


async def _logged(step: Awaitable[None], what: str) -> None:
    """Run one shutdown step; a failure is logged and the shutdown goes on."""
    try:
        await step
    except Exception:
        log.exception("%s failed", what)
