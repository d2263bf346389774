"""The messages the bot produced on the fake Discord server; pure, no I/O.

``DiscordMessage`` is what a test reads back; ``MessageLog`` stores messages as Discord returns
them (create, PATCH-style edit, uploaded attachments for the CDN) and records every one in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.bot.fakes.fake_discord_payloads import (
    Snowflakes,
    attachment_payload,
    message_payload,
    timestamp_of,
)
from tests.bot.fakes.fake_discord_rules import (
    EPHEMERAL,
    LOADING,
    SUPPRESS_NOTIFICATIONS,
    Upload,
    check_message,
)


@dataclass(frozen=True, slots=True)
class DiscordMessage:
    """One message the bot produced (or edited), in the order the fake accepted them."""

    id: str
    channel_id: str  # for interaction replies and followups: the interaction's channel
    kind: str  # "channel", "reply", "followup" or "edit"
    content: str | None
    embeds: list[dict[str, Any]]  # raw embed dicts as sent
    files: list[tuple[str, bytes]]  # (filename, bytes) of the message's attachments
    flags: int
    allowed_mentions: dict[str, Any] | None
    components: list[dict[str, Any]]
    interaction_id: str | None
    payload: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def silent(self) -> bool:
        return bool(self.flags & SUPPRESS_NOTIFICATIONS)

    @property
    def custom_ids(self) -> list[str]:
        """The custom_id of every button and select, row by row."""
        items = [item for row in self.components for item in row.get("components", [])]
        return [item["custom_id"] for item in items if "custom_id" in item]


class MessageLog:
    """Messages as Discord stores and returns them, and the record of every one the bot made."""

    def __init__(
        self,
        ids: Snowflakes,
        author: dict[str, Any],
        application_id: int,
        on_record: Callable[[], None],
    ) -> None:
        self.ids, self.author, self.on_record = ids, author, on_record
        self.application_id = str(application_id)
        self.cdn_url = ""  # where attachment urls point
        self.messages: list[DiscordMessage] = []
        self.payloads: dict[str, dict[str, Any]] = {}  # message id -> message as it reads now
        self.files: dict[str, tuple[str, bytes]] = {}  # attachment id -> (filename, bytes)
        self._mentions: dict[str, dict[str, Any] | None] = {}  # message id -> allowed_mentions

    def create(
        self,
        channel: dict[str, Any],
        data: dict[str, Any],
        uploads: list[Upload],
        kind: str,
        answering: dict[str, Any] | None = None,
        message_id: str | None = None,
    ) -> DiscordMessage:
        """A new message (``answering``: the interaction_metadata of the interaction it answers)."""
        check_message(data, uploads)
        payload = self.payload(channel, data, answering, message_id)
        payload["attachments"] = self._attachments(channel["id"], uploads)
        return self._record(payload, data.get("allowed_mentions"), kind, answering)

    def payload(
        self,
        channel: dict[str, Any],
        data: dict[str, Any],
        answering: dict[str, Any] | None,
        message_id: str | None = None,
    ) -> dict[str, Any]:
        """A message in the shape discord.py's Message parses (no attachments)."""
        message_id = message_id or str(self.ids.next())
        return message_payload(
            message_id, channel, data, self.author, self.application_id, answering
        )

    def edit(
        self,
        old: dict[str, Any],
        data: dict[str, Any],
        uploads: list[Upload],
        answering: dict[str, Any] | None,
    ) -> DiscordMessage:
        """PATCH semantics: fields left out keep their value; ``attachments`` lists those kept."""
        merged = {k: old[k] for k in ("content", "embeds", "components")}
        merged["allowed_mentions"] = self._mentions.get(old["id"])
        for key in merged:
            if key in data:  # an explicit null clears the field
                merged[key] = data[key] if data[key] is not None else type(old.get(key, ""))()
        kept = old["attachments"]
        if "attachments" in data:
            ids = {str(a.get("id")) for a in data["attachments"] or []}
            kept = [a for a in old["attachments"] if a["id"] in ids]
        flags = int(old["flags"]) & ~LOADING  # an edit cannot change ephemerality
        check_message({**merged, "flags": flags, "attachments": kept}, uploads)
        payload = {**old, "content": merged["content"] or "", "embeds": merged["embeds"] or []}
        payload.update(components=merged["components"] or [], flags=flags)
        payload["attachments"] = kept + self._attachments(old["channel_id"], uploads)
        payload["edited_timestamp"] = timestamp_of(self.ids.next())
        return self._record(payload, merged.get("allowed_mentions"), "edit", answering)

    def _attachments(self, channel_id: str, uploads: list[Upload]) -> list[dict[str, Any]]:
        attachments = []
        for upload in uploads:
            attachment_id = str(self.ids.next())
            self.files[attachment_id] = (upload.filename, upload.data)
            url = f"{self.cdn_url}/attachments/{channel_id}/{attachment_id}/{upload.filename}"
            attachments.append(attachment_payload(attachment_id, upload.filename, upload.data, url))
        return attachments

    def _record(
        self,
        payload: dict[str, Any],
        allowed_mentions: dict[str, Any] | None,
        kind: str,
        answering: dict[str, Any] | None,
    ) -> DiscordMessage:
        self.payloads[payload["id"]] = payload
        self._mentions[payload["id"]] = allowed_mentions
        files = [self.files[a["id"]] for a in payload["attachments"]]
        message = DiscordMessage(
            payload["id"], payload["channel_id"], kind, payload["content"] or None,
            list(payload["embeds"]), files, int(payload["flags"]), allowed_mentions,
            list(payload["components"]), answering["id"] if answering else None, payload,
        )  # fmt: skip
        self.messages.append(message)
        self.on_record()
        return message
