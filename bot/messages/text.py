"""Platform-neutral text: styled spans, lines and buttons, and how numbers and times read.

Text is a tuple of lines, each a tuple of :class:`Span` (plain, bold, italic or code). Nothing is
escaped here: :mod:`bot.messages.markup` renders it into one platform's markup, so hostile input
(a user's name, a broadcast) can never inject tags or formatting.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from bot.errors import InvalidButton
from detector.signals import SignalType

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
CALLBACK_DATA_LIMIT = 64  # bytes of a Telegram button's callback data


# Lone surrogates (which no encoder accepts) and control characters other than tab and newline.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` as the bot may keep and echo it: no lone surrogates, no control characters.

    Chat input is cleaned before anything else reads it; tabs and newlines stay.
    """
    return _UNSAFE.sub("", text)


class Style(StrEnum):
    PLAIN = "plain"
    BOLD = "bold"
    ITALIC = "italic"
    CODE = "code"


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text in one style."""

    text: str
    style: Style = Style.PLAIN


Line = tuple[Span, ...]
Text = tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button; ``data`` is the command it runs when pressed (e.g. ``/mute 1h``)."""

    label: str
    data: str

    def __post_init__(self) -> None:
        if len(self.data.encode()) > CALLBACK_DATA_LIMIT:
            raise InvalidButton(self.data, CALLBACK_DATA_LIMIT)


def bold(text: str) -> Span:
    return Span(text, Style.BOLD)


def italic(text: str) -> Span:
    return Span(text, Style.ITALIC)


def code(text: str) -> Span:
    return Span(text, Style.CODE)


def line(*parts: str | Span) -> Line:
    """A line from plain strings and spans (empty strings are dropped)."""
    return tuple(p if isinstance(p, Span) else Span(p) for p in parts if p != "")


def plain_text(text: Text) -> str:
    """The text without markup (for logs, tests and platforms without formatting)."""
    return "\n".join("".join(span.text for span in ln) for ln in text)


def format_prices(*prices: float) -> list[str]:
    """Prices with the decimals the most precise of them needs (at most 8), with separators."""
    decimals = 0
    for price in prices:
        for d in range(9):
            if abs(round(price, d) - price) <= 1e-9 * max(1.0, abs(price)):
                break
        decimals = max(decimals, d)
    return [f"{p:,.{decimals}f}" for p in prices]


def format_amount(value: float) -> str:
    """Money or volume: whole units from 1 000, cents from 1, four significant digits below."""
    if not math.isfinite(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.4g}"


def format_quantity(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.6g}"


def format_pct(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f} %"


def format_duration(ms: float) -> str:
    """``850 ms``, ``4.2 s``, ``3 min 5 s``, ``2 h 5 min``, ``1 d 3 h``."""
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, m = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {m} min" if m else f"{hours} h"
    days, h = divmod(hours, 24)
    return f"{days} d {h} h" if h else f"{days} d"


def format_clock(ms: int) -> str:
    """``2026-08-12 16:00 UTC``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def type_label(kind: SignalType) -> str:
    """``funding rate divergence`` for ``funding_rate_divergence``."""
    return kind.value.replace("_", " ")
