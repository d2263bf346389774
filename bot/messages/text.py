"""Platform-neutral text of replies and alerts, and its rendering to Telegram HTML and Discord.

Text is a tuple of lines, each a tuple of :class:`Span` (plain, bold, italic or code). Nothing is
escaped until a renderer turns it into one platform's markup, so hostile input (a user's name,
a broadcast) can never inject tags or formatting. Long texts are split between lines, and an
over-long line between its characters, before rendering, so a chunk never breaks a tag or an
entity and always stays within the platform's limit.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bot.errors import InvalidButton
from detector.signals import Signal, SignalStrength, SignalType

TELEGRAM_LIMIT = 4096  # characters of a message's text
DISCORD_LIMIT = 2000  # characters of a plain message
CALLBACK_DATA_LIMIT = 64  # bytes of a Telegram button's callback data


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


# -- renderers ----------------------------------------------------------------------------------


def _telegram_span(span: Span) -> str:
    body = html.escape(span.text, quote=False)
    match span.style:
        case Style.BOLD:
            return f"<b>{body}</b>"
        case Style.ITALIC:
            return f"<i>{body}</i>"
        case Style.CODE:
            return f"<code>{body}</code>"
    return body


_DISCORD_SPECIAL = re.compile(r"([\\*_~`|<>\[\]#])")
_DISCORD_LINE_START = re.compile(r"^(\s*)([-+]|\d+\.)(?=\s)")


def _discord_escape(text: str) -> str:
    # Backslash-escape markdown; break @everyone and <@id> mentions with a zero-width space.
    return _DISCORD_SPECIAL.sub(r"\\\1", text).replace("@", "@\u200b")


def _discord_span(span: Span) -> str:
    match span.style:
        case Style.BOLD:
            return f"**{_discord_escape(span.text)}**"
        case Style.ITALIC:
            return f"_{_discord_escape(span.text)}_"
        case Style.CODE:
            # Nothing escapes inside a code span: keep its delimiter out of it instead.
            return "`" + span.text.replace("`", "\u02cb").replace("@", "@\u200b") + "`"
    return _discord_escape(span.text)


def render_line_telegram(ln: Line) -> str:
    return "".join(_telegram_span(span) for span in ln)


def render_line_discord(ln: Line) -> str:
    rendered = "".join(_discord_span(span) for span in ln)
    # A line starting "- ", "+ " or "1. " would become a list item.
    return _DISCORD_LINE_START.sub(_escape_list_marker, rendered)


def _escape_list_marker(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    if marker.endswith("."):
        return f"{indent}{marker[:-1]}\\."
    return f"{indent}\\{marker}"


def render_telegram(text: Text) -> str:
    """Telegram HTML (``parse_mode="HTML"``): only b, i and code tags; <, > and & escaped."""
    return "\n".join(render_line_telegram(ln) for ln in text)


def render_discord(text: Text) -> str:
    """Discord markdown, with every markdown special and mention escaped."""
    return "\n".join(render_line_discord(ln) for ln in text)


# -- splitting ----------------------------------------------------------------------------------


def text_length(text: str) -> int:
    """Length as the platforms count it, conservatively: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int) -> list[str]:
    """Split plain or rendered ``text`` into chunks of at most ``limit``, between lines.

    A line longer than ``limit`` is cut at its last space that fits (else anywhere), never
    inside an HTML tag or entity. Rendered lines keep their tags balanced only if split by
    :func:`render_chunks`, which cuts the neutral text instead; prefer it for markup.
    """
    if limit < 16:
        raise ValueError("limit too small to split on")
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for ln in text.split("\n"):
        pieces = [ln] if text_length(ln) <= limit else _cut_plain(ln, limit)
        for piece in pieces:
            n = text_length(piece)
            if current and size + 1 + n > limit:
                chunks.append("\n".join(current))
                current, size = [], 0
            size += n + (1 if current else 0)
            current.append(piece)
    if current:
        chunks.append("\n".join(current))
    return chunks


def _cut_plain(ln: str, limit: int) -> list[str]:
    pieces = []
    while text_length(ln) > limit:
        cut = _fit(ln, limit)
        space = ln.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space + 1
        # Never inside a tag or an entity: move back before an unclosed "<" or "&".
        opened = max(ln.rfind("<", 0, cut), ln.rfind("&", 0, cut))
        if opened > 0 and ln.find(">" if ln[opened] == "<" else ";", opened, cut) == -1:
            cut = opened
        pieces.append(ln[:cut])
        ln = ln[cut:]
    pieces.append(ln)
    return pieces


def _fit(text: str, limit: int) -> int:
    """The longest prefix length of ``text`` whose length is within ``limit`` (at least 1)."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_length(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def render_chunks(text: Text, render_line: Callable[[Line], str], limit: int) -> list[str]:
    """Render ``text`` into messages of at most ``limit``, splitting between lines.

    An over-long line is cut between characters of the neutral text, and each piece rendered
    on its own, so every chunk is valid markup.
    """
    rendered: list[str] = []
    for ln in text:
        out = render_line(ln)
        if text_length(out) <= limit:
            rendered.append(out)
        else:
            rendered.extend(_cut_line(ln, render_line, limit))
    return split_message("\n".join(rendered), limit)


def _cut_line(ln: Line, render_line: Callable[[Line], str], limit: int) -> list[str]:
    pieces: list[str] = []
    current: list[Span] = []
    queue = list(ln)
    while queue:
        span = queue.pop(0)
        if text_length(render_line((*current, span))) <= limit:
            current.append(span)
            continue
        # Take the longest prefix of this span that still fits beside the current spans.
        lo, hi = 0, len(span.text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if text_length(render_line((*current, Span(span.text[:mid], span.style)))) <= limit:
                lo = mid
            else:
                hi = mid - 1
        if lo == 0 and not current:
            lo = 1  # a single character that renders beyond the limit: emit it anyway
        if lo:
            current.append(Span(span.text[:lo], span.style))
        pieces.append(render_line(tuple(current)))
        current = []
        queue.insert(0, Span(span.text[lo:], span.style))
        if not queue[0].text:
            queue.pop(0)
    if current:
        pieces.append(render_line(tuple(current)))
    return pieces


def telegram_messages(text: Text) -> list[str]:
    return render_chunks(text, render_line_telegram, TELEGRAM_LIMIT)


def discord_messages(text: Text) -> list[str]:
    return render_chunks(text, render_line_discord, DISCORD_LIMIT)


# -- numbers and times --------------------------------------------------------------------------


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


# -- alerts -------------------------------------------------------------------------------------

_ICON = {
    SignalType.ARBITRAGE: "💱",
    SignalType.SPREAD_ANOMALY: "↔️",
    SignalType.VOLUME_SPIKE: "📊",
    SignalType.FUNDING_RATE_DIVERGENCE: "💸",
    SignalType.MOMENTUM_BREAKOUT: "🚀",
}
_MARK = {SignalStrength.WEAK: "▲", SignalStrength.MODERATE: "▲▲", SignalStrength.STRONG: "▲▲▲"}
_REASON = {"upgrade": " (upgraded)", "regrowth": " (grew)", "sign_flip": " (flipped)"}


def detail_number(details: Mapping[str, Any], key: str) -> float:
    """A signal detail as a float; NaN when missing (shown as "nan", never a crash)."""
    value = details.get(key)
    return float(value) if isinstance(value, int | float) else math.nan


def venue_name(value: Any) -> str:
    """``Binance`` for ``binance``; ``?`` when missing."""
    return str(value or "?").capitalize()


def format_closing(closed_after_ms: int, peak_net_pct: float | None) -> str:
    """``after 4.2 s · peak net 0.310 %``: how a closed opportunity went."""
    ending = f"after {format_duration(closed_after_ms)}"
    if peak_net_pct is not None:
        ending += f" · peak net {format_pct(peak_net_pct)}"
    return ending


def format_alert(
    signal: Signal,
    now_ms: int,
    *,
    closed_after_ms: int | None = None,
    peak_net_pct: float | None = None,
) -> Text:
    """A readable alert; ``closed_after_ms``/``peak_net_pct`` edit in how an episode ended."""
    head = alert_head(signal)
    body = alert_body(signal)
    foot = line(
        f"Confidence {signal.confidence * 100:.0f} % · "
        f"{format_duration(max(0, now_ms - signal.timestamp))} ago"
    )
    lines = [head, *body, foot]
    if closed_after_ms is not None:
        ending = f"Closed {format_closing(closed_after_ms, peak_net_pct)}"
        lines.append(line(italic(ending)))
    return tuple(lines)


def alert_head(signal: Signal) -> Line:
    """``💱 BTCUSDT arbitrage · ▲▲ MODERATE``: what, where and how strong."""
    return line(
        f"{_ICON[signal.type]} ",
        bold(f"{signal.symbol} {type_label(signal.type)}"),
        _exchange_suffix(signal),
        f" · {_MARK[signal.strength]} {signal.strength.value.upper()}",
        _REASON.get(str(signal.details.get("reason")), ""),
    )


def alert_body(signal: Signal) -> list[Line]:
    """The figures of one signal, a few lines of its type's own."""
    return _BODIES[signal.type](signal.symbol, signal.details)


def alert_buttons(signal: Signal) -> tuple[tuple[Button, ...], ...]:
    """Buttons under an alert: mute this symbol, or everything, for an hour."""
    return (
        (
            Button(f"🔕 Mute {signal.symbol} 1h", f"/mute {signal.symbol} 1h"),
            Button("🔕 Mute all 1h", "/mute 1h"),
        ),
    )


def _exchange_suffix(signal: Signal) -> str:
    if signal.type in (SignalType.ARBITRAGE, SignalType.FUNDING_RATE_DIVERGENCE):
        return ""
    return f" on {venue_name(signal.details.get('exchange'))}"


def _arbitrage(symbol: str, d: Mapping[str, Any]) -> list[Line]:
    buy, sell = format_prices(detail_number(d, "buy_price"), detail_number(d, "sell_price"))
    volume = detail_number(d, "max_volume")
    notional = detail_number(d, "notional")
    base = symbol.removesuffix("USDT") or symbol
    return [
        line(
            "Buy ",
            bold(venue_name(d.get("buy_exchange"))),
            " at ",
            code(buy),
            " → sell ",
            bold(venue_name(d.get("sell_exchange"))),
            " at ",
            code(sell),
        ),
        line(
            "Net ",
            bold(format_pct(detail_number(d, "net_profit_percentage"))),
            f" after fees (gross {format_pct(detail_number(d, 'profit_percentage'))})",
        ),
        line(
            f"Max volume {format_quantity(volume)} {base}",
            f" (≈ {format_amount(notional)} USDT)" if math.isfinite(notional) else "",
            " · expected profit ",
            bold(f"{format_amount(detail_number(d, 'expected_profit'))} USDT"),
        ),
    ]


def _spread(symbol: str, d: Mapping[str, Any]) -> list[Line]:
    bid, ask = format_prices(detail_number(d, "bid"), detail_number(d, "ask"))
    return [
        line(
            "Spread ",
            bold(f"{detail_number(d, 'spread_bps'):.1f} bps"),
            f", usually {detail_number(d, 'mean_bps'):.1f} ± {detail_number(d, 'std_bps'):.1f} bps"
            f" (z {detail_number(d, 'z_score'):.1f})",
        ),
        line("Bid ", code(bid), " · ask ", code(ask)),
    ]


def _volume(symbol: str, d: Mapping[str, Any]) -> list[Line]:
    (last,) = format_prices(detail_number(d, "last_price"))
    return [
        line(
            bold(f"{format_amount(detail_number(d, 'bucket_volume_usd'))} USDT"),
            f" traded in {detail_number(d, 'bucket_s'):g} s — ",
            bold(f"{detail_number(d, 'ratio'):.1f}x"),
            f" the usual {format_amount(detail_number(d, 'mean_volume_usd'))}",
        ),
        line(
            f"Buys {format_amount(detail_number(d, 'buy_volume_usd'))} · sells "
            f"{format_amount(detail_number(d, 'sell_volume_usd'))}"
            f" · {d.get('bucket_trades', '?')} trades · last ",
            code(last),
        ),
    ]


def _funding(symbol: str, d: Mapping[str, Any]) -> list[Line]:
    higher = str(d.get("higher_exchange", ""))
    lower = "bybit" if higher == "binance" else "binance"
    lines = [
        line(
            "Binance ",
            bold(format_pct(detail_number(d, "binance_rate_8h_pct"), 4)),
            " / 8 h · Bybit ",
            bold(format_pct(detail_number(d, "bybit_rate_8h_pct"), 4)),
            f" / 8 h (difference {detail_number(d, 'diff_pct'):+.4f} points)",
        ),
        line(f"Idea: short {venue_name(higher)}, long {venue_name(lower)}"),
    ]
    times = [
        f"{venue_name(ex)} {format_clock(int(d[f'{ex}_next_funding_ms']))[11:]}"
        for ex in ("binance", "bybit")
        if isinstance(d.get(f"{ex}_next_funding_ms"), int)
    ]
    if times:
        lines.append(line("Next funding: " + " · ".join(times)))
    return lines


def _momentum(symbol: str, d: Mapping[str, Any]) -> list[Line]:
    up = d.get("direction") == "up"
    mid, reference = format_prices(detail_number(d, "mid"), detail_number(d, "reference"))
    lines = [
        line(
            "Mid ",
            code(mid),
            " is ",
            bold(format_pct(detail_number(d, "break_pct"), 2)),
            f" {'above the prior high' if up else 'below the prior low'} ",
            code(reference),
            f" ({d.get('window_bars', '?')} x {detail_number(d, 'bar_s'):g} s range)",
        ),
    ]
    other = d.get("other_exchange_mid")
    if isinstance(other, int | float):
        name = "Bybit" if d.get("exchange") == "binance" else "Binance"
        lines.append(line(f"{name} mid ", code(format_prices(float(other))[0])))
    return lines


_BODIES: dict[SignalType, Callable[[str, Mapping[str, Any]], list[Line]]] = {
    SignalType.ARBITRAGE: _arbitrage,
    SignalType.SPREAD_ANOMALY: _spread,
    SignalType.VOLUME_SPIKE: _volume,
    SignalType.FUNDING_RATE_DIVERGENCE: _funding,
    SignalType.MOMENTUM_BREAKOUT: _momentum,
}
