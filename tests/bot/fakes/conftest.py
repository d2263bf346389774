"""Fixtures for the fake servers' own tests: FakeDiscord with a real discord.py client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.bot.fakes.discord_client import TOKEN, WAIT_S, AlertBot
from tests.bot.fakes.fake_discord import FakeDiscord, point_discord_at


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(TOKEN) as server:
        with point_discord_at(server):
            yield server


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[AlertBot]:
    client = AlertBot()
    try:
        yield client
    finally:
        await client.close()  # closes its aiohttp session even when login failed


@pytest.fixture
async def logged_in(bot: AlertBot) -> AlertBot:
    """Logged in, commands synced; no gateway: enough for REST."""
    await bot.login(TOKEN)
    await bot.tree.sync()
    return bot


@pytest.fixture
async def online(logged_in: AlertBot) -> AsyncIterator[AlertBot]:
    """Also connected to the gateway and ready."""
    connection = asyncio.create_task(logged_in.connect())
    ready = asyncio.create_task(logged_in.ready.wait())
    done, _ = await asyncio.wait({connection, ready}, timeout=WAIT_S, return_when="FIRST_COMPLETED")
    if ready not in done:
        ready.cancel()
        await logged_in.close()
        await connection  # raises what stopped the client
        pytest.fail(f"on_ready not reached within {WAIT_S}s")
    try:
        yield logged_in
    finally:
        await logged_in.close()
        await asyncio.wait_for(connection, WAIT_S)
