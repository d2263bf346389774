"""A fake Discord REST API and gateway on 127.0.0.1 that the real discord.py 2.7 client runs on.

``FakeDiscord`` serves what arbwatch's Discord frontend uses: login (users/@me,
oauth2/applications/@me), global and guild command sync, DM channels, channel messages (JSON, or
multipart with files), interaction callbacks (reply, defer, update, autocomplete), followups and
edits of the original response, GET channels and users, and a gateway that says HELLO, answers
IDENTIFY with READY, ACKs heartbeats, RESUMEs and dispatches INTERACTION_CREATE. A test acts as
users (``slash``, ``autocomplete``, ``press``), reads what the bot did (``messages``,
``wait_for``, ``commands``, ``requests``, ``rejected``) and injects Discord's failures
(``fail_next`` with real-looking 429s, ``refuse_dms``, ``reject_token``, ``delete_channel``) on
top of the 400s of ``fake_discord_rules``. ``point_discord_at`` aims discord.py at it.

This module holds the facade, its REST handlers for users, channels, commands and messages, and
the dispatch of interactions. Beside it: ``fake_discord_gateway`` (the websocket),
``fake_discord_http`` (routing, auth, injected faults, bodies, headers), ``fake_discord_state``
(stored users, channels, commands), ``fake_discord_interactions`` (the bot's answers),
``fake_discord_messages`` (the message log), ``fake_discord_payloads`` (wire shapes) and
``fake_discord_rules`` (Discord's validation and error bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import Callable, Iterator
from typing import Any

import discord
import yarl
from aiohttp import web

from tests.bot.fakes.fake_discord_gateway import WAIT_S, Gateway
from tests.bot.fakes.fake_discord_http import Call, Handler, RestApi, message_body
from tests.bot.fakes.fake_discord_interactions import Answers, Interaction, RejectedAnswer
from tests.bot.fakes.fake_discord_messages import DiscordMessage, MessageLog
from tests.bot.fakes.fake_discord_payloads import (
    Snowflakes,
    application_payload,
    interaction_payload,
    ready_payload,
    user_payload,
)
from tests.bot.fakes.fake_discord_rules import (
    ATTACHMENT_SIZE_LIMIT,
    CANNOT_DM,
    MISSING_ACCESS,
    UNKNOWN_MESSAGE,
    UNKNOWN_USER,
    ApiError,
    CommandUsageError,
    build_options,
    check_commands,
    form_error,
)
from tests.bot.fakes.fake_discord_state import APP_PERMISSIONS, CommandRegistry, Directory, Origin
from tests.bot.waits import Pulse

__all__ = [
    "CommandUsageError",
    "DiscordMessage",
    "FakeDiscord",
    "Interaction",
    "RejectedAnswer",
    "point_discord_at",
]

OWNER_ID = 700_000_000_000_000_009
_COMMANDS = r"applications/(?P<app>\d+)(/guilds/(?P<guild>\d+))?/commands"
_WEBHOOK = r"webhooks/(?P<app>\d+)/(?P<token>[^/]+)"
_WEBHOOK_MESSAGE = _WEBHOOK + r"/messages/(?P<message>@original|\d+)"


class FakeDiscord:
    """A loopback Discord for one bot token; see the module docstring."""

    def __init__(
        self,
        token: str,
        *,
        application_id: int = 700000000000000001,
        bot_user_id: int = 700000000000000002,
        bot_name: str = "arbwatch",
    ) -> None:
        self.token, self.application_id, self.bot_user_id = token, application_id, bot_user_id
        self.bot_user = user_payload(bot_user_id, bot_name, bot=True)
        self.bot_user.update(verified=True, mfa_enabled=False, flags=0, locale="en-US")
        self.api_url = ""  # set by start(): http://127.0.0.1:PORT/api/v10
        self.gateway_url = ""  # ws://127.0.0.1:PORT/gateway
        self.commands: list[dict[str, Any]] = []  # the last global PUT body, raw
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}  # the same, per guild
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel the bot opened (POST)
        self._ids = Snowflakes()
        self._messages_pulse = Pulse()
        self._log = MessageLog(self._ids, self.bot_user, application_id, self._messages_pulse.fire)
        self.messages: list[DiscordMessage] = self._log.messages
        self._token_ok = True
        self._refused: set[int] = set()
        self._directory = Directory(self._ids, self.bot_user)
        self._commands = CommandRegistry(self._ids, application_id)
        self._gateway = Gateway(self._accepts, self._ready)
        self.identified = self._gateway.identified  # set at the first READY
        self._answers = Answers(self._log, application_id)
        self.interactions: list[Interaction] = self._answers.dispatched
        answers = self._answers
        routes: list[tuple[str, str, Handler]] = [
            ("GET", r"users/@me", self._get_me),
            ("GET", r"users/(?P<user>\d+)", self._get_user),
            ("POST", r"users/@me/channels", self._create_dm),
            ("GET", r"oauth2/applications/@me", self._get_application),
            ("PUT", _COMMANDS, self._put_commands),
            ("GET", _COMMANDS, self._get_commands),
            ("GET", r"channels/(?P<channel>\d+)", self._get_channel),
            ("POST", r"channels/(?P<channel>\d+)/messages", self._post_message),
            ("PATCH", r"channels/(?P<channel>\d+)/messages/(?P<message>\d+)", self._patch_message),
            ("POST", r"interactions/(?P<id>\d+)/(?P<token>[^/]+)/callback", answers.callback),
            ("POST", _WEBHOOK, answers.followup),
            ("GET", _WEBHOOK_MESSAGE, answers.get_message),
            ("PATCH", _WEBHOOK_MESSAGE, answers.edit_message),
        ]
        self._rest = RestApi(routes, self._authorized)
        self.requests: list[tuple[str, str]] = self._rest.requests  # (method, path below /api/v10/)
        self.rejected: list[tuple[str, dict[str, Any]]] = self._rest.rejected  # the fake's refusals
        self._runner: web.AppRunner | None = None

    @property
    def intents(self) -> int | None:
        """The intents of the last IDENTIFY."""
        return self._gateway.intents

    @property
    def resumes(self) -> int:
        """How many times a client RESUMEd its gateway session."""
        return self._gateway.resumes

    # lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=2 * ATTACHMENT_SIZE_LIMIT)
        app.router.add_get("/gateway", self._gateway.handle)
        app.router.add_get("/attachments/{channel}/{attachment}/{filename}", self._attachment)
        app.router.add_route("*", "/api/v{version:\\d+}/{path:.*}", self._rest.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self._log.cdn_url = f"http://127.0.0.1:{port}"
        self.api_url = f"http://127.0.0.1:{port}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"

    async def stop(self) -> None:
        """Close every gateway socket (1001 going away), then the server."""
        await self._gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # acting as users

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int,
        user_name: str = "trader",
        guild_id: int | None = None,
        channel_id: int | None = None,
        permissions: int = 0,
        subcommand: str | None = None,
    ) -> Interaction:
        """Dispatch a slash command (INTERACTION_CREATE type 2) typed as the registered command."""
        origin = Origin(user_id, user_name, guild_id, channel_id, permissions)
        return await self._command(name, options or {}, None, subcommand, origin)

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        user_id: int,
        user_name: str = "trader",
        guild_id: int | None = None,
        channel_id: int | None = None,
        permissions: int = 0,
        subcommand: str | None = None,
    ) -> list[dict[str, Any]]:
        """Dispatch an autocomplete (type 4) for ``focused`` and return the bot's choices."""
        origin = Origin(user_id, user_name, guild_id, channel_id, permissions)
        interaction = await self._command(name, options, focused, subcommand, origin)
        callback = await interaction.answered()
        return list(callback.get("data", {}).get("choices", []))

    async def press(
        self,
        custom_id: str,
        *,
        message: DiscordMessage,
        user_id: int,
        user_name: str = "trader",
        permissions: int = 0,
    ) -> Interaction:
        """Dispatch a button press (type 3) on a message the bot sent."""
        payload = self._log.payloads.get(message.id)
        if payload is None:
            raise CommandUsageError(f"message {message.id} was not sent through this fake")
        items = [i for row in payload["components"] for i in row.get("components", [])]
        item = next((i for i in items if i.get("custom_id") == custom_id), None)
        if item is None:
            known = [i.get("custom_id") for i in items]
            raise CommandUsageError(f"message {message.id} has no component {custom_id!r}: {known}")
        guild_id = payload.get("guild_id")
        where = int(payload["channel_id"])
        guild = int(guild_id) if guild_id else None
        origin = Origin(user_id, user_name, guild, where, permissions)
        data = {"custom_id": custom_id, "component_type": item.get("type", 2)}
        # For a component interaction @original is the message the component is on.
        return await self._dispatch(3, custom_id, data, origin, payload, message.id)

    async def reconnect(self, timeout: float = WAIT_S) -> None:  # noqa: ASYNC109
        """Send RECONNECT (op 7) and wait until the client has RESUMEd its session."""
        await self._gateway.reconnect(timeout)

    # observing the bot

    async def wait_for(
        self,
        predicate: Callable[[DiscordMessage], bool],
        timeout: float = WAIT_S,  # noqa: ASYNC109 - a bounded wait is the point of this helper
    ) -> DiscordMessage:
        """The first message (already sent or still to come) matching ``predicate``."""
        return (await self.wait_for_count(predicate, 1, timeout))[0]

    async def wait_for_count(
        self,
        predicate: Callable[[DiscordMessage], bool],
        n: int,
        timeout: float = WAIT_S,  # noqa: ASYNC109 - as in wait_for
    ) -> list[DiscordMessage]:
        """The first ``n`` messages matching ``predicate``, waiting for them."""
        found: list[DiscordMessage] = []
        try:
            async with asyncio.timeout(timeout):
                while len(found := [m for m in self.messages if predicate(m)]) < n:
                    await self._messages_pulse.wait()
        except TimeoutError:
            raise TimeoutError(
                f"{len(found)} of {n} matching messages within {timeout}s; "
                f"last: {self.messages[-3:]}; rejected: {self.rejected[-3:]}"
            ) from None
        return found[:n]

    # fault injection

    def refuse_dms(self, user_id: int) -> None:
        """From now on messages to this user's DM channel answer 403 (50007)."""
        self._refused.add(user_id)

    def reject_token(self) -> None:
        """From now on the token is invalid: REST answers 401 and IDENTIFY is closed with 4004."""
        self._token_ok = False

    def delete_channel(self, channel_id: int) -> None:
        """From now on the channel is gone: GET and sends answer 404 Unknown Channel (10003)."""
        self._directory.deleted.add(channel_id)

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        code: int = 0,
        message: str = "",
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls whose path below /api/v10/ fully matches the regex
        ``path_pattern`` with an error; a 429 carries Via, retry_after and X-RateLimit-*."""
        if status == 429:
            message = message or "You are being rate limited."
        else:
            message = message or f"{status}: {http.HTTPStatus(status).phrase}"
        error = ApiError(status, code, message, retry_after=retry_after)
        self._rest.add_fault(method, path_pattern, error, times)

    def _accepts(self, token: Any) -> bool:
        """Whether the gateway takes this token (IDENTIFY, RESUME)."""
        return self._token_ok and token == self.token

    def _authorized(self, header: str | None) -> bool:
        """Whether REST takes this Authorization header."""
        return header == f"Bot {self.token}" and self._token_ok

    def _ready(self, session_id: str) -> dict[str, Any]:
        return ready_payload(self.bot_user, self.application_id, session_id, self.gateway_url)

    # the REST side

    async def _get_me(self, call: Call) -> dict[str, Any]:
        return self.bot_user

    async def _get_user(self, call: Call) -> dict[str, Any]:
        user = self._directory.known_user(int(call.params["user"]))
        if user is None:  # only users the fake has seen exist
            raise ApiError(404, UNKNOWN_USER, "Unknown User")
        return user

    async def _get_application(self, call: Call) -> dict[str, Any]:
        return application_payload(self.application_id, self.bot_user, OWNER_ID)

    async def _create_dm(self, call: Call) -> dict[str, Any]:
        recipient = call.body.get("recipient_id") if isinstance(call.body, dict) else None
        if not str(recipient).isdigit():
            raise form_error(["recipient_id"], "BASE_TYPE_REQUIRED")
        channel = self._directory.dm_channel(int(str(recipient)), None)
        self.dm_channels[int(str(recipient))] = int(channel["id"])
        return channel

    async def _put_commands(self, call: Call) -> list[dict[str, Any]]:
        if call.params["app"] != str(self.application_id):
            raise ApiError(403, MISSING_ACCESS, "Missing Access")
        commands = check_commands(call.body)
        guild = int(call.params["guild"]) if "guild" in call.params else None
        if guild is None:
            self.commands = commands
        else:
            self.guild_commands[guild] = commands
        return self._commands.overwrite(guild, commands)

    async def _get_commands(self, call: Call) -> list[dict[str, Any]]:
        if call.params["app"] != str(self.application_id):
            raise ApiError(403, MISSING_ACCESS, "Missing Access")
        return self._commands.registered(int(call.params.get("guild", 0)) or None)

    async def _get_channel(self, call: Call) -> dict[str, Any]:
        return self._directory.channel(int(call.params["channel"]))

    async def _post_message(self, call: Call) -> dict[str, Any]:
        channel = self._directory.channel(int(call.params["channel"]))
        if channel["type"] == 1 and int(channel["recipients"][0]["id"]) in self._refused:
            raise ApiError(403, CANNOT_DM, "Cannot send messages to this user")
        return self._log.create(channel, message_body(call.body), call.uploads, "channel").payload

    async def _patch_message(self, call: Call) -> dict[str, Any]:
        channel = self._directory.channel(int(call.params["channel"]))
        old = self._log.payloads.get(call.params["message"])
        if old is None or old["channel_id"] != channel["id"]:
            raise ApiError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return self._log.edit(old, message_body(call.body), call.uploads, None).payload

    async def _attachment(self, request: web.Request) -> web.Response:
        """The CDN: bytes of an uploaded attachment, for Attachment.read()."""
        found = self._log.files.get(request.match_info["attachment"])
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found[1], content_type="application/octet-stream")

    # dispatching interactions

    async def _command(
        self,
        name: str,
        values: dict[str, Any],
        focused: str | None,
        subcommand: str | None,
        origin: Origin,
    ) -> Interaction:
        await self._gateway.live_session()  # bots sync commands at login, before the gateway
        guild_id = origin.guild_id
        command, in_guild = self._commands.find(name, guild_id)
        options, resolved = build_options(
            command,
            values,
            subcommand=subcommand,
            focused=focused,
            resolve=self._directory.resolver(guild_id),
        )
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": options}
        if resolved:
            data["resolved"] = resolved
        if in_guild:
            data["guild_id"] = str(guild_id)  # how discord.py's tree finds guild commands
        leaves = _leaf_options(options)
        focused_type = next((o["type"] for o in leaves if o.get("focused")), None)
        kind = 2 if focused is None else 4
        return await self._dispatch(kind, name, data, origin, None, None, focused_type)

    async def _dispatch(
        self,
        kind: int,
        name: str,
        data: dict[str, Any],
        origin: Origin,
        message: dict[str, Any] | None,
        original_id: str | None,
        focused_type: int | None = None,
    ) -> Interaction:
        session = await self._gateway.live_session()
        user = self._directory.user(origin.user_id, origin.user_name)
        channel = self._directory.interaction_channel(origin)
        payload = interaction_payload(
            self._ids.next(), self.application_id, kind, data, channel, user,
            origin.permissions, APP_PERMISSIONS,
        )  # fmt: skip
        if message is not None:
            payload["message"] = message
        interaction = Interaction(self, payload, name)
        # Set before dispatching: the client shares our event loop and may answer at once.
        interaction.original_id, interaction.focused_type = original_id, focused_type
        self._answers.add(interaction)
        await session.dispatch("INTERACTION_CREATE", payload)
        return interaction


def _leaf_options(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    while options and options[0]["type"] in (1, 2):
        options = options[0].get("options", [])
    return options


@contextlib.contextmanager
def point_discord_at(fake: FakeDiscord) -> Iterator[None]:
    """Aim discord.py's REST base and default gateway at ``fake``; restore them afterwards."""
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
