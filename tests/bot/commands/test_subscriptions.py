"""Where alerts go (/alerts) and /subscribe's single store call, through the command layer."""

from __future__ import annotations

from typing import Any

import pytest

from bot.commands import CommandHandler, Reply
from bot.config import Settings
from bot.store import ALL_SYMBOLS, Platform, Store
from detector.signals import SignalStrength
from tests.bot.factories import T0

SYMBOLS = ("BTCUSDT", "ETHUSDT")
ANN = "4242"


@pytest.fixture
def handler(store: Store) -> CommandHandler:
    return CommandHandler(store, Settings(_env_file=None), SYMBOLS)  # type: ignore[call-arg]


def on_discord(handler: CommandHandler, text: str, **where: Any) -> Reply:
    """``text`` sent by Ann on Discord: in a DM, or in the channel ``where`` names."""
    ctx = handler.context(Platform.DISCORD, ANN, ANN, "Ann", T0, **where)
    return handler.handle(text, ctx)


def channel_of(store: Store) -> str | None:
    user = store.find_user(Platform.DISCORD, ANN)
    assert user is not None
    return user.channel_id


@pytest.mark.parametrize(
    ("where", "fragment", "channel"),
    [
        ({}, "Run this in the server channel", None),
        ({"channel_id": "77", "channel_name": "alerts"}, "Only server admins", None),
        (
            {"channel_id": "77", "channel_name": "alerts", "may_manage_channel": True},
            "now go to #alerts",
            "77",
        ),
        ({"channel_id": "77", "may_manage_channel": True}, "now go to #77", "77"),
    ],
)
def test_alerts_here_needs_a_server_channel_and_the_right_to_manage_it(
    handler: CommandHandler,
    store: Store,
    where: dict[str, Any],
    fragment: str,
    channel: str | None,
) -> None:
    reply = on_discord(handler, "/alerts here", **where)
    assert fragment in reply.text
    assert channel_of(store) == channel


def test_alerts_dm_brings_them_back_and_reactivates_a_refused_user(
    handler: CommandHandler, store: Store
) -> None:
    on_discord(handler, "/alerts here", channel_id="77", may_manage_channel=True)
    user = store.find_user(Platform.DISCORD, ANN)
    assert user is not None
    store.mark_blocked(user.id, T0 + 1, "DMs refused")

    reply = on_discord(handler, "/alerts dm")

    assert "by direct message" in reply.text
    back = store.user(user.id)
    assert back.channel_id is None and back.active and back.blocked_at is None


@pytest.mark.parametrize("text", ["/alerts", "/alerts everywhere", "/alerts dm here"])
def test_alerts_says_where_they_can_go(handler: CommandHandler, store: Store, text: str) -> None:
    reply = on_discord(handler, text)
    assert "Where should your alerts go?" in reply.text and "/alerts dm" in reply.text
    assert reply.ephemeral
    assert store.find_user(Platform.DISCORD, ANN) is None  # bad input changes nothing


def test_alerts_is_discords_own_command(handler: CommandHandler, store: Store) -> None:
    ctx = handler.context(Platform.TELEGRAM, "7", "7", "Bob", T0)
    reply = handler.handle("/alerts here", ctx)
    assert "I don't know /alerts" in reply.text
    assert store.find_user(Platform.TELEGRAM, "7") is None
    # ... and never suggested there.
    assert "/alerts" not in handler.handle("/alert", ctx).text


def test_subscribe_registers_and_subscribes_in_one_store_call(
    handler: CommandHandler, store: Store
) -> None:
    ctx = handler.context(Platform.TELEGRAM, "-100", "7", "Traders", T0, is_group=True)
    handler.handle("/subscribe ALL 0.2", ctx)
    calls: list[str] = []
    for name in ("register", "find_user", "subscribe", "subscribe_chat", "subscriptions"):
        method = getattr(store, name)

        def counted(*args: Any, _name: str = name, _method: Any = method, **kw: Any) -> Any:
            calls.append(_name)
            return _method(*args, **kw)

        setattr(store, name, counted)

    reply = handler.handle("/subscribe BTCUSDT 0.3 strong", ctx)

    assert calls == ["subscribe_chat"]
    assert "Subscribed to BTCUSDT" in reply.text
    assert "This overrides your ALL default for BTCUSDT." in reply.text
    user = store.find_user(Platform.TELEGRAM, "-100")
    assert user is not None and user.is_group and user.name == "Traders"
    subs = {s.symbol: (s.threshold_pct, s.min_strength) for s in store.subscriptions(user.id)}
    assert subs == {
        ALL_SYMBOLS: (0.2, SignalStrength.WEAK),
        "BTCUSDT": (0.3, SignalStrength.STRONG),
    }


def test_held_symbols_are_the_chats_own(handler: CommandHandler) -> None:
    assert handler.held_symbols(Platform.DISCORD, ANN) == []
    on_discord(handler, "/subscribe ETHUSDT 0.2")
    on_discord(handler, "/subscribe ALL 0.3")
    assert handler.held_symbols(Platform.DISCORD, ANN) == [ALL_SYMBOLS, "ETHUSDT"]
