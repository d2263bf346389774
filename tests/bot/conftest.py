"""Fixtures shared by the bot tests: python-telegram-bot's environment for the loopback fake."""

from __future__ import annotations

import pytest

from tests.bot.fake_telegram import prepare_ptb_env


@pytest.fixture(autouse=True)
def _ptb_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_PROXY for 127.0.0.1 and PTB_TIMEDELTA (see ``prepare_ptb_env``), for every bot test."""
    prepare_ptb_env(monkeypatch)
