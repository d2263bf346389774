"""Discord's slash commands: typed options that turn back into arbwatch's command text.

Each command is declared with discord.py's ``app_commands`` (a ``Range`` for the threshold,
choices for strength, signal type, venue and destination, autocomplete for symbols, periods and
durations) and rebuilt as the text the platform-neutral command layer parses, so Telegram and
Discord share every rule and every error message. :func:`define_commands` registers them on a
``CommandTree``; the :class:`SlashHost` (the Discord frontend) runs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import discord
from discord import app_commands

from bot.messages import VENUES, venue_name
from bot.store import ALL_SYMBOLS
from detector.signals import SignalStrength, SignalType

Interaction = discord.Interaction[discord.Client]
Choice = app_commands.Choice

AUTOCOMPLETE_LIMIT = 25  # Discord shows at most 25 choices
PERIODS = ("1h", "6h", "24h", "7d", "30d")
DURATIONS = ("15m", "30m", "1h", "2h", "8h", "1d", "7d")
STRENGTHS = [Choice(name=f"{s.value} and stronger", value=s.value) for s in SignalStrength]
TYPE_CHOICES = [
    Choice(name="all types", value="all"),
    *(Choice(name=t.value.replace("_", " "), value=t.value) for t in SignalType),
    Choice(name="my default types (with a symbol)", value="default"),
]
VENUE_CHOICES = [Choice(name=venue_name(v), value=v) for v in VENUES]
VENUES_CHOICES = [Choice(name="all venues", value="all"), *VENUE_CHOICES]
DESTINATIONS = [
    Choice(name="direct messages", value="dm"),
    Choice(name="this channel (server admins)", value="here"),
]


class SlashHost(Protocol):
    """What the commands need from the frontend."""

    @property
    def symbols(self) -> Sequence[str]: ...

    def held_symbols(self, discord_id: str) -> list[str]: ...

    async def run_command(self, interaction: Interaction, text: str) -> None: ...


def define_commands(tree: app_commands.CommandTree[discord.Client], host: SlashHost) -> None:
    """Register every slash command on ``tree``; ``host`` runs them."""
    run = host.run_command

    async def complete_symbol(interaction: Interaction, current: str) -> list[Choice[str]]:
        command = interaction.command
        with_all = command is not None and command.name in ("subscribe", "types")
        return _matching([*([ALL_SYMBOLS] if with_all else []), *host.symbols], current)

    async def complete_subscription(interaction: Interaction, current: str) -> list[Choice[str]]:
        held = await asyncio.to_thread(host.held_symbols, str(interaction.user.id))
        return _matching([*held, ALL_SYMBOLS] if held else list(host.symbols), current)

    async def complete_period(interaction: Interaction, current: str) -> list[Choice[str]]:
        return _matching(PERIODS, current)

    async def complete_duration(interaction: Interaction, current: str) -> list[Choice[str]]:
        return _matching(DURATIONS, current)

    @tree.command(name="help", description="What arbwatch does, and its commands")
    async def help_(interaction: Interaction) -> None:
        await run(interaction, "/help")

    @tree.command(name="subscribe", description="Alert me when arbitrage reaches a net %")
    @app_commands.describe(
        symbol="A watched symbol, or ALL for every one",
        threshold="Net profit after both taker fees, in percent (e.g. 0.15)",
        strength="Other signal types: from this strength (default weak)",
    )
    @app_commands.choices(strength=STRENGTHS)
    async def subscribe(
        interaction: Interaction,
        symbol: str,
        threshold: app_commands.Range[float, 0.001, 100.0],
        strength: str | None = None,
    ) -> None:
        text = f"/subscribe {symbol} {_number(threshold)}"
        await run(interaction, text + (f" {strength}" if strength else ""))

    @tree.command(name="unsubscribe", description="Stop alerts for a symbol, or ALL")
    @app_commands.describe(symbol="One of your subscriptions, or ALL")
    async def unsubscribe(interaction: Interaction, symbol: str) -> None:
        await run(interaction, f"/unsubscribe {symbol}")

    @tree.command(name="list", description="Your subscriptions and settings")
    async def list_(interaction: Interaction) -> None:
        await run(interaction, "/list")

    @tree.command(name="types", description="Choose which signal types you receive")
    @app_commands.describe(
        type="A signal type, or all",
        type2="Another type",
        type3="A third type",
        symbol="Only for this subscription (default: all of yours)",
    )
    @app_commands.choices(type=TYPE_CHOICES, type2=TYPE_CHOICES, type3=TYPE_CHOICES)
    async def types(
        interaction: Interaction,
        type: str,  # the option's name as users see it
        type2: str | None = None,
        type3: str | None = None,
        symbol: str | None = None,
    ) -> None:
        chosen = " ".join(t for t in (type, type2, type3) if t)
        await run(interaction, f"/types {symbol} {chosen}" if symbol else f"/types {chosen}")

    @tree.command(name="venues", description="Choose the venues you trade on (default: all)")
    @app_commands.describe(
        venue="A venue you trade on, or all venues (leave out to see your choice)",
        venue2="Another venue",
        venue3="A third venue",
    )
    @app_commands.choices(venue=VENUES_CHOICES, venue2=VENUE_CHOICES, venue3=VENUE_CHOICES)
    async def venues(
        interaction: Interaction,
        venue: str | None = None,
        venue2: str | None = None,
        venue3: str | None = None,
    ) -> None:
        await run(interaction, " ".join(v for v in ("/venues", venue, venue2, venue3) if v))

    @tree.command(name="mute", description="Pause alerts (all, or one symbol's)")
    @app_commands.describe(symbol="Only this symbol", duration="e.g. 30m, 2h, 1d (default 1h)")
    async def mute(
        interaction: Interaction, symbol: str | None = None, duration: str | None = None
    ) -> None:
        await run(interaction, " ".join(p for p in ("/mute", symbol, duration) if p))

    @tree.command(name="unmute", description="Resume alerts")
    @app_commands.describe(symbol="Only this symbol")
    async def unmute(interaction: Interaction, symbol: str | None = None) -> None:
        await run(interaction, f"/unmute {symbol}" if symbol else "/unmute")

    @tree.command(name="digest", description="One message per period instead of each alert")
    @app_commands.describe(period="e.g. 5m, 1h; off: each alert as it happens again")
    async def digest(interaction: Interaction, period: str | None = None) -> None:
        await run(interaction, f"/digest {period}" if period else "/digest")

    @tree.command(name="stats", description="How the detector performed, with a chart")
    @app_commands.describe(symbol="One symbol (default: all)", period="e.g. 1h, 24h, 7d")
    async def stats(
        interaction: Interaction, symbol: str | None = None, period: str | None = None
    ) -> None:
        await run(interaction, " ".join(p for p in ("/stats", symbol, period) if p))

    @tree.command(name="chart", description="A symbol's price gap between two venues over time")
    @app_commands.describe(
        symbol="A watched symbol",
        period="e.g. 1h, 24h, 7d (default 24h)",
        venue="The first venue: the gap is in % of its price (default Binance)",
        venue2="The second venue: the gap is its price minus the first's (default Bybit)",
    )
    @app_commands.choices(venue=VENUE_CHOICES, venue2=VENUE_CHOICES)
    async def chart(
        interaction: Interaction,
        symbol: str,
        period: str | None = None,
        venue: str | None = None,
        venue2: str | None = None,
    ) -> None:
        await run(interaction, " ".join(p for p in ("/chart", symbol, period, venue, venue2) if p))

    @tree.command(name="status", description="Live health of the exchange feeds")
    @app_commands.describe(symbol="One symbol's books (default: the summary)")
    async def status(interaction: Interaction, symbol: str | None = None) -> None:
        await run(interaction, f"/status {symbol}" if symbol else "/status")

    @tree.command(name="alerts", description="Where your alerts go: DMs, or this channel")
    @app_commands.describe(to="Direct messages, or this channel (server admins only)")
    @app_commands.choices(to=DESTINATIONS)
    async def alerts(interaction: Interaction, to: str) -> None:
        await run(interaction, f"/alerts {to}")

    # Hidden in servers from members without Administrator; the command layer still checks
    # ADMIN_USER_IDS and answers only in a DM.
    @tree.command(name="users", description="Admins: users, subscriptions, pending alerts")
    @app_commands.default_permissions(administrator=True)
    async def users(interaction: Interaction) -> None:
        await run(interaction, "/users")

    @tree.command(name="broadcast", description="Admins: send a message to every user")
    @app_commands.default_permissions(administrator=True)
    @app_commands.describe(text="The announcement (up to 1000 characters)")
    async def broadcast(interaction: Interaction, text: app_commands.Range[str, 1, 1000]) -> None:
        await run(interaction, f"/broadcast {text}")

    for command, param in (
        (subscribe, "symbol"),
        (types, "symbol"),
        (mute, "symbol"),
        (unmute, "symbol"),
        (stats, "symbol"),
        (chart, "symbol"),
        (status, "symbol"),
    ):
        command.autocomplete(param)(complete_symbol)
    unsubscribe.autocomplete("symbol")(complete_subscription)
    stats.autocomplete("period")(complete_period)
    chart.autocomplete("period")(complete_period)
    mute.autocomplete("duration")(complete_duration)


def _number(value: float) -> str:
    """A threshold as the command layer reads it (never in exponent notation)."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _matching(options: Sequence[str], current: str) -> list[Choice[str]]:
    """Autocomplete: options containing what was typed, prefix matches first, at most 25."""
    typed = current.strip().upper()
    hits = [o for o in options if typed in o.upper()]
    # A stable sort keeps the options' order within each group: one pass, even over the whole
    # market (options.index() in the key was quadratic: 400 symbols, 160,000 steps a keystroke).
    hits.sort(key=lambda o: not o.upper().startswith(typed))
    return [Choice(name=o, value=o) for o in hits[:AUTOCOMPLETE_LIMIT]]
