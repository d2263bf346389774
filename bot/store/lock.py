"""One arbwatch per database file: an OS lock on ``<database>.lock`` that the kernel releases.

``flock`` on a file beside the database is held for the process's whole life and let go by the
kernel the moment the process ends, however it ends (``kill -9`` included): a restart after a
crash starts at once, and while a process is alive nobody else can take the file. The lock file
names its holder (host, pid) so a refusal can say who runs. POSIX systems only (Linux, macOS).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bot.errors import AlreadyRunning, StoreError


class InstanceLock:
    """The exclusive claim of one process on a database file (see module doc)."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self, owner: str) -> None:
        """Take the lock for ``owner``; raises :class:`AlreadyRunning` naming the holder."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(self.path, f"cannot open the lock file: {exc.strerror}") from exc
        try:
            # Per open file description: a second open of the same file, even in this process,
            # is refused too.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(self.database, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner.encode() + b"\n", 0)
        self._fd = fd

    def release(self) -> None:
        """Let go (the file stays: deleting it would race with the next process's open)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None
