"""Discord embeds for alerts and broadcasts, built as plain values within Discord's limits (pure).

:func:`alert_embed` lays a signal out as Discord users expect: a title naming what happened,
a colour for its strength, and fields for the figures (for arbitrage: both legs and prices,
gross and net %, max volume, expected profit, confidence, age). :func:`fit_embed` enforces
Discord's embed limits on whatever text went in, so a send never fails with a 400 for length.
The Discord frontend turns an :class:`AlertEmbed` into a ``discord.Embed``; this module itself
imports no discord.py, so it is tested as plain values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.messages import (
    BROADCAST_TITLE,
    Line,
    alert_body,
    alert_head,
    bold,
    broadcast_body,
    code,
    detail_number,
    digest_body,
    digest_title,
    format_amount,
    format_closing,
    format_duration,
    format_pct,
    format_prices,
    format_quantity,
    line,
    plain_text,
    read_funding,
    render_line_discord,
    venue_name,
)
from detector.signals import Signal, SignalStrength, SignalType

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
TOTAL_LIMIT = 6000
"""Discord's embed limits (characters); the total counts title, description, fields, footer."""

STRENGTH_COLORS = {
    SignalStrength.WEAK: 0x95A5A6,  # grey: arrives silently
    SignalStrength.MODERATE: 0xF1A81D,  # amber
    SignalStrength.STRONG: 0x2ECC71,  # green: act now
}
CLOSED_COLOR = 0x4F545C  # dark grey: the opportunity is gone
BROADCAST_COLOR = 0x5865F2  # Discord blurple: a message from the operators, not a signal
DIGEST_COLOR = 0x99AAB5  # grey: a summary of signals past, not one to act on now
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class EmbedField:
    name: str
    value: str
    inline: bool = True


@dataclass(frozen=True, slots=True)
class AlertEmbed:
    """What one Discord embed shows (title and footer plain, the rest Discord markdown)."""

    title: str
    description: str
    color: int
    fields: tuple[EmbedField, ...] = ()
    footer: str = ""
    timestamp_ms: int | None = None

    @property
    def size(self) -> int:
        """Characters as Discord counts them against :data:`TOTAL_LIMIT`."""
        return (
            len(self.title)
            + len(self.description)
            + len(self.footer)
            + sum(len(f.name) + len(f.value) for f in self.fields)
        )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _fit_field(field: EmbedField) -> EmbedField:
    # Discord refuses empty names and values too.
    name = _cut(field.name, FIELD_NAME_LIMIT) or "-"
    return EmbedField(name, _cut(field.value, FIELD_VALUE_LIMIT) or "-", field.inline)


def fit_embed(embed: AlertEmbed) -> AlertEmbed:
    """``embed`` cut to Discord's limits: long texts end in "…", surplus fields are dropped."""
    fields = tuple(_fit_field(f) for f in embed.fields[:FIELDS_LIMIT])
    fitted = replace(
        embed,
        title=_cut(embed.title, TITLE_LIMIT),
        description=_cut(embed.description, DESCRIPTION_LIMIT),
        footer=_cut(embed.footer, FOOTER_LIMIT),
        fields=fields,
    )
    while fitted.size > TOTAL_LIMIT and fitted.fields:
        fitted = replace(fitted, fields=fitted.fields[:-1])
    if fitted.size > TOTAL_LIMIT:
        room = TOTAL_LIMIT - (fitted.size - len(fitted.description))
        fitted = replace(fitted, description=_cut(fitted.description, max(room, 1)))
    return fitted


def _md(*parts: Line) -> str:
    return "\n".join(render_line_discord(part) for part in parts)


def alert_embed(
    signal: Signal,
    now_ms: int,
    *,
    closed_after_ms: int | None = None,
    peak_net_pct: float | None = None,
) -> AlertEmbed:
    """The embed of one alert, its age measured at ``now_ms`` (when it is sent).

    With ``closed_after_ms`` it is the edit made when the opportunity closed: greyed, titled
    "closed", with how long it lasted and its peak first among the fields.
    """
    title = plain_text((alert_head(signal),))
    common = (
        EmbedField("Confidence", f"{signal.confidence * 100:.0f} %"),
        EmbedField("Age", format_duration(max(0, now_ms - signal.timestamp))),
    )
    if signal.type is SignalType.ARBITRAGE:
        description, fields = _arbitrage(signal)
        footer = "arbwatch · net of both taker fees"
    else:
        description = _md(*alert_body(signal))
        fields = _venue_fields(signal)
        footer = "arbwatch"
    color = STRENGTH_COLORS[signal.strength]
    if closed_after_ms is not None:
        title, color = f"{title} · CLOSED", CLOSED_COLOR
        ending = format_closing(closed_after_ms, peak_net_pct)
        fields = (EmbedField("Closed", ending, inline=False), *fields)
    return fit_embed(
        AlertEmbed(
            title=title,
            description=description,
            color=color,
            fields=(*fields, *common),
            footer=footer,
            timestamp_ms=signal.timestamp,
        )
    )


def _arbitrage(signal: Signal) -> tuple[str, tuple[EmbedField, ...]]:
    d = signal.details
    buy_on, sell_on = venue_name(d.get("buy_exchange")), venue_name(d.get("sell_exchange"))
    buy, sell = format_prices(detail_number(d, "buy_price"), detail_number(d, "sell_price"))
    base = signal.symbol.removesuffix("USDT") or signal.symbol
    notional = detail_number(d, "notional")
    volume = f"{format_quantity(detail_number(d, 'max_volume'))} {base}"
    if math.isfinite(notional):
        volume += f" (≈ {format_amount(notional)} USDT)"
    net = format_pct(detail_number(d, "net_profit_percentage"))
    description = _md(line(f"Buy on {buy_on}, sell on {sell_on}: ", bold(net), " net after fees"))
    fields = (
        EmbedField("Direction", f"{buy_on} → {sell_on}"),
        EmbedField("Buy", _md(line(f"{buy_on} ", code(buy)))),
        EmbedField("Sell", _md(line(f"{sell_on} ", code(sell)))),
        EmbedField("Net after fees", net),
        EmbedField("Gross", format_pct(detail_number(d, "profit_percentage"))),
        EmbedField("Max volume", _md(line(volume))),
        EmbedField("Expected profit", f"{format_amount(detail_number(d, 'expected_profit'))} USDT"),
    )
    return description, fields


def _venue_fields(signal: Signal) -> tuple[EmbedField, ...]:
    """The venue of a one-venue signal; the highest and lowest venue of a funding divergence."""
    if signal.type is SignalType.FUNDING_RATE_DIVERGENCE:
        funding = read_funding(signal.details)
        if funding.higher is None or funding.lower is None:
            return ()
        return (
            EmbedField("Highest funding", venue_name(funding.higher)),
            EmbedField("Lowest funding", venue_name(funding.lower)),
        )
    exchange = signal.details.get("exchange")
    return (EmbedField("Exchange", venue_name(exchange)),) if exchange else ()


def broadcast_embed(text: str) -> AlertEmbed:
    """An admin's announcement; its text is escaped like everything else users wrote."""
    body = _md(*broadcast_body(text))
    return fit_embed(AlertEmbed(BROADCAST_TITLE, body or "-", BROADCAST_COLOR))


def digest_embed(from_ms: int, to_ms: int, signals: Sequence[Signal], caught: int) -> AlertEmbed:
    """A user's digest: the period and count as the title, a line per episode."""
    title = plain_text((digest_title(from_ms, to_ms, caught),))
    return fit_embed(AlertEmbed(title, _md(*digest_body(signals)), DIGEST_COLOR))
