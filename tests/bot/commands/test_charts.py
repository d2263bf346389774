"""The /stats and /chart PNGs: decoded and measured, from a real store and from plain rows."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from matplotlib.image import imread

from bot.commands.charts import (
    CAPTION_LIMIT,
    GAP_TYPES,
    Chart,
    GapPoint,
    gap_points,
    png_size,
    render_gap_chart,
    render_stats_chart,
)
from bot.commands.reports import gap_chart, stats_chart
from bot.messages import DAY_MS, HOUR_MS, MINUTE_MS
from bot.store import OpportunityRow, Store
from detector.signals import SignalType
from tests.bot.factories import T0, arbitrage, other

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
        (6 * HOUR_MS, "hour"),
        (48 * HOUR_MS, "hour"),
        (48 * HOUR_MS + 1, "day"),
        (30 * DAY_MS, "day"),
    ],
)
def test_long_periods_switch_to_daily_buckets(store: Store, period_ms: int, unit: str) -> None:
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
