"""The fake Discord server, driven by the real discord.py 2.7 Client and CommandTree:
sending messages (DMs, embeds, files, injected errors) and the fake's own API."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import discord
import pytest
import yarl

from tests.bot.fakes.discord_client import (
    APP_ID,
    CHANNEL_ID,
    PNG,
    TOKEN,
    USER_ID,
    WAIT_S,
    AlertBot,
    raw,
)
from tests.bot.fakes.fake_discord import DiscordMessage, FakeDiscord, point_discord_at

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
