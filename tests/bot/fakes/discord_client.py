"""A small discord.py bot in arbwatch's shape, for the fake Discord server's own tests.

Slash commands with a Range, a Choice and autocomplete, a deferred chart with a file, a channel
option, a subcommand group and a button view; the fixtures running it are in
``tests/bot/fakes/conftest.py``.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.app_commands import Choice, Range

from tests.bot.fakes.fake_discord import FakeDiscord

TOKEN = "fake-bot-token"
WAIT_S = 5.0  # bound on every wait; tests never get near it
USER_ID = 111_000_000_000_000_001
GUILD_ID = 222_000_000_000_000_001
CHANNEL_ID = 333_000_000_000_000_001
APP_ID = 700000000000000001
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)  # the content does not matter
# 30 symbols: more than the 25 choices an autocomplete may return.
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"] + [
    f"COIN{n}USDT" for n in range(25)
]


class AlertBot(discord.Client):
    """A small bot in arbwatch's shape: slash commands, autocomplete, deferred charts, buttons."""

    def __init__(self) -> None:
        # guild_ready_timeout=0: discord.py otherwise waits 2 s for GUILD_CREATEs after READY.
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0)
        self.tree = app_commands.CommandTree(self)
        self.ready = asyncio.Event()
        self.resumed = asyncio.Event()
        self.seen: list[tuple[discord.Interaction, dict[str, Any]]] = []
        self.choice_limit = 25
        self.choice_suffix = ""
        add_commands(self)

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_resumed(self) -> None:
        self.resumed.set()


def add_commands(bot: AlertBot) -> None:
    tree = bot.tree

    @tree.command(name="alert", description="Alert me when a spread crosses a threshold")
    @app_commands.describe(symbol="Perpetual", threshold="Spread in %", side="Which side")
    @app_commands.choices(
        side=[Choice(name="Long", value="long"), Choice(name="Short", value="short")]
    )
    async def alert(
        interaction: discord.Interaction,
        symbol: str,
        threshold: Range[float, 0.01, 100.0],
        side: Choice[str],
    ) -> None:
        bot.seen.append((interaction, {"symbol": symbol, "threshold": threshold, "side": side}))
        await interaction.response.send_message(f"{symbol} > {threshold}%", ephemeral=True)

    @alert.autocomplete("symbol")
    async def complete_symbol(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        found = [s for s in SYMBOLS if current.upper() in s]
        return [Choice(name=s + bot.choice_suffix, value=s) for s in found][: bot.choice_limit]

    @tree.command(name="chart", description="Price chart of a perpetual")
    async def chart(interaction: discord.Interaction, symbol: str) -> None:
        bot.seen.append((interaction, {"symbol": symbol}))
        await interaction.response.defer(ephemeral=True, thinking=True)
        png = discord.File(io.BytesIO(PNG), filename="chart.png")
        await interaction.followup.send(f"{symbol} chart", file=png)
        await interaction.followup.send("more", ephemeral=False)
        await interaction.edit_original_response(content=f"{symbol} chart (final)")

    @tree.command(name="watch", description="Post alerts in a channel")
    async def watch(
        interaction: discord.Interaction, channel: app_commands.AppCommandChannel
    ) -> None:
        bot.seen.append((interaction, {"channel": channel}))
        await interaction.response.send_message(f"watching {channel.mention}")

    alerts = app_commands.Group(name="alerts", description="Manage alerts")

    @alerts.command(name="mute", description="Mute a symbol")
    async def mute(interaction: discord.Interaction, symbol: str, minutes: int = 60) -> None:
        bot.seen.append((interaction, {"symbol": symbol, "minutes": minutes}))
        await interaction.response.send_message(f"muted {symbol} for {minutes} min")

    tree.add_command(alerts)


class MuteView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Mute BTCUSDT", custom_id="mute:BTCUSDT")
    async def mute(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.edit_message(content="BTCUSDT muted", view=None)


async def raw(
    fake: FakeDiscord, method: str, path: str, body: Any = None, token: str = TOKEN
) -> tuple[int, Any]:
    """Plain HTTP to the fake, for what discord.py validates before sending."""
    headers = {"Authorization": f"Bot {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{fake.api_url}/{path}", json=body, headers=headers) as response,
    ):
        return response.status, await response.json()
