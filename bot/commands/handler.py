"""The platform-neutral command layer's front desk: chat text in, a :class:`Reply` out.

:class:`CommandHandler` is the one rule book both platforms share: it reads the command name,
refuses what is too long or unknown, and runs the command — its own (/start, /help, /stats,
/chart, /status and the admins' /users and /broadcast) or those of
:class:`~bot.commands.subscriptions.SubscriptionCommands` (what a user receives, and where).

Every frontend (Telegram, Discord) turns a message or a button press into
``handler.handle(text, handler.context(...))`` and renders the reply with ``bot.messages``,
then sends the reply's chart, if any, as a picture. Bad input always gets a specific reply and
never changes the database; valid changes are committed before ``handle`` returns.

Synchronous, and it may take a while: ``/stats`` and ``/chart`` render their PNG (matplotlib,
~0.3-0.5 s of CPU) inside ``handle``. Every frontend therefore calls it via
``asyncio.to_thread``, which keeps the rendering off the event loop.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bot.commands.arguments import (
    BadInput,
    parse_chart_arguments,
    parse_symbol_and_duration,
    resolve_symbol,
    usage,
)
from bot.commands.reply import CommandContext, Reply, is_admin, refuse, reply
from bot.commands.reports import (
    DEFAULT_STATS_MS,
    MAX_STATS_MS,
    chart_reply,
    format_status,
    format_user_counts,
    stats_reply,
)
from bot.commands.subscriptions import SubscriptionCommands, find_sender, register_sender
from bot.config import Settings
from bot.messages import VENUES, Button, Line, bold, clean, code, italic, line, venue_list
from bot.store import ALL_SYMBOLS, Platform, Store

if TYPE_CHECKING:
    from detector.engine import Health

MAX_INPUT = 200
"""Longest message accepted (characters); an admin's /broadcast may use MAX_BROADCAST."""
MAX_BROADCAST = 1000
GROUP_CHANGES = frozenset(
    {"subscribe", "unsubscribe", "types", "venues", "mute", "unmute", "digest"}
)
"""What only a group's administrators may run there (a button press is its command, so the same
rule holds for buttons)."""
SHOW_WITHOUT_WORDS = frozenset({"types", "venues", "digest"})
"""Changes that, without words, only show the current choice: anyone may run them so."""
PRIVATE_ONLY = frozenset({"users", "broadcast"})
"""The admins' commands: their answers are for the admin alone, never for a group to read."""

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Register and see what I can do"),
    ("help", "List the commands"),
    ("subscribe", "SYMBOL|ALL THRESHOLD [STRENGTH]: alert from this net profit %"),
    ("unsubscribe", "SYMBOL|ALL: stop alerts for a symbol, or all of them"),
    ("list", "Your subscriptions and settings"),
    ("types", "[SYMBOL] TYPE ...: choose which signal types you receive"),
    ("venues", "VENUE ...|all: only opportunities on the venues you trade on (default all)"),
    ("mute", "[SYMBOL] [DURATION]: pause alerts, e.g. 30m, 2h, 1d (default 1h)"),
    ("unmute", "[SYMBOL]: resume alerts"),
    ("digest", "PERIOD|off: one message per period (e.g. 5m, 1h) instead of each alert"),
    ("stats", "[SYMBOL] [PERIOD]: performance over 1h, 24h, 7d (default 24h), with a chart"),
    (
        "chart",
        "SYMBOL [PERIOD] [VENUE VENUE]: chart of the price gap between two venues, e.g."
        " 7d okx binance (default 24h, binance bybit)",
    ),
    ("status", "[SYMBOL]: live health of the exchange feeds, or of one symbol's books"),
)
"""Commands everyone may use, with descriptions (for Telegram's setMyCommands)."""

ADMIN_COMMANDS: tuple[tuple[str, str], ...] = (
    ("users", "Counts of users, subscriptions and pending alerts"),
    ("broadcast", "TEXT: send a message to every active user"),
)

DISCORD_COMMANDS: tuple[tuple[str, str], ...] = (
    ("alerts", "dm|here: your alerts by DM, or in this channel (server admins)"),
)
"""Discord's own commands, listed in its /help."""

TELEGRAM_COMMANDS: tuple[tuple[str, str], ...] = (
    ("alerts", "dm|@CHANNEL: your alerts here, or posted to a channel you administer"),
)
"""Telegram's own commands, listed in its /help and menu."""

PLATFORM_COMMANDS = {Platform.DISCORD: DISCORD_COMMANDS, Platform.TELEGRAM: TELEGRAM_COMMANDS}

_STATS = usage("/stats", "/stats BTCUSDT", "/stats 7d", "/stats ETHUSDT 1h")
_STATUS = usage("/status", "/status BTCUSDT")
_CHART = usage("/chart BTCUSDT", "/chart ETHUSDT 7d", "/chart BTCUSDT 24h okx binance")


def _no_health() -> Health | None:
    return None


def _no_stats() -> Mapping[str, Any] | None:
    return None


Command = Callable[["CommandContext", list[str], str], Reply]


class CommandHandler:
    """Parses and runs chat commands against the store (see module doc)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        monitored_symbols: Sequence[str],
        health_provider: Callable[[], Health | None] = _no_health,
        stats_provider: Callable[[], Mapping[str, Any] | None] = _no_stats,
        chats_provider: Callable[[], str] = str,
        venues: Sequence[str] = VENUES,
    ) -> None:
        self.store = store
        self.settings = settings
        self.symbols = tuple(dict.fromkeys(s.upper() for s in monitored_symbols))
        self.venues = tuple(dict.fromkeys(v.lower() for v in venues))
        self._health = health_provider
        self._stats = stats_provider
        self._chats = chats_provider  # e.g. "telegram connected · discord connected"
        subs = self.subscriptions = SubscriptionCommands(store, settings, self.symbols, self.venues)
        self._commands: dict[str, Command] = {
            "start": self._start,
            "help": self._help,
            "subscribe": subs.subscribe,
            "unsubscribe": subs.unsubscribe,
            "list": subs.list_subscriptions,
            "types": subs.types,
            "venues": subs.venues,
            "mute": subs.mute,
            "unmute": subs.unmute,
            "digest": subs.digest,
            "stats": self._stats_command,
            "chart": self._chart,
            "status": self._status,
            "users": self._users,
            "broadcast": self._broadcast,
            "alerts": subs.alerts,
        }

    def context(
        self,
        platform: Platform,
        chat_id: str,
        user_id: str,
        user_name: str,
        now_ms: int,
        *,
        is_group: bool = False,
        channel_id: str | None = None,
        channel_name: str | None = None,
        may_manage_chat: bool = False,
        chat_title: str | None = None,
    ) -> CommandContext:
        """A context whose ``is_admin`` comes from ``ADMIN_USER_IDS``; names are :func:`clean`."""
        return CommandContext(
            platform,
            chat_id,
            user_id,
            clean(user_name),
            is_admin(self.settings.admin_user_ids, platform, user_id),
            now_ms,
            is_group,
            channel_id,
            None if channel_name is None else clean(channel_name),
            may_manage_chat,
            None if chat_title is None else clean(chat_title),
        )

    def held_symbols(self, platform: Platform, chat_id: str) -> list[str]:
        """The symbols a chat subscribed to (for autocompletion), ``ALL`` first."""
        user = self.store.find_user(platform, chat_id)
        return [s.symbol for s in self.store.subscriptions(user.id)] if user else []

    def handle(self, text: str, ctx: CommandContext) -> Reply:
        """Run one command (a button's callback data is a command too).

        Blocking (it may render a chart): call it via ``asyncio.to_thread`` from async code.
        """
        text = clean(text).strip()
        if not text.startswith("/"):
            return reply(
                line("I understand commands only. Send ", code("/help"), " to see them."),
                rejected=True,
            )
        head, _, rest = text.partition(" ")
        name = head[1:].split("@", 1)[0].lower()  # Telegram groups: /list@arbwatch_bot
        limit = MAX_BROADCAST if name == "broadcast" and ctx.is_admin else MAX_INPUT
        if len(text) > limit:
            return reply(
                line(bold("That message is too long"), f" ({len(text)} characters)."),
                line(f"Commands are at most {limit} characters. Send ", code("/help"), "."),
                ephemeral=True,
                rejected=True,
            )
        command = self._commands.get(name)
        if command is None or name not in self._available(ctx.platform):
            return self._unknown(head, ctx.platform)
        shared = ctx.is_group or ctx.channel_id is not None
        if shared and name in PRIVATE_ONLY:
            return reply(
                line(f"/{name} works in a private chat with me only."),
                ephemeral=True,
                rejected=True,
            )
        shows = name in SHOW_WITHOUT_WORDS and not rest.strip()
        changes = name in GROUP_CHANGES and not shows
        if ctx.is_group and not ctx.may_manage_chat and changes:
            return reply(
                line("Only this group's administrators can change its alerts."), rejected=True
            )
        try:
            return command(ctx, rest.split(), rest.strip())
        except BadInput as bad:
            return Reply(bad.lines, ephemeral=True, rejected=True)

    def watch(self, symbols: Sequence[str]) -> None:
        """The symbols the detector watches now (``SYMBOLS=ALL``: known once it started)."""
        self.symbols = tuple(dict.fromkeys(s.upper() for s in symbols))
        self.subscriptions.symbols = self.symbols

    # -- everyone -------------------------------------------------------------------------------

    def _start(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        register_sender(self.store, ctx)
        return Reply(
            (
                line(bold(f"Hi {ctx.user_name or 'there'}!"), " I'm arbwatch."),
                line(
                    f"I watch {venue_list(self.venues)} USDT perpetuals and alert you to "
                    "arbitrage (net of fees) and market signals."
                ),
                line("Watching: ", code(watching(self.symbols))),
                line(
                    "Start with ",
                    code("/subscribe ALL 0.2"),
                    " or ",
                    code("/subscribe BTCUSDT 0.15"),
                ),
                line(),
                *self._help_lines(ctx),
            ),
            buttons=((Button("Alert me from 0.2 % on every symbol", "/subscribe ALL 0.2"),),),
        )

    def _help(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        return Reply(tuple(self._help_lines(ctx)), ephemeral=True)

    def _help_lines(self, ctx: CommandContext) -> list[Line]:
        commands = COMMANDS + PLATFORM_COMMANDS[ctx.platform]
        commands += ADMIN_COMMANDS if ctx.is_admin else ()
        if ctx.platform is Platform.DISCORD:  # slash commands: no /start
            commands = tuple(c for c in commands if c[0] != "start")
        return [
            line(bold("Commands")),
            *(line(code(f"/{name}"), f" {about}") for name, about in commands),
            line(
                italic(
                    "Arbitrage alerts fire on the net profit after both taker fees. "
                    "Weak signals arrive silently; moderate and strong ones notify."
                )
            ),
        ]

    def _stats_command(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        symbol, period = parse_symbol_and_duration(args, self.symbols, MAX_STATS_MS, _STATS)
        user = find_sender(self.store, ctx)
        return stats_reply(
            self.store,
            symbol=symbol,
            period_ms=DEFAULT_STATS_MS if period is None else period,
            now_ms=ctx.now_ms,
            user_id=user.id if user else None,
            health=self._health(),
            aggregator=self._stats(),
        )

    def _chart(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        which = BadInput(line(bold("Which symbol?"), " /chart draws one at a time."), _CHART)
        if not args:
            raise which
        if any(arg.upper() == ALL_SYMBOLS for arg in args):
            raise BadInput(
                line(bold("/chart draws one symbol, not ALL.")),
                line("For every symbol at once, see ", code("/stats"), "."),
                _CHART,
            )
        symbol, period, pair = parse_chart_arguments(
            args, self.symbols, self.venues, MAX_STATS_MS, _CHART
        )
        if symbol is None:  # a period (or venues) alone
            raise which
        period = DEFAULT_STATS_MS if period is None else period
        return chart_reply(self.store, symbol, period, ctx.now_ms, pair)

    def _status(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if len(args) > 1:
            raise BadInput(line(bold("/status takes one symbol at most.")), _STATUS)
        symbol = resolve_symbol(args[0], self.symbols, allow_all=False) if args else None
        chats = self._chats()
        return reply(
            *format_status(self._health(), ctx.now_ms, symbol),
            *([line(bold("Chat platforms"), f": {chats}")] if chats else []),
        )

    # -- admins ---------------------------------------------------------------------------------

    def _users(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if not ctx.is_admin:
            return refuse("/users")
        return reply(*format_user_counts(self.store.user_counts(ctx.now_ms)), ephemeral=True)

    def _broadcast(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if not ctx.is_admin:
            return refuse("/broadcast")
        if not rest:
            raise BadInput(line(bold("What should I send?")), usage("/broadcast TEXT"))
        sender = f"{ctx.platform.value}:{ctx.user_id}"
        queued = self.store.deliveries.enqueue_broadcast(rest, sender, ctx.now_ms)
        return reply(line("📣 ", bold(f"Queued for {queued} active users.")), ephemeral=True)

    # -- helpers --------------------------------------------------------------------------------

    def _available(self, platform: Platform) -> set[str]:
        """The command names this platform knows (each platform's own ones only there)."""
        others = {n for p, own in PLATFORM_COMMANDS.items() if p is not platform for n, _ in own}
        mine = {name for name, _ in PLATFORM_COMMANDS[platform]}
        return set(self._commands) - (others - mine)

    def _unknown(self, head: str, platform: Platform) -> Reply:
        names = [f"/{name}" for name in self._commands if name in self._available(platform)]
        guess = difflib.get_close_matches(head.lower().split("@", 1)[0], names, n=1, cutoff=0.6)
        return reply(
            line(bold("I don't know "), code(head[:40]), bold(".")),
            *([line("Did you mean ", code(guess[0]), "?")] if guess else []),
            line("Send ", code("/help"), " for the list of commands."),
            ephemeral=True,
            rejected=True,
        )


SHOWN_SYMBOLS = 12
"""Symbols named in a reply; beyond that (the whole market), the count and the first few."""


def watching(symbols: Sequence[str]) -> str:
    """``"BTCUSDT, ETHUSDT"``, or ``"412 symbols: 1000PEPEUSDT, ... (+400 more)"``."""
    if len(symbols) <= SHOWN_SYMBOLS:
        return ", ".join(symbols)
    rest = len(symbols) - SHOWN_SYMBOLS
    return f"{len(symbols)} symbols: {', '.join(symbols[:SHOWN_SYMBOLS])} (+{rest} more)"
