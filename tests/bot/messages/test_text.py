"""Neutral text: buttons within the platforms' limits, and how numbers and durations read."""

from __future__ import annotations

import pytest

from bot.errors import InvalidButton
from bot.messages import CALLBACK_DATA_LIMIT, Button, format_duration, format_prices


def test_buttons_respect_the_callback_data_limit() -> None:
    assert Button("ok", "x" * CALLBACK_DATA_LIMIT).data
    with pytest.raises(InvalidButton) as info:
        Button("too long", "é" * 33)  # 66 bytes
    assert info.value.limit == 64


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        ((64123.5, 64400.0), ["64,123.5", "64,400.0"]),
        ((3120.55, 3124.4), ["3,120.55", "3,124.40"]),
        ((0.6512, 0.65), ["0.6512", "0.6500"]),
        ((0.00001234,), ["0.00001234"]),
        ((100.0,), ["100"]),
    ],
)
def test_prices_use_the_decimals_they_need(prices: tuple[float, ...], expected: list[str]) -> None:
    assert format_prices(*prices) == expected


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (850, "850 ms"),
        (4_200, "4.2 s"),
        (185_000, "3 min 5 s"),
        (7_500_000, "2 h 5 min"),
        (3_600_000, "1 h"),
        (97_200_000, "1 d 3 h"),
    ],
)
def test_durations(ms: int, text: str) -> None:
    assert format_duration(ms) == text
