"""Bounded waits shared by the bot's end-to-end tests and its fake chat servers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

WAIT_S = 20.0
"""The bound on every wait: generous, since only a broken path should ever reach it."""


class Pulse:
    """Wakes every current waiter; waiters re-check their condition (no polling sleeps)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


async def until(condition: Callable[[], bool], limit_s: float = WAIT_S) -> None:
    """Wait (bounded) for state changed by other tasks or threads (the store is written from
    worker threads, so there is no event to wait on); the bound, not the pace, matters."""
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110 - see the docstring
            await asyncio.sleep(0.02)
