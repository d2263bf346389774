"""Shared test helpers: real recorded exchange payloads from ``tests/fixtures/``."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Iterator
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


# A test that hangs is stopped by pytest-timeout, whose dump shows threads only. Shortly before,
# every task of a running event loop is printed too: where a coroutine waits is what explains it.
DUMP_BEFORE_TIMEOUT_S = 20.0


def _dump_tasks(nodeid: str) -> None:
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    print(f"\n~~~ {nodeid} still running: its asyncio tasks ~~~", file=sys.stderr)
    for loop in loops:
        if not loop.is_running():
            continue
        for task in asyncio.all_tasks(loop):
            print(f"--- {task!r}", file=sys.stderr)
            task.print_stack(file=sys.stderr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    timeout = float(item.config.getini("timeout") or 0)
    timer = None
    if timeout > DUMP_BEFORE_TIMEOUT_S:
        timer = threading.Timer(timeout - DUMP_BEFORE_TIMEOUT_S, _dump_tasks, (item.nodeid,))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
