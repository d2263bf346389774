"""The Discord frontend: discord.py inside arbwatch's event loop, and the outbox's Sender.

The slash commands (:mod:`bot.platforms.discord_commands`) come back here as command text for
the platform-neutral :class:`~bot.commands.CommandHandler`, run in a worker thread (it may
render a chart); ``/alerts`` too, with the channel it was run in and the sender's rights there.
Replies concerning only the caller are ephemeral; ``/stats``, ``/chart`` and ``/status`` answer
in public, their chart attached inside an embed. Button presses (an alert's "Mute 1h") arrive
through ``on_interaction``: their custom id is the command.

Alerts go out as embeds coloured by strength (:mod:`bot.platforms.discord_embeds`), by DM or to
the channel a server admin chose with ``/alerts``; moderate and strong alerts in a channel
mention their subscriber, weak ones mention nobody and arrive silently.
:meth:`DiscordFrontend.send` is the outbox's :class:`~bot.outbox.Sender`: Forbidden (50007: the
user refuses DMs) and NotFound (the channel is gone) deactivate the user, 400 fails the row,
5xx and network errors retry. discord.py waits out per-route 429s itself, up to
``max_ratelimit_timeout``; beyond that its ``RateLimited`` becomes our ``FloodLimited`` and the
outbox paces. :meth:`DiscordFrontend.edit` rewrites a delivered alert when its opportunity
closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import discord
import yarl
from discord import app_commands

from bot.commands import Chart, CommandContext, CommandHandler, Reply
from bot.config import Settings
from bot.errors import Blocked, PermanentSendError
from bot.messages import Button, Text, alert_buttons, bold, discord_messages, line
from bot.pacing import Pacer
from bot.platforms.discord_commands import define_commands
from bot.platforms.discord_embeds import AlertEmbed, alert_embed, broadcast_embed, digest_embed
from bot.platforms.discord_errors import describe, gateway_error, send_errors, start_error
from bot.store import DueDelivery, DueEdit, Platform

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0  # login, command sync and the gateway's READY, before we give up
MAX_RATELIMIT_WAIT_S = 10.0  # longer 429 waits go back to the outbox instead of blocking a send
GUILD_READY_S = 0.5
COMMAND_DRAIN_S = 5.0  # at shutdown, how long commands already running may take to answer
PUBLIC_COMMANDS = frozenset({"stats", "chart", "status"})
"""Replies everyone in the channel may see; every other reply is ephemeral (the caller's)."""
SLOW_COMMANDS = frozenset({"stats", "chart"})
"""Commands that render a chart: deferred first, since Discord wants an answer within 3 s."""
ROUTING_PERMISSIONS = ("administrator", "manage_guild", "manage_channels")

Interaction = discord.Interaction[discord.Client]
_RESTARTING: Text = (line("arbwatch is restarting; please try again in a minute."),)
_FAILED: Text = (line("Something went wrong on our side; the error was logged."),)


def to_discord_embed(embed: AlertEmbed) -> discord.Embed:
    """A ``discord.Embed`` from the pure, already fitted :class:`AlertEmbed`."""
    out = discord.Embed(title=embed.title, description=embed.description, color=embed.color)
    for field in embed.fields:
        out.add_field(name=field.name, value=field.value, inline=field.inline)
    if embed.footer:
        out.set_footer(text=embed.footer)
    if embed.timestamp_ms is not None:
        out.timestamp = datetime.fromtimestamp(embed.timestamp_ms / 1000, tz=UTC)
    return out


def _view(buttons: Sequence[Sequence[Button]]) -> discord.ui.View | None:
    """Buttons whose custom_id is the command they run (pressed: see ``_on_interaction``)."""
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for row, items in enumerate(buttons):
        for b in items:
            view.add_item(discord.ui.Button(label=b.label[:80], custom_id=b.data, row=row % 5))
    return view


def _chart_file(chart: Chart) -> tuple[discord.File, discord.Embed]:
    """The PNG as an attachment, shown inside an embed whose text is the chart's caption."""
    embed = discord.Embed(description=chart.caption[:4096])
    embed.set_image(url=f"attachment://{chart.filename}")
    return discord.File(io.BytesIO(chart.png), filename=chart.filename), embed


class DiscordFrontend:
    """The Discord bot: slash commands in, replies and alerts out (see module doc)."""

    platform = Platform.DISCORD

    def __init__(
        self,
        settings: Settings,
        handler: CommandHandler,
        *,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
        after_command: Callable[[], None] = lambda: None,
        ready_timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        if settings.discord_bot_token is None:
            raise ValueError("DiscordFrontend needs DISCORD_BOT_TOKEN")
        self._token = settings.discord_bot_token.get_secret_value()
        self.api_url = settings.discord_api_base()
        self.gateway_url = settings.discord_gateway()
        self.handler = handler
        self.clock = clock
        self.after_command = after_command
        # Interaction responses have buckets of their own at Discord: replies are not paced.
        self.pacer: Pacer | None = None
        self.ready_timeout_s = ready_timeout_s
        self.client = discord.Client(
            intents=discord.Intents.default(),
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT_S,
            chunk_guilds_at_startup=False,
            member_cache_flags=discord.MemberCacheFlags.none(),
            # After READY discord.py waits this long for guilds to stream in before on_ready;
            # slash commands and sends need no guild cache, so do not hold up the start.
            guild_ready_timeout=GUILD_READY_S,
        )
        self.client.event(self.on_interaction)
        self.tree = app_commands.CommandTree(self.client)
        self.tree.error(self._on_command_error)
        define_commands(self.tree, self)
        self._connection: asyncio.Task[None] | None = None
        self._previous_endpoints: tuple[str, yarl.URL] | None = None
        self._accepting = False
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, register the slash commands, connect to the gateway and wait for READY."""
        self._point_at_endpoints()
        try:
            async with asyncio.timeout(self.ready_timeout_s):
                await self.client.login(self._token)
                commands = await self.tree.sync()
                self._connection = asyncio.create_task(
                    self.client.connect(reconnect=True), name="discord-gateway"
                )
                self._connection.add_done_callback(self._connection_ended)
                ready = asyncio.ensure_future(self.client.wait_until_ready())
                try:
                    await asyncio.wait(
                        [ready, self._connection], return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    ready.cancel()
                if self._connection.done():
                    raise gateway_error(self._connection, self.gateway_url)
        except BaseException as exc:
            # Before closing: whether the gateway step had begun tells which step failed.
            error = start_error(
                exc,
                api_url=self.api_url,
                gateway_url=self.gateway_url,
                waited=f"within {self.ready_timeout_s:g} s",
                connecting=self._connection is not None,
            )
            await self._close_client()
            raise error from None
        self._accepting = True
        user = self.client.user
        log.info("discord: connected as %s, %d slash commands", user, len(commands))

    def _point_at_endpoints(self) -> None:
        """discord.py reads its REST base and gateway from class attributes: set ours."""
        ws = discord.gateway.DiscordWebSocket
        if self._previous_endpoints is None:
            self._previous_endpoints = (discord.http.Route.BASE, ws.DEFAULT_GATEWAY)
        discord.http.Route.BASE = self.api_url
        ws.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

    async def stop_receiving(self) -> None:
        """Answer no new commands; wait (bounded) for the running ones to reply."""
        self._accepting = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(COMMAND_DRAIN_S):
                await self._idle.wait()

    async def close(self) -> None:
        """Close the gateway and the HTTP session; safe to repeat."""
        await self._close_client()

    async def stop(self) -> None:
        await self.stop_receiving()
        await self.close()

    async def _close_client(self) -> None:
        self._accepting = False
        await self.client.close()
        if self._connection is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._connection
            self._connection = None
        if self._previous_endpoints is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = (
                self._previous_endpoints
            )
            self._previous_endpoints = None

    def _connection_ended(self, task: asyncio.Task[None]) -> None:
        # discord.py reconnects by itself; it gives up only on what retrying cannot fix
        # (a revoked token: close code 4004). Say so loudly: /status shows it too.
        # Before READY, start() reports it instead.
        if self._accepting and not task.cancelled() and (exc := task.exception()) is not None:
            log.error("discord: the gateway connection ended: %s", describe(exc))

    @property
    def status(self) -> str:
        """``connected``, ``reconnecting`` (discord.py resumes by itself) or why it stopped."""
        task = self._connection
        if task is None or self.client.is_closed():
            return "stopped"
        if task.done():
            exc = None if task.cancelled() else task.exception()
            return f"disconnected: {describe(exc)}" if exc else "disconnected: gateway closed"
        return "connected" if self.client.is_ready() and self.client.ws else "reconnecting"

    # -- commands -------------------------------------------------------------------------------

    def held_symbols(self, discord_id: str) -> list[str]:
        """The symbols a Discord user subscribed to (for ``/unsubscribe``'s autocomplete)."""
        return self.handler.held_symbols(Platform.DISCORD, discord_id)

    @property
    def symbols(self) -> Sequence[str]:
        return self.handler.symbols

    def _context(self, interaction: Interaction) -> CommandContext:
        """Who ran the command, and in which server channel (``/alerts here`` routes there)."""
        user = interaction.user
        channel = interaction.channel if interaction.guild is not None else None
        return self.handler.context(
            Platform.DISCORD,
            str(user.id),
            str(user.id),
            user.display_name,
            self.clock(),
            channel_id=None if channel is None else str(channel.id),
            channel_name=getattr(channel, "name", None),
            may_manage_chat=any(getattr(interaction.permissions, p) for p in ROUTING_PERMISSIONS),
        )

    async def run_command(self, interaction: Interaction, text: str) -> None:
        """Run one command through the command layer and answer the interaction."""
        if not self._accepting:
            await self._answer_text(interaction, _RESTARTING, ephemeral=True)
            return
        name = text[1:].split(" ", 1)[0]
        public = name in PUBLIC_COMMANDS
        self._busy += 1
        self._idle.clear()
        try:
            if name in SLOW_COMMANDS:
                await interaction.response.defer(ephemeral=not public, thinking=True)
            ctx = self._context(interaction)
            # Commits before the reply; charts render here too: a worker thread keeps the
            # loop (and the gateway's heartbeat) free.
            reply = await asyncio.to_thread(self.handler.handle, text, ctx)
            self.after_command()  # e.g. a /broadcast queued deliveries: wake the outbox
            await self.answer(interaction, reply, ephemeral=reply.ephemeral or not public)
        except discord.HTTPException as exc:
            log.warning("discord: answering /%s failed: %s %s", name, exc.status, exc.text)
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def answer(self, interaction: Interaction, reply: Reply, *, ephemeral: bool) -> None:
        """Send ``reply`` as the interaction's response (and follow-ups past 2000 characters)."""
        chunks = discord_messages(reply.lines) or ["\u200b"]
        view = _view(reply.buttons)
        for n, chunk in enumerate(chunks):
            kwargs: dict[str, Any] = {"content": chunk, "ephemeral": ephemeral}
            if n == len(chunks) - 1:
                if view is not None:
                    kwargs["view"] = view
                if reply.image is not None:
                    kwargs["file"], kwargs["embed"] = _chart_file(reply.image)
            await self._respond(interaction, **kwargs)
        if view is not None:
            view.stop()  # presses come back through on_interaction; keep no per-message state

    async def _answer_text(self, interaction: Interaction, text: Text, *, ephemeral: bool) -> None:
        try:
            await self.answer(interaction, Reply(text), ephemeral=ephemeral)
        except discord.HTTPException as exc:
            log.warning("discord: reply failed: %s %s", exc.status, exc.text)

    @staticmethod
    async def _respond(interaction: Interaction, **kwargs: Any) -> None:
        if interaction.response.is_done():
            await interaction.followup.send(**kwargs)
        else:
            await interaction.response.send_message(**kwargs)

    async def on_interaction(self, interaction: Interaction) -> None:
        """Button presses (an alert's "Mute 1h", a reply's "Unmute"): their id is a command."""
        if interaction.type is not discord.InteractionType.component or not interaction.data:
            return
        custom_id = str(interaction.data.get("custom_id", ""))
        if not custom_id.startswith("/"):
            return
        try:
            await self.run_command(interaction, custom_id)
        except Exception:  # no command tree around a press to catch it: answer here
            log.exception("discord: the button %r failed", custom_id)
            await self._answer_text(interaction, _FAILED, ephemeral=True)

    async def _on_command_error(
        self, interaction: Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.TransformerError | app_commands.CheckFailure):
            text: Text = (line(bold("That value was not accepted: "), str(error)[:300]),)
        else:
            log.error("discord: a command failed", exc_info=error)
            text = _FAILED
        await self._answer_text(interaction, text, ephemeral=True)

    # -- outgoing -------------------------------------------------------------------------------

    async def send(self, delivery: DueDelivery) -> str | None:
        """The outbox's Sender: one alert, digest or broadcast, as an embed, by DM or a channel."""
        now = self.clock()
        if delivery.signal is not None:
            embed = alert_embed(delivery.signal, now)
            view = _view(alert_buttons(delivery.signal))
        elif delivery.digest is not None:
            d = delivery.digest
            embed, view = digest_embed(d.from_ms, d.to_ms, d.signals, d.caught), None
        else:
            embed, view = broadcast_embed(delivery.broadcast_text or ""), None
        kwargs: dict[str, Any] = {"embed": to_discord_embed(embed), "silent": delivery.silent}
        if delivery.channel_id is not None and not delivery.silent:
            # In a shared channel, a notifying alert names its subscriber; nobody else.
            kwargs["content"] = f"<@{delivery.chat_id}>"
            kwargs["allowed_mentions"] = discord.AllowedMentions(
                everyone=False, roles=False, users=[discord.Object(int(delivery.chat_id))]
            )
        else:
            kwargs["allowed_mentions"] = discord.AllowedMentions.none()
        if view is not None:
            kwargs["view"] = view
        try:
            # 403 (50007: DMs refused; 50013: no permission in the channel) and 404 (the
            # channel or user is gone): this user cannot be reached.
            with send_errors(delivery.destination, unreachable=Blocked):
                target = await self._target(delivery)
                message = await target.send(**kwargs)
        finally:
            if view is not None:
                view.stop()
        # Both ids: an edit needs the channel (a DM's is not the user's id).
        return f"{message.channel.id}:{message.id}"

    async def edit(self, edit: DueEdit) -> None:
        """The outbox's closing edit: the alert's embed, greyed, with how it ended."""
        channel_id, _, message_id = edit.message_id.partition(":")
        if not message_id.isdigit() or not channel_id.isdigit():
            raise PermanentSendError(f"no channel recorded with message {edit.message_id}")
        embed = alert_embed(
            edit.signal,
            edit.sent_ms,
            closed_after_ms=edit.closed_after_ms,
            peak_net_pct=edit.peak_net_pct,
        )
        channel = self.client.get_partial_messageable(int(channel_id))
        # 403/404: the message or its channel is gone; nothing to edit, nobody to deactivate.
        with send_errors(edit.destination, unreachable=PermanentSendError):
            await channel.get_partial_message(int(message_id)).edit(embed=to_discord_embed(embed))

    async def _target(self, delivery: DueDelivery) -> discord.abc.Messageable:
        if delivery.channel_id is not None:
            return self.client.get_partial_messageable(int(delivery.channel_id))
        # Cached by discord.py after the first call: one POST users/@me/channels per user.
        return await self.client.create_dm(discord.Object(int(delivery.chat_id)))
