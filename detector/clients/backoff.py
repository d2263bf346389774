"""Backoff: exponential delays with full jitter between retries and reconnects."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before attempt ``n`` (0-based): uniform in ``[0, min(max_s, initial_s * factor**n)]``.

    Full jitter ("Exponential Backoff And Jitter", AWS architecture blog) spreads the reconnects of
    many clients after a shared outage. ``random`` and ``sleep`` are injectable so that tests
    neither wait nor depend on chance.
    """

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    random: Callable[[], float] = field(default=random.random, repr=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.initial_s < 0 or self.max_s < 0 or self.factor < 1:
            raise ValueError(f"invalid backoff {self!r}: need delays >= 0 and factor >= 1")

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt ``attempt`` may draw."""
        # Cap the exponent: factor**attempt overflows a float long before any real retry count.
        return min(self.max_s, self.initial_s * self.factor ** min(attempt, 64))

    def delay(self, attempt: int) -> float:
        """A jittered delay for attempt ``attempt`` (0 for the first retry after a success)."""
        return self.random() * self.ceiling(attempt)
