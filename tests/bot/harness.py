"""A chat frontend with the real store, router and outbox but no detector: tests route alerts
by hand. Used by the Telegram and Discord end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from bot.app import App, now_ms
from bot.commands import CommandHandler
from bot.config import Settings
from bot.outbox import Outbox
from bot.pacing import Limits
from bot.routing import Router
from bot.store import Store
from detector.signals import SignalStrength
from detector.simulator.scenarios import Scenario
from detector.simulator.server import SimulatorServer
from tests.bot.factories import arbitrage

QUIET = Scenario("quiet", "nothing happens", 60.0, ())


@asynccontextmanager
async def quiet_market(symbols: Sequence[str]) -> AsyncIterator[Callable[..., App]]:
    """A loopback exchange listing ``symbols`` where nothing happens; yields
    ``make(settings, **options)``: an App (not started) watching it with those settings."""
    async with SimulatorServer(QUIET, symbols=symbols, seed=5) as server:

        def make(settings: Settings, **options: Any) -> App:
            return App(settings, settings.detector_config(), server.urls.feed_urls(), **options)

        yield make


class Harness:
    """``async with Harness(settings, make_frontend)``: started, then stopped in order."""

    def __init__(
        self,
        settings: Settings,
        make_frontend: Callable[[CommandHandler], Any],
        *,
        owner: str = "harness",
        limits: Limits | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.clock = clock  # the outbox's and routing's; a test may move it ahead
        self.store = Store(settings.database_path)
        self.router = Router(self.store, clock())
        handler = CommandHandler(self.store, settings, settings.symbols)
        self.frontend = make_frontend(handler)
        self.outbox = Outbox(self.store, self.frontend, clock, owner=owner, limits=limits)
        self.frontend.after_command = self.outbox.wake  # as App wires it
        self.frontend.pacer = self.outbox.pacer
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Harness:
        await self.frontend.start()
        self._task = asyncio.create_task(self.outbox.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.outbox.stop()
        assert self._task is not None
        await self._task
        await self.frontend.stop()
        self.store.close()

    def add_user(self, chat: int, threshold: float = 0.1) -> int:
        """A user of the frontend's platform subscribed to BTCUSDT; returns the store's id."""
        user = self.store.register(self.frontend.platform, str(chat), str(chat), "u", now_ms())
        self.store.subscribe(user.id, "BTCUSDT", threshold, SignalStrength.WEAK, now_ms(), limit=50)
        return user.id

    def add_users(self, chats: list[int], threshold: float = 0.1) -> None:
        for chat in chats:
            self.add_user(chat, threshold)

    def alert(
        self, net: float = 0.25, *, episodes: int = 1, direction: str = "buy_binance_sell_bybit"
    ) -> int:
        """Route ``episodes`` fresh arbitrage episodes at ``net`` %; returns deliveries queued."""
        queued = 0
        for n in range(episodes):
            now = self.clock()
            signal = arbitrage(net, timestamp=now, opened_ms=now + n, direction=direction)
            queued += len(self.router.dispatch(signal, now).recipients)
        self.outbox.wake()
        return queued

    def statuses(self) -> dict[str, int]:
        rows = self.store.db.rows("SELECT status, count(*) AS n FROM deliveries GROUP BY status")
        return {r["status"]: r["n"] for r in rows}
