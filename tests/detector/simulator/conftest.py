"""Recordings of the registered scenarios, generated once per test session."""

from __future__ import annotations

import pytest

from detector.recording import Record
from detector.simulator.session import generate_records


@pytest.fixture(scope="session")
def showcase() -> list[Record]:
    return list(generate_records("showcase"))


@pytest.fixture(scope="session")
def faults() -> list[Record]:
    return list(generate_records("faults"))


@pytest.fixture(scope="session")
def arbitrage() -> list[Record]:
    return list(generate_records("arbitrage"))


@pytest.fixture(scope="session")
def calm() -> list[Record]:
    return list(generate_records("calm", duration_s=150))


@pytest.fixture(scope="session")
def three_symbols() -> list[Record]:
    """A short calm market on every supported symbol, for per-instrument wire formats."""
    return list(generate_records("calm", symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT"), duration_s=8))
