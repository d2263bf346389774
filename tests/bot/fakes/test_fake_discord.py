"""The fake Discord server, driven by the real discord.py 2.7 Client and CommandTree:
login, command sync, the gateway, slash commands, autocomplete and buttons."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.app_commands import Choice

from tests.bot.fakes.discord_client import (
    APP_ID,
    CHANNEL_ID,
    GUILD_ID,
    PNG,
    TOKEN,
    USER_ID,
    WAIT_S,
    AlertBot,
    MuteView,
)
from tests.bot.fakes.fake_discord import CommandUsageError, FakeDiscord, RejectedAnswer

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
