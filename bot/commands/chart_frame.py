"""The frame the /stats and /chart pictures share: figure, fitted time axis, titles and legend.

:mod:`bot.commands.charts` draws the data; this module decides where the time axis starts and
ends (:func:`fitted_start`), names the period in words, and keeps the legend outside the axes
so that it never covers a data point.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import matplotlib.dates as mdates
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.messages import HOUR_MS, MINUTE_MS

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 5.6, 100  # 1000 x 560 px
FIT_WHEN_EMPTY = 0.25
"""The time axis starts at the first data when the period opens on a longer empty stretch than
this share of it (a fresh install, whose data would otherwise fill the right-most pixels)."""
MIN_SPAN_MS = 10 * MINUTE_MS  # a fitted axis shows at least this much time
_LEAD = 1 / 30  # room left of the first data on a fitted axis, as a share of the span shown


def fitted_start(first_ms: int, since_ms: int, until_ms: int) -> int:
    """Where the time axis of a picture of [since, until) starts, given its first data.

    The period's start when the data fills most of the period, else just before the first data
    (never before ``since``); the axis always ends at ``until``, so a quiet last stretch shows.
    """
    if first_ms - since_ms <= (until_ms - since_ms) * FIT_WHEN_EMPTY:
        return since_ms
    start = min(first_ms - int((until_ms - first_ms) * _LEAD), until_ms - MIN_SPAN_MS)
    return max(since_ms, start)


def new_figure(panels: Sequence[float] = (1.0,)) -> tuple[Figure, list[Axes]]:
    """A 1000 x 560 figure on an Agg canvas (no pyplot) with one axes per panel, stacked and
    sharing the time axis; ``panels`` are their height ratios, top first."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(panels), 1, height_ratios=list(panels))
    axes: list[Axes] = []
    for row in range(len(panels)):
        ax = fig.add_subplot(grid[row, 0], sharex=axes[0] if axes else None)
        ax.grid(True, axis="y", alpha=0.3)
        axes.append(ax)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    return fig, axes


def legend_above(fig: Figure, handles: Sequence[Artist], ncols: int) -> None:
    """The legend in its own band above the axes: it can never cover a data point."""
    fig.legend(
        handles=list(handles), loc="outside upper center", ncols=ncols, fontsize=9,
        frameon=False, handlelength=1.6, columnspacing=1.6,
    )  # fmt: skip


# matplotlib.dates is not annotated yet (the rest of matplotlib is): hence the ignores below.


def x_of(ms: int) -> float:
    """A time in ms as matplotlib's date number (days)."""
    return float(mdates.date2num(datetime.fromtimestamp(ms / 1000, UTC)))  # type: ignore[no-untyped-call]


def time_axis(ax: Axes, start_ms: int, end_ms: int) -> None:
    """UTC ticks, concise labels, and the axis limited to [start, end]."""
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlim(x_of(start_ms), x_of(end_ms))
    ax.set_xlabel("time (UTC)")


def title(subject: str, since_ms: int, until_ms: int, start_ms: int, first_ms: int) -> str:
    """``BTCUSDT · last 24 h (data from 10:02)``: the period named, and where the data starts
    when the axis was fitted to it (``start_ms`` after ``since_ms``)."""
    text = f"{subject} · last {span_label(until_ms - since_ms)}"
    if start_ms > since_ms:
        same_day = _utc(first_ms).date() == _utc(until_ms).date()
        text += f" (data from {_utc(first_ms).strftime('%H:%M' if same_day else '%b %d %H:%M')})"
    return text


def span_label(ms: int) -> str:
    """``30 min``, ``24 h``, ``7 d`` (rounded to the minute: callers pass ``now + 1`` as end)."""
    minutes = round(ms / MINUTE_MS)
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes * MINUTE_MS / HOUR_MS
    return f"{hours:.3g} h" if hours <= 48 else f"{hours / 24:.3g} d"


def count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def stamp(ms: int) -> str:
    return _utc(ms).strftime("%Y-%m-%d %H:%M")


def period(since_ms: int, until_ms: int) -> str:
    return f"{stamp(since_ms)} to {stamp(until_ms)} UTC"


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
