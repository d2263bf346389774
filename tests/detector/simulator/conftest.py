"""Recordings of the registered scenarios, generated once per test session."""

from __future__ import annotations

import pytest

from detector.models import Exchange
from detector.recording import Record
from detector.simulator.session import generate_records

ALL_VENUES = tuple(Exchange)


@pytest.fixture(scope="session")
def showcase() -> list[Record]:
    """``showcase`` on Binance and Bybit, as the shipped sample records it."""
    return list(generate_records("showcase", venues=(Exchange.BINANCE, Exchange.BYBIT)))


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


@pytest.fixture(scope="session")
def okx_faults() -> list[Record]:
    """``faults`` with its OKX events, recorded on every venue."""
    return list(generate_records("faults", venues=ALL_VENUES))


@pytest.fixture(scope="session")
def okx_showcase() -> list[Record]:
    """``showcase`` with its OKX events, recorded on every venue."""
    return list(generate_records("showcase", venues=ALL_VENUES))


@pytest.fixture(scope="session")
def okx_arbitrage() -> list[Record]:
    return list(generate_records("arbitrage", venues=ALL_VENUES))


@pytest.fixture(scope="session")
def okx_three_symbols() -> list[Record]:
    """A short calm market on every venue and every supported symbol."""
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    return list(generate_records("calm", symbols=symbols, duration_s=8, venues=ALL_VENUES))
