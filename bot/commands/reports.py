"""The bodies of /stats, /chart, /status and /users: figures from the store and the detector.

The store is read here and nowhere else in the command layer's reports: the charts get rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bot.commands.charts import (
    DEFAULT_PAIR,
    GAP_TYPES,
    Chart,
    VenuePair,
    gap_points,
    render_gap_chart,
    render_stats_chart,
)
from bot.commands.reply import Reply, reply
from bot.messages import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    Line,
    bold,
    code,
    format_amount,
    format_clock,
    format_duration,
    format_pct,
    italic,
    line,
    type_label,
    venue_name,
)
from bot.store import Store, UserCounts
from detector.signals import SignalStrength, SignalType

if TYPE_CHECKING:
    from detector.engine import Health

DEFAULT_STATS_MS = DAY_MS
MAX_STATS_MS = 30 * DAY_MS
"""Longest period of /stats and /chart (their default is DEFAULT_STATS_MS)."""


def chart_reply(
    store: Store,
    symbol: str,
    period_ms: int,
    now_ms: int,
    venues: tuple[str, str] | None = None,
) -> Reply:
    """/chart: one symbol's gap between two venues (Binance and Bybit unless ``venues`` names
    others) as a picture, or text saying why there is none yet."""
    pair = DEFAULT_PAIR if venues is None else VenuePair(*venues)
    last = f"last {format_period(period_ms)}"
    chart = gap_chart(store, symbol, now_ms - period_ms, now_ms + 1, pair)
    first, second = pair.names
    named = "" if pair == DEFAULT_PAIR else f" {second} - {first}"
    if chart is not None:
        return Reply((line("📈 ", bold(f"{symbol} gap{named}"), f", {last}"),), image=chart)
    between = (
        ", which carry both exchanges' prices."
        if pair == DEFAULT_PAIR
        else f" between {first} and {second}, which carry both venues' prices."
    )
    lines = [
        line(
            bold(f"No {symbol}{named} signals in the {last} yet"),
            " — the chart needs stored arbitrage or momentum signals" + between,
        )
    ]
    if period_ms < MAX_STATS_MS:
        longer = "7d" if period_ms < 7 * DAY_MS else "30d"
        again = "" if pair == DEFAULT_PAIR else f" {pair.first} {pair.second}"
        lines.append(line("Try a longer period: ", code(f"/chart {symbol} {longer}{again}")))
    return reply(*lines)


def stats_chart(
    store: Store, since_ms: int, until_ms: int, symbol: str | None = None
) -> Chart | None:
    """The /stats chart of the opportunities opened in [since, until)."""
    rows = store.history.opportunities(since_ms, until_ms, symbol)
    return render_stats_chart(rows, since_ms, until_ms, symbol)


def gap_chart(
    store: Store, symbol: str, since_ms: int, until_ms: int, pair: VenuePair = DEFAULT_PAIR
) -> Chart | None:
    """The /chart picture of the symbol's gap between the pair's venues in [since, until), the
    pair's opportunity windows shaded."""
    signals = store.history.signals(symbol, since_ms, until_ms, GAP_TYPES)
    windows = store.history.opportunities(since_ms, until_ms, symbol)
    return render_gap_chart(gap_points(signals, pair), symbol, since_ms, until_ms, windows, pair)


def stats_reply(
    store: Store,
    *,
    symbol: str | None,
    period_ms: int,
    now_ms: int,
    user_id: int | None,
    health: Health | None,
    aggregator: Mapping[str, Any] | None,
) -> Reply:
    """/stats: signals by type and strength, arbitrage performance, latency, feeds and the user's
    alerts, with the chart of the opportunities opened in the period."""
    since = now_ms - period_ms
    scope = symbol or "all symbols"
    lines = [line("📈 ", bold(f"Stats for {scope}, last {format_period(period_ms)}"))]

    counts = store.history.signal_counts(since, now_ms + 1, symbol)
    total = sum(sum(by.values()) for by in counts.values())
    lines.append(line(bold("Signals"), f": {total}"))
    for kind in SignalType:
        by = counts.get(kind)
        if by:
            detail = " · ".join(f"{s.value} {by[s]}" for s in SignalStrength if by.get(s))
            lines.append(line(f"• {type_label(kind)}: {sum(by.values())} ({detail})"))
    if aggregator and aggregator.get("suppressed_total"):
        lines.append(
            line(italic(f"{aggregator['suppressed_total']} repeats suppressed since start"))
        )

    opp = store.history.opportunity_stats(since, now_ms + 1, symbol)
    lines.append(
        line(
            bold("Arbitrage opportunities"),
            f": {opp.count}" + (f" ({opp.open_now} open now)" if opp.open_now else ""),
        )
    )
    if opp.count:
        assert opp.avg_peak_net_pct is not None and opp.max_peak_net_pct is not None
        lines.append(
            line(
                f"• Net profit at peak: average {format_pct(opp.avg_peak_net_pct)}, "
                f"best {format_pct(opp.max_peak_net_pct)}"
            )
        )
        if opp.median_duration_ms is not None and opp.max_duration_ms is not None:
            lines.append(
                line(
                    f"• Duration: median {format_duration(opp.median_duration_ms)}, "
                    f"longest {format_duration(opp.max_duration_ms)}"
                )
            )
        best = opp.max_expected_profit or 0.0
        lines.append(
            line(
                f"• Expected profit at max volume: {format_amount(opp.total_expected_profit)} "
                f"USDT in total, best {format_amount(best)} USDT"
            )
        )

    if health is not None and health.latency_p50_ms is not None:
        p99 = health.latency_p99_ms if health.latency_p99_ms is not None else health.latency_p50_ms
        lines.append(
            line(
                bold("Detection latency"),
                f": p50 {health.latency_p50_ms:.0f} ms · p99 {p99:.0f} ms",
            )
        )
    delivery = store.history.delivery_latency_ms(since)
    if delivery is not None:
        lines.append(line(bold("Alert delivery"), f": median {format_duration(delivery)}"))
    if health is not None:
        lines.append(line(bold("Feeds"), ": ", _feeds_summary(health)))
    else:
        lines.append(line(bold("Feeds"), ": health not available"))
    if user_id is not None:
        mine = store.history.alert_count(user_id, since)
        lines.append(line(bold("Your alerts"), f": {mine} delivered"))
    # The same window as the opportunity count above, [now - period, now], so the chart is
    # None exactly when the text says "Arbitrage opportunities: 0".
    chart = stats_chart(store, since, now_ms + 1, symbol)
    if chart is None:
        lines.append(line(italic("The chart appears once opportunities are recorded.")))
    return Reply(tuple(lines), image=chart)


def format_period(ms: int) -> str:
    """``30 min``, ``24 h``, ``7 d``: hours up to two days, then days."""
    hours = ms / HOUR_MS
    if hours < 1:
        return f"{ms / MINUTE_MS:g} min"
    if hours <= 48:
        return f"{hours:g} h"
    return f"{hours / 24:g} d"


def _feeds_summary(health: Health) -> str:
    parts = []
    for exchange, ex in health.exchanges.items():
        parts.append(f"{venue_name(exchange.value)} {'up' if ex.feed.connected else 'DOWN'}")
    healthy = sum(b.healthy for b in health.books)
    parts.append(f"books {healthy}/{len(health.books)} healthy")
    return " · ".join(parts)


LISTED = 10
"""Unhealthy books and problems named one by one in /status; beyond that, counted."""


def format_status(health: Health | None, now_ms: int, symbol: str | None = None) -> list[Line]:
    """Live feed health per exchange, and the books: the unhealthy ones (the first
    :data:`LISTED`), or with ``symbol`` every book of that symbol."""
    if health is None:
        return [
            line(bold("Feed health is not available right now.")),
            line("The detector is not running in this process, or has not started yet."),
        ]
    lines = [line("🩺 ", bold("Feed status"), f" at {format_clock(health.now_ms)}")]
    for exchange, ex in health.exchanges.items():
        age = "never" if ex.last_frame_age_ms is None else format_duration(ex.last_frame_age_ms)
        state = "🟢 connected" if ex.feed.connected else "🔴 disconnected"
        lines.append(line(bold(venue_name(exchange.value)), f": {state}"))
        lines.append(
            line(
                f"• {ex.frames_per_s:.0f} frames/s · last frame {age} ago · "
                f"reconnects {ex.feed.reconnects} · gaps {ex.gaps} · resyncs {ex.resyncs}"
                + (f" · frame errors {ex.frame_errors}" if ex.frame_errors else "")
            )
        )
        if ex.feed.last_error:
            lines.append(line("• last error: ", code(ex.feed.last_error[:200])))
    healthy = [b for b in health.books if b.healthy]
    counts = f": {len(healthy)}/{len(health.books)} healthy"
    if health.quarantined:
        counts += f" · {len(health.quarantined)} quarantined"
    lines.append(line(bold("Books"), counts))
    if symbol is not None:
        return [*lines, *_symbol_status(health, symbol)]
    unhealthy = [b for b in health.books if not b.healthy]
    for book in unhealthy[:LISTED]:
        age = "" if book.age_ms is None else f", {format_duration(book.age_ms)} old"
        lines.append(line(f"• {book.exchange.value} {book.symbol}: {book.state}{age}"))
    if len(unhealthy) > LISTED:
        more = len(unhealthy) - LISTED
        lines.append(line(f"• … and {more} more (", code("/status SYMBOL"), " shows one)"))
    if health.latency_p50_ms is not None:
        p99 = health.latency_p99_ms if health.latency_p99_ms is not None else health.latency_p50_ms
        lines.append(
            line(bold("Latency"), f": p50 {health.latency_p50_ms:.0f} ms · p99 {p99:.0f} ms")
        )
    lines.append(line(bold("Signals"), f": {health.signals} since start"))
    for problem in health.symbol_problems[:LISTED]:
        lines.append(line("⚠️ ", problem))
    if len(health.symbol_problems) > LISTED:
        lines.append(line(f"⚠️ … and {len(health.symbol_problems) - LISTED} more"))
    return lines


def _symbol_status(health: Health, symbol: str) -> list[Line]:
    """Every book of ``symbol``, and its problems (a quarantine among them)."""
    lines = [line(bold(symbol), ":")]
    for book in (b for b in health.books if b.symbol == symbol):
        age = "no frame yet" if book.age_ms is None else f"{format_duration(book.age_ms)} old"
        state = "🟢 healthy" if book.healthy else f"🔴 {book.state}"
        lines.append(
            line(
                f"• {venue_name(book.exchange.value)}: {state}, {age} · gaps {book.gaps}"
                f" · resyncs {book.resyncs} · stale {book.stale}"
            )
        )
    mentions = [p for p in health.symbol_problems if symbol in p.replace(":", " ").split()]
    lines.extend(line("⚠️ ", problem) for problem in mentions)
    if len(lines) == 1:
        lines.append(line("• no book: not watched on two venues here"))
    return lines


def format_user_counts(counts: UserCounts) -> list[Line]:
    platforms = " · ".join(f"{p} {n}" for p, n in sorted(counts.by_platform.items())) or "none"
    return [
        line("👥 ", bold("Users")),
        line(f"• {counts.total} in total: {counts.active} active, {counts.blocked} blocked"),
        line(f"• {counts.muted} muted now · by platform: {platforms}"),
        line(f"• {counts.subscribed} subscribed, {counts.subscriptions} subscriptions"),
        line(f"• {counts.pending_deliveries} alerts waiting to be delivered"),
        *(
            [
                line(
                    f"• {counts.unqueued_day} alerts not queued in 24 h: more than the"
                    " platforms' rates could send before they expired"
                )
            ]
            if counts.unqueued_day
            else []
        ),
    ]
