"""The platform-neutral command layer: chat text in, a :class:`Reply` out, the store updated.

Every frontend (Telegram, Discord) turns a message or a button press into
``handler.handle(text, handler.context(...))`` and renders the reply with ``bot.formatting``,
then sends the reply's chart, if any, as a picture. Bad input always gets a specific reply and
never changes the database; valid changes are committed before ``handle`` returns.

Synchronous, and it may take a while: ``/stats`` and ``/chart`` render their PNG (matplotlib,
~0.3-0.5 s of CPU) inside ``handle``. Every frontend therefore calls it via
``asyncio.to_thread``, which keeps the rendering off the event loop.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.arguments import (
    DAY_MS,
    HOUR_MS,
    parse_strength,
    parse_symbol_and_duration,
    parse_threshold,
    parse_types,
    resolve_symbol,
    too_many,
    usage,
)
from bot.charts import Chart, render_gap_chart, render_stats_chart
from bot.config import Settings
from bot.errors import BadInput, SubscriptionLimit
from bot.formatting import (
    Button,
    Line,
    Text,
    bold,
    code,
    format_clock,
    format_duration,
    format_pct,
    italic,
    line,
    plain_text,
    type_label,
)
from bot.records import ALL_SYMBOLS, Platform, Subscription, User
from bot.reports import format_period, format_stats, format_status, format_user_counts
from bot.store import Store
from detector.signals import SignalStrength, SignalType

if TYPE_CHECKING:
    from detector.engine import Health

MAX_INPUT = 200
"""Longest message accepted (characters); an admin's /broadcast may use MAX_BROADCAST."""
MAX_BROADCAST = 1000
DEFAULT_MUTE_MS = HOUR_MS
MAX_MUTE_MS = 30 * DAY_MS
DEFAULT_STATS_MS = DAY_MS
MAX_STATS_MS = 30 * DAY_MS
"""Longest period of /stats and /chart (their default is DEFAULT_STATS_MS)."""

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Register and see what I can do"),
    ("help", "List the commands"),
    ("subscribe", "SYMBOL|ALL THRESHOLD [STRENGTH]: alert from this net profit %"),
    ("unsubscribe", "SYMBOL|ALL: stop alerts for a symbol, or all of them"),
    ("list", "Your subscriptions and settings"),
    ("types", "[SYMBOL] TYPE ...: choose which signal types you receive"),
    ("mute", "[SYMBOL] [DURATION]: pause alerts, e.g. 30m, 2h, 1d (default 1h)"),
    ("unmute", "[SYMBOL]: resume alerts"),
    ("stats", "[SYMBOL] [PERIOD]: performance over 1h, 24h, 7d (default 24h), with a chart"),
    ("chart", "SYMBOL [PERIOD]: chart of the Bybit-Binance price gap, e.g. 24h, 7d (default 24h)"),
    ("status", "Live health of the exchange feeds"),
)
"""Commands everyone may use, with descriptions (for Telegram's setMyCommands)."""

ADMIN_COMMANDS: tuple[tuple[str, str], ...] = (
    ("users", "Counts of users, subscriptions and pending alerts"),
    ("broadcast", "TEXT: send a message to every active user"),
)

DISCORD_COMMANDS: tuple[tuple[str, str], ...] = (
    ("alerts", "dm|here: your alerts by DM, or in this channel (server admins)"),
)
"""Discord-only commands (handled by the Discord frontend), listed in its /help."""

_SUBSCRIBE = usage("/subscribe BTCUSDT 0.15", "/subscribe ALL 0.2 moderate")
_UNSUBSCRIBE = usage("/unsubscribe BTCUSDT", "/unsubscribe ALL")
_TYPES = usage("/types arbitrage volume_spike", "/types all", "/types BTCUSDT arbitrage")
_MUTE = usage("/mute", "/mute 30m", "/mute BTCUSDT 2h")
_UNMUTE = usage("/unmute", "/unmute BTCUSDT")
_STATS = usage("/stats", "/stats BTCUSDT", "/stats 7d", "/stats ETHUSDT 1h")
_CHART = usage("/chart BTCUSDT", "/chart ETHUSDT 7d")


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Who sent a command, where, and when (built by :meth:`CommandHandler.context`)."""

    platform: Platform
    chat_id: str
    user_id: str
    user_name: str
    is_admin: bool
    now_ms: int
    is_group: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """What to answer: neutral text (see bot.formatting), optional buttons and delivery flags.

    ``image`` is a chart to send after the text, as a picture with its caption. It is rendered
    inside :meth:`CommandHandler.handle`, which every frontend calls via ``asyncio.to_thread``:
    the rendering never blocks the event loop.
    """

    lines: Text
    buttons: tuple[tuple[Button, ...], ...] = ()
    silent: bool = False
    ephemeral: bool = False  # Discord: visible to the caller only
    image: Chart | None = None

    @property
    def text(self) -> str:
        return plain_text(self.lines)


def is_admin(admin_ids: Sequence[str], platform: Platform, user_id: str) -> bool:
    """Whether ``ADMIN_USER_IDS`` names this user ("platform:id", or a bare id on any platform)."""
    return f"{platform.value}:{user_id}" in admin_ids or user_id in admin_ids


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
    ) -> None:
        self.store = store
        self.settings = settings
        self.symbols = tuple(dict.fromkeys(s.upper() for s in monitored_symbols))
        self._health = health_provider
        self._stats = stats_provider
        self._chats = chats_provider  # e.g. "telegram connected · discord connected"
        self._commands: dict[str, Command] = {
            "start": self._start,
            "help": self._help,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "list": self._list,
            "types": self._types,
            "mute": self._mute,
            "unmute": self._unmute,
            "stats": self._stats_command,
            "chart": self._chart,
            "status": self._status,
            "users": self._users,
            "broadcast": self._broadcast,
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
    ) -> CommandContext:
        """A context whose ``is_admin`` comes from ``ADMIN_USER_IDS``."""
        admin = is_admin(self.settings.admin_user_ids, platform, user_id)
        return CommandContext(platform, chat_id, user_id, user_name, admin, now_ms, is_group)

    def handle(self, text: str, ctx: CommandContext) -> Reply:
        """Run one command (a button's callback data is a command too).

        Blocking (it may render a chart): call it via ``asyncio.to_thread`` from async code.
        """
        text = text.strip()
        if not text.startswith("/"):
            return _reply(line("I understand commands only. Send ", code("/help"), " to see them."))
        head, _, rest = text.partition(" ")
        name = head[1:].split("@", 1)[0].lower()  # Telegram groups: /list@arbwatch_bot
        limit = MAX_BROADCAST if name == "broadcast" and ctx.is_admin else MAX_INPUT
        if len(text) > limit:
            return _reply(
                line(bold("That message is too long"), f" ({len(text)} characters)."),
                line(f"Commands are at most {limit} characters. Send ", code("/help"), "."),
                ephemeral=True,
            )
        command = self._commands.get(name)
        if command is None:
            return self._unknown(head)
        try:
            return command(ctx, rest.split(), rest.strip())
        except BadInput as bad:
            return Reply(bad.lines, ephemeral=True)

    # -- everyone -------------------------------------------------------------------------------

    def _start(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        self._register(ctx)
        return Reply(
            (
                line(bold(f"Hi {ctx.user_name or 'there'}!"), " I'm arbwatch."),
                line(
                    "I watch Binance and Bybit USDT perpetuals and alert you to arbitrage "
                    "(net of fees) and market signals."
                ),
                line("Watching: ", code(", ".join(self.symbols))),
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
        commands = COMMANDS + (ADMIN_COMMANDS if ctx.is_admin else ())
        if ctx.platform is Platform.DISCORD:  # slash commands: no /start, and /alerts
            commands = tuple(c for c in commands if c[0] != "start") + DISCORD_COMMANDS
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

    def _subscribe(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if len(args) < 2:
            raise BadInput(line(bold("Tell me a symbol and a threshold.")), _SUBSCRIBE)
        if len(args) > 3:
            raise too_many(args, 3, _SUBSCRIBE)
        symbol = resolve_symbol(args[0], self.symbols)
        threshold = parse_threshold(args[1], _SUBSCRIBE)
        strength = parse_strength(args[2], _SUBSCRIBE) if len(args) == 3 else SignalStrength.WEAK
        user = self._user(ctx) or self._register(ctx)
        cap = self.settings.max_subscriptions_per_user
        try:
            created = self.store.subscribe(
                user.id, symbol, threshold, strength, ctx.now_ms, limit=cap
            )
        except SubscriptionLimit as exc:
            raise BadInput(
                line(bold(f"You already have {exc.limit} subscriptions"), ", the most allowed."),
                line(
                    "Remove one with ",
                    code("/unsubscribe SYMBOL"),
                    ", or cover every symbol ",
                    "with ",
                    code("/subscribe ALL THRESHOLD"),
                    ".",
                ),
            ) from exc
        if not user.active or user.name != ctx.user_name:
            self._register(ctx)  # a returning user: active again, name refreshed
        lines = [
            line("✅ ", bold(("Subscribed to " if created else "Updated ") + _label(symbol))),
            line("Arbitrage: when the net profit after fees reaches ", bold(format_pct(threshold))),
            line(f"Other signals: {strength.value} and stronger"),
        ]
        floor = self.settings.min_profit_pct
        if threshold < floor:
            lines.append(
                line(
                    italic(
                        f"arbwatch reports opportunities from {format_pct(floor)} "
                        "net, so arbitrage alerts start there."
                    )
                )
            )
        if symbol == ALL_SYMBOLS:
            lines.append(
                line(
                    f"Covers every watched symbol ({len(self.symbols)}); a symbol's "
                    "own subscription overrides it."
                )
            )
        elif any(s.symbol == ALL_SYMBOLS for s in self.store.subscriptions(user.id)):
            lines.append(line(f"This overrides your ALL default for {symbol}."))
        return _reply(*lines)

    def _unsubscribe(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if not args:
            raise BadInput(
                line(bold("Which symbol?"), " ALL removes every subscription."), _UNSUBSCRIBE
            )
        if len(args) > 1:
            raise too_many(args, 1, _UNSUBSCRIBE)
        user = self._user(ctx)
        held = {s.symbol for s in self.store.subscriptions(user.id)} if user else set()
        wanted = args[0].upper()
        if wanted != ALL_SYMBOLS and wanted not in held:
            symbol = resolve_symbol(args[0], self.symbols)  # unknown symbols get suggestions
            raise BadInput(
                line(bold(f"You are not subscribed to {symbol}.")),
                line("Yours: ", code(", ".join(sorted(held)) or "none"), ". See ", code("/list")),
            )
        if user is None or not held:
            raise BadInput(line(bold("You have no subscriptions.")))
        removed = self.store.unsubscribe(user.id, None if wanted == ALL_SYMBOLS else wanted)
        lines = [line("🗑 ", bold("Removed " + ", ".join(_label(s) for s in removed)))]
        if wanted != ALL_SYMBOLS and ALL_SYMBOLS in held:
            lines.append(
                line(
                    f"Your ALL default still covers {wanted}. ",
                    code("/unsubscribe ALL"),
                    " stops everything.",
                )
            )
        elif wanted == ALL_SYMBOLS or held == {wanted}:
            lines.append(line("You will get no more alerts."))
        return _reply(*lines)

    def _list(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if args:
            raise BadInput(line(bold("/list takes no arguments.")), usage("/list"))
        user = self._user(ctx)
        subs = self.store.subscriptions(user.id) if user else []
        if user is None or not subs:
            return _reply(
                line(bold("No subscriptions yet.")),
                line("Try ", code("/subscribe BTCUSDT 0.15"), " or ", code("/subscribe ALL 0.2")),
            )
        cap = self.settings.max_subscriptions_per_user
        return _reply(
            line(bold("Your subscriptions"), f" ({len(subs)} of {cap})"),
            *(self._subscription_line(sub) for sub in subs),
            line("Types: ", _types_text(user.types), " (change with ", code("/types"), ")"),
            *_mute_lines(user, ctx.now_ms),
            line(italic("Weak signals arrive silently.")),
        )

    def _subscription_line(self, sub: Subscription) -> Line:
        unwatched = sub.symbol != ALL_SYMBOLS and sub.symbol not in self.symbols
        return line(
            code(sub.symbol),
            " (not watched)" if unwatched else "",
            f": arbitrage from {format_pct(sub.threshold_pct)} net, others from "
            f"{sub.min_strength.value}",
            "" if sub.types is None else f"; types: {_types_text(sub.types)}",
        )

    def _types(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        user = self._user(ctx)
        if not args:
            return _reply(
                line("You receive: ", _types_text(user.types if user else frozenset(SignalType))),
                line("Types: ", code(", ".join(t.value for t in SignalType))),
                _TYPES,
            )
        symbol: str | None = None
        first = args[0]
        upper = first.upper()
        if (
            upper in self.symbols
            or upper.endswith("USDT")
            or (upper == ALL_SYMBOLS and len(args) > 1)
        ):
            symbol = resolve_symbol(first, self.symbols)
            args = args[1:]
            if not args:
                raise BadInput(line(bold(f"Which types for {symbol}?")), _TYPES)
        types = parse_types(args, allow_default=symbol is not None, usage_line=_TYPES)
        if symbol is None:
            chosen = types or frozenset(SignalType)
            self.store.set_types((user or self._register(ctx)).id, chosen, ctx.now_ms)
            return _reply(line("✅ You receive: ", _types_text(chosen)))
        if user is None or not self.store.set_subscription_types(
            user.id, symbol, types, ctx.now_ms
        ):
            raise BadInput(
                line(bold(f"You have no {_label(symbol)} subscription.")),
                line("Create it first, e.g. ", code(f"/subscribe {symbol} 0.2")),
            )
        chosen_text = "your default types" if types is None else _types_text(types)
        return _reply(line(f"✅ {_label(symbol)}: ", chosen_text))

    def _mute(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        symbol, duration = parse_symbol_and_duration(args, self.symbols, MAX_MUTE_MS, _MUTE)
        duration = DEFAULT_MUTE_MS if duration is None else duration
        user = self._user(ctx) or self._register(ctx)
        until = ctx.now_ms + duration
        self.store.mute(user.id, until, ctx.now_ms, symbol)
        what = "Alerts" if symbol is None else f"{symbol} alerts"
        undo = "/unmute" if symbol is None else f"/unmute {symbol}"
        return _reply(
            line(
                "🔕 ",
                bold(f"{what} muted for {format_duration(duration)}"),
                f", until {format_clock(until)}.",
            ),
            line(code(undo), " resumes them."),
            buttons=((Button("🔔 Unmute", undo),),),
        )

    def _unmute(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if len(args) > 1:
            raise too_many(args, 1, _UNMUTE)
        symbol = resolve_symbol(args[0], self.symbols) if args else ALL_SYMBOLS
        scope = None if symbol == ALL_SYMBOLS else symbol
        suffix = "" if scope is None else f" for {scope}"
        user = self._user(ctx)
        if user is None or not self.store.unmute(user.id, ctx.now_ms, scope):
            return _reply(line(f"Nothing was muted{suffix}."))
        return _reply(line("🔔 ", bold(f"Alerts resumed{suffix}.")))

    def _stats_command(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        symbol, period = parse_symbol_and_duration(args, self.symbols, MAX_STATS_MS, _STATS)
        period = DEFAULT_STATS_MS if period is None else period
        user = self._user(ctx)
        lines = format_stats(
            self.store,
            symbol=symbol,
            period_ms=period,
            now_ms=ctx.now_ms,
            user_id=user.id if user else None,
            health=self._health(),
            aggregator=self._stats(),
        )
        # The same window as format_stats' opportunity count, [now - period, now], so the chart
        # is None exactly when the text says "Arbitrage opportunities: 0".
        chart = render_stats_chart(self.store, ctx.now_ms - period, ctx.now_ms + 1, symbol)
        if chart is None:
            lines.append(line(italic("The chart appears once opportunities are recorded.")))
        return Reply(tuple(lines), image=chart)

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
        symbol, period = parse_symbol_and_duration(
            args, self.symbols, MAX_STATS_MS, _CHART, allow_all=False
        )
        if symbol is None:  # a period alone
            raise which
        period = DEFAULT_STATS_MS if period is None else period
        last = f"last {format_period(period)}"
        chart = render_gap_chart(self.store, symbol, ctx.now_ms - period, ctx.now_ms + 1)
        if chart is not None:
            return Reply((line("📈 ", bold(f"{symbol} gap"), f", {last}"),), image=chart)
        lines = [
            line(
                bold(f"No {symbol} signals in the {last} yet"),
                " — the chart needs stored arbitrage or momentum signals, which carry both"
                " exchanges' prices.",
            )
        ]
        if period < MAX_STATS_MS:
            longer = "7d" if period < 7 * DAY_MS else "30d"
            lines.append(line("Try a longer period: ", code(f"/chart {symbol} {longer}")))
        return _reply(*lines)

    def _status(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if args:
            raise BadInput(line(bold("/status takes no arguments.")), usage("/status"))
        chats = self._chats()
        return _reply(
            *format_status(self._health(), ctx.now_ms),
            *([line(bold("Chat platforms"), f": {chats}")] if chats else []),
        )

    # -- admins ---------------------------------------------------------------------------------

    def _users(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if not ctx.is_admin:
            return _refuse("/users")
        return _reply(*format_user_counts(self.store.user_counts(ctx.now_ms)), ephemeral=True)

    def _broadcast(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if not ctx.is_admin:
            return _refuse("/broadcast")
        if not rest:
            raise BadInput(line(bold("What should I send?")), usage("/broadcast TEXT"))
        sender = f"{ctx.platform.value}:{ctx.user_id}"
        queued = self.store.deliveries.enqueue_broadcast(rest, sender, ctx.now_ms)
        return _reply(line("📣 ", bold(f"Queued for {queued} active users.")), ephemeral=True)

    # -- helpers --------------------------------------------------------------------------------

    def _user(self, ctx: CommandContext) -> User | None:
        return self.store.find_user(ctx.platform, ctx.chat_id)

    def _register(self, ctx: CommandContext) -> User:
        return self.store.register(
            ctx.platform, ctx.chat_id, ctx.user_id, ctx.user_name, ctx.now_ms, is_group=ctx.is_group
        )

    def _unknown(self, head: str) -> Reply:
        names = [f"/{name}" for name in self._commands]
        guess = difflib.get_close_matches(head.lower().split("@", 1)[0], names, n=1, cutoff=0.6)
        return _reply(
            line(bold("I don't know "), code(head[:40]), bold(".")),
            *([line("Did you mean ", code(guess[0]), "?")] if guess else []),
            line("Send ", code("/help"), " for the list of commands."),
            ephemeral=True,
        )


def _reply(
    *lines: Line, buttons: tuple[tuple[Button, ...], ...] = (), ephemeral: bool = False
) -> Reply:
    return Reply(tuple(lines), buttons=buttons, ephemeral=ephemeral)


def _refuse(command: str) -> Reply:
    return _reply(
        line(f"Sorry, {command} is for arbwatch admins only."),
        line("Send ", code("/help"), " to see what you can do."),
        ephemeral=True,
    )


def _label(symbol: str) -> str:
    return "ALL (every watched symbol)" if symbol == ALL_SYMBOLS else symbol


def _types_text(types: frozenset[SignalType]) -> str:
    if types == frozenset(SignalType):
        return "all types"
    return ", ".join(type_label(t) for t in SignalType if t in types)


def _mute_lines(user: User, now_ms: int) -> list[Line]:
    lines = []
    if user.muted_until_ms is not None and user.muted_until_ms > now_ms:
        lines.append(line("🔕 All alerts muted until ", format_clock(user.muted_until_ms)))
    for symbol, until in sorted(user.muted_symbols.items()):
        if until > now_ms:
            lines.append(line(f"🔕 {symbol} muted until ", format_clock(until)))
    return lines
