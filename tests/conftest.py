"""Shared test helpers: real recorded exchange payloads from ``tests/fixtures/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import detector

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_path(name: str) -> Path:
    """Path of a fixture file; fails loudly when it does not exist."""
    path = FIXTURES / name
    if not path.is_file():
        raise FileNotFoundError(f"no fixture {name!r} in {FIXTURES}")
    return path


def load_json(name: str) -> Any:
    """A whole-file JSON fixture, decoded."""
    return orjson.loads(fixture_path(name).read_bytes())


def load_jsonl(name: str) -> list[Any]:
    """A JSON Lines fixture, one decoded value per non-empty line."""
    lines = fixture_path(name).read_bytes().splitlines()
    return [orjson.loads(line) for line in lines if line.strip()]


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test an outdated compiled core: Python would run it instead of the sources."""
    stale = detector.stale_core_modules()
    if stale:
        raise pytest.UsageError(
            f"{', '.join(stale)} changed since the compiled core was built: "
            "run `make build` (or `make test`, which rebuilds it)"
        )


def pytest_report_header() -> str:
    return f"arbwatch detector core: {detector.core_build()}"
