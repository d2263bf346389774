"""What the fake Discord server stores: users, channels and application commands; pure, no I/O.

``Directory`` holds every user and channel the fake has seen: a user's one DM channel with the
bot, and guild text channels made up on first sight. ``CommandRegistry`` keeps the commands of
bulk overwrites, globally and per guild, with ids that survive overwrites as on Discord.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.bot.fakes.fake_discord_payloads import (
    Snowflakes,
    dm_channel_payload,
    guild_channel_payload,
    role_payload,
    user_payload,
)
from tests.bot.fakes.fake_discord_rules import (
    CHANNEL,
    ROLE,
    UNKNOWN_CHANNEL,
    ApiError,
    CommandUsageError,
    find_command,
)

DEFAULT_GUILD_ID = 720_000_000_000_000_001  # the guild of a channel the fake never saw
# Where a guild's interactions happen unless told: this for the first guild, then +1, +2...
GUILD_CHANNEL_ID = 720_000_000_000_000_002
# VIEW_CHANNEL, SEND_MESSAGES, EMBED_LINKS, ATTACH_FILES, READ_MESSAGE_HISTORY: an alert bot's.
APP_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16)


@dataclass(frozen=True, slots=True)
class Origin:
    """Who acts, and where."""

    user_id: int
    user_name: str
    guild_id: int | None
    channel_id: int | None
    permissions: int


class Directory:
    """Users and channels, as GET users/channels and interactions show them."""

    def __init__(self, ids: Snowflakes, bot_user: dict[str, Any]) -> None:
        self.deleted: set[int] = set()  # channels that answer 404 from now on
        self._ids = ids
        self._users: dict[int, dict[str, Any]] = {int(bot_user["id"]): bot_user}
        self._channels: dict[int, dict[str, Any]] = {}
        # user id -> their DM channel with the bot, opened by the bot or used by the user: one
        # channel either way, as on Discord.
        self._dms: dict[int, int] = {}
        self._default_channels: dict[int, int] = {}  # guild id -> where its interactions happen

    def known_user(self, user_id: int) -> dict[str, Any] | None:
        return self._users.get(user_id)

    def user(self, user_id: int, name: str | None) -> dict[str, Any]:
        if user_id not in self._users or name is not None:
            self._users[user_id] = user_payload(user_id, name or f"user{user_id}")
        return self._users[user_id]

    def dm_channel(
        self, user_id: int, name: str | None, channel_id: int | None = None
    ) -> dict[str, Any]:
        user = self.user(user_id, name)
        channel_id = self._dms.setdefault(user_id, channel_id or self._ids.next())
        self._channels[channel_id] = dm_channel_payload(channel_id, user)
        return self._channels[channel_id]

    def channel(self, channel_id: int, guild_id: int | None = None) -> dict[str, Any]:
        """A known channel; one never seen is a text channel of ``guild_id`` (or the default)."""
        if channel_id in self.deleted:
            raise ApiError(404, UNKNOWN_CHANNEL, "Unknown Channel")
        if channel_id not in self._channels:
            guild = guild_id or DEFAULT_GUILD_ID
            self._channels[channel_id] = guild_channel_payload(channel_id, guild, APP_PERMISSIONS)
        return self._channels[channel_id]

    def interaction_channel(self, origin: Origin) -> dict[str, Any]:
        """The channel of an interaction from ``origin``, with the member's permissions in it."""
        if origin.guild_id is None:
            return self._dm_channel_of(origin)
        default = self._default_channels.setdefault(
            origin.guild_id, GUILD_CHANNEL_ID + len(self._default_channels)
        )
        channel = dict(self.channel(origin.channel_id or default, origin.guild_id))
        if channel.get("guild_id") != str(origin.guild_id):
            raise CommandUsageError(f"channel {channel['id']} is not in guild {origin.guild_id}")
        channel["permissions"] = str(origin.permissions)  # the member's, in this channel
        return channel

    def _dm_channel_of(self, origin: Origin) -> dict[str, Any]:
        wanted, known = origin.channel_id, self._dms.get(origin.user_id)
        if wanted is not None and wanted != known and (known or wanted in self._channels):
            raise CommandUsageError(f"channel {wanted} is not the DM of user {origin.user_id}")
        return self.dm_channel(origin.user_id, origin.user_name, wanted)

    def resolver(self, guild_id: int | None) -> Callable[[int, int], dict[str, Any]]:
        """Resolves USER, CHANNEL and ROLE option values as seen from ``guild_id``."""

        def resolve(kind: int, snowflake: int) -> dict[str, Any]:
            if kind == CHANNEL:
                channel = self.channel(snowflake, guild_id)
                if channel["type"] == 1:
                    raise CommandUsageError(f"channel {snowflake} is a DM, not a guild channel")
                return channel
            return role_payload(snowflake) if kind == ROLE else self.user(snowflake, None)

        return resolve


class CommandRegistry:
    """Registered application commands as Discord answers them; guild None means global."""

    def __init__(self, ids: Snowflakes, application_id: int) -> None:
        self._ids = ids
        self._application_id = application_id
        self._registered: dict[int | None, list[dict[str, Any]]] = {}  # as answered, with ids
        self._command_ids: dict[tuple[int | None, int, str], str] = {}

    def overwrite(self, guild: int | None, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A bulk overwrite of already validated ``commands``; returns them as registered."""
        version, registered = str(self._ids.next()), []
        for command in commands:
            kind = int(command.get("type") or 1)
            # Discord keeps a command's id across overwrites that keep its name and type.
            key = (guild, kind, str(command["name"]))
            command_id = self._command_ids.setdefault(key, str(self._ids.next()))
            answer = {"default_member_permissions": None, "nsfw": False, "options": [], **command}
            answer.update(id=command_id, application_id=str(self._application_id), type=kind)
            answer.update(version=version, description=command.get("description") or "")
            if guild is not None:
                answer["guild_id"] = str(guild)
            registered.append(answer)
        self._registered[guild] = registered
        return registered

    def registered(self, guild: int | None) -> list[dict[str, Any]]:
        return self._registered.get(guild, [])

    def find(self, name: str, guild_id: int | None) -> tuple[dict[str, Any], bool]:
        """The slash command a user in ``guild_id`` runs as /name, and whether it is the guild's."""
        guild_command = find_command(self._registered.get(guild_id, []), name) if guild_id else None
        command = guild_command or find_command(self._registered.get(None, []), name)
        if command is None:
            known = sorted({c["name"] for cs in self._registered.values() for c in cs})
            raise CommandUsageError(f"/{name} was never registered; registered: {known}")
        return command, guild_command is not None
