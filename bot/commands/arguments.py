"""Parsing of command arguments: symbols, thresholds, strengths, durations, types and venues.

Each parser returns a value or raises :class:`BadInput` with the specific, helpful reply (what
was wrong, what is valid, and the command's usage line).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence

from bot.errors import BotError
from bot.messages import DAY_MS, HOUR_MS, MINUTE_MS, Line, Span, bold, code, format_duration, line
from bot.store import ALL_SYMBOLS
from detector.signals import SignalStrength, SignalType

MAX_THRESHOLD_PCT = 50.0
"""A net arbitrage profit above this is not a market, it is a typo."""

TYPE_ALIASES: dict[str, SignalType] = {
    **{t.value: t for t in SignalType},
    "arb": SignalType.ARBITRAGE,
    "spread": SignalType.SPREAD_ANOMALY,
    "volume": SignalType.VOLUME_SPIKE,
    "funding": SignalType.FUNDING_RATE_DIVERGENCE,
    "momentum": SignalType.MOMENTUM_BREAKOUT,
    "breakout": SignalType.MOMENTUM_BREAKOUT,
}

_DURATION = re.compile(r"^(\d{1,6})(m|min|h|d)$", re.IGNORECASE)
# Starts with digits and ends in a few letters: meant as a duration ("2x", "5 sec" typos), not a
# symbol — symbols such as 1000PEPEUSDT have many more letters.
_DURATION_LIKE = re.compile(r"^\d+[a-z]{0,3}$", re.IGNORECASE)
_UNIT_MS = {"m": MINUTE_MS, "min": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}


class BadInput(BotError):
    """A user's command was not accepted; ``lines`` is the neutral text that explains why."""

    def __init__(self, *lines: Line) -> None:
        self.lines = lines
        super().__init__(" / ".join("".join(span.text for span in ln) for ln in lines))


def is_chat_name(raw: str) -> bool:
    """Whether ``raw`` names a Telegram chat: ``@username`` or a numeric id (``-100…``)."""
    return raw.startswith("@") or raw.lstrip("-").isdigit()


def usage(*examples: str) -> Line:
    """``Usage: /a, /b or /c`` with each example as code."""
    parts: list[str | Span] = ["Usage: "]
    for i, example in enumerate(examples):
        if i:
            parts.append(" or " if i == len(examples) - 1 else ", ")
        parts.append(code(example))
    return line(*parts)


def too_many(args: Sequence[str], most: int, usage_line: Line) -> BadInput:
    return BadInput(
        line(bold("Too many arguments"), f" ({len(args)}; at most {most})."), usage_line
    )


def resolve_symbol(raw: str, symbols: Sequence[str], *, allow_all: bool = True) -> str:
    """A watched symbol (or ALL), case-insensitive; anything else is rejected with suggestions.

    With ``allow_all=False`` (a command about one symbol) ALL is rejected and not suggested.
    """
    symbol = raw.upper()
    if symbol in symbols or (symbol == ALL_SYMBOLS and allow_all):
        return symbol
    if symbol == ALL_SYMBOLS:
        raise BadInput(line(bold("Give one symbol here, not ALL.")))
    guesses = [s for s in (symbol + "USDT", symbol + "T") if s in symbols]
    guesses += difflib.get_close_matches(symbol, symbols, n=3, cutoff=0.7)
    guesses = list(dict.fromkeys(guesses))[:3]
    lines = [line(bold("I don't watch "), code(raw[:30]), bold("."))]
    if guesses:
        parts: list[str | Span] = ["Did you mean "]
        for i, guess in enumerate(guesses):
            parts += [" or "] if i else []
            parts.append(code(guess))
        lines.append(line(*parts, "?"))
    shown = ", ".join(symbols[:20]) + (" …" if len(symbols) > 20 else "")
    every = (", or ", code("ALL"), " for every one") if allow_all else ()
    lines.append(line(f"Watched ({len(symbols)}): ", code(shown), *every, "."))
    raise BadInput(*lines)


def parse_threshold(raw: str, usage_line: Line) -> float:
    """A net profit threshold in percent: ``0.15``, ``0.15%`` or ``0,15``; (0, 50]."""
    try:
        value = float(raw.strip().removesuffix("%").replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise BadInput(
            line(
                bold("THRESHOLD must be a number"),
                " of percent, like ",
                code("0.15"),
                " (got ",
                code(raw[:30]),
                ").",
            ),
            usage_line,
        )
    if value <= 0:
        raise BadInput(line(bold("THRESHOLD must be above 0"), f" (got {raw[:30]})."), usage_line)
    if value > MAX_THRESHOLD_PCT:
        raise BadInput(
            line(
                bold(f"{value:g} % is not a realistic net profit"),
                f"; the most is {MAX_THRESHOLD_PCT:g} %.",
            ),
            line("Cross-exchange spreads after fees are usually 0.1 to 1 %."),
            usage_line,
        )
    return value


def parse_strength(raw: str, usage_line: Line) -> SignalStrength:
    try:
        return SignalStrength(raw.lower())
    except ValueError:
        valid = ", ".join(s.value for s in SignalStrength)
        raise BadInput(
            line(bold("Unknown strength "), code(raw[:30]), bold(".")),
            line(f"Choose one of: {valid} (default weak)."),
            usage_line,
        ) from None


def is_duration(raw: str) -> bool:
    """Whether ``raw`` is meant as a duration (valid or not)."""
    return bool(_DURATION.match(raw) or _DURATION_LIKE.match(raw))


def parse_duration(raw: str, maximum_ms: int, usage_line: Line) -> int:
    """``30m``, ``2h``, ``1d`` in milliseconds, from 1 minute to ``maximum_ms``."""
    match = _DURATION.match(raw)
    if match is None:
        raise BadInput(
            line(bold("I can't read the duration "), code(raw[:30]), bold(".")),
            line("Use minutes, hours or days: ", code("30m"), ", ", code("2h"), ", ", code("1d")),
            usage_line,
        )
    value = int(match.group(1)) * _UNIT_MS[match.group(2).lower()]
    if value <= 0:
        raise BadInput(line(bold("The duration must be at least 1 minute.")), usage_line)
    if value > maximum_ms:
        raise BadInput(
            line(bold(f"{raw} is too long"), f"; the most is {format_duration(maximum_ms)}."),
            usage_line,
        )
    return value


def parse_symbol_and_duration(
    args: Sequence[str],
    symbols: Sequence[str],
    maximum_ms: int,
    usage_line: Line,
    *,
    allow_all: bool = True,
) -> tuple[str | None, int | None]:
    """At most one symbol and one duration, in either order (``ALL`` counts as no symbol)."""
    if len(args) > 2:
        raise too_many(args, 2, usage_line)
    symbol: str | None = None
    duration: int | None = None
    for arg in args:
        if is_duration(arg):
            if duration is not None:
                raise BadInput(line(bold("Give one duration.")), usage_line)
            duration = parse_duration(arg, maximum_ms, usage_line)
        else:
            if symbol is not None:
                raise BadInput(line(bold("Give one symbol.")), usage_line)
            symbol = resolve_symbol(arg, symbols, allow_all=allow_all)
    return (None if symbol == ALL_SYMBOLS else symbol), duration


def parse_types(
    args: Sequence[str], *, allow_default: bool, usage_line: Line
) -> frozenset[SignalType] | None:
    """Type names or aliases (or ``all``; ``default`` for a subscription); None means default."""
    words = [a.lower().replace("-", "_") for a in args]
    if allow_default and words == ["default"]:
        return None
    if "all" in words:
        if len(words) > 1:
            raise BadInput(line(bold("Give 'all' alone, or a list of types.")), usage_line)
        return frozenset(SignalType)
    unknown = [a for a, w in zip(args, words, strict=True) if w not in TYPE_ALIASES]
    if unknown:
        raise BadInput(
            line(
                bold("Unknown signal type "),
                code(", ".join(u[:30] for u in unknown[:3])),
                bold("."),
            ),
            line(
                "Types: ",
                code(", ".join(t.value for t in SignalType)),
                " (or arb, spread, volume, funding, momentum), or ",
                code("all"),
                *((", or ", code("default")) if allow_default else ()),
                ".",
            ),
            usage_line,
        )
    return frozenset(TYPE_ALIASES[w] for w in words)


def unknown_venue(
    raw: str, venues: Sequence[str], usage_line: Line, *, allow_all: bool
) -> BadInput:
    """The reply to a word that is no venue: the closest venue, and every one."""
    guess = difflib.get_close_matches(raw.lower(), venues, n=1, cutoff=0.5)
    return BadInput(
        line(bold("Unknown venue "), code(raw[:30]), bold(".")),
        *([line("Did you mean ", code(guess[0]), "?")] if guess else []),
        line(
            "Venues: ",
            code(", ".join(venues)),
            *((", or ", code("all"), " for every one") if allow_all else ()),
            ".",
        ),
        usage_line,
    )


def parse_venues(
    args: Sequence[str], venues: Sequence[str], usage_line: Line
) -> frozenset[str] | None:
    """Venue names (``binance okx`` or ``binance,okx``, any case), or ``all`` (None): each
    venue once, at most every venue."""
    words = [w for a in args for w in a.lower().split(",") if w]
    if len(words) > len(venues):
        raise too_many(words, len(venues), usage_line)
    if "all" in words:
        if len(words) > 1:
            raise BadInput(line(bold("Give 'all' alone, or a list of venues.")), usage_line)
        return None
    for word in words:
        if word not in venues:
            raise unknown_venue(word, venues, usage_line, allow_all=True)
    twice = sorted({w for w in words if words.count(w) > 1})
    if twice:
        raise BadInput(
            line(bold("Give each venue once"), f" ({', '.join(twice)} came twice)."), usage_line
        )
    if not words:
        raise BadInput(line(bold("Which venues?")), usage_line)
    return frozenset(words)


def parse_chart_arguments(
    args: Sequence[str],
    symbols: Sequence[str],
    venues: Sequence[str],
    maximum_ms: int,
    usage_line: Line,
) -> tuple[str | None, int | None, tuple[str, str] | None]:
    """/chart's symbol, period and pair of venues (``okx binance``), in any order; each may be
    left out (None)."""
    if len(args) > 4:
        raise too_many(args, 4, usage_line)
    named = [a.lower() for a in args if a.lower() in venues]
    rest = [a for a in args if a.lower() not in venues]
    strays = [a for a in rest if not is_duration(a) and a.upper() not in (*symbols, ALL_SYMBOLS)]
    for stray in strays:
        # A word close to a venue's name, or beside a symbol and a single venue, meant a venue.
        beside = len(named) == 1 and len(rest) > len(strays)
        if beside or difflib.get_close_matches(stray.lower(), venues, n=1, cutoff=0.6):
            raise unknown_venue(stray, venues, usage_line, allow_all=False)
    symbol, period = parse_symbol_and_duration(
        rest, symbols, maximum_ms, usage_line, allow_all=False
    )
    if not named:
        return symbol, period, None
    if len(named) != 2:
        raise BadInput(
            line(bold("Give two venues"), ": the chart is the gap between a pair of them."),
            usage_line,
        )
    if named[0] == named[1]:
        raise BadInput(line(bold("Give two different venues.")), usage_line)
    return symbol, period, (named[0], named[1])
