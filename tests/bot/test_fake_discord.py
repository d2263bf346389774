"""The fake Discord server, driven by the real discord.py 2.7 Client and CommandTree."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.app_commands import Choice, Range

from tests.bot.fake_discord import (
    CommandUsageError,
    DiscordMessage,
    FakeDiscord,
    RejectedAnswer,
    point_discord_at,
)

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


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(TOKEN) as server:
        with point_discord_at(server):
            yield server


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[AlertBot]:
    client = AlertBot()
    try:
        yield client
    finally:
        await client.close()  # closes its aiohttp session even when login failed


@pytest.fixture
async def logged_in(bot: AlertBot) -> AlertBot:
    """Logged in, commands synced; no gateway: enough for REST."""
    await bot.login(TOKEN)
    await bot.tree.sync()
    return bot


@pytest.fixture
async def online(logged_in: AlertBot) -> AsyncIterator[AlertBot]:
    """Also connected to the gateway and ready."""
    connection = asyncio.create_task(logged_in.connect())
    ready = asyncio.create_task(logged_in.ready.wait())
    done, _ = await asyncio.wait({connection, ready}, timeout=WAIT_S, return_when="FIRST_COMPLETED")
    if ready not in done:
        ready.cancel()
        await logged_in.close()
        await connection  # raises what stopped the client
        pytest.fail(f"on_ready not reached within {WAIT_S}s")
    try:
        yield logged_in
    finally:
        await logged_in.close()
        await asyncio.wait_for(connection, WAIT_S)


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


# login, sync, gateway


async def test_login_and_sync_register_the_commands_with_typed_options(
    fake: FakeDiscord, bot: AlertBot
) -> None:
    await bot.login(TOKEN)
    synced = await bot.tree.sync()

    assert bot.user is not None and bot.user.id == fake.bot_user_id and bot.user.bot
    assert bot.application_id == APP_ID
    assert fake.requests[:3] == [
        ("GET", "users/@me"),
        ("GET", "oauth2/applications/@me"),
        ("PUT", f"applications/{APP_ID}/commands"),
    ]
    assert sorted(c.name for c in synced) == ["alert", "alerts", "chart", "watch"]
    assert all(c.id for c in synced)
    alert = next(c for c in fake.commands if c["name"] == "alert")
    symbol, threshold, side = alert["options"]
    assert (symbol["type"], symbol["autocomplete"], symbol["required"]) == (3, True, True)
    assert (threshold["type"], threshold["min_value"], threshold["max_value"]) == (10, 0.01, 100.0)
    assert side["type"] == 3
    assert side["choices"] == [
        {"name": "Long", "value": "long"},
        {"name": "Short", "value": "short"},
    ]
    group = next(c for c in fake.commands if c["name"] == "alerts")
    assert [(o["type"], o["name"]) for o in group["options"]] == [(1, "mute")]
    assert fake.rejected == []


async def test_resync_keeps_command_ids(fake: FakeDiscord, logged_in: AlertBot) -> None:
    first = {c.name: c.id for c in await logged_in.tree.fetch_commands()}
    again = {c.name: c.id for c in await logged_in.tree.sync()}
    assert first == again


async def test_connect_reaches_on_ready(fake: FakeDiscord, online: AlertBot) -> None:
    assert fake.identified.is_set()
    assert online.user is not None and online.user.name == "arbwatch"
    assert fake.intents == discord.Intents.default().value
    assert online.ws is not None and online.ws.session_id == "fake-session-1"


async def test_wrong_token_fails_login(fake: FakeDiscord, bot: AlertBot) -> None:
    with pytest.raises(discord.LoginFailure):
        await bot.login("not-" + TOKEN)
    assert fake.rejected == [("users/@me", {"message": "401: Unauthorized", "code": 0})]


async def test_rejected_token_fails_login(fake: FakeDiscord, bot: AlertBot) -> None:
    fake.reject_token()
    with pytest.raises(discord.LoginFailure):
        await bot.login(TOKEN)


async def test_gateway_closes_4004_when_the_token_goes_bad(
    fake: FakeDiscord, logged_in: AlertBot
) -> None:
    fake.reject_token()
    with pytest.raises(discord.ConnectionClosed) as caught:
        await asyncio.wait_for(logged_in.connect(), WAIT_S)
    assert caught.value.code == 4004
    assert not fake.identified.is_set()


async def test_reconnect_resumes_the_session(fake: FakeDiscord, online: AlertBot) -> None:
    await fake.reconnect()
    await asyncio.wait_for(online.resumed.wait(), WAIT_S)

    assert fake.resumes == 1
    interaction = await fake.slash("chart", {"symbol": "BTCUSDT"}, user_id=USER_ID)
    assert len(await interaction.wait_messages(3)) == 3  # interactions flow after the resume


# slash commands, autocomplete, buttons


async def test_slash_in_a_dm_reaches_the_command_typed(fake: FakeDiscord, online: AlertBot) -> None:
    options = {"symbol": "ETHUSDT", "threshold": 1, "side": "short"}
    interaction = await fake.slash("alert", options, user_id=USER_ID, user_name="ann")

    callback = await interaction.answered()

    seen, values = online.seen[-1]
    assert values["symbol"] == "ETHUSDT"
    assert values["threshold"] == 1.0 and isinstance(values["threshold"], float)
    assert values["side"] == Choice(name="Short", value="short")
    assert seen.guild_id is None and isinstance(seen.user, discord.User)
    assert seen.user.id == USER_ID and seen.user.name == "ann"
    assert isinstance(seen.channel, discord.DMChannel)
    dm_id = int(interaction.payload["channel_id"])
    assert seen.channel.id == dm_id
    assert callback == {"type": 4, "data": {"tts": False, "content": "ETHUSDT > 1.0%", "flags": 64}}
    [reply] = interaction.messages()
    assert (reply.kind, reply.content, reply.ephemeral) == ("reply", "ETHUSDT > 1.0%", True)
    assert reply.channel_id == str(dm_id)
    assert fake.dm_channels == {}  # the bot opened no DM; the user wrote in theirs
    assert (await online.create_dm(discord.Object(id=USER_ID))).id == dm_id  # the same channel
    assert fake.dm_channels == {USER_ID: dm_id}
    assert reply.interaction_id == interaction.id


async def test_slash_in_a_guild_carries_member_permissions(
    fake: FakeDiscord, online: AlertBot
) -> None:
    perms = discord.Permissions(manage_guild=True, send_messages=True)
    options = {"symbol": "BTCUSDT", "threshold": 0.5, "side": "long"}
    interaction = await fake.slash(
        "alert", options, user_id=USER_ID, guild_id=GUILD_ID, permissions=perms.value
    )
    await interaction.answered()

    seen, _ = online.seen[-1]
    assert seen.guild_id == GUILD_ID and isinstance(seen.user, discord.Member)
    assert seen.permissions.manage_guild and not seen.permissions.administrator
    assert isinstance(seen.channel, discord.TextChannel)
    assert seen.channel.id == int(interaction.payload["channel_id"])
    assert seen.app_permissions.attach_files


async def test_channel_option_arrives_resolved(fake: FakeDiscord, online: AlertBot) -> None:
    interaction = await fake.slash(
        "watch", {"channel": CHANNEL_ID}, user_id=USER_ID, guild_id=GUILD_ID, channel_id=CHANNEL_ID
    )
    [message] = await interaction.wait_messages(1)

    channel = online.seen[-1][1]["channel"]
    assert isinstance(channel, app_commands.AppCommandChannel)
    assert (channel.id, channel.guild_id, channel.type) == (
        CHANNEL_ID,
        GUILD_ID,
        discord.ChannelType.text,
    )
    assert message.content == f"watching <#{CHANNEL_ID}>" and not message.ephemeral


async def test_subcommand_gets_integer_option(fake: FakeDiscord, online: AlertBot) -> None:
    interaction = await fake.slash(
        "alerts", {"symbol": "SOLUSDT", "minutes": 15}, user_id=USER_ID, subcommand="mute"
    )
    await interaction.answered()
    assert online.seen[-1][1] == {"symbol": "SOLUSDT", "minutes": 15}


@pytest.mark.parametrize(
    ("name", "options", "subcommand", "error"),
    [
        ("nope", {}, None, "was never registered"),
        (
            "alert",
            {"symbol": "BTCUSDT", "threshold": 1.0, "side": "long", "x": 1},
            None,
            "no option",
        ),
        ("alert", {"symbol": "BTCUSDT", "side": "long"}, None, "required options missing"),
        ("alert", {"symbol": "BTCUSDT", "threshold": 101.0, "side": "long"}, None, "within"),
        ("alert", {"symbol": "BTCUSDT", "threshold": "1", "side": "long"}, None, "takes"),
        ("alert", {"symbol": "BTCUSDT", "threshold": 1.0, "side": "flat"}, None, "choices"),
        ("alerts", {"symbol": "BTCUSDT"}, None, "needs a subcommand"),
        ("alerts", {"symbol": "BTCUSDT"}, "unmute", "no subcommand"),
    ],
)
async def test_slash_refuses_what_no_user_could_send(
    fake: FakeDiscord,
    online: AlertBot,
    name: str,
    options: dict[str, Any],
    subcommand: str | None,
    error: str,
) -> None:
    with pytest.raises(CommandUsageError, match=error):
        await fake.slash(name, options, user_id=USER_ID, subcommand=subcommand)
    assert fake.interactions == []


async def test_autocomplete_returns_the_bots_choices(fake: FakeDiscord, online: AlertBot) -> None:
    choices = await fake.autocomplete(
        "alert", {"symbol": "eth", "threshold": 2.0}, "symbol", user_id=USER_ID
    )
    assert choices == [{"name": "ETHUSDT", "value": "ETHUSDT"}]
    assert fake.interactions[-1].callback == {"type": 8, "data": {"choices": choices}}
    assert online.seen == []  # the command itself did not run


@pytest.mark.parametrize(
    ("limit", "suffix", "where"),
    [(30, "", ["choices"]), (1, "x" * 100, ["choices", "0", "name"])],
    ids=["26-choices", "101-char-name"],
)
async def test_autocomplete_beyond_discords_limits_is_rejected(
    fake: FakeDiscord, online: AlertBot, limit: int, suffix: str, where: list[str]
) -> None:
    online.choice_limit, online.choice_suffix = limit, suffix
    with pytest.raises(RejectedAnswer) as caught:
        await fake.autocomplete("alert", {}, "symbol", user_id=USER_ID)
    assert caught.value.error["code"] == 50035
    node = caught.value.error["errors"]["data"]
    for key in where:
        node = node[key]
    assert node["_errors"]
    assert fake.rejected[-1][1] == caught.value.error


async def test_deferred_reply_then_followups_and_edit(fake: FakeDiscord, online: AlertBot) -> None:
    interaction = await fake.slash("chart", {"symbol": "BTCUSDT"}, user_id=USER_ID)

    first, second, edit = await interaction.wait_messages(3)

    assert interaction.callback == {"type": 5, "data": {"flags": 64}}
    # The first followup replaces the "thinking..." message, ephemeral as chosen at defer time.
    assert (first.kind, first.content, first.ephemeral) == ("followup", "BTCUSDT chart", True)
    assert first.files == [("chart.png", PNG)]
    assert first.payload["attachments"][0]["content_type"] == "image/png"
    assert (second.kind, second.content, second.ephemeral) == ("followup", "more", False)
    assert second.id != first.id
    assert (edit.kind, edit.id, edit.content) == ("edit", first.id, "BTCUSDT chart (final)")
    assert edit.files == [("chart.png", PNG)]  # an edit without attachments keeps them
    assert fake.rejected == []


async def test_button_press_reaches_the_view(fake: FakeDiscord, online: AlertBot) -> None:
    channel = await online.create_dm(discord.Object(id=USER_ID))
    await channel.send("BTCUSDT spread 0.8%", view=MuteView())
    sent = await fake.wait_for(lambda m: m.kind == "channel")
    assert sent.custom_ids == ["mute:BTCUSDT"]

    interaction = await fake.press("mute:BTCUSDT", message=sent, user_id=USER_ID)
    [edit] = await interaction.wait_messages(1)

    assert interaction.callback is not None and interaction.callback["type"] == 7
    assert (edit.kind, edit.id, edit.content, edit.components) == (
        "edit",
        sent.id,
        "BTCUSDT muted",
        [],
    )
    with pytest.raises(CommandUsageError, match="no component"):
        await fake.press("mute:ETHUSDT", message=sent, user_id=USER_ID)


# sending messages


async def test_dm_with_embed_is_recorded_in_the_dm_channel(
    fake: FakeDiscord, logged_in: AlertBot
) -> None:
    channel = await logged_in.create_dm(discord.Object(id=USER_ID))
    embed = discord.Embed(title="BTCUSDT spread", description="0.42% Binance vs Bybit")
    embed.add_field(name="Binance", value="65000.1").set_footer(text="arbwatch")

    sent = await channel.send(
        "alert", embed=embed, silent=True, allowed_mentions=discord.AllowedMentions.none()
    )

    assert fake.dm_channels[USER_ID] == channel.id
    [message] = fake.messages
    assert (message.kind, message.channel_id, message.content) == (
        "channel",
        str(channel.id),
        "alert",
    )
    assert message.embeds == [embed.to_dict()]
    assert message.silent and not message.ephemeral
    assert message.allowed_mentions == discord.AllowedMentions.none().to_dict()
    assert sent.id == int(message.id) and sent.embeds[0].title == "BTCUSDT spread"
    assert sent.author.id == fake.bot_user_id
    # The same user gets the same DM channel, cached by discord.py or not.
    assert (await logged_in.create_dm(discord.Object(id=USER_ID))).id == channel.id
    assert fake.requests.count(("POST", "users/@me/channels")) == 1


async def test_refused_dm_raises_forbidden_50007(fake: FakeDiscord, logged_in: AlertBot) -> None:
    fake.refuse_dms(USER_ID)
    channel = await logged_in.create_dm(discord.Object(id=USER_ID))

    with pytest.raises(discord.Forbidden) as caught:
        await channel.send("alert")

    assert caught.value.code == 50007
    assert fake.messages == []
    assert fake.rejected[-1][1]["code"] == 50007


async def test_partial_messageable_send_with_file_is_multipart(
    fake: FakeDiscord, logged_in: AlertBot
) -> None:
    channel = logged_in.get_partial_messageable(CHANNEL_ID)
    png = discord.File(io.BytesIO(PNG), filename="spread.png")

    sent = await channel.send("spread chart", file=png)

    [message] = fake.messages
    assert (message.channel_id, message.files) == (str(CHANNEL_ID), [("spread.png", PNG)])
    assert sent.attachments[0].filename == "spread.png" and sent.attachments[0].size == len(PNG)
    assert await sent.attachments[0].read() == PNG


async def test_injected_429_is_retried_then_delivered(
    fake: FakeDiscord, logged_in: AlertBot
) -> None:
    fake.fail_next("POST", r"channels/\d+/messages", 429, retry_after=0.05)

    await logged_in.get_partial_messageable(CHANNEL_ID).send("through")

    assert fake.requests.count(("POST", f"channels/{CHANNEL_ID}/messages")) == 2
    assert [m.content for m in fake.messages] == ["through"]
    assert fake.rejected == []  # injected faults are not the fake's own refusals


async def test_injected_error_reaches_the_caller(fake: FakeDiscord, logged_in: AlertBot) -> None:
    fake.fail_next("POST", r"channels/\d+/messages", 403, code=50013, message="Missing Permissions")
    with pytest.raises(discord.Forbidden) as caught:
        await logged_in.get_partial_messageable(CHANNEL_ID).send("nope")
    assert (caught.value.code, caught.value.text) == (50013, "Missing Permissions")
    await logged_in.get_partial_messageable(CHANNEL_ID).send("next one passes")
    assert [m.content for m in fake.messages] == ["next one passes"]


def embed_with(**kwargs: Any) -> discord.Embed:
    fields = kwargs.pop("fields", [])
    footer = kwargs.pop("footer", None)
    embed = discord.Embed(**kwargs)
    for name, value in fields:
        embed.add_field(name=name, value=value)
    if footer is not None:
        embed.set_footer(text=footer)
    return embed


@pytest.mark.parametrize(
    ("send", "code", "where"),
    [
        ({"content": "x" * 2001}, 50035, "content"),
        ({"embed": embed_with(title="x" * 257)}, 50035, "embeds.0.title"),
        ({"embed": embed_with(description="x" * 4097)}, 50035, "embeds.0.description"),
        ({"embed": embed_with(fields=[("f", "v")] * 26)}, 50035, "embeds.0.fields"),
        ({"embed": embed_with(fields=[("n" * 257, "v")])}, 50035, "embeds.0.fields.0.name"),
        ({"embed": embed_with(fields=[("n", "v" * 1025)])}, 50035, "embeds.0.fields.0.value"),
        ({"embed": embed_with(footer="x" * 2049)}, 50035, "embeds.0.footer.text"),
        (
            {"embeds": [embed_with(description="x" * 4000), embed_with(description="y" * 2001)]},
            50035,
            "embeds",
        ),
        ({}, 50006, None),
    ],
    ids=["content", "title", "description", "fields", "name", "value", "footer", "total", "empty"],
)
async def test_invalid_messages_answer_400(
    fake: FakeDiscord, logged_in: AlertBot, send: dict[str, Any], code: int, where: str | None
) -> None:
    channel = logged_in.get_partial_messageable(CHANNEL_ID)

    with pytest.raises(discord.HTTPException) as caught:
        await channel.send(**send)

    assert (caught.value.status, caught.value.code) == (400, code)
    [(path, error)] = fake.rejected
    assert path == f"channels/{CHANNEL_ID}/messages" and error["code"] == code
    if where is not None:
        node = error["errors"]
        for key in where.split("."):
            node = node[key]
        assert node["_errors"][0]["code"] in {"BASE_TYPE_MAX_LENGTH", "MAX_EMBED_SIZE_EXCEEDED"}
    assert fake.messages == []


async def test_deleted_channel_is_not_found(fake: FakeDiscord, logged_in: AlertBot) -> None:
    fake.delete_channel(CHANNEL_ID)
    with pytest.raises(discord.NotFound) as caught:
        await logged_in.get_partial_messageable(CHANNEL_ID).send("gone")
    assert caught.value.code == 10003


async def test_fetch_channel_and_user(fake: FakeDiscord, logged_in: AlertBot) -> None:
    dm = await logged_in.create_dm(discord.Object(id=USER_ID))

    fetched = await logged_in.fetch_channel(dm.id)
    user = await logged_in.fetch_user(USER_ID)

    assert isinstance(fetched, discord.DMChannel) and fetched.recipient is not None
    assert fetched.recipient.id == USER_ID and user.id == USER_ID
    with pytest.raises(discord.NotFound):
        await logged_in.fetch_user(USER_ID + 1)  # never seen by the fake


# the fake's own API


def option(name: str, required: bool = True, *, choices: int = 0) -> dict[str, Any]:
    listed = [{"name": f"c{i}", "value": f"v{i}"} for i in range(choices)]
    return {"type": 3, "name": name, "description": "d", "required": required} | (
        {"choices": listed} if choices else {}
    )


@pytest.mark.parametrize(
    ("command", "where"),
    [
        ({"name": "Alert", "description": "d"}, "0.name"),
        ({"name": "two words", "description": "d"}, "0.name"),
        ({"name": "a" * 33, "description": "d"}, "0.name"),
        ({"name": "alert", "description": ""}, "0.description"),
        ({"name": "alert", "description": "d" * 101}, "0.description"),
        (
            {"name": "alert", "description": "d", "options": [option(f"o{i}") for i in range(26)]},
            "0.options",
        ),
        (
            {"name": "alert", "description": "d", "options": [option("a", False), option("b")]},
            "0.options.1",
        ),
        (
            {"name": "alert", "description": "d", "options": [option("a", choices=26)]},
            "0.options.0.choices",
        ),
        (
            {
                "name": "alert",
                "description": "d",
                "options": [{**option("a", choices=2), "autocomplete": True}],
            },
            "0.options.0.autocomplete",
        ),
    ],
    ids=[
        "upper",
        "space",
        "long-name",
        "no-description",
        "long-description",
        "26-options",
        "required-after-optional",
        "26-choices",
        "choices-and-autocomplete",
    ],
)
async def test_command_registration_is_validated(
    fake: FakeDiscord, command: dict[str, Any], where: str
) -> None:
    status, body = await raw(fake, "PUT", f"applications/{APP_ID}/commands", [command])

    assert (status, body["code"]) == (400, 50035)
    node = body["errors"]
    for key in where.split("."):
        node = node[key]
    assert node["_errors"]
    assert fake.commands == []


async def test_more_than_ten_embeds_are_refused(fake: FakeDiscord) -> None:
    # discord.py refuses these itself; a hand-built payload reaches the fake.
    body = {"embeds": [{"title": str(n)} for n in range(11)]}
    status, answer = await raw(fake, "POST", f"channels/{CHANNEL_ID}/messages", body)
    assert (status, answer["code"]) == (400, 50035)
    assert answer["errors"]["embeds"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"


async def test_commands_of_another_application_are_refused(fake: FakeDiscord) -> None:
    status, body = await raw(fake, "PUT", f"applications/{APP_ID + 1}/commands", [])
    assert (status, body["code"]) == (403, 50001)


async def test_responses_are_exactly_application_json(fake: FakeDiscord) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{fake.api_url}/users/@me", headers={"Authorization": f"Bot {TOKEN}"}) as r,
    ):
        assert r.headers["Content-Type"] == "application/json"  # discord.py compares exactly


async def test_wait_for_is_bounded(fake: FakeDiscord) -> None:
    with pytest.raises(TimeoutError, match="0 of 1 matching messages"):
        await fake.wait_for(lambda m: False, timeout=0.01)


async def test_wait_for_sees_earlier_and_later_messages(
    fake: FakeDiscord, logged_in: AlertBot
) -> None:
    channel = logged_in.get_partial_messageable(CHANNEL_ID)
    await channel.send("first")
    later = asyncio.create_task(fake.wait_for_count(lambda m: m.kind == "channel", 2))
    await channel.send("second")

    found: list[DiscordMessage] = await asyncio.wait_for(later, WAIT_S)
    assert [m.content for m in found] == ["first", "second"]


def test_point_discord_at_restores_the_urls() -> None:
    fake = FakeDiscord(TOKEN)
    fake.api_url, fake.gateway_url = "http://127.0.0.1:1/api/v10", "ws://127.0.0.1:1/gateway"
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    with point_discord_at(fake):
        assert discord.http.Route("GET", "/users/@me").url == f"{fake.api_url}/users/@me"
        assert yarl.URL(fake.gateway_url) == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    restored = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    assert restored == (base, gateway)
