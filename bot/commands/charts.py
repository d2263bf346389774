"""PNG charts for /stats and /chart, rendered headless from rows of the history (pure, sync).

The charts take rows (:class:`~bot.store.OpportunityRow`, :class:`GapPoint`), never the store:
:mod:`bot.commands.reports` reads them. Rendering takes ~0.3-0.5 s of CPU, so the async
frontends call these through ``asyncio.to_thread`` (via ``CommandHandler.handle``). Each
figure is its own ``Figure`` on an Agg canvas (no pyplot), of a fixed pixel size well inside
Telegram's photo and Discord's attachment limits; matplotlib is not thread-safe, so renders
from several frontends' threads take turns. The same rows give the
same bytes: the PNG carries no software or time stamp.

- :func:`render_stats_chart`: opportunities opened per hour (per day beyond 48 h), stacked by
  symbol, with the best peak net profit of each bucket on a second axis.
- :func:`render_gap_chart`: one symbol's cross-exchange price gap over time (Bybit minus Binance,
  in % of the Binance price) from its stored signals, with the opportunity windows shaded.

Both return ``None`` when there is nothing to draw; the caller answers with text instead.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.messages import DAY_MS, HOUR_MS
from bot.store import OpportunityRow
from detector.signals import Signal, SignalType

HOURLY_UP_TO_MS = 48 * HOUR_MS
"""Periods up to this long are bucketed by hour, longer ones by day."""

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 5.6, 100  # 1000 x 560 px
CAPTION_LIMIT = 1024  # Telegram's photo caption limit (Discord allows more)
JOIN_WITHIN_MS = 5 * 60_000  # gap observations further apart are not joined by a line
MAX_SYMBOLS = 6  # stacked series before the rest are lumped into "other"
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f")
_BYBIT_HIGHER, _BINANCE_HIGHER = "#2ca02c", "#d62728"
_BYBIT_HIGHER_DIRECTION = "buy_binance_sell_bybit"  # buy cheap on Binance: Bybit quotes higher
_RENDERING = threading.Lock()  # matplotlib is not thread-safe: one render at a time

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _one_at_a_time(render: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(render)
    def locked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _RENDERING:
            return render(*args, **kwargs)

    return locked


@dataclass(frozen=True, slots=True)
class Chart:
    """A rendered PNG, its pixel size, a caption saying what it shows, and a file name."""

    png: bytes
    width: int
    height: int
    caption: str
    filename: str = "chart.png"


@dataclass(frozen=True, slots=True)
class GapPoint:
    """One observation of the gap, signed: positive when Bybit quotes above Binance.

    ``gap_pct`` is the gross gap; ``net_pct`` the gap after fees (arbitrage signals only).
    """

    timestamp_ms: int
    gap_pct: float
    net_pct: float | None


# -- from signals to points ------------------------------------------------------------------

GAP_TYPES = (SignalType.ARBITRAGE, SignalType.MOMENTUM_BREAKOUT)
"""The signals that see the gap: arbitrage carries both legs' prices, momentum both mids."""


def gap_points(signals: Sequence[Signal]) -> list[GapPoint]:
    """The gap as the symbol's signals (of :data:`GAP_TYPES`) saw it, in their order."""
    points = [_gap_point(s.type, s.timestamp, s.details) for s in signals]
    return [p for p in points if p is not None]


def _sign(direction: object) -> int:
    """+1 when Bybit quoted higher (buy Binance, sell Bybit), -1 otherwise."""
    return 1 if direction == _BYBIT_HIGHER_DIRECTION else -1


def _gap_point(kind: SignalType, timestamp_ms: int, d: Mapping[str, Any]) -> GapPoint | None:
    try:
        if kind is SignalType.ARBITRAGE:
            buy, sell = float(d["buy_price"]), float(d["sell_price"])
            sign = _sign(d.get("direction"))
            net = d.get("net_profit_percentage")
            return GapPoint(
                timestamp_ms,
                sign * (sell - buy) / buy * 100,
                None if net is None else sign * float(net),
            )
        if kind is not SignalType.MOMENTUM_BREAKOUT:
            return None
        mid, other = float(d["mid"]), float(d["other_exchange_mid"])
        bybit, binance = (mid, other) if d.get("exchange") == "bybit" else (other, mid)
        return GapPoint(timestamp_ms, (bybit - binance) / binance * 100, None)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None  # an older or partial details blob: skip the point, keep the chart


# -- rendering -------------------------------------------------------------------------------


@_one_at_a_time
def render_stats_chart(
    opportunities: Sequence[OpportunityRow],
    since_ms: int,
    until_ms: int,
    symbol: str | None = None,
) -> Chart | None:
    """Opportunities opened per bucket, stacked by symbol, and each bucket's best peak net %."""
    rows = [
        r
        for r in opportunities
        if since_ms <= r.opened_ms < until_ms and (symbol is None or r.symbol == symbol)
    ]
    if not rows:
        return None
    bucket_ms = HOUR_MS if until_ms - since_ms <= HOURLY_UP_TO_MS else DAY_MS
    first = since_ms - since_ms % bucket_ms
    starts = list(range(first, until_ms, bucket_ms))
    index = {s: i for i, s in enumerate(starts)}

    totals: dict[str, int] = defaultdict(int)
    for r in rows:
        totals[r.symbol] += 1
    ranked = sorted(totals, key=lambda s: (-totals[s], s))
    shown = ranked if len(ranked) <= MAX_SYMBOLS else ranked[: MAX_SYMBOLS - 1]
    label = {s: s if s in shown else "other" for s in ranked}
    series = [*shown, *(["other"] if len(shown) < len(ranked) else [])]
    counts = {s: [0] * len(starts) for s in series}
    peaks: dict[str, list[float | None]] = {s: [None] * len(starts) for s in series}
    for r in rows:
        i, s = index[r.opened_ms - r.opened_ms % bucket_ms], label[r.symbol]
        counts[s][i] += 1
        seen = peaks[s][i]
        peaks[s][i] = r.peak_net_pct if seen is None else max(seen, r.peak_net_pct)

    fig, ax = _figure()
    xs = [_x(s + bucket_ms // 2) for s in starts]
    width = bucket_ms / DAY_MS * 0.8
    bottom = [0] * len(starts)
    peak_ax = ax.twinx()
    for n, s in enumerate(series):
        color = _COLORS[n % len(_COLORS)]
        ax.bar(xs, counts[s], width=width, bottom=bottom, color=color, alpha=0.75, label=s)
        bottom = [b + c for b, c in zip(bottom, counts[s], strict=True)]
        shift = (n - (len(series) - 1) / 2) * width / max(len(series), 2)  # side by side
        pts = [(x + shift, p) for x, p in zip(xs, peaks[s], strict=True) if p is not None]
        peak_ax.plot(
            [x for x, _ in pts], [p for _, p in pts], "D", color=color, markersize=5,
            markeredgecolor="black", markeredgewidth=0.5,
        )  # fmt: skip
    unit = "hour" if bucket_ms == HOUR_MS else "day"
    ax.set_ylabel(f"opportunities opened per {unit}")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(bottom) * 1.15)
    peak_ax.set_ylabel("best peak net profit, % (diamonds)")
    peak_ax.set_ylim(bottom=0)
    _time_axis(ax, since_ms, until_ms)
    scope = symbol or "all symbols"
    ax.set_title(f"Arbitrage opportunities, {scope} — {_period(since_ms, until_ms)}")
    ax.legend(loc="upper left", fontsize=8, ncols=min(len(series), 4), framealpha=0.8)

    best = max(rows, key=lambda r: (r.peak_net_pct, -r.opened_ms))
    caption = (
        f"Arbitrage opportunities opened per {unit}, {_period(since_ms, until_ms)}, for {scope}:"
        f" bars stacked by symbol (left axis), diamonds the best peak net profit in each {unit}"
        f" (right axis). {_count(len(rows), 'opportunity', 'opportunities')};"
        f" best peak {best.peak_net_pct:.3f}% net"
        f" ({best.symbol}, {_stamp(best.opened_ms)})."
    )
    return _finish(fig, caption, "stats.png")


@_one_at_a_time
def render_gap_chart(
    points: Sequence[GapPoint],
    symbol: str,
    since_ms: int,
    until_ms: int,
    windows: Sequence[OpportunityRow] = (),
) -> Chart | None:
    """The symbol's gap over time, its opportunity windows shaded."""
    points = [p for p in points if since_ms <= p.timestamp_ms < until_ms]
    windows = [w for w in windows if w.opened_ms < until_ms and w.end_ms >= since_ms]
    if not points and not windows:
        return None

    fig, ax = _figure()
    ax.axhline(0, color="black", linewidth=0.8)
    for w in windows:
        start, end = max(w.opened_ms, since_ms), min(max(w.end_ms, w.opened_ms), until_ms)
        if end - start < (until_ms - since_ms) // 400:  # keep a short window visible
            end = start + (until_ms - since_ms) // 400
        sign = _sign(w.direction)
        color = _BYBIT_HIGHER if sign > 0 else _BINANCE_HIGHER
        ax.axvspan(_x(start), _x(end), color=color, alpha=0.15, linewidth=0)
        ax.plot([_x(start), _x(end)], [sign * w.peak_net_pct] * 2, color=color, linewidth=2)
    if points:
        xs = [_x(p.timestamp_ms) for p in points]
        # Signals are sparse: join only close observations, never across a quiet stretch.
        line_x: list[float] = []
        line_y: list[float] = []
        for prev, p, x in zip([None, *points], points, xs, strict=False):
            if prev is not None and p.timestamp_ms - prev.timestamp_ms > JOIN_WITHIN_MS:
                line_x.append(x)
                line_y.append(math.nan)
            line_x.append(x)
            line_y.append(p.gap_pct)
        ax.plot(line_x, line_y, ".-", color="#1f77b4", markersize=4, linewidth=1,
                label="gross gap")  # fmt: skip
        net = [(x, p.net_pct) for x, p in zip(xs, points, strict=True) if p.net_pct is not None]
        if net:
            ax.plot([x for x, _ in net], [n for _, n in net], "x", color="#555555",
                    markersize=4, label="net of fees")  # fmt: skip
    ax.plot([], [], color=_BYBIT_HIGHER, linewidth=6, alpha=0.3, label="window: Bybit higher")
    ax.plot([], [], color=_BINANCE_HIGHER, linewidth=6, alpha=0.3, label="window: Binance higher")
    ax.set_ylabel("Bybit - Binance, % of Binance price")
    _time_axis(ax, since_ms, until_ms)
    ax.set_title(f"{symbol} cross-exchange gap — {_period(since_ms, until_ms)}")
    ax.legend(loc="best", fontsize=8, ncols=2, framealpha=0.8)

    widest = max((abs(p.gap_pct) for p in points), default=0.0)
    signals = _count(len(points), "stored signal", "stored signals")
    shaded = _count(len(windows), "arbitrage opportunity window", "arbitrage opportunity windows")
    caption = (
        f"{symbol}: cross-exchange price gap (Bybit - Binance, % of the Binance price),"
        f" {_period(since_ms, until_ms)}, from {signals}"
        f"{f'; widest {widest:.3f}%' if points else ''}. Line: gross gap; crosses: net of fees."
        f" Shaded: {shaded}, green when Bybit quoted higher,"
        " red when Binance did; the bar inside each is its peak net profit."
    )
    return _finish(fig, caption, "chart.png")


# -- helpers ---------------------------------------------------------------------------------


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, axis="y", alpha=0.3)
    return fig, ax


# matplotlib.dates is not annotated yet (the rest of matplotlib is): hence the ignores below.


def _x(ms: int) -> float:
    return float(mdates.date2num(datetime.fromtimestamp(ms / 1000, UTC)))  # type: ignore[no-untyped-call]


def _time_axis(ax: Axes, since_ms: int, until_ms: int) -> None:
    locator = mdates.AutoDateLocator(tz=UTC, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlim(_x(since_ms), _x(until_ms))
    ax.set_xlabel("UTC")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _period(since_ms: int, until_ms: int) -> str:
    return f"{_stamp(since_ms)} to {_stamp(until_ms)} UTC"


def _finish(fig: Figure, caption: str, filename: str) -> Chart:
    buf = io.BytesIO()
    # No Software/date chunks: identical rows give identical bytes.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    png = buf.getvalue()
    width, height = png_size(png)
    if len(caption) > CAPTION_LIMIT:
        caption = caption[: CAPTION_LIMIT - 1] + "…"
    return Chart(png=png, width=width, height=height, caption=caption, filename=filename)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (right after the 8-byte signature)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)
