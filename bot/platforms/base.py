"""What every chat platform offers the app: the :class:`Frontend` protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bot.outbox import Sender
from bot.pacing import Pacer


class Frontend(Sender, Protocol):
    """A chat platform: commands in (between start and stop_receiving), alerts out (send)."""

    after_command: Callable[[], None]
    """Called after each command ran (it may have queued deliveries: wake the outboxes)."""

    pacer: Pacer | None
    """The outbox's pacing windows, shared by the replies of a platform whose limits count them
    with the alerts (Telegram); set by the app before :meth:`start`."""

    @property
    def status(self) -> str:
        """``connected``, ``reconnecting``, ``stopped`` or why it failed, for /status."""
        ...

    async def start(self) -> None:
        """Connect and take commands; raises :class:`~bot.errors.FrontendError` if it cannot."""
        ...

    async def stop_receiving(self) -> None:
        """Take no new commands (running ones still answer); sending keeps working."""
        ...

    async def close(self) -> None:
        """Disconnect and release everything; safe to repeat."""
        ...
