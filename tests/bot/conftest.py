"""Fixtures shared by the bot tests: PTB's environment for the loopback fake, a real store file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.store import Store
from tests.bot.fakes.fake_telegram import prepare_ptb_env


@pytest.fixture(autouse=True)
def _ptb_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_PROXY for 127.0.0.1 and PTB_TIMEDELTA (see ``prepare_ptb_env``), for every bot test."""
    prepare_ptb_env(monkeypatch)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the test's SQLite database lives (a real file)."""
    return tmp_path / "arbwatch.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    """A store on a fresh file, closed after the test."""
    with Store(path) as opened:
        yield opened


@pytest.fixture
def console_settings(path: Path) -> Settings:
    """Settings of an app without a chat token (alerts on the console), on BTC and ETH, with
    its database at ``path``; no .env is read."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        symbols=("BTCUSDT", "ETHUSDT"),
        database_path=path,
        telegram_bot_token=None,
    )
