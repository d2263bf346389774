"""Discord's wire shapes in the fake Discord server; pure, no I/O.

Deterministic snowflakes and the timestamps inside them, and the user, channel, role, message,
attachment, interaction (with its member), READY and application payloads that discord.py 2.7
parses, with every field it reads.
"""

from __future__ import annotations

import datetime as dtm
from typing import Any

from tests.bot.fakes.fake_discord_rules import ATTACHMENT_SIZE_LIMIT

DISCORD_EPOCH_MS = 1_420_070_400_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Snowflakes:
    """Deterministic snowflakes: one per millisecond from a fixed instant, so ids sort by age."""

    def __init__(self, start: dtm.datetime = dtm.datetime(2025, 1, 1, tzinfo=dtm.UTC)) -> None:
        self._ms = int(start.timestamp() * 1000) - DISCORD_EPOCH_MS

    def next(self) -> int:
        self._ms += 1
        return self._ms << 22


def timestamp_of(snowflake: int | str) -> str:
    """The ISO 8601 time inside a snowflake, as Discord writes message timestamps."""
    ms = (int(snowflake) >> 22) + DISCORD_EPOCH_MS
    return dtm.datetime.fromtimestamp(ms / 1000, dtm.UTC).isoformat()


# payload shapes


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name,
            "avatar": None, "bot": bot, "system": False, "public_flags": 0, "banner": None,
            "accent_color": None, "avatar_decoration_data": None}  # fmt: skip


def dm_channel_payload(channel_id: int, recipient: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(channel_id), "type": 1, "last_message_id": None, "flags": 0,
            "recipients": [recipient]}  # fmt: skip


def guild_channel_payload(channel_id: int, guild_id: int, permissions: int) -> dict[str, Any]:
    # Channels inside interactions (and resolved options) carry the invoker's permissions.
    return {"id": str(channel_id), "type": 0, "guild_id": str(guild_id),
            "name": f"channel-{channel_id}", "position": 0, "parent_id": None, "topic": None,
            "nsfw": False, "rate_limit_per_user": 0, "last_message_id": None, "flags": 0,
            "permission_overwrites": [], "permissions": str(permissions)}  # fmt: skip


def role_payload(role_id: int) -> dict[str, Any]:
    return {"id": str(role_id), "name": f"role-{role_id}", "permissions": "0", "position": 0,
            "color": 0, "hoist": False, "managed": False, "mentionable": True,
            "flags": 0}  # fmt: skip


def message_payload(
    message_id: str,
    channel: dict[str, Any],
    data: dict[str, Any],
    author: dict[str, Any],
    application_id: str,
    answering: dict[str, Any] | None,
) -> dict[str, Any]:
    """A message in the shape discord.py's Message parses (no attachments).

    ``answering``: the interaction_metadata of the interaction the message answers, if any.
    """
    payload: dict[str, Any] = {
        "id": message_id, "channel_id": channel["id"], "type": 0, "author": author,
        "content": data.get("content") or "", "embeds": data.get("embeds") or [],
        "attachments": [], "components": data.get("components") or [],
        "timestamp": timestamp_of(message_id), "edited_timestamp": None, "tts": False,
        "mention_everyone": False, "mentions": [], "mention_roles": [], "pinned": False,
        "flags": int(data.get("flags") or 0),
    }  # fmt: skip
    if "guild_id" in channel:
        payload["guild_id"] = channel["guild_id"]
    if answering is not None:
        # Interaction responses come from the application's webhook; 20 = CHAT_INPUT_COMMAND.
        payload.update(type=20 if answering["type"] == 2 else 0, interaction_metadata=answering)
        payload.update(webhook_id=application_id, application_id=application_id)
    return payload


def attachment_payload(attachment_id: str, filename: str, data: bytes, url: str) -> dict[str, Any]:
    kind = "image/png" if data.startswith(PNG_SIGNATURE) else "application/octet-stream"
    return {"id": attachment_id, "filename": filename, "size": len(data), "url": url,
            "proxy_url": url, "content_type": kind}  # fmt: skip


def interaction_payload(
    interaction_id: int,
    application_id: int,
    kind: int,
    data: dict[str, Any],
    channel: dict[str, Any],
    user: dict[str, Any],
    permissions: int,
    app_permissions: int,
) -> dict[str, Any]:
    """INTERACTION_CREATE data with every field discord.py's Interaction reads."""
    payload: dict[str, Any] = {
        "id": str(interaction_id), "application_id": str(application_id), "type": kind,
        "data": data, "token": f"fake-interaction-token-{interaction_id}", "version": 1,
        "channel_id": channel["id"], "channel": channel, "app_permissions": str(app_permissions),
        "locale": "en-US", "entitlements": [], "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }  # fmt: skip
    guild_id = channel.get("guild_id")
    if guild_id is None:
        # context 1 is the bot's DM; installed to a guild ("0"), but no guild is involved.
        payload.update(user=user, context=1, authorizing_integration_owners={"0": "0"})
        return payload
    member = {"user": user, "roles": [], "joined_at": timestamp_of(interaction_id),
              "permissions": str(permissions), "flags": 0, "nick": None, "avatar": None,
              "banner": None, "premium_since": None, "pending": False, "deaf": False,
              "mute": False, "communication_disabled_until": None}  # fmt: skip
    guild = {"id": guild_id, "locale": "en-US", "features": []}
    payload.update(guild_id=guild_id, guild=guild, guild_locale="en-US", member=member, context=0)
    payload["authorizing_integration_owners"] = {"0": guild_id}
    return payload


def interaction_metadata(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``interaction_metadata`` of messages answering the interaction ``payload``."""
    user = payload.get("member", {}).get("user") or payload.get("user")
    owners = payload["authorizing_integration_owners"]
    return {"id": payload["id"], "type": payload["type"], "user": user,
            "authorizing_integration_owners": owners}  # fmt: skip


def ready_payload(
    user: dict[str, Any], application_id: int, session_id: str, gateway_url: str
) -> dict[str, Any]:
    # No guilds: discord.py then waits only guild_ready_timeout before on_ready.
    return {"v": 10, "user": user, "guilds": [], "session_id": session_id,
            "session_type": "normal", "resume_gateway_url": gateway_url,
            "application": {"id": str(application_id), "flags": 0}, "private_channels": [],
            "relationships": [], "presences": [], "guild_join_requests": [],
            "geo_ordered_rtc_regions": [], "_trace": ["fake-discord-gateway"]}  # fmt: skip


def application_payload(application_id: int, bot: dict[str, Any], owner_id: int) -> dict[str, Any]:
    # interactions_endpoint_url must stay null, or discord.py warns it will get no interactions.
    return {"id": str(application_id), "name": bot["username"], "icon": None,
            "description": "", "summary": "", "bot_public": True, "bot_require_code_grant": False,
            "verify_key": "0" * 64, "flags": 0, "owner": user_payload(owner_id, "owner"),
            "team": None, "bot": bot, "interactions_endpoint_url": None, "redirect_uris": [],
            "tags": []}  # fmt: skip
