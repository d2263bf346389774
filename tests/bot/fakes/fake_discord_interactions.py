"""Interactions on the fake Discord server, and the REST endpoints where the bot answers them.

``Interaction`` is one INTERACTION_CREATE the fake dispatched and how the bot answered it;
``Answers`` serves the callback (reply, defer, update, autocomplete result, modal), followups
and GET/PATCH of the original response or a followup, as Discord accepts them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tests.bot.fakes.fake_discord_gateway import WAIT_S
from tests.bot.fakes.fake_discord_http import Call, message_body
from tests.bot.fakes.fake_discord_messages import DiscordMessage, MessageLog
from tests.bot.fakes.fake_discord_payloads import interaction_metadata
from tests.bot.fakes.fake_discord_rules import (
    ALREADY_ACKNOWLEDGED,
    EPHEMERAL,
    LOADING,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    ApiError,
    Upload,
    check_autocomplete,
    form_error,
)
from tests.bot.waits import Pulse

if TYPE_CHECKING:
    from tests.bot.fakes.fake_discord import FakeDiscord

_CALLBACK_TYPES = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}}  # interaction type -> answers


class RejectedAnswer(Exception):
    """The fake refused the bot's answer to an interaction (e.g. 26 autocomplete choices)."""

    def __init__(self, interaction: Interaction, error: dict[str, Any]) -> None:
        super().__init__(f"the answer to {interaction.name!r} was rejected: {error}")
        self.error = error


class Interaction:
    """One interaction the fake dispatched, and how the bot answered it."""

    def __init__(self, owner: FakeDiscord, payload: dict[str, Any], name: str) -> None:
        self.id: str = payload["id"]
        self.token: str = payload["token"]
        self.name = name
        self.type: int = payload["type"]  # 2 command, 3 component, 4 autocomplete
        self.payload = payload  # the INTERACTION_CREATE data, as dispatched
        self.channel: dict[str, Any] = payload["channel"]
        self.metadata = interaction_metadata(payload)
        self.callback: dict[str, Any] | None = None
        self.rejections: list[dict[str, Any]] = []
        self.original_id: str | None = None  # what webhooks/.../messages/@original means
        self.loading = False  # a deferred "thinking..." message the first followup replaces
        self.focused_type: int | None = None
        self._owner = owner
        self._pulse = Pulse()

    def __repr__(self) -> str:
        return f"<Interaction {self.id} {self.name!r} type={self.type} callback={self.callback}>"

    async def answered(self, timeout: float = WAIT_S) -> dict[str, Any]:  # noqa: ASYNC109
        """The callback body once the bot answered; raises RejectedAnswer if it was refused."""
        try:
            async with asyncio.timeout(timeout):
                while self.callback is None:
                    if self.rejections:
                        raise RejectedAnswer(self, self.rejections[-1])
                    await self._pulse.wait()
        except TimeoutError:
            raise TimeoutError(f"the bot did not answer {self.name!r} within {timeout}s") from None
        return self.callback

    def messages(self) -> list[DiscordMessage]:
        """The reply, followups and edits of this interaction, in order."""
        return [m for m in self._owner.messages if m.interaction_id == self.id]

    async def wait_messages(self, n: int, timeout: float = WAIT_S) -> list[DiscordMessage]:  # noqa: ASYNC109
        return await self._owner.wait_for_count(lambda m: m.interaction_id == self.id, n, timeout)

    def _settle(self, callback: dict[str, Any] | None, rejection: dict[str, Any] | None) -> None:
        if callback is not None:
            self.callback = callback
        if rejection is not None:
            self.rejections.append(rejection)
        self._pulse.fire()


class Answers:
    """The interactions dispatched so far, and the bot's answers to them."""

    def __init__(self, log: MessageLog, application_id: int) -> None:
        self.dispatched: list[Interaction] = []
        self._by_key: dict[str, Interaction] = {}  # by id and by token
        self._log = log
        self._application_id = application_id

    def add(self, interaction: Interaction) -> None:
        self.dispatched.append(interaction)
        self._by_key[interaction.id] = self._by_key[interaction.token] = interaction

    async def callback(self, call: Call) -> dict[str, Any]:
        interaction = self._by_key.get(call.params["id"])
        if interaction is None or interaction.token != call.params["token"]:
            raise ApiError(404, UNKNOWN_INTERACTION, "Unknown interaction")
        if interaction.callback is not None:
            raise ApiError(400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        body = call.body if isinstance(call.body, dict) else {}
        try:
            message = self._respond(interaction, body, call.uploads)
        except ApiError as err:
            interaction._settle(None, err.body())
            raise
        interaction._settle(body, None)
        # discord.py 2.7 asks ?with_response=1 and builds its InteractionCallbackResponse
        # (and the InteractionMessage of resource.message) from this.
        answer: dict[str, Any] = {"interaction": {
            "id": interaction.id, "type": interaction.type, "activity_instance_id": None,
            "response_message_id": message and message["id"],
            "response_message_loading": body.get("type") == 5,
            "response_message_ephemeral": bool(message and message["flags"] & EPHEMERAL),
        }}  # fmt: skip
        if message is not None:
            answer["resource"] = {"type": body.get("type"), "message": message}
        return answer

    def _respond(
        self, interaction: Interaction, body: dict[str, Any], uploads: list[Upload]
    ) -> dict[str, Any] | None:
        """Apply a callback (4 reply, 5 deferred reply, 6 deferred update, 7 update, 8
        autocomplete result, 9 modal); return the message it created or changed, if any."""
        kind, data = body.get("type"), message_body(body.get("data"))
        if kind not in _CALLBACK_TYPES[interaction.type]:
            raise form_error(["type"], "INTERACTION_RESPONSE_TYPE_INVALID")
        channel, answering = interaction.channel, interaction.metadata
        if kind == 8:
            check_autocomplete(data, interaction.focused_type)
        elif kind == 4:
            message = self._log.create(channel, data, uploads, "reply", answering)
            interaction.original_id = message.id
            return message.payload
        elif kind == 5:
            # A "thinking..." placeholder; its ephemerality is fixed now, whatever comes later.
            flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            payload = self._log.payload(channel, {"flags": flags}, answering)
            self._log.payloads[payload["id"]] = payload
            interaction.original_id, interaction.loading = payload["id"], True
            return payload
        elif kind == 7:
            old = self._log.payloads[str(interaction.original_id)]
            return self._log.edit(old, data, uploads, answering).payload
        return None

    def _webhook(self, call: Call) -> tuple[Interaction, dict[str, Any] | None]:
        """The interaction behind a followup webhook, and the message named in the path."""
        interaction = self._by_key.get(call.params["token"])
        # Until the interaction is acknowledged its webhook does not exist.
        if interaction is None or interaction.callback is None or interaction.type == 4:
            raise ApiError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")
        if call.params["app"] != str(self._application_id):
            raise ApiError(404, UNKNOWN_WEBHOOK, "Unknown Webhook")
        if "message" not in call.params:
            return interaction, None
        message_id = call.params["message"]
        message_id = interaction.original_id if message_id == "@original" else message_id
        own = {interaction.original_id, *(m.id for m in interaction.messages())}
        if message_id not in own or message_id not in self._log.payloads:
            raise ApiError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return interaction, self._log.payloads[str(message_id)]

    async def followup(self, call: Call) -> dict[str, Any] | None:
        interaction, _ = self._webhook(call)
        data, message_id = message_body(call.body), None
        if interaction.loading:
            # The first followup after a deferred reply becomes that reply: same id, and the
            # ephemerality chosen at defer time (the followup's own ephemeral flag is ignored).
            message_id = interaction.original_id
            loading_flags = self._log.payloads[str(message_id)]["flags"]
            flags = (int(data.get("flags") or 0) & ~EPHEMERAL) | (loading_flags & EPHEMERAL)
            data = {**data, "flags": flags}
        message = self._log.create(
            interaction.channel, data, call.uploads, "followup", interaction.metadata, message_id
        )
        interaction.loading = False
        # discord.py asks wait=1 for interaction webhooks; without it Discord answers 204.
        return message.payload if call.query.get("wait") in ("1", "true", "True") else None

    async def get_message(self, call: Call) -> dict[str, Any] | None:
        return self._webhook(call)[1]

    async def edit_message(self, call: Call) -> dict[str, Any]:
        interaction, old = self._webhook(call)
        assert old is not None  # the route always names a message
        data = message_body(call.body)
        message = self._log.edit(old, data, call.uploads, interaction.metadata)
        if message.id == interaction.original_id:
            interaction.loading = False
        return message.payload
