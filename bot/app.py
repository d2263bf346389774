"""The composition root: detector → router → store → outbox → Telegram, in one event loop.

The detector's callback only queues each signal; one routing task dispatches them in order
through ``asyncio.to_thread`` (routing is ~1-1.5 ms for 10 000 users, but storing the signal
and one delivery row per recipient is a durable commit, too slow for the feeds' loop), then
wakes the outbox. Commands also run in worker threads (see ``bot.telegram_frontend``), so they
read a health snapshot refreshed here in the loop rather than the live detector.
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from bot.commands import CommandHandler
from bot.config import Settings
from bot.console import HEALTH_EVERY_S, format_health, signal_printer
from bot.errors import AlreadyRunning
from bot.outbox import Outbox
from bot.routing import Router
from bot.store import Store
from bot.telegram_frontend import POLL_TIMEOUT_S, TelegramFrontend
from detector.analyzer import TrackedOpportunity
from detector.config import DetectorConfig, FeedUrls
from detector.engine import Detector, Health
from detector.recording import RecordingWriter
from detector.signals import Signal

log = logging.getLogger(__name__)

NO_TOKEN = "TELEGRAM_BOT_TOKEN not set: alerts go to the console only"
SNAPSHOT_EVERY_S = 1.0
# One arbwatch per database: the running one renews this claim every SNAPSHOT_EVERY_S.
INSTANCE_LEASE = "instance"
INSTANCE_TTL_MS = 15_000
PRUNE_EVERY_S = 3600.0


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
        record_to: Path | None = None,
        console: bool = True,
        detector_options: Mapping[str, Any] | None = None,
        poll_timeout_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.writer = RecordingWriter(record_to) if record_to is not None else None
        self.detector = Detector(
            detector_config, urls, recorder=self.writer, **dict(detector_options or {})
        )
        if console:
            self.detector.add_callback(signal_printer(json_out, self.out))
        # Signals and closed opportunities reach the store in the order the detector saw them.
        self._signals: asyncio.Queue[Signal | TrackedOpportunity | None] = asyncio.Queue()
        self.detector.add_callback(self._signals.put_nowait)
        self.detector.add_opportunity_callback(self._signals.put_nowait)
        self.store = Store(settings.database_path)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.router = Router(self.store, now_ms())
        self._health: Health | None = None
        self._stats: Mapping[str, Any] | None = None
        self.handler = CommandHandler(
            self.store,
            settings,
            detector_config.symbols,
            health_provider=lambda: self._health,
            stats_provider=lambda: self._stats,
        )
        self.telegram: TelegramFrontend | None = None
        self.outbox: Outbox | None = None
        if settings.telegram_bot_token is not None:
            self.telegram = TelegramFrontend(
                settings,
                self.store,
                self.handler,
                clock=now_ms,
                poll_timeout_s=poll_timeout_s or POLL_TIMEOUT_S,
            )
            self.outbox = Outbox(self.store, self.telegram, now_ms, owner=self.owner)
            self.telegram.after_command = self.outbox.wake
        self._router_task: asyncio.Task[None] | None = None
        self._outbox_task: asyncio.Task[None] | None = None
        self._snapshot_task: asyncio.Task[None] | None = None
        self.routed = 0

    async def start(self) -> None:
        """Open the feeds, start routing and delivery, then Telegram polling; undone on failure."""
        if self.telegram is None:
            self.err.write(f"arbwatch: {NO_TOKEN}\n")
        try:
            await self._claim_database()
            await asyncio.to_thread(self.store.prune, now_ms())
            await self.detector.start()
            self._snapshot()
            self._router_task = asyncio.create_task(self._route_loop(), name="router")
            self._snapshot_task = asyncio.create_task(self._snapshot_loop(), name="snapshots")
            if self.outbox is not None and self.telegram is not None:
                self._outbox_task = asyncio.create_task(self.outbox.run(), name="outbox")
                await self.telegram.start()
        except BaseException:
            await self.stop()
            raise
        self.err.write(f"arbwatch: watching {', '.join(self.detector.config.symbols)}\n")
        for problem in self.detector.symbol_problems:
            self.err.write(f"arbwatch: {problem}\n")

    async def stop(self) -> None:
        """Detector first (no new signals), route what was queued, let in-flight sends finish."""
        try:
            await self.detector.stop()
            if self._router_task is not None:
                self._signals.put_nowait(None)
                await self._router_task
            if self.outbox is not None and self._outbox_task is not None:
                self.outbox.stop()
                await self._outbox_task
            if self._snapshot_task is not None:
                self._snapshot_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._snapshot_task
        finally:
            self._router_task = self._outbox_task = self._snapshot_task = None
            if self.telegram is not None:
                await self.telegram.stop()
            with contextlib.suppress(Exception):  # never mask the reason we are stopping
                self.store.deliveries.release_lease(INSTANCE_LEASE, self.owner)
            self.store.close()
            if self.writer is not None:
                self.writer.close()
                self.err.write(
                    f"arbwatch: recorded {self.writer.count} messages to {self.writer.path}\n"
                )

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _route_loop(self) -> None:
        while (signal := await self._signals.get()) is not None:
            if isinstance(signal, TrackedOpportunity):
                try:  # its final duration and peak, for /stats
                    await asyncio.to_thread(self.store.history.record_opportunity, signal)
                except Exception:
                    log.exception("recording opportunity %s failed", signal.id)
                continue
            try:
                plan = await asyncio.to_thread(self.router.dispatch, signal, now_ms())
            except Exception:  # one bad signal (or a full disk) must not stop routing
                log.exception("routing a %s signal failed", signal.type)
                continue
            self.routed += 1
            if plan.recipients and self.outbox is not None:
                self.outbox.wake()

    def _snapshot(self) -> None:
        self._health = self.detector.health()
        self._stats = self.detector.pipeline.aggregator.stats()

    async def _claim_database(self) -> None:
        """Refuse to run beside another instance on the same database (it would double-send)."""
        deliveries = self.store.deliveries
        if await asyncio.to_thread(
            deliveries.acquire_lease, INSTANCE_LEASE, self.owner, now_ms(), INSTANCE_TTL_MS
        ):
            return
        rows = self.store.db.rows("SELECT owner FROM leases WHERE name = ?", [INSTANCE_LEASE])
        holder = rows[0]["owner"] if rows else "unknown"
        raise AlreadyRunning(self.settings.database_path, holder)

    async def _snapshot_loop(self) -> None:
        next_prune = time.monotonic() + PRUNE_EVERY_S
        while True:
            await asyncio.sleep(SNAPSHOT_EVERY_S)
            self._snapshot()
            await asyncio.to_thread(
                self.store.deliveries.acquire_lease,
                INSTANCE_LEASE,
                self.owner,
                now_ms(),
                INSTANCE_TTL_MS,
            )
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
    record_to: Path | None = None,
    health_every_s: float = HEALTH_EVERY_S,
) -> App:
    """Run everything until ``duration_s`` passes, or SIGINT/SIGTERM; stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signals_module.SIGINT, signals_module.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    app = App(
        settings, detector_config, urls, out=out, err=err, json_out=json_out, record_to=record_to
    )
    try:
        async with app:
            deadline = None if duration_s is None else loop.time() + duration_s
            while not stop.is_set():
                timeout = health_every_s
                if deadline is not None:
                    timeout = min(timeout, deadline - loop.time())
                    if timeout <= 0:
                        break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout)
                app.err.write(format_health(app.detector.health()) + "\n")
                app.err.flush()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return app
