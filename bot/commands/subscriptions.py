"""The commands that decide what a user receives: subscriptions, types, venues, mutes, where to.

``/subscribe``, ``/unsubscribe``, ``/list``, ``/types``, ``/venues``, ``/mute``, ``/unmute``,
``/digest`` and ``/alerts``, as methods of :class:`SubscriptionCommands` that
:class:`CommandHandler` dispatches to. Each parses its arguments (a :class:`BadInput` explains
what was wrong), writes the store in as few calls as the reply needs, and answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.commands.arguments import (
    BadInput,
    is_chat_name,
    parse_duration,
    parse_strength,
    parse_symbol_and_duration,
    parse_threshold,
    parse_types,
    parse_venues,
    resolve_symbol,
    too_many,
    usage,
)
from bot.commands.reply import CommandContext, Reply, reply
from bot.config import Settings
from bot.errors import SubscriptionLimit
from bot.messages import (
    DAY_MS,
    HOUR_MS,
    Button,
    Line,
    bold,
    code,
    format_clock,
    format_duration,
    format_pct,
    italic,
    line,
    type_label,
    venue_list,
)
from bot.store import ALL_SYMBOLS, Platform, Store, Subscription, User
from detector.signals import SignalStrength, SignalType

DEFAULT_MUTE_MS = HOUR_MS
MAX_MUTE_MS = 30 * DAY_MS
MAX_DIGEST_MS = DAY_MS

_SUBSCRIBE = usage("/subscribe BTCUSDT 0.15", "/subscribe ALL 0.2 moderate")
_UNSUBSCRIBE = usage("/unsubscribe BTCUSDT", "/unsubscribe ALL")
_TYPES = usage("/types arbitrage volume_spike", "/types all", "/types BTCUSDT arbitrage")
_VENUES = usage("/venues binance okx", "/venues all")
_MUTE = usage("/mute", "/mute 30m", "/mute BTCUSDT 2h")
_UNMUTE = usage("/unmute", "/unmute BTCUSDT")
_DIGEST = usage("/digest 5m", "/digest 1h", "/digest off")
_ALERTS = usage("/alerts dm", "/alerts here")
_ALERTS_TELEGRAM = usage("/alerts dm", "/alerts @yourchannel")


def find_sender(store: Store, ctx: CommandContext) -> User | None:
    """The user behind a command's chat, if it ever registered."""
    return store.find_user(ctx.platform, ctx.chat_id)


def register_sender(store: Store, ctx: CommandContext) -> User:
    """Register the command's chat (or refresh it: active again, its name up to date)."""
    user_id, name = ctx.identity
    return store.register(
        ctx.platform, ctx.chat_id, user_id, name, ctx.now_ms, is_group=ctx.is_group
    )


class SubscriptionCommands:
    """What a user receives, and where (see module doc)."""

    def __init__(
        self, store: Store, settings: Settings, symbols: Sequence[str], venues: Sequence[str]
    ) -> None:
        self.store = store
        self.settings = settings
        self.symbols = tuple(symbols)
        self.all_venues = tuple(venues)

    def subscribe(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if len(args) < 2:
            raise BadInput(line(bold("Tell me a symbol and a threshold.")), _SUBSCRIBE)
        if len(args) > 3:
            raise too_many(args, 3, _SUBSCRIBE)
        symbol = resolve_symbol(args[0], self.symbols)
        threshold = parse_threshold(args[1], _SUBSCRIBE)
        strength = parse_strength(args[2], _SUBSCRIBE) if len(args) == 3 else SignalStrength.WEAK
        try:
            done = self.store.subscribe_chat(
                ctx.platform,
                ctx.chat_id,
                *ctx.identity,
                symbol,
                threshold,
                strength,
                ctx.now_ms,
                limit=self.settings.max_subscriptions_per_user,
                is_group=ctx.is_group,
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
        lines = [
            line("✅ ", bold(("Subscribed to " if done.created else "Updated ") + _label(symbol))),
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
        elif done.has_all_default:
            lines.append(line(f"This overrides your ALL default for {symbol}."))
        return reply(*lines)

    def unsubscribe(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if not args:
            raise BadInput(
                line(bold("Which symbol?"), " ALL removes every subscription."), _UNSUBSCRIBE
            )
        if len(args) > 1:
            raise too_many(args, 1, _UNSUBSCRIBE)
        user = find_sender(self.store, ctx)
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
        return reply(*lines)

    def list_subscriptions(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if args:
            raise BadInput(line(bold("/list takes no arguments.")), usage("/list"))
        user = find_sender(self.store, ctx)
        subs = self.store.subscriptions(user.id) if user else []
        if user is None or not subs:
            return reply(
                line(bold("No subscriptions yet.")),
                line("Try ", code("/subscribe BTCUSDT 0.15"), " or ", code("/subscribe ALL 0.2")),
            )
        cap = self.settings.max_subscriptions_per_user
        return reply(
            line(bold("Your subscriptions"), f" ({len(subs)} of {cap})"),
            *(self._subscription_line(sub) for sub in subs),
            line("Types: ", _types_text(user.types), " (change with ", code("/types"), ")"),
            line("Venues: ", _venues_text(user.venues), " (change with ", code("/venues"), ")"),
            *_mute_lines(user, ctx.now_ms),
            *(
                ()
                if user.digest_ms is None
                else (line(f"Digest: one message every {format_duration(user.digest_ms)}"),)
            ),
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

    def types(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        user = find_sender(self.store, ctx)
        if not args:
            return reply(
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
            self.store.set_types((user or register_sender(self.store, ctx)).id, chosen, ctx.now_ms)
            return reply(line("✅ You receive: ", _types_text(chosen)))
        if user is None or not self.store.set_subscription_types(
            user.id, symbol, types, ctx.now_ms
        ):
            raise BadInput(
                line(bold(f"You have no {_label(symbol)} subscription.")),
                line("Create it first, e.g. ", code(f"/subscribe {symbol} 0.2")),
            )
        chosen_text = "your default types" if types is None else _types_text(types)
        return reply(line(f"✅ {_label(symbol)}: ", chosen_text))

    def venues(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        """``/venues binance okx``: only what happens on the venues the user trades on."""
        user = find_sender(self.store, ctx)
        if not args:
            return reply(
                line("You trade on: ", _venues_text(user.venues if user else None)),
                line("Venues: ", code(", ".join(self.all_venues))),
                _VENUES,
            )
        chosen = parse_venues(args, self.all_venues, _VENUES)
        user = user or register_sender(self.store, ctx)
        self.store.set_venues(user.id, chosen, ctx.now_ms)
        if chosen is None:
            return reply(
                line("✅ You trade on: ", _venues_text(None)),
                line("Alerts about every venue, also venues added later."),
            )
        lines = [
            line("✅ You trade on: ", _venues_text(chosen)),
            line("Arbitrage when both its legs are on them; other signals when on one of them."),
        ]
        if len(chosen) == 1:
            lines.append(line(italic("With one venue no arbitrage can reach you: it takes two.")))
        return reply(*lines)

    def mute(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        symbol, duration = parse_symbol_and_duration(args, self.symbols, MAX_MUTE_MS, _MUTE)
        duration = DEFAULT_MUTE_MS if duration is None else duration
        user = find_sender(self.store, ctx) or register_sender(self.store, ctx)
        until = ctx.now_ms + duration
        self.store.mute(user.id, until, ctx.now_ms, symbol)
        what = "Alerts" if symbol is None else f"{symbol} alerts"
        undo = "/unmute" if symbol is None else f"/unmute {symbol}"
        return reply(
            line(
                "🔕 ",
                bold(f"{what} muted for {format_duration(duration)}"),
                f", until {format_clock(until)}.",
            ),
            line(code(undo), " resumes them."),
            buttons=((Button("🔔 Unmute", undo),),),
        )

    def unmute(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        if len(args) > 1:
            raise too_many(args, 1, _UNMUTE)
        symbol = resolve_symbol(args[0], self.symbols) if args else ALL_SYMBOLS
        scope = None if symbol == ALL_SYMBOLS else symbol
        suffix = "" if scope is None else f" for {scope}"
        user = find_sender(self.store, ctx)
        if user is None or not self.store.unmute(user.id, ctx.now_ms, scope):
            return reply(line(f"Nothing was muted{suffix}."))
        return reply(line("🔔 ", bold(f"Alerts resumed{suffix}.")))

    def digest(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        """``/digest 5m``: one message per period instead of each alert; ``off`` undoes it."""
        if len(args) > 1:
            raise too_many(args, 1, _DIGEST)
        user = find_sender(self.store, ctx)
        if not args:
            if user is None or user.digest_ms is None:
                return reply(line("You get each alert as it happens."), _DIGEST)
            return reply(*_digest_lines(user.digest_ms), _DIGEST)
        if args[0].lower() == "off":
            if user is None or user.digest_ms is None:
                return reply(line("No digest is on: you get each alert as it happens."))
            self.store.set_digest(user.id, None, ctx.now_ms)
            waiting = self.store.digests.waiting(user.id)
            lines = [line("🔔 ", bold("Alerts as they happen again."))]
            if waiting:
                lines.append(line(f"The {waiting} signals gathered so far come within a minute."))
            return reply(*lines)
        period = parse_duration(args[0], MAX_DIGEST_MS, _DIGEST)
        user = user or register_sender(self.store, ctx)
        moved = self.store.set_digest(user.id, period, ctx.now_ms)
        lines = [line("🗞 ", bold(f"Digest every {format_duration(period)}"))]
        lines += _digest_lines(period)
        if moved:
            lines.append(line(f"{moved} alerts still queued join the first digest."))
        return reply(*lines)

    def alerts(self, ctx: CommandContext, args: list[str], rest: str) -> Reply:
        """Alerts by DM, or to a shared place the sender administers: on Discord the server
        channel of the command (``here``), on Telegram a channel named by the command (the
        frontend resolves it into ``ctx.channel_id`` and checks both the sender's and the bot's
        rights there)."""
        telegram = ctx.platform is Platform.TELEGRAM
        usage_line = _ALERTS_TELEGRAM if telegram else _ALERTS
        named = args[0].lower() if len(args) == 1 else ""
        shared = is_chat_name(named) if telegram else named == "here"
        if named != "dm" and not shared:
            where = " dm or @channel." if telegram else " dm or here."
            raise BadInput(line(bold("Where should your alerts go?"), where), usage_line)
        if telegram and ctx.is_group:
            raise BadInput(
                line(bold("In a group, alerts already come here, for the whole group.")),
                line("Its administrators choose them with ", code("/subscribe"), "."),
            )
        # Registering again also reactivates a user deactivated after a refused delivery.
        user = register_sender(self.store, ctx)
        if named == "dm":
            self.store.set_channel(user.id, None, ctx.now_ms)
            return reply(line("✅ ", bold("Your alerts now arrive by direct message.")))
        if telegram:
            return self._to_telegram_channel(ctx, user.id, args[0])
        if ctx.channel_id is None:
            return reply(
                line(bold("Run this in the server channel that should get your alerts.")),
                line("Here, in our DMs, alerts already come to you directly."),
            )
        if not ctx.may_manage_chat:
            return reply(
                line(bold("Only server admins can send alerts to a channel")),
                line("(Manage Server or Manage Channels). Ask one, or use ", code("/alerts dm")),
            )
        self.store.set_channel(user.id, ctx.channel_id, ctx.now_ms)
        return reply(
            line("✅ ", bold(f"Your alerts now go to #{ctx.channel_name or ctx.channel_id}.")),
            line("Moderate and strong ones mention you; weak ones arrive silently."),
        )

    def _to_telegram_channel(self, ctx: CommandContext, user_id: int, named: str) -> Reply:
        if ctx.channel_id is None:
            return reply(
                line(bold(f"I can't post in {named[:64]}.")),
                line("Add me to it as an administrator who may post messages, then try again."),
            )
        if not ctx.may_manage_chat:
            return reply(line(bold("Only that channel's administrators can send alerts there.")))
        self.store.set_channel(user_id, ctx.channel_id, ctx.now_ms)
        title = ctx.channel_name or ctx.channel_id
        return reply(
            line("✅ ", bold(f"Your alerts now go to {title}"), ", once for all its readers."),
            line(code("/alerts dm"), " brings them back here."),
        )


def _label(symbol: str) -> str:
    return "ALL (every watched symbol)" if symbol == ALL_SYMBOLS else symbol


def _types_text(types: frozenset[SignalType]) -> str:
    if types == frozenset(SignalType):
        return "all types"
    return ", ".join(type_label(t) for t in SignalType if t in types)


def _venues_text(venues: frozenset[str] | None) -> str:
    return "all venues" if venues is None else venue_list(venues)


def _mute_lines(user: User, now_ms: int) -> list[Line]:
    lines = []
    if user.muted_until_ms is not None and user.muted_until_ms > now_ms:
        lines.append(line("🔕 All alerts muted until ", format_clock(user.muted_until_ms)))
    for symbol, until in sorted(user.muted_symbols.items()):
        if until > now_ms:
            lines.append(line(f"🔕 {symbol} muted until ", format_clock(until)))
    return lines


def _digest_lines(period_ms: int) -> list[Line]:
    return [
        line(
            f"One message every {format_duration(period_ms)} with everything your filters",
            " caught, instead of each alert as it happens.",
        ),
        line("Alerts as they happen again: ", code("/digest off")),
    ]
