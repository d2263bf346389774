"""What users receive and who may change it: /alerts, /subscribe's one store call, groups."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
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


def dump(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


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
            {"channel_id": "77", "channel_name": "alerts", "may_manage_chat": True},
            "now go to #alerts",
            "77",
        ),
        ({"channel_id": "77", "may_manage_chat": True}, "now go to #77", "77"),
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
    on_discord(handler, "/alerts here", channel_id="77", may_manage_chat=True)
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


@pytest.mark.parametrize(
    ("where", "fragment", "channel"),
    [
        ({}, "I can't post in @signals", None),  # the bot is not an administrator there
        ({"channel_id": "-1001", "channel_name": "Signals"}, "Only that channel's admin", None),
        (
            {"channel_id": "-1001", "channel_name": "Signals", "may_manage_chat": True},
            "Your alerts now go to Signals, once for all its readers.",
            "-1001",
        ),
    ],
)
def test_alerts_on_telegram_go_to_a_channel_its_administrators_name(
    handler: CommandHandler,
    store: Store,
    where: dict[str, Any],
    fragment: str,
    channel: str | None,
) -> None:
    ctx = handler.context(Platform.TELEGRAM, "7", "7", "Bob", T0, **where)
    assert fragment in handler.handle("/alerts @signals", ctx).text
    user = store.find_user(Platform.TELEGRAM, "7")
    assert user is not None and user.channel_id == channel


@pytest.mark.parametrize("text", ["/alerts here", "/alerts", "/alerts #signals"])
def test_alerts_on_telegram_says_what_it_takes(handler: CommandHandler, text: str) -> None:
    reply = handler.handle(text, handler.context(Platform.TELEGRAM, "7", "7", "Bob", T0))
    assert reply.rejected and "/alerts @yourchannel" in reply.text


def test_a_telegram_group_is_its_own_destination(handler: CommandHandler) -> None:
    ctx = handler.context(
        Platform.TELEGRAM, "-5", "7", "Bob", T0, is_group=True, may_manage_chat=True
    )
    reply = handler.handle("/alerts @signals", ctx)
    assert reply.rejected and "alerts already come here" in reply.text


def test_subscribe_registers_and_subscribes_in_one_store_call(
    handler: CommandHandler, store: Store
) -> None:
    ctx = handler.context(
        Platform.TELEGRAM,
        "-100",
        "7",
        "Ann",
        T0,
        is_group=True,
        may_manage_chat=True,
        chat_title="Traders",
    )
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
    assert user is not None and user.is_group
    assert (user.user_id, user.name) == ("-100", "Traders")  # the group, not its last sender
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


def in_group(handler: CommandHandler, text: str, *, sender: str, admin: bool) -> Reply:
    ctx = handler.context(
        Platform.TELEGRAM,
        "-200",
        sender,
        f"member {sender}",
        T0,
        is_group=True,
        may_manage_chat=admin,
        chat_title="Signals club",
    )
    return handler.handle(text, ctx)


@pytest.mark.parametrize(
    "text",
    [
        "/subscribe ALL 0.2",
        "/unsubscribe ALL",
        "/types arbitrage",
        "/venues binance okx",
        "/venues all",
        "/mute",
        "/unmute",
        "/digest 5m",
    ],
)
def test_only_a_groups_administrators_change_its_alerts(
    handler: CommandHandler, store: Store, path: Path, text: str
) -> None:
    in_group(handler, "/subscribe ALL 0.3", sender="1", admin=True)
    before = dump(path)

    refused = in_group(handler, text, sender="2", admin=False)

    assert refused.rejected and refused.text == (
        "Only this group's administrators can change its alerts."
    )
    assert dump(path) == before
    assert not in_group(handler, text, sender="1", admin=True).rejected


@pytest.mark.parametrize(
    "text", ["/list", "/types", "/venues", "/digest", "/stats", "/status", "/help", "/start"]
)
def test_every_member_may_read_a_groups_settings(handler: CommandHandler, text: str) -> None:
    in_group(handler, "/subscribe ALL 0.3", sender="1", admin=True)
    assert not in_group(handler, text, sender="2", admin=False).rejected


def test_a_groups_administrator_chooses_its_venues_for_everyone(
    handler: CommandHandler, store: Store
) -> None:
    in_group(handler, "/subscribe ALL 0.3", sender="1", admin=True)
    chosen = in_group(handler, "/venues bybit okx", sender="1", admin=True)
    assert "You trade on: Bybit and OKX" in chosen.text
    shown = in_group(handler, "/venues", sender="2", admin=False)
    assert not shown.rejected and "You trade on: Bybit and OKX" in shown.text
    group = store.find_user(Platform.TELEGRAM, "-200")
    assert group is not None and group.venues == {"bybit", "okx"}


def test_the_group_is_the_user_whoever_speaks(handler: CommandHandler, store: Store) -> None:
    in_group(handler, "/subscribe ALL 0.3", sender="1", admin=True)
    in_group(handler, "/subscribe BTCUSDT 0.4", sender="9", admin=True)
    in_group(handler, "/start", sender="5", admin=False)
    user = store.find_user(Platform.TELEGRAM, "-200")
    assert user is not None
    assert (user.user_id, user.name, user.is_group) == ("-200", "Signals club", True)


@pytest.mark.parametrize("text", ["/users", "/broadcast maintenance at 10:00"])
def test_admin_commands_only_in_a_private_chat(store: Store, path: Path, text: str) -> None:
    settings = Settings(_env_file=None, admin_user_ids="1")  # type: ignore[call-arg]
    admin = CommandHandler(store, settings, SYMBOLS)
    before = dump(path)
    for ctx in (
        admin.context(Platform.TELEGRAM, "-200", "1", "Ann", T0, is_group=True, chat_title="g"),
        admin.context(Platform.DISCORD, "1", "1", "Ann", T0, channel_id="77"),
    ):
        answer = admin.handle(text, ctx)
        assert answer.rejected and "works in a private chat with me only" in answer.text
    assert dump(path) == before
    private = admin.handle(text, admin.context(Platform.TELEGRAM, "1", "1", "Ann", T0))
    assert not private.rejected


def test_venues_show_choose_and_reset(handler: CommandHandler, store: Store) -> None:
    shown = on_discord(handler, "/venues")
    assert shown.text.splitlines() == [
        "You trade on: all venues",
        "Venues: binance, bybit, okx",
        "Usage: /venues binance okx or /venues all",
    ]
    assert store.find_user(Platform.DISCORD, ANN) is None  # looking registers nobody
    chosen = on_discord(handler, "/venues OKX Binance")
    assert chosen.text.splitlines() == [
        "✅ You trade on: Binance and OKX",
        "Arbitrage when both its legs are on them; other signals when on one of them.",
    ]
    user = store.find_user(Platform.DISCORD, ANN)
    assert user is not None and user.venues == {"binance", "okx"}
    assert "You trade on: Binance and OKX" in on_discord(handler, "/venues").text
    on_discord(handler, "/subscribe ALL 0.2")
    assert "Venues: Binance and OKX (change with /venues)" in on_discord(handler, "/list").text
    assert on_discord(handler, "/venues bybit,okx").text.startswith("✅ You trade on: Bybit and")
    one = on_discord(handler, "/venues okx")
    assert "With one venue no arbitrage can reach you" in one.text
    assert store.user(user.id).venues == {"okx"}
    back = on_discord(handler, "/venues all")
    assert back.text.splitlines() == [
        "✅ You trade on: all venues",
        "Alerts about every venue, also venues added later.",
    ]
    assert store.user(user.id).venues is None
    assert "Venues: all venues" in on_discord(handler, "/list").text


def test_the_venues_offered_are_the_handlers(store: Store) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    two = CommandHandler(store, settings, SYMBOLS, venues=("binance", "bybit"))
    assert "Unknown venue okx" in on_discord(two, "/venues okx").text
    assert "Venues: binance, bybit" in on_discord(two, "/venues").text
    assert "I watch Binance and Bybit USDT perpetuals" in on_discord(two, "/start").text


def test_digest_on_shows_and_off(handler: CommandHandler, store: Store) -> None:
    on_discord(handler, "/subscribe ALL 0.2")
    assert "each alert as it happens" in on_discord(handler, "/digest").text
    on = on_discord(handler, "/digest 5m")
    assert "Digest every 5 min" in on.text and "/digest off" in on.text
    user = store.find_user(Platform.DISCORD, ANN)
    assert user is not None and user.digest_ms == 5 * 60_000
    assert "One message every 5 min" in on_discord(handler, "/digest").text
    assert "Digest: one message every 5 min" in on_discord(handler, "/list").text
    assert "Alerts as they happen again" in on_discord(handler, "/digest OFF").text
    assert store.user(user.id).digest_ms is None
    assert "No digest is on" in on_discord(handler, "/digest off").text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("/digest 0m", "at least 1 minute"),
        ("/digest 2d", "2d is too long"),
        ("/digest soon", "I can't read the duration soon"),
        ("/digest 5m 1h", "Too many arguments (2; at most 1)"),
    ],
)
def test_bad_digest_periods_change_nothing(
    handler: CommandHandler, path: Path, text: str, fragment: str
) -> None:
    on_discord(handler, "/subscribe ALL 0.2")
    before = dump(path)
    answer = on_discord(handler, text)
    assert answer.rejected and fragment in answer.text and "/digest 5m" in answer.text
    assert dump(path) == before
