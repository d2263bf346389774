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

    ``is_admin`` is an arbwatch admin (``ADMIN_USER_IDS``); ``may_manage_chat`` says the sender
    administers the shared chat the command came from: a Telegram group's creator or one of its
    administrators, a Discord member with Administrator, Manage Server or Manage Channels. In a
    group the chat is the user: its title is its name, whoever sent the command.
    """

    platform: Platform
    chat_id: str
    user_id: str
    user_name: str
    is_admin: bool
    now_ms: int
    is_group: bool = False
    channel_id: str | None = None  # Discord: the server channel; None in a DM
    channel_name: str | None = None
    may_manage_chat: bool = False
    chat_title: str | None = None  # a Telegram group's title

    @property
    def identity(self) -> tuple[str, str]:
        """(user id, name) the store keeps for this chat: the group itself, or the person."""
        if self.is_group:
            return self.chat_id, self.chat_title or ""
        return self.user_id, self.user_name


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
    rejected: bool = False  # the command was refused or not understood: nothing changed

    @property
    def text(self) -> str:
        return plain_text(self.lines)


def reply(
    *lines: Line,
    buttons: tuple[tuple[Button, ...], ...] = (),
    ephemeral: bool = False,
    rejected: bool = False,
) -> Reply:
    """A reply of these lines."""
    return Reply(tuple(lines), buttons=buttons, ephemeral=ephemeral, rejected=rejected)


def refuse(command: str) -> Reply:
    """The answer to a non-admin who tried an admin command."""
    return reply(
        line(f"Sorry, {command} is for arbwatch admins only."),
        line("Send ", code("/help"), " to see what you can do."),
        ephemeral=True,
        rejected=True,
    )


def is_admin(admin_ids: Sequence[str], platform: Platform, user_id: str) -> bool:
    """Whether ``ADMIN_USER_IDS`` names this user ("platform:id", or a bare id on any platform)."""
    return f"{platform.value}:{user_id}" in admin_ids or user_id in admin_ids
