"""The /stats and /chart PNGs: decoded and measured, from a real store and from plain rows;
their figures measured in display coordinates (axis range, line breaks, bars, legend)."""

from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.transforms import Bbox

from bot.commands.chart_frame import fitted_start, span_label, x_of
from bot.commands.charts import (
    CAPTION_LIMIT,
    DEFAULT_PAIR,
    GAP_TYPES,
    Chart,
    GapPoint,
    Plot,
    VenuePair,
    gap_points,
    gap_segments,
    plot_gap_chart,
    plot_stats_chart,
    png_size,
    render_gap_chart,
    render_stats_chart,
)
from bot.commands.charts import stats_bucket_ms as bucket
from bot.commands.reports import gap_chart, stats_chart
from bot.messages import DAY_MS, HOUR_MS, MINUTE_MS
from bot.store import OpportunityRow, Store
from detector.signals import SignalType
from tests.bot.factories import T0, arbitrage, momentum, other

MAX_PNG_BYTES = 200_000
MAX_WIDTH = 1280


def _fill(store: Store, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")) -> None:
    """Opportunities every 40 minutes over ~10 h, each with three signals a minute apart."""
    for i in range(15):
        symbol = symbols[i % len(symbols)]
        opened = T0 + i * 40 * MINUTE_MS
        direction = "buy_bybit_sell_binance" if i % 4 == 0 else "buy_binance_sell_bybit"
        for k, net in enumerate((0.12, 0.25, 0.45)):
            signal = arbitrage(
                net,
                symbol=symbol,
                opened_ms=opened,
                timestamp=opened + k * MINUTE_MS,
                direction=direction,
                reason="new" if k == 0 else "upgrade",
            )
            store.history.record_signal(signal, opened + k * MINUTE_MS)


def _check_png(chart: Chart) -> None:
    pixels = imread(io.BytesIO(chart.png), format="png")
    assert pixels.shape[:2] == (chart.height, chart.width)
    assert png_size(chart.png) == (chart.width, chart.height)
    assert 0 < chart.width <= MAX_WIDTH
    assert 0 < chart.height <= chart.width
    assert len(chart.png) <= MAX_PNG_BYTES
    assert 0 < len(chart.caption) <= CAPTION_LIMIT
    assert pixels.std() > 0.01  # something was drawn, not a blank canvas


def test_stats_chart_from_the_store(store: Store) -> None:
    _fill(store)
    chart = stats_chart(store, T0 - HOUR_MS, T0 + 23 * HOUR_MS)

    assert chart is not None
    _check_png(chart)
    assert chart.filename == "stats.png"
    assert "per hour" in chart.caption
    assert "15 opportunities" in chart.caption
    assert "0.450% net" in chart.caption


@pytest.mark.parametrize(
    ("period_ms", "unit"),
    [
        (6 * HOUR_MS, "15 minutes"),
        (12 * HOUR_MS, "30 minutes"),
        (24 * HOUR_MS, "hour"),
        (48 * HOUR_MS, "hour"),
        (48 * HOUR_MS + 1, "day"),
        (30 * DAY_MS, "day"),
    ],
)
def test_bars_widen_with_the_period(store: Store, period_ms: int, unit: str) -> None:
    _fill(store)
    chart = stats_chart(store, T0 - HOUR_MS, T0 - HOUR_MS + period_ms)

    assert chart is not None
    _check_png(chart)
    assert f"opened per {unit}," in chart.caption


def test_stats_chart_without_data_is_none(store: Store) -> None:
    assert stats_chart(store, T0, T0 + DAY_MS) is None
    _fill(store)
    assert stats_chart(store, T0 - 2 * DAY_MS, T0 - DAY_MS) is None
    assert stats_chart(store, T0, T0 + DAY_MS, symbol="XRPUSDT") is None


def test_stats_chart_per_symbol(store: Store) -> None:
    _fill(store)
    btc = stats_chart(store, T0, T0 + DAY_MS, symbol="BTCUSDT")
    eth = stats_chart(store, T0, T0 + DAY_MS, symbol="ETHUSDT")

    assert btc is not None and eth is not None
    _check_png(btc)
    _check_png(eth)
    assert "for BTCUSDT" in btc.caption and "8 opportunities" in btc.caption
    assert "for ETHUSDT" in eth.caption and "7 opportunities" in eth.caption
    assert btc.png != eth.png


def test_many_symbols_fold_into_other() -> None:
    rows = [
        OpportunityRow(f"S{i}USDT", "buy_binance_sell_bybit", T0 + i * HOUR_MS, None, T0, 0.1 * i)
        for i in range(12)
    ]
    chart = render_stats_chart(rows, T0, T0 + DAY_MS)

    assert chart is not None
    _check_png(chart)
    assert "12 opportunities" in chart.caption


def test_same_rows_give_the_same_bytes(store: Store) -> None:
    _fill(store)
    first = stats_chart(store, T0, T0 + DAY_MS)
    again = render_stats_chart(store.history.opportunities(T0, T0 + DAY_MS), T0, T0 + DAY_MS)
    gap = gap_chart(store, "BTCUSDT", T0, T0 + DAY_MS)
    gap_again = gap_chart(store, "BTCUSDT", T0, T0 + DAY_MS)

    assert first is not None and again is not None and gap is not None and gap_again is not None
    assert first == again
    assert gap == gap_again
    assert b"Software" not in first.png


def test_renders_from_several_threads_give_the_same_bytes(store: Store) -> None:
    """Frontends render from worker threads (``asyncio.to_thread``), possibly at once."""
    _fill(store)
    expected = gap_chart(store, "BTCUSDT", T0, T0 + DAY_MS)
    with ThreadPoolExecutor(max_workers=4) as pool:
        charts = list(pool.map(lambda _: gap_chart(store, "BTCUSDT", T0, T0 + DAY_MS), range(8)))
    assert expected is not None
    assert all(chart == expected for chart in charts)


def test_gap_points_are_signed_bybit_minus_binance(store: Store) -> None:
    store.history.record_signal(arbitrage(0.2, direction="buy_binance_sell_bybit"), T0)
    store.history.record_signal(
        arbitrage(0.3, direction="buy_bybit_sell_binance", timestamp=T0 + 1, opened_ms=T0 + 1),
        T0 + 1,
    )
    momentum = other(SignalType.MOMENTUM_BREAKOUT, timestamp=T0 + 2)  # Binance 64 500, Bybit 64 480
    store.history.record_signal(momentum, T0 + 2)
    store.history.record_signal(other(SignalType.SPREAD_ANOMALY, timestamp=T0 + 3), T0 + 3)

    points = gap_points(store.history.signals("BTCUSDT", T0, T0 + HOUR_MS, GAP_TYPES))

    assert [p.timestamp_ms for p in points] == [T0, T0 + 1, T0 + 2]
    assert points[0].gap_pct == pytest.approx(0.305, abs=1e-3)
    assert points[0].net_pct == pytest.approx(0.2)
    assert points[1].gap_pct == pytest.approx(-0.405, abs=1e-3)
    assert points[1].net_pct == pytest.approx(-0.3)
    assert points[2] == GapPoint(T0 + 2, pytest.approx((64_480 - 64_500) / 64_500 * 100), None)


OKX_BINANCE = VenuePair("okx", "binance")


def test_a_pair_of_venues_takes_only_its_own_signals(store: Store) -> None:
    store.history.record_signal(arbitrage(0.2, direction="buy_okx_sell_binance"), T0)
    store.history.record_signal(
        arbitrage(0.3, direction="buy_binance_sell_okx", timestamp=T0 + 1, opened_ms=T0 + 1),
        T0 + 1,
    )
    store.history.record_signal(arbitrage(0.25, timestamp=T0 + 2, opened_ms=T0 + 2), T0 + 2)
    # A breakout on Bybit that saw both OKX's and Binance's mids is a point of every pair.
    store.history.record_signal(
        momentum("bybit", {"binance": 64_400.0, "okx": 64_464.4}, timestamp=T0 + 3), T0 + 3
    )
    signals = store.history.signals("BTCUSDT", T0, T0 + HOUR_MS, GAP_TYPES)

    points = gap_points(signals, OKX_BINANCE)  # Binance minus OKX, in % of OKX
    assert [p.timestamp_ms for p in points] == [T0, T0 + 1, T0 + 3]
    assert points[0].gap_pct == pytest.approx(0.305, abs=1e-3)  # bought on OKX: Binance higher
    assert points[0].net_pct == pytest.approx(0.2)
    assert points[1].gap_pct == pytest.approx(-0.405, abs=1e-3)
    assert points[2] == GapPoint(T0 + 3, pytest.approx((64_400 - 64_464.4) / 64_464.4 * 100), None)
    default = gap_points(signals)
    assert [p.timestamp_ms for p in default] == [T0 + 2, T0 + 3]
    assert default[1].gap_pct == pytest.approx((64_500 - 64_400) / 64_400 * 100)
    assert [p.timestamp_ms for p in gap_points(signals, VenuePair("bybit", "okx"))] == [T0 + 3]


def test_a_pair_of_venues_names_them_and_shades_only_its_windows() -> None:
    okx_higher = OpportunityRow("BTCUSDT", "buy_binance_sell_okx", T0, T0 + 60_000, T0, 0.3)
    binance_higher = OpportunityRow(
        "BTCUSDT", "buy_okx_sell_binance", T0 + 5 * MINUTE_MS, T0 + 6 * MINUTE_MS, T0, 0.2
    )
    elsewhere = OpportunityRow("BTCUSDT", "buy_binance_sell_bybit", T0, T0 + 60_000, T0, 0.9)
    windows = [okx_higher, binance_higher, elsewhere]
    plot = plot_gap_chart([], "BTCUSDT", T0, T0 + HOUR_MS, windows, OKX_BINANCE)
    fig = _drawn(plot)
    (ax,) = fig.axes

    assert plot is not None
    assert ax.get_ylabel() == "Binance - OKX, % of OKX price"
    assert "(Binance - OKX, % of the OKX price)" in plot.caption
    assert "2 arbitrage opportunity windows" in plot.caption
    assert "green when Binance quoted higher, red when OKX did" in plot.caption
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:2] == ["window: Binance higher", "window: OKX higher"]
    diamonds = [line for line in ax.get_lines() if line.get_marker() == "D"]
    assert sorted(y for line in diamonds for y in line.get_ydata()) == pytest.approx([-0.3, 0.2])
    # Only windows of other venues: nothing to draw for this pair.
    assert plot_gap_chart([], "BTCUSDT", T0, T0 + HOUR_MS, [elsewhere], OKX_BINANCE) is None
    default = _drawn(plot_gap_chart([], "BTCUSDT", T0, T0 + HOUR_MS, windows))
    assert default.axes[0].get_ylabel() == "Bybit - Binance, % of Binance price"
    assert (DEFAULT_PAIR.first, DEFAULT_PAIR.second) == ("binance", "bybit")


def test_gap_chart_marks_the_opportunity_windows(store: Store) -> None:
    _fill(store)
    chart = gap_chart(store, "BTCUSDT", T0 - HOUR_MS, T0 + 12 * HOUR_MS)

    assert chart is not None
    _check_png(chart)
    assert chart.filename == "chart.png"
    assert chart.caption.startswith("BTCUSDT: cross-exchange price gap")
    assert "from 24 stored signals" in chart.caption
    assert "8 arbitrage opportunity windows" in chart.caption


def test_gap_chart_from_plain_rows() -> None:
    points = [GapPoint(T0 + i * MINUTE_MS, 0.1 + 0.01 * i, 0.01 * i) for i in range(30)]
    window = OpportunityRow("SOLUSDT", "buy_binance_sell_bybit", T0, T0 + 20 * MINUTE_MS, 0, 0.3)
    chart = render_gap_chart(points, "SOLUSDT", T0, T0 + HOUR_MS, windows=[window])
    windows_only = render_gap_chart([], "SOLUSDT", T0, T0 + HOUR_MS, windows=[window])

    assert chart is not None and windows_only is not None
    _check_png(chart)
    _check_png(windows_only)
    assert "from 30 stored signals" in chart.caption
    assert chart.png != windows_only.png


def test_gap_chart_without_data_is_none(store: Store) -> None:
    _fill(store)
    assert gap_chart(store, "XRPUSDT", T0, T0 + DAY_MS) is None
    assert gap_chart(store, "BTCUSDT", T0 - 2 * DAY_MS, T0 - DAY_MS) is None
    assert render_gap_chart([], "BTCUSDT", T0, T0 + DAY_MS) is None


def test_png_size_rejects_other_bytes() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))


# -- the figures, measured ------------------------------------------------------------------

NOW = T0 + DAY_MS  # "now" in the tests below: periods end here


def _window(opened_ms: int, seconds: int, net: float, bybit_higher: bool = True) -> OpportunityRow:
    direction = "buy_binance_sell_bybit" if bybit_higher else "buy_bybit_sell_binance"
    end = opened_ms + seconds * 1000
    return OpportunityRow("BTCUSDT", direction, opened_ms, end, end, net)


def _episode(window: OpportunityRow, *nets: float) -> list[GapPoint]:
    """Arbitrage points inside ``window``, evenly spread, signed like it (gross = net + fees)."""
    sign = 1 if window.direction == "buy_binance_sell_bybit" else -1
    step = (window.end_ms - window.opened_ms) // max(len(nets), 1)
    return [
        GapPoint(window.opened_ms + k * step, sign * (net + 0.105), sign * net)
        for k, net in enumerate(nets)
    ]


def _fresh_install() -> tuple[list[GapPoint], list[OpportunityRow]]:
    """45 minutes of data at the end of a day: three windows, a momentum point between two."""
    first = _window(NOW - 45 * MINUTE_MS, 40, 0.2)
    second = _window(NOW - 42 * MINUTE_MS, 30, 0.3)  # 3 minutes later: not one episode
    third = _window(NOW - 10 * MINUTE_MS, 5, 0.15, bybit_higher=False)
    momentum = GapPoint(NOW - 30 * MINUTE_MS, 0.04, None)
    points = [*_episode(first, 0.12, 0.2), *_episode(second, 0.18, 0.3, 0.25), momentum]
    return [*points, *_episode(third, 0.15)], [first, second, third]


def _drawn(plot: Plot | None) -> Figure:
    assert plot is not None
    plot.figure.draw_without_rendering()  # lays the figure out: extents are final
    return plot.figure


def _time_range(ax: Axes) -> tuple[float, float]:
    low, high = ax.get_xlim()
    return float(low), float(high)


def _gross_line(ax: Axes) -> Line2D:
    (line,) = [line for line in ax.get_lines() if line.get_gid() == "gross"]
    return line


def _bars(ax: Axes) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() > 0]


@pytest.mark.parametrize(
    ("first_ms", "expected_ms"),
    [
        (T0, T0),  # data from the period's start: the whole period
        (T0 + 5 * HOUR_MS, T0),  # a short empty lead (< 25 %) stays: nothing is hidden
        (NOW - 45 * MINUTE_MS, NOW - 45 * MINUTE_MS - 90_000),  # fresh: 1/30 of 45 min before
        (NOW - 2 * MINUTE_MS, NOW - 10 * MINUTE_MS),  # at least 10 minutes shown
    ],
)
def test_the_time_axis_starts_at_the_first_data_of_a_mostly_empty_period(
    first_ms: int, expected_ms: int
) -> None:
    assert fitted_start(first_ms, T0, NOW) == expected_ms


@pytest.mark.parametrize(
    ("period_ms", "label"),
    [(DAY_MS + 1, "24 h"), (HOUR_MS, "1 h"), (30 * MINUTE_MS, "30 min"), (90 * MINUTE_MS, "1.5 h"),
     (7 * DAY_MS + 1, "7 d")],
)  # fmt: skip
def test_the_period_is_named_as_the_user_asked_for_it(period_ms: int, label: str) -> None:
    assert span_label(period_ms) == label


def test_a_fresh_install_fills_the_gap_chart() -> None:
    points, windows = _fresh_install()
    fig = _drawn(plot_gap_chart(points, "BTCUSDT", NOW - DAY_MS, NOW + 1, windows))
    (ax,) = fig.axes

    low, high = _time_range(ax)
    first = x_of(NOW - 45 * MINUTE_MS)
    assert x_of(NOW - 50 * MINUTE_MS) < low < first  # starts just before the data ...
    assert high == pytest.approx(x_of(NOW + 1))  # ... and ends now: a quiet end shows
    assert (first - low) / (high - low) < 0.05
    assert ax.get_title() == "BTCUSDT cross-exchange gap · last 24 h (data from 06:21)"


def test_a_period_full_of_data_keeps_its_whole_axis() -> None:
    windows = [_window(T0 + h * HOUR_MS, 20, 0.2) for h in range(24)]
    points = [p for w in windows for p in _episode(w, 0.1, 0.2)]
    fig = _drawn(plot_gap_chart(points, "BTCUSDT", T0, NOW, windows))
    (ax,) = fig.axes

    assert _time_range(ax) == pytest.approx((x_of(T0), x_of(NOW)))
    assert ax.get_title() == "BTCUSDT cross-exchange gap · last 24 h"


def test_the_gap_line_breaks_between_windows_and_skips_momentum_points() -> None:
    points, windows = _fresh_install()
    runs = gap_segments(points, windows)

    # One run per window: 3 minutes apart is not one episode, the momentum point stands alone.
    assert [len(run) for run in runs] == [2, 3, 1]
    for run, window in zip(runs, windows, strict=True):
        assert all(window.opened_ms <= p.timestamp_ms <= window.end_ms for p in run)

    fig = _drawn(plot_gap_chart(points, "BTCUSDT", NOW - DAY_MS, NOW + 1, windows))
    ys = list(_gross_line(fig.axes[0]).get_ydata())
    assert sum(math.isnan(y) for y in ys) == len(runs) - 1  # a NaN between runs: no line
    assert 0.04 not in ys  # the momentum point is a marker of its own, never on the line


@pytest.mark.parametrize(
    ("gaps_s", "runs"),
    [
        ((0, 30, 60), [3]),  # within JOIN_WITHIN_MS of each other: one line
        ((0, 30, 120), [2, 1]),  # 90 s of silence: we do not know the gap there
        ((0, 61), [1, 1]),
    ],
)
def test_without_windows_points_join_only_when_close(
    gaps_s: tuple[int, ...], runs: list[int]
) -> None:
    points = [GapPoint(T0 + s * 1000, 0.3, 0.2) for s in gaps_s]
    assert [len(run) for run in gap_segments(points)] == runs


def test_windows_and_their_peaks_stand_out() -> None:
    points, windows = _fresh_install()
    fig = _drawn(plot_gap_chart(points, "BTCUSDT", NOW - DAY_MS, NOW + 1, windows))
    (ax,) = fig.axes

    shading = [c for c in ax.collections if c.get_alpha() is not None]
    assert shading and all(c.get_alpha() >= 0.25 for c in shading)
    # The shortest window (5 s of a 45-minute axis, under 2 px) is still a few pixels wide.
    widths = [
        float(xs.max() - xs.min())
        for c in shading
        for path in c.get_paths()
        for xs in [c.get_transform().transform(path.vertices)[:, 0]]
    ]
    assert len(widths) == 3 and min(widths) >= 3
    diamonds = [line for line in ax.get_lines() if line.get_marker() == "D"]
    peaks = sorted(y for line in diamonds for y in line.get_ydata())
    assert peaks == pytest.approx([-0.15, 0.2, 0.3])
    assert all(line.get_markersize() >= 7 for line in diamonds)


def test_a_1h_stats_chart_counts_per_few_minutes() -> None:
    rows = [
        OpportunityRow("BTCUSDT", "buy_binance_sell_bybit", NOW - m * MINUTE_MS, None, NOW, 0.2)
        for m in (58, 41, 40, 12, 3)
    ]
    plot = plot_stats_chart(rows, NOW - HOUR_MS, NOW + 1)
    fig = _drawn(plot)
    _, ax = fig.axes

    assert plot is not None and "opened per 5 minutes," in plot.caption
    assert ax.get_ylabel() == "opened per 5 minutes"
    bars = _bars(ax)
    assert [b.get_height() for b in bars] == [1, 2, 1, 1]
    assert {round(b.get_width() * DAY_MS / MINUTE_MS, 6) for b in bars} == {4.0}  # 80 % of 5 min
    low, high = _time_range(ax)
    assert all(low <= b.get_x() and b.get_x() + b.get_width() <= high for b in bars)  # none cut
    assert high - low <= 65 / (24 * 60)  # an hour and the bar still filling, no more


@pytest.mark.parametrize(
    ("span_ms", "bucket_ms"),
    [
        (10 * MINUTE_MS, MINUTE_MS),
        (45 * MINUTE_MS, 2 * MINUTE_MS),
        (HOUR_MS, 5 * MINUTE_MS),
        (6 * HOUR_MS, 15 * MINUTE_MS),
        (12 * HOUR_MS, 30 * MINUTE_MS),
        (24 * HOUR_MS, HOUR_MS),
        (48 * HOUR_MS, HOUR_MS),
        (7 * DAY_MS, DAY_MS),
    ],
)
def test_stats_bars_are_minutes_hours_or_days(span_ms: int, bucket_ms: int) -> None:
    assert bucket(span_ms) == bucket_ms


def test_a_fresh_install_fills_the_stats_chart() -> None:
    rows = [
        OpportunityRow(s, "buy_binance_sell_bybit", NOW - m * MINUTE_MS, None, NOW, 0.1 + m / 100)
        for m, s in ((44, "BTCUSDT"), (30, "ETHUSDT"), (29, "BTCUSDT"), (2, "SOLUSDT"))
    ]
    fig = _drawn(plot_stats_chart(rows, NOW - DAY_MS, NOW + 1))
    peak_ax, ax = fig.axes

    low, high = _time_range(ax)
    assert x_of(NOW - 50 * MINUTE_MS) <= low <= x_of(NOW - 44 * MINUTE_MS)
    assert x_of(NOW) < high <= x_of(NOW + 2 * MINUTE_MS)
    assert _time_range(peak_ax) == (low, high)  # one time axis for both panels
    assert peak_ax.get_title().endswith("· last 24 h (data from 06:22)")


def _overlaps_any(box: Bbox, boxes: list[Bbox]) -> bool:
    return any(box.overlaps(other) for other in boxes)


def test_legends_never_cover_the_data() -> None:
    """Data in every corner (the old legend sat upper left): the legend is outside every axes."""
    corners = [
        GapPoint(NOW - DAY_MS + 1, 0.6, 0.5), GapPoint(NOW - DAY_MS + 2, -0.6, -0.5),
        GapPoint(NOW, 0.6, 0.5), GapPoint(NOW - 1, -0.6, -0.5),
    ]  # fmt: skip
    rows = [
        OpportunityRow(f"S{i}USDT", "buy_binance_sell_bybit", start, None, NOW, 0.5)
        for i, start in enumerate(range(NOW - DAY_MS, NOW, 3 * HOUR_MS))
    ] + [OpportunityRow("BTCUSDT", "buy_binance_sell_bybit", NOW - 1, None, NOW, 0.5)] * 20
    for plot in (
        plot_gap_chart(corners, "BTCUSDT", NOW - DAY_MS, NOW + 1),
        plot_stats_chart(rows, NOW - DAY_MS, NOW + 1),
    ):
        fig = _drawn(plot)
        (legend,) = fig.legends
        box = legend.get_window_extent()
        assert not _overlaps_any(box, [ax.get_window_extent() for ax in fig.axes])
        assert not _overlaps_any(box, [ax.title.get_window_extent() for ax in fig.axes])
        assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
