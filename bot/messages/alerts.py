"""What an alert says, platform-neutral: its head, the figures of its type, buttons and endings.

Telegram sends :func:`format_alert` as one message; the Discord embed
(:mod:`bot.platforms.discord_embeds`) lays out the same :func:`alert_head` and :func:`alert_body`.
A missing detail reads "nan" rather than failing the send.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from bot.messages.text import (
    Button,
    Line,
    Span,
    Text,
    bold,
    code,
    format_amount,
    format_clock,
    format_duration,
    format_pct,
    format_prices,
    format_quantity,
    italic,
    line,
    type_label,
)
from bot.messages.venues import other_mids, read_funding, venue_name
from detector.signals import Signal, SignalStrength, SignalType

_ICON = {
    SignalType.ARBITRAGE: "💱",
    SignalType.SPREAD_ANOMALY: "↔️",
    SignalType.VOLUME_SPIKE: "📊",
    SignalType.FUNDING_RATE_DIVERGENCE: "💸",
    SignalType.MOMENTUM_BREAKOUT: "🚀",
}
_MARK = {SignalStrength.WEAK: "▲", SignalStrength.MODERATE: "▲▲", SignalStrength.STRONG: "▲▲▲"}
_REASON = {"upgrade": " (upgraded)", "regrowth": " (grew)", "sign_flip": " (flipped)"}


def signal_icon(kind: SignalType) -> str:
    """``💱`` for arbitrage: the emoji an alert of ``kind`` starts with."""
    return _ICON[kind]


def strength_mark(strength: SignalStrength) -> str:
    """``▲▲`` for MODERATE."""
    return _MARK[strength]


def detail_number(details: Mapping[str, Any], key: str) -> float:
    """A signal detail as a float; NaN when missing (shown as "nan", never a crash)."""
    value = details.get(key)
    return float(value) if isinstance(value, int | float) else math.nan


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
    funding = read_funding(d)
    rates: list[str | Span] = ["Funding per 8 h: "]
    for i, (venue, rate) in enumerate(funding.rates):
        rates += [" · "] if i else []
        rates += [f"{venue_name(venue)} ", bold(format_pct(rate, 4))]
    higher, lower = venue_name(funding.higher), venue_name(funding.lower)
    lines = [
        line(*rates) if funding.rates else line("Funding per 8 h: ?"),
        line(f"Highest {higher}, lowest {lower}: {funding.diff_pct:.4f} points apart"),
        line(f"Idea: short {higher}, long {lower}"),
    ]
    times = [
        f"{venue_name(venue)} {format_clock(int(d[f'{venue}_next_funding_ms']))[11:]}"
        for venue, _ in funding.rates
        if isinstance(d.get(f"{venue}_next_funding_ms"), int)
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
    live = {venue: m for venue, m in other_mids(d).items() if m is not None}
    if live:
        prices = format_prices(*live.values())
        mids: list[str | Span] = []
        for i, (venue, price) in enumerate(zip(live, prices, strict=True)):
            mids += [" · "] if i else []
            mids += [f"{venue_name(venue)} mid ", code(price)]
        lines.append(line(*mids))
    return lines


_BODIES: dict[SignalType, Callable[[str, Mapping[str, Any]], list[Line]]] = {
    SignalType.ARBITRAGE: _arbitrage,
    SignalType.SPREAD_ANOMALY: _spread,
    SignalType.VOLUME_SPIKE: _volume,
    SignalType.FUNDING_RATE_DIVERGENCE: _funding,
    SignalType.MOMENTUM_BREAKOUT: _momentum,
}


BROADCAST_TITLE = "📣 Announcement"


def broadcast_body(text: str) -> Text:
    """An admin's broadcast, a line of neutral text per line (escaped by the renderer)."""
    return tuple(line(part) for part in text.splitlines())


def format_broadcast(text: str) -> Text:
    """An admin's broadcast as one message: the title line, then the text."""
    return (line(BROADCAST_TITLE), *broadcast_body(text))
