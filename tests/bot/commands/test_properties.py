"""The command layer over arbitrary unicode: never an exception, never a change from a refusal,
and every reply valid markup within each platform's limits (property-based, on a real store)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands import ADMIN_COMMANDS, COMMANDS, DISCORD_COMMANDS, CommandHandler
from bot.config import Settings
from bot.messages import (
    DISCORD_LIMIT,
    TELEGRAM_LIMIT,
    discord_messages,
    telegram_messages,
    text_length,
)
from bot.store import Platform, Store
from tests.bot.factories import T0
from tests.bot.fakes.fake_telegram_rules import MAX_TEXT, parse_text

NAMES = [name for name, _ in (*COMMANDS, *ADMIN_COMMANDS, *DISCORD_COMMANDS)]
WORDS = ["ALL", "BTCUSDT", "ethusdt", "0.15", "1h", "7d", "strong", "all", "default", "dm", "here"]
WORDS += ["binance", "OKX", "bybit,okx", "okex"]  # /venues and /chart's pairs

# Any text, lone surrogates and control characters often among it (hypothesis draws them rarely
# on its own), and commands with such arguments.
NASTY = ["\ud800", "\udfff", "\x00", "\x1b", "\r", "\u202e", "\u200b", "<", "&", "*", "`", "@"]
CHARACTER = st.one_of(st.characters(codec=None, exclude_categories=()), st.sampled_from(NASTY))
ANY_TEXT = st.lists(CHARACTER, max_size=300).map("".join)
ARGUMENT = st.one_of(st.sampled_from(WORDS), st.lists(CHARACTER, max_size=40).map("".join))
COMMAND = st.builds(
    lambda name, at, args: f"/{name}{at} {' '.join(args)}",
    st.sampled_from(NAMES),
    st.sampled_from(["", "@arbwatch_bot"]),
    st.lists(ARGUMENT, max_size=4),
)


def dump(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


@settings(
    max_examples=250,
    deadline=None,  # the machine is shared: a slow example is not a failure
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the store outlives examples
)
@given(
    text=st.one_of(ANY_TEXT, COMMAND),
    name=ANY_TEXT,
    platform=st.sampled_from(list(Platform)),
    group=st.booleans(),
    admin=st.booleans(),
)
def test_any_input_gets_a_valid_reply_and_a_refusal_changes_nothing(
    store: Store, path: Path, text: str, name: str, platform: Platform, group: bool, admin: bool
) -> None:
    handler = CommandHandler(
        store,
        Settings(_env_file=None, admin_user_ids="1"),
        ("BTCUSDT", "ETHUSDT"),  # type: ignore[call-arg]
    )
    is_group = group and platform is Platform.TELEGRAM
    ctx = handler.context(
        platform,
        "-9" if is_group else "1",
        "1" if admin else "2",
        name,
        T0,
        is_group=is_group,
        may_manage_chat=admin,
        chat_title=name,
    )
    before = dump(path)

    reply = handler.handle(text, ctx)

    if reply.rejected:
        assert dump(path) == before
    for chunk in telegram_messages(reply.lines):
        assert text_length(chunk) <= TELEGRAM_LIMIT
        parse_text(chunk, "HTML", MAX_TEXT, "message is too long")  # the fake's 400 rules
    for chunk in discord_messages(reply.lines):
        assert text_length(chunk) <= DISCORD_LIMIT
        chunk.encode("utf-8")  # no lone surrogate survives
