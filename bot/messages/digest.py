"""What a digest says (``/digest 5m``): one message with everything a user's filters caught.

One line per episode (its newest signal), oldest first, at most :data:`DIGEST_LINES` of them so
that the message fits one Telegram message and one Discord embed; the rest is counted.
Platform-neutral like the alerts: Telegram renders the :data:`Text`, Discord lays it in an embed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.messages.alerts import detail_number, signal_icon, strength_mark
from bot.messages.text import Line, Text, bold, code, format_pct, italic, line, type_label
from bot.messages.venues import read_funding, venue_name
from detector.signals import Signal, SignalType

DIGEST_LINES = 20
"""Most episodes listed in one digest (20 lines of ~90 characters fit both platforms' limits)."""

DIGEST_TITLE = "🗞 Digest"


def format_digest(from_ms: int, to_ms: int, signals: Sequence[Signal], caught: int) -> Text:
    """The digest of ``[from_ms, to_ms)`` as one message: ``signals`` (one per episode) of
    ``caught`` in all, a line each, and how to turn the digest off."""
    return (digest_title(from_ms, to_ms, caught), *digest_body(signals))


def digest_title(from_ms: int, to_ms: int, caught: int) -> Line:
    """``🗞 Digest 12:00-12:05 UTC · 7 signals``."""
    start = datetime.fromtimestamp(from_ms / 1000, tz=UTC)
    end = datetime.fromtimestamp(to_ms / 1000, tz=UTC)
    span = f"{start:%H:%M}-{end:%H:%M} UTC"
    if start.date() != end.date():
        span = f"{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC"
    count = f"{caught} signal{'' if caught == 1 else 's'}"
    return line(bold(f"{DIGEST_TITLE} {span}"), f" · {count}")


def digest_body(signals: Sequence[Signal]) -> list[Line]:
    """A line per episode, the count of those left out, and the way back to live alerts."""
    shown = signals[:DIGEST_LINES]
    lines = [digest_line(signal) for signal in shown]
    left = len(signals) - len(shown)
    if left:
        lines.append(line(italic(f"… and {left} more; /stats has the whole period")))
    lines.append(line("Alerts as they happen again: ", code("/digest off")))
    return lines


def digest_line(signal: Signal) -> Line:
    """``12:01:03 💱 BTCUSDT arbitrage ▲▲ · net 0.210 % · buy Binance → sell Bybit``."""
    at = datetime.fromtimestamp(signal.timestamp / 1000, tz=UTC)
    return line(
        f"{at:%H:%M:%S} {signal_icon(signal.type)} ",
        bold(f"{signal.symbol} {type_label(signal.type)}"),
        f" {strength_mark(signal.strength)} · ",
        _GISTS[signal.type](signal.details),
    )


def _arbitrage(d: Mapping[str, Any]) -> str:
    return (
        f"net {format_pct(detail_number(d, 'net_profit_percentage'))}"
        f" · buy {venue_name(d.get('buy_exchange'))} → sell {venue_name(d.get('sell_exchange'))}"
    )


def _spread(d: Mapping[str, Any]) -> str:
    return (
        f"{venue_name(d.get('exchange'))} spread {detail_number(d, 'spread_bps'):.1f} bps,"
        f" usually {detail_number(d, 'mean_bps'):.1f}"
    )


def _volume(d: Mapping[str, Any]) -> str:
    return f"{venue_name(d.get('exchange'))} {detail_number(d, 'ratio'):.1f}x the usual volume"


def _funding(d: Mapping[str, Any]) -> str:
    funding = read_funding(d)
    return (
        f"funding {funding.diff_pct:.4f} points apart,"
        f" {venue_name(funding.higher)} above {venue_name(funding.lower)}"
    )


def _momentum(d: Mapping[str, Any]) -> str:
    up = d.get("direction") == "up"
    return (
        f"{venue_name(d.get('exchange'))} {format_pct(detail_number(d, 'break_pct'), 2)}"
        f" {'above the prior high' if up else 'below the prior low'}"
    )


_GISTS: dict[SignalType, Callable[[Mapping[str, Any]], str]] = {
    SignalType.ARBITRAGE: _arbitrage,
    SignalType.SPREAD_ANOMALY: _spread,
    SignalType.VOLUME_SPIKE: _volume,
    SignalType.FUNDING_RATE_DIVERGENCE: _funding,
    SignalType.MOMENTUM_BREAKOUT: _momentum,
}
