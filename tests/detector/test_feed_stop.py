"""A feed's stop() always ends: a connection that does not close is cancelled, a task that
ignores its cancellation is reported with its stack and left behind.

Both are bugs no loopback server can produce, so the connection here is a stand-in that hangs.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from detector import feeds
from detector.clients.rest import BinanceClient
from detector.feeds import BinanceFeed

URL = "ws://127.0.0.1:9"


class HangingConnection:
    """Connection whose stop() never returns, as one stuck in its close would."""

    connected = True
    connects = 1
    reconnects = 0
    last_message_ms: int | None = None
    last_error: str | None = None

    def __init__(self) -> None:
        self.stop_calls = 0

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.stop_calls += 1
        await asyncio.Event().wait()

    async def reconnect(self, reason: str) -> None:
        """Nothing to drop."""


@pytest.fixture(autouse=True)
def quick_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "STOP_WAIT_S", 0.05)


async def test_a_connection_that_does_not_close_is_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed = BinanceFeed(["BTCUSDT"], lambda *args: None, BinanceClient(), URL, lambda: 0.0)
    hanging = HangingConnection()
    feed.connections = [hanging]
    await feed.start()
    run = feed._tasks[0]
    with caplog.at_level(logging.WARNING, logger="detector.feeds"):
        await feed.stop()
    assert hanging.stop_calls == 1
    assert run.cancelled()
    assert "1 connection(s) did not close within 0.05 s; cancelling them" in caplog.text
    assert feed._tasks == [] and feed._repairs == set()


async def test_a_task_that_ignores_its_cancellation_is_reported_and_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed = BinanceFeed(["BTCUSDT"], lambda *args: None, BinanceClient(), URL, lambda: 0.0)
    feed.connections = []
    release = asyncio.Event()

    async def stubborn_repair() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()  # the bug: it goes on after being cancelled

    feed._spawn(stubborn_repair(), "stubborn repair")
    await asyncio.sleep(0)  # the task starts and waits
    with caplog.at_level(logging.ERROR, logger="detector.feeds"):
        await feed.stop()
    assert "binance: a task ignores its cancellation; left behind" in caplog.text
    assert "stubborn_repair" in caplog.text  # its stack says where it waits
    release.set()
