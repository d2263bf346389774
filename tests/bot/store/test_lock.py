"""The instance lock on a real file: one process per database, free the moment its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import AlreadyRunning
from bot.store import InstanceLock, Store
from tests.bot.factories import T0

HOLD = """
import sys, time
from pathlib import Path
from bot.store import InstanceLock
InstanceLock(Path(sys.argv[1])).acquire("other-host:4242:cafe")
print("locked", flush=True)
time.sleep(120)
"""


def test_one_holder_at_a_time_even_in_one_process(path: Path) -> None:
    first, second = InstanceLock(path), InstanceLock(path)
    first.acquire("a")
    with pytest.raises(AlreadyRunning) as caught:
        second.acquire("b")
    assert caught.value.holder == "a" and caught.value.database == path
    first.release()
    second.acquire("b")  # free again
    assert second.held and not first.held
    second.release()


def test_a_process_killed_with_sigkill_frees_the_file_at_once(path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            mine = InstanceLock(path)
            with pytest.raises(AlreadyRunning, match="other-host:4242:cafe"):
                mine.acquire("me")
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=30)
            mine.acquire("me")  # no TTL to wait out: the kernel released it with the process
            assert mine.held
            mine.release()
        finally:
            if holder.poll() is None:
                holder.kill()


def test_the_lock_holder_takes_over_what_dead_processes_leased(store: Store) -> None:
    assert store.leases.acquire("outbox:telegram", "dead:1", T0, 60_000)
    assert store.leases.acquire("outbox:discord", "dead:1", T0, 60_000)
    assert not store.leases.acquire("outbox:telegram", "alive:2", T0 + 1, 60_000)
    assert store.leases.take_over() == 2
    assert store.leases.acquire("outbox:telegram", "alive:2", T0 + 1, 60_000)
