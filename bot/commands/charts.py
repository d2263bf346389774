"""PNG charts for /stats and /chart, rendered headless from rows of the history (pure, sync).

The charts take rows (:class:`~bot.store.OpportunityRow`, :class:`GapPoint`), never the store:
:mod:`bot.commands.reports` reads them. Rendering takes ~0.3-0.5 s of CPU, so the async
frontends call these through ``asyncio.to_thread`` (via ``CommandHandler.handle``). Each
figure is its own ``Figure`` on an Agg canvas (no pyplot), of a fixed pixel size well inside
Telegram's photo and Discord's attachment limits; matplotlib is not thread-safe, so renders
from several frontends' threads take turns. The same rows give the
same bytes: the PNG carries no software or time stamp.

- :func:`render_stats_chart`: opportunities opened per bucket (minutes up to about 12 h, hours
  up to 48 h, days beyond), stacked by symbol, under a panel of each bucket's best peak net %.
- :func:`render_gap_chart`: one symbol's price gap between two venues over time (by default Bybit
  minus Binance, in % of the Binance price) from its stored signals, with the opportunity windows
  between those venues shaded.

Both start their time axis at the first data when the period opens on a long empty stretch
(:func:`~bot.commands.chart_frame.fitted_start`) and say so in the title; ``plot_*`` build the
``Figure`` (for tests to measure), ``render_*`` turn it into a :class:`Chart`. Both return
``None`` when there is nothing to draw; the caller answers with text instead.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from bot.commands.chart_frame import (
    DPI,
    count,
    fitted_start,
    legend_above,
    new_figure,
    period,
    stamp,
    time_axis,
    title,
    x_of,
)
from bot.commands.gaps import (
    DEFAULT_PAIR,
    GAP_TYPES,
    GapPoint,
    VenuePair,
    gap_points,
    gap_segments,
)
from bot.messages import DAY_MS, HOUR_MS, MINUTE_MS
from bot.store import OpportunityRow

__all__ = [  # the gap's points are built in bot.commands.gaps; callers import them from here
    "CAPTION_LIMIT",
    "DEFAULT_PAIR",
    "GAP_TYPES",
    "Chart",
    "GapPoint",
    "Plot",
    "VenuePair",
    "gap_points",
    "gap_segments",
    "plot_gap_chart",
    "plot_stats_chart",
    "png_size",
    "render_gap_chart",
    "render_stats_chart",
]

HOURLY_UP_TO_MS = 48 * HOUR_MS
"""Spans up to this long are bucketed by hour (or minutes, when short), longer ones by day."""
MINUTE_BUCKETS_MS = tuple(m * MINUTE_MS for m in (1, 2, 5, 10, 15, 30))
MAX_MINUTE_BARS = 24  # the finest minute bucket that keeps the bars at most this many
CAPTION_LIMIT = 1024  # Telegram's photo caption limit (Discord allows more)
DENSE_WINDOWS = 150  # more windows than this on one chart are drawn with smaller marks
MAX_SYMBOLS = 6  # stacked series before the rest are lumped into "other"
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f")
_SECOND_HIGHER, _FIRST_HIGHER = "#2ca02c", "#d62728"  # green: Bybit higher, by default
_GROSS, _NET, _MOMENTUM = "#1f4e9c", "#444444", "#8e44ad"
_RENDERING = threading.RLock()  # matplotlib is not thread-safe: one figure at a time

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
class Plot:
    """A built figure, before rendering: what :func:`render_stats_chart` and
    :func:`render_gap_chart` turn into a :class:`Chart` (tests measure its axes)."""

    figure: Figure
    caption: str
    filename: str


# -- /chart ----------------------------------------------------------------------------------


@_one_at_a_time
def plot_gap_chart(
    points: Sequence[GapPoint],
    symbol: str,
    since_ms: int,
    until_ms: int,
    windows: Sequence[OpportunityRow] = (),
    pair: VenuePair = DEFAULT_PAIR,
) -> Plot | None:
    """The figure of :func:`render_gap_chart`, or ``None`` when there is nothing to draw."""
    points = [p for p in points if since_ms <= p.timestamp_ms < until_ms]
    windows = [
        w
        for w in windows
        if w.opened_ms < until_ms and w.end_ms >= since_ms and pair.sign(w.direction)
    ]
    if not points and not windows:
        return None
    first = min([p.timestamp_ms for p in points] + [max(w.opened_ms, since_ms) for w in windows])
    start = fitted_start(first, since_ms, until_ms)

    fig, (ax,) = new_figure()
    ax.axhline(0, color="black", linewidth=0.8)
    # Hundreds of windows (a month of a busy symbol): smaller marks, or they merge into a blob.
    size = 0.6 if len(windows) > DENSE_WINDOWS else 1.0
    colors = _draw_windows(ax, windows, start, until_ms, size, pair)
    runs = gap_segments(points, windows, pair)
    if runs:
        xs, ys = gap_line(runs)
        ax.plot(xs, ys, ".-", color=_GROSS, markersize=5 * size, linewidth=1.2 * size, zorder=5,
                gid="gross")  # fmt: skip
    net = [(x_of(p.timestamp_ms), p.net_pct) for p in points if p.net_pct is not None]
    if net:
        ax.plot([x for x, _ in net], [n for _, n in net], "x", color=_NET, markersize=5 * size,
                markeredgewidth=1, zorder=5)  # fmt: skip
    momentum = [(x_of(p.timestamp_ms), p.gap_pct) for p in points if p.net_pct is None]
    if momentum:
        ax.plot([x for x, _ in momentum], [g for _, g in momentum], "o", color=_MOMENTUM,
                markerfacecolor="none", markersize=6 * size, markeredgewidth=1.3 * size,
                zorder=5)  # fmt: skip
    shown = [0.0, *(p.gap_pct for p in points), *(n for _, n in net)]
    shown += [pair.sign(w.direction) * w.peak_net_pct for w in windows]
    low, high = min(shown), max(shown)
    pad = max(high - low, 0.1) * 0.08
    ax.set_ylim(low - pad, high + pad)
    first_name, second_name = pair.names
    ax.set_ylabel(f"{second_name} - {first_name}, % of {first_name} price")
    time_axis(ax, start, until_ms)
    ax.set_title(title(f"{symbol} cross-exchange gap", since_ms, until_ms, start, first))
    legend = _gap_legend(bool(runs), bool(net), bool(momentum), colors, pair)
    legend_above(fig, legend, ncols=3)

    widest = max((abs(p.gap_pct) for p in points), default=0.0)
    signals = count(len(points), "stored signal", "stored signals")
    shaded = count(len(windows), "arbitrage opportunity window", "arbitrage opportunity windows")
    caption = (
        f"{symbol}: cross-exchange price gap ({second_name} - {first_name}, % of the"
        f" {first_name} price),"
        f" {period(since_ms, until_ms)}, from {signals}"
        f"{f'; widest {widest:.3f}%' if points else ''}. Line: gross gap, joined only within"
        " one opportunity window; crosses: net of fees; circles: mid-to-mid gap at momentum"
        f" breakouts. Shaded: {shaded}, green when {second_name} quoted higher,"
        f" red when {first_name} did; the diamond in each is its peak net profit."
    )
    return Plot(fig, caption, "chart.png")


def gap_line(runs: Sequence[Sequence[GapPoint]]) -> tuple[list[float], list[float]]:
    """The runs of :func:`gap_segments` as one line's x (date numbers) and y, a NaN between
    runs: matplotlib draws no line across a NaN."""
    xs: list[float] = []
    ys: list[float] = []
    for run in runs:
        if xs:
            xs.append(math.nan)
            ys.append(math.nan)
        xs += [x_of(p.timestamp_ms) for p in run]
        ys += [p.gap_pct for p in run]
    return xs, ys


def _draw_windows(
    ax: Axes,
    windows: Sequence[OpportunityRow],
    start_ms: int,
    until_ms: int,
    size: float,
    pair: VenuePair,
) -> set[str]:
    """Shade each window full height and mark its peak net % (a diamond in its middle, a bar
    across it); returns the colours used. One collection per colour: 30 days hold thousands."""
    # A window of a few seconds still shows: ~4 px wide (~2 px when they are many).
    min_width = int((until_ms - start_ms) / 250 * size**2)
    used: set[str] = set()
    for sign, color in ((1, _SECOND_HIGHER), (-1, _FIRST_HIGHER)):
        spans: list[tuple[float, float]] = []
        bar_x: list[float] = []
        bar_y: list[float] = []
        middles: list[float] = []
        peaks: list[float] = []
        for w in windows:
            if pair.sign(w.direction) != sign:
                continue
            begin, end = max(w.opened_ms, start_ms), min(max(w.end_ms, w.opened_ms), until_ms)
            if end - begin < min_width:
                begin, end = (begin + end - min_width) // 2, (begin + end + min_width) // 2
            spans.append((x_of(begin), x_of(end) - x_of(begin)))
            peaks.append(sign * w.peak_net_pct)
            middles.append(x_of((begin + end) // 2))
            bar_x += [x_of(begin), x_of(end), math.nan]
            bar_y += [peaks[-1], peaks[-1], math.nan]
        if not spans:
            continue
        used.add(color)
        # y in axes coordinates: the shading spans the full height whatever the data.
        ax.broken_barh(spans, (0, 1), transform=ax.get_xaxis_transform(), color=color,
                       alpha=0.28, linewidth=0, zorder=1)  # fmt: skip
        ax.plot(bar_x, bar_y, color=color, linewidth=2, zorder=3)
        ax.plot(middles, peaks, linestyle="none", marker="D", color=color, markersize=7 * size,
                markeredgecolor="black", markeredgewidth=0.8, zorder=4)  # fmt: skip
    return used


def _gap_legend(
    gross: bool, net: bool, momentum: bool, windows: set[str], pair: VenuePair
) -> list[Artist]:
    def marker(label: str, style: str, color: str, **kw: Any) -> Line2D:
        return Line2D([], [], linestyle="none", marker=style, color=color, label=label, **kw)

    handles: list[Artist] = []
    if gross:
        handles.append(Line2D([], [], marker=".", color=_GROSS, label="gross gap (signals)"))
    if net:
        handles.append(marker("net of fees", "x", _NET))
    if momentum:
        handles.append(marker("momentum breakout (mid to mid)", "o", _MOMENTUM,
                              markerfacecolor="none"))  # fmt: skip
    first_name, second_name = pair.names
    for color, name in ((_SECOND_HIGHER, second_name), (_FIRST_HIGHER, first_name)):
        if color in windows:
            handles.append(Patch(color=color, alpha=0.35, label=f"window: {name} higher"))
    if windows:
        handles.append(marker("window peak, net", "D", "#bbbbbb", markeredgecolor="black"))
    return handles


def render_gap_chart(
    points: Sequence[GapPoint],
    symbol: str,
    since_ms: int,
    until_ms: int,
    windows: Sequence[OpportunityRow] = (),
    pair: VenuePair = DEFAULT_PAIR,
) -> Chart | None:
    """The symbol's gap between the pair's venues over time, their opportunity windows shaded."""
    with _RENDERING:
        plot = plot_gap_chart(points, symbol, since_ms, until_ms, windows, pair)
        return None if plot is None else _finish(plot)


# -- /stats ----------------------------------------------------------------------------------


def stats_bucket_ms(span_ms: int) -> int:
    """The bar width of a /stats chart showing ``span_ms``: the finest of 1-30 minutes that
    keeps to :data:`MAX_MINUTE_BARS` bars, else an hour up to 48 h, else a day."""
    for bucket in MINUTE_BUCKETS_MS:
        if span_ms <= bucket * MAX_MINUTE_BARS:
            return bucket
    return HOUR_MS if span_ms <= HOURLY_UP_TO_MS else DAY_MS


def bucket_unit(bucket_ms: int) -> str:
    """``minute``, ``5 minutes``, ``hour``, ``day``: what "per ..." a bar counts."""
    if bucket_ms == DAY_MS:
        return "day"
    if bucket_ms == HOUR_MS:
        return "hour"
    minutes = bucket_ms // MINUTE_MS
    return "minute" if minutes == 1 else f"{minutes} minutes"


@_one_at_a_time
def plot_stats_chart(
    opportunities: Sequence[OpportunityRow],
    since_ms: int,
    until_ms: int,
    symbol: str | None = None,
) -> Plot | None:
    """The figure of :func:`render_stats_chart`, or ``None`` when there is nothing to draw."""
    rows = [
        r
        for r in opportunities
        if since_ms <= r.opened_ms < until_ms and (symbol is None or r.symbol == symbol)
    ]
    if not rows:
        return None
    first = min(r.opened_ms for r in rows)
    start = fitted_start(first, since_ms, until_ms)
    bucket_ms = stats_bucket_ms(until_ms - start)
    starts = list(range(start - start % bucket_ms, until_ms, bucket_ms))
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

    # Two panels, one scale each: the best peak net % above, the counts below.
    fig, (peak_ax, ax) = new_figure(panels=(1.0, 2.1))
    xs = [x_of(s + bucket_ms // 2) for s in starts]
    width = bucket_ms / DAY_MS * 0.8
    bottom = [0] * len(starts)
    handles: list[Artist] = []
    for n, s in enumerate(series):
        color = _COLORS[n % len(_COLORS)]
        ax.bar(xs, counts[s], width=width, bottom=bottom, color=color)
        handles.append(Patch(color=color, label=s))
        bottom = [b + c for b, c in zip(bottom, counts[s], strict=True)]
        shift = (n - (len(series) - 1) / 2) * width / max(len(series), 2)  # side by side
        pts = [(x + shift, p) for x, p in zip(xs, peaks[s], strict=True) if p is not None]
        peak_ax.plot([x for x, _ in pts], [p for _, p in pts], "D", color=color, markersize=6,
                     markeredgecolor="black", markeredgewidth=0.6)  # fmt: skip
    unit = bucket_unit(bucket_ms)
    ax.set_ylabel(f"opened per {unit}")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(bottom) * 1.1)
    best_peak = max(r.peak_net_pct for r in rows)
    peak_ax.set_ylabel("best peak net, %")
    peak_ax.set_ylim(0, best_peak * 1.25)
    peak_ax.yaxis.set_major_locator(MaxNLocator(nbins=3))
    end = starts[-1] + bucket_ms
    if end > until_ms:  # the last bar is still filling
        for a in (peak_ax, ax):
            a.axvline(x_of(until_ms), color="#555555", linewidth=1, linestyle="--")
        handles.append(Line2D([], [], color="#555555", linewidth=1, linestyle="--", label="now"))
    time_axis(ax, starts[0], end)
    scope = symbol or "all symbols"
    peak_ax.set_title(title(f"Arbitrage opportunities, {scope}", since_ms, until_ms, start, first))
    legend_above(fig, handles, ncols=len(handles))

    best = max(rows, key=lambda r: (r.peak_net_pct, -r.opened_ms))
    caption = (
        f"Arbitrage opportunities opened per {unit}, {period(since_ms, until_ms)}, for {scope}:"
        " bars stacked by symbol (lower panel), diamonds the best peak net profit of each bar"
        f" (upper panel){'; dashed line: now' if end > until_ms else ''}."
        f" {count(len(rows), 'opportunity', 'opportunities')};"
        f" best peak {best.peak_net_pct:.3f}% net"
        f" ({best.symbol}, {stamp(best.opened_ms)})."
    )
    return Plot(fig, caption, "stats.png")


def render_stats_chart(
    opportunities: Sequence[OpportunityRow],
    since_ms: int,
    until_ms: int,
    symbol: str | None = None,
) -> Chart | None:
    """Opportunities opened per bucket, stacked by symbol, and each bucket's best peak net %."""
    with _RENDERING:
        plot = plot_stats_chart(opportunities, since_ms, until_ms, symbol)
        return None if plot is None else _finish(plot)


# -- PNG -------------------------------------------------------------------------------------


def _finish(plot: Plot) -> Chart:
    buf = io.BytesIO()
    # No Software/date chunks: identical rows give identical bytes.
    plot.figure.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    png = buf.getvalue()
    width, height = png_size(png)
    caption = plot.caption
    if len(caption) > CAPTION_LIMIT:
        caption = caption[: CAPTION_LIMIT - 1] + "…"
    return Chart(png=png, width=width, height=height, caption=caption, filename=plot.filename)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (right after the 8-byte signature)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)
