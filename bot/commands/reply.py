"""What a command is given and gives back: a :class:`CommandContext` in, a :class:`Reply` out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.commands.charts import Chart
from bot.messages import Button, Line, Text, code, line, plain_text
from bot.store import Platform


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Who sent a command, where, and when (built by :meth:`CommandHandler.context`).

    The channel fields say where a Discord command was run (``/alerts here`` routes alerts
    there): in a server's channel, and whether the sender may manage it.
    """

    platform: Platform
    chat_id: str
    user_id: str
    user_name: str
    is_admin: bool
    now_ms: int
    is_group: bool = False
    channel_id: str | None = None  # None: a private chat (a Telegram chat, a Discord DM)
    channel_name: str | None = None
    may_manage_channel: bool = False  # Discord: Administrator, Manage Server or Manage Channels


@dataclass(frozen=True, slots=True)
class Reply:
    """What to answer: neutral text (see bot.messages), optional buttons and delivery flags.

    ``image`` is a chart to send after the text, as a picture with its caption. It is rendered
    inside :meth:`CommandHandler.handle`, which every frontend calls via ``asyncio.to_thread``:
    the rendering never blocks the event loop.
    """

    lines: Text
    buttons: tuple[tuple[Button, ...], ...] = ()
    silent: bool = False
    ephemeral: bool = False  # Discord: visible to the caller only
    image: Chart | None = None

    @property
    def text(self) -> str:
        return plain_text(self.lines)


def reply(
    *lines: Line, buttons: tuple[tuple[Button, ...], ...] = (), ephemeral: bool = False
) -> Reply:
    """A reply of these lines."""
    return Reply(tuple(lines), buttons=buttons, ephemeral=ephemeral)


def refuse(command: str) -> Reply:
    """The answer to a non-admin who tried an admin command."""
    return reply(
        line(f"Sorry, {command} is for arbwatch admins only."),
        line("Send ", code("/help"), " to see what you can do."),
        ephemeral=True,
    )


def is_admin(admin_ids: Sequence[str], platform: Platform, user_id: str) -> bool:
    """Whether ``ADMIN_USER_IDS`` names this user ("platform:id", or a bare id on any platform)."""
    return f"{platform.value}:{user_id}" in admin_ids or user_id in admin_ids
