"""Console text of a signal: a headline of at most 120 characters, details on an indented line.

A line reads ``time zone  STRENGTH SYMBOL type [on Venue] event · figures``: the local time with
its zone named (or UTC when asked), the episode's event (``new``, ``grown``, ``upgrade``,
``flipped``), rounded figures with their units. The second line holds the supporting figures and
the confidence with its weakest factors named; it is printed for every arbitrage (its size and
expected profit are the point), for other signals when the confidence is low (the reader must
know why), and for all with ``wide``. The wording follows the chat alerts of :mod:`bot.messages`,
whose number formats it shares.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from bot.messages import (
    detail_number,
    format_amount,
    format_closing,
    format_duration,
    format_pct,
    format_prices,
    format_quantity,
    other_mids,
    read_funding,
    type_label,
    venue_name,
)
from detector.analyzer import AnalyzerStats, CloseReason, TrackedOpportunity
from detector.signals import Signal, SignalStrength, SignalType

HEADLINE_LIMIT = 120
"""Characters of a headline, at most (the figures are chosen to fit; see the tests)."""
CONFIDENT = 0.5
"""Below this confidence the details line is printed even without ``wide``: it says why."""
DETAILS_INDENT = " " * 4
TIMES = "\N{MULTIPLICATION SIGN}"  # as in "6.2 times the usual"

# The episode's event, from details["reason"].
_EVENT = {"new": "new", "upgrade": "upgrade", "regrowth": "grown", "sign_flip": "flipped"}
# What a confidence factor below 1 means, for the reader (see detector/signals/confidence.py).
_FACTOR = {
    "age": "old book",
    "depth": "thin top of book",
    "skew": "exchange clocks apart",
    "history": "little history yet",
    "lag": "late trade",
    "freshness": "old funding rate",
    "confirmation": "not confirmed on another venue",
}
_DOUBTFUL_FACTOR = 0.9  # factors below this are named beside the confidence
_CLOSE_REASON = {
    CloseReason.BELOW_THRESHOLD: "below the threshold",
    CloseReason.UNSYNCED: "a book lost sync",
    CloseReason.STALE: "a book went stale",
}


def format_time(ms: int, tz: tzinfo | None = None, *, millis: bool = True) -> str:
    """``10:12:25.129 CET``: the time of day in ``tz`` (None: the local zone), its zone named."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(tz)
    clock = moment.strftime("%H:%M:%S")
    if millis:
        clock += f".{ms % 1000:03d}"
    return f"{clock} {moment.tzname() or moment.strftime('%z')}"


def format_signal(signal: Signal, *, tz: tzinfo | None = None, wide: bool = False) -> str:
    """The headline of ``signal``, and its details on a second line when needed (or ``wide``)."""
    d = signal.details
    event = _EVENT.get(str(d.get("reason")), str(d.get("reason", "")))
    headline, details = _RENDER[signal.type](signal.symbol, d, event)
    text = f"{_prefix(signal.timestamp, signal.strength, signal.symbol, tz)} {headline}"
    if wide or signal.type is SignalType.ARBITRAGE or signal.confidence < CONFIDENT:
        details.append(format_confidence(signal.confidence, d.get("confidence_factors")))
        text += "\n" + DETAILS_INDENT + " · ".join(details)
    return text


def format_closed(
    tracked: TrackedOpportunity,
    strength: SignalStrength,
    *,
    tz: tzinfo | None = None,
) -> str:
    """``… BTCUSDT arbitrage closed after 4.2 s · peak net 0.310 % · a book went stale``."""
    closed_ms = tracked.closed_ms if tracked.closed_ms is not None else tracked.last.timestamp
    ending = format_closing(tracked.duration_ms, tracked.peak.net_profit_percentage)
    text = f"{_prefix(closed_ms, strength, tracked.symbol, tz)} arbitrage closed {ending}"
    if tracked.close_reason is not None:
        text += f" · {_CLOSE_REASON[tracked.close_reason]}"
    return text


def format_confidence(value: float, factors: Any = None) -> str:
    """``confidence 0.30 (thin top of book)``: the value, and the factors that pulled it down."""
    text = f"confidence {value:.2f}"
    if isinstance(factors, Mapping):
        weak = sorted(
            (float(v), str(name))
            for name, v in factors.items()
            if isinstance(v, int | float) and v < _DOUBTFUL_FACTOR
        )
        if weak:
            text += f" ({', '.join(_FACTOR.get(name, name) for _, name in weak)})"
    return text


def format_opportunity_stats(stats: AnalyzerStats) -> str:
    """``3 opened (2 closed), peak net avg 0.21% max 0.35%, duration median 4.1s max 9.8s``."""
    if not stats.opened:
        return "none"
    text = f"{stats.opened} opened ({stats.closed} closed, {stats.open_now} open)"
    if stats.avg_peak_net_pct is not None and stats.max_peak_net_pct is not None:
        text += f", peak net avg {stats.avg_peak_net_pct:.3f}% max {stats.max_peak_net_pct:.3f}%"
    if stats.median_duration_ms is not None and stats.max_duration_ms is not None:
        text += (
            f", duration median {stats.median_duration_ms / 1000:.1f}s"
            f" max {stats.max_duration_ms / 1000:.1f}s"
        )
    return text + f", expected profit at peaks {stats.total_expected_profit_at_peak:.2f} USDT"


def _prefix(ms: int, strength: SignalStrength, symbol: str, tz: tzinfo | None) -> str:
    return f"{format_time(ms, tz)}  {strength.value.upper():<8} {symbol}"


def _on(d: Mapping[str, Any]) -> str:
    return f"on {venue_name(d.get('exchange'))}"


# Each renderer returns the headline after the prefix, and the details in reading order.
Rendered = tuple[str, list[str]]


def _arbitrage(symbol: str, d: Mapping[str, Any], event: str) -> Rendered:
    buy, sell = format_prices(detail_number(d, "buy_price"), detail_number(d, "sell_price"))
    net = detail_number(d, "net_profit_percentage")
    figures = (
        f"net {format_pct(net)} · buy {venue_name(d.get('buy_exchange'))} {buy}"
        f" → sell {venue_name(d.get('sell_exchange'))} {sell}"
    )
    base = symbol.removesuffix("USDT") or symbol
    size = f"up to {format_quantity(detail_number(d, 'max_volume'))} {base}"
    notional = detail_number(d, "notional")
    if math.isfinite(notional):
        size += f" (≈ {format_amount(notional)} USDT)"
    details = [
        size,
        f"expected profit {format_amount(detail_number(d, 'expected_profit'))} USDT",
        f"gross {format_pct(detail_number(d, 'profit_percentage'))}",
    ]
    peak = detail_number(d, "peak_net_profit_percentage")
    if math.isfinite(peak) and round(peak, 3) > round(net, 3):
        details.append(f"peak net {format_pct(peak)}")
    return f"{type_label(SignalType.ARBITRAGE)} {event} · {figures}", details


def _spread(symbol: str, d: Mapping[str, Any], event: str) -> Rendered:
    bid, ask = format_prices(detail_number(d, "bid"), detail_number(d, "ask"))
    figures = (
        f"{detail_number(d, 'spread_bps'):.1f} bps, usually {detail_number(d, 'mean_bps'):.1f}"
        f" ± {detail_number(d, 'std_bps'):.1f} (z {detail_number(d, 'z_score'):.1f})"
    )
    label = type_label(SignalType.SPREAD_ANOMALY)
    details = [f"bid {bid} · ask {ask}", f"baseline of {d.get('window_samples', '?')} samples"]
    return f"{label} {_on(d)} {event} · {figures}", details


def _volume(symbol: str, d: Mapping[str, Any], event: str) -> Rendered:
    (last,) = format_prices(detail_number(d, "last_price"))
    figures = (
        f"{format_amount(detail_number(d, 'bucket_volume_usd'))} USDT in"
        f" {detail_number(d, 'bucket_s'):g} s, {detail_number(d, 'ratio'):.1f}{TIMES} the usual"
        f" {format_amount(detail_number(d, 'mean_volume_usd'))}"
    )
    details = [
        f"buys {format_amount(detail_number(d, 'buy_volume_usd'))}"
        f" · sells {format_amount(detail_number(d, 'sell_volume_usd'))} USDT",
        f"{d.get('bucket_trades', '?')} trades",
        f"last {last}",
    ]
    label = type_label(SignalType.VOLUME_SPIKE)
    return f"{label} {_on(d)} {event} · {figures}", details


def _funding(symbol: str, d: Mapping[str, Any], event: str) -> Rendered:
    funding = read_funding(d)
    rates = dict(funding.rates)
    higher, lower = funding.higher or "", funding.lower or ""
    figures = (
        f"{venue_name(higher)} {format_pct(rates.get(higher, math.nan), 4)} vs"
        f" {venue_name(lower)} {format_pct(rates.get(lower, math.nan), 4)} per 8 h"
    )
    details = [f"idea: short {venue_name(higher)}, long {venue_name(lower)}"]
    # Three venues or more: the ones in between, so that every rate is on the screen.
    details.extend(
        f"{venue_name(venue)} {format_pct(rate, 4)} per 8 h"
        for venue, rate in funding.rates
        if venue not in (higher, lower)
    )
    details.extend(
        f"{venue_name(venue)} funds every {hours:g} h"
        for venue, _ in funding.rates
        if isinstance(hours := d.get(f"{venue}_interval_hours"), int | float) and hours != 8
    )
    label = type_label(SignalType.FUNDING_RATE_DIVERGENCE)
    return f"{label} {event} · {figures}", details


def _momentum(symbol: str, d: Mapping[str, Any], event: str) -> Rendered:
    up = d.get("direction") == "up"
    others = other_mids(d)
    live = {venue: mid for venue, mid in others.items() if mid is not None}
    keys = ("mid", "reference", "prior_low", "prior_high")
    # One count of decimals for every price of the signal, so that they line up when compared.
    mid, reference, low, high, *live_prices = format_prices(
        *(detail_number(d, key) for key in keys), *live.values()
    )
    window_s = detail_number(d, "window_bars") * detail_number(d, "bar_s")
    span = f"{window_s:g} s" if window_s < 60 else format_duration(window_s * 1000)
    figures = (
        f"mid {mid}, {format_pct(detail_number(d, 'break_pct'), 2)}"
        f" {'above' if up else 'below'} the {span} {'high' if up else 'low'}"
    )
    details = [
        f"breakout level {reference}",
        f"prior range {low} to {high} ({d.get('window_bars', '?')}"
        f" {TIMES} {detail_number(d, 'bar_s'):g} s bars)",
    ]
    prices = dict(zip(live, live_prices, strict=True))
    for venue in others:
        name = venue_name(venue)
        details.append(f"{name} mid {prices[venue]}" if venue in prices else f"no live {name} mid")
    if not others:
        details.append("no live mid on another venue")
    label = type_label(SignalType.MOMENTUM_BREAKOUT)
    return f"{label} {_on(d)} {event} · {figures}", details


_RENDER: dict[SignalType, Callable[[str, Mapping[str, Any], str], Rendered]] = {
    SignalType.ARBITRAGE: _arbitrage,
    SignalType.SPREAD_ANOMALY: _spread,
    SignalType.VOLUME_SPIKE: _volume,
    SignalType.FUNDING_RATE_DIVERGENCE: _funding,
    SignalType.MOMENTUM_BREAKOUT: _momentum,
}


def console_zone(utc: bool) -> tzinfo | None:
    """The zone console times are shown in: UTC when asked, else None (the local zone)."""
    return UTC if utc else None
