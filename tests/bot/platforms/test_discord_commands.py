"""The pure parts of the slash commands: autocomplete matching and threshold text."""

from __future__ import annotations

import pytest

from bot.platforms.discord_commands import AUTOCOMPLETE_LIMIT, _matching, _number


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("", ["ALL", "BTCUSDT", "ETHUSDT", "SOLUSDT"]),
        ("eth", ["ETHUSDT"]),
        ("usdt", ["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
        ("s", ["SOLUSDT", "BTCUSDT", "ETHUSDT"]),  # prefix matches first
        ("xrp", []),
    ],
)
def test_matching_prefers_prefixes_and_keeps_order(typed: str, expected: list[str]) -> None:
    options = ["ALL", "BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert [c.value for c in _matching(options, typed)] == expected


def test_matching_offers_at_most_discords_limit() -> None:
    options = [f"C{n:03d}USDT" for n in range(40)]
    assert len(_matching(options, "usdt")) == AUTOCOMPLETE_LIMIT


def test_matching_over_the_whole_market() -> None:
    market = ["ALL", *(f"COIN{n:04d}USDT" for n in range(2000)), "1000PEPEUSDT", "PEPE1000USDT"]
    found = [c.value for c in _matching(market, "pepe")]
    assert found == ["PEPE1000USDT", "1000PEPEUSDT"]  # the prefix match first
    found = [c.value for c in _matching(market, "coin1")]
    assert found == [f"COIN{n:04d}USDT" for n in range(1000, 1000 + AUTOCOMPLETE_LIMIT)]


@pytest.mark.parametrize(
    ("value", "text"), [(0.15, "0.15"), (0.001, "0.001"), (100.0, "100"), (1e-6, "0.000001")]
)
def test_thresholds_never_use_exponent_notation(value: float, text: str) -> None:
    assert _number(value) == text
