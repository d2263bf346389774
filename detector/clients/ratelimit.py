"""WeightLimiter: keeps the request weight of any sliding window under a budget (client side)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable


class WeightLimiter:
    """A sliding-window log of request weights: at most ``budget`` weight in any ``window_s``.

    A sliding window also bounds every fixed window of the same length (Binance counts weight per
    clock minute, Bybit per rolling 5 s), so one design serves both exchanges. Unlike a token
    bucket it allows the whole budget as a burst (a start-up fetching many snapshots), and never
    more. ``observe`` folds in the weight the exchange says was used (other processes on the same
    IP count too); ``pause`` holds every request back (after a 429, for ``Retry-After``).

    The clock and the sleep are injected: tests observe the waits without waiting.
    """

    def __init__(
        self,
        budget: float,
        window_s: float,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        if budget <= 0 or window_s <= 0:
            raise ValueError(f"budget and window must be > 0, got {budget} per {window_s} s")
        self.budget = budget
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._log: deque[tuple[float, float]] = deque()  # (time, weight), oldest first
        self._used = 0.0  # sum of the weights in _log
        self._paused_until = 0.0
        self._lock = asyncio.Lock()  # one waiter at a time: requests go out in arrival order

    @property
    def used(self) -> float:
        """Weight used in the window ending now."""
        self._expire(self._clock())
        return self._used

    def wait_time(self, weight: float) -> float:
        """Seconds before a request of ``weight`` may go out (0 when it may go now)."""
        now = self._clock()
        self._expire(now)
        weight = min(weight, self.budget)  # heavier than the budget: wait for an empty window
        wait = self._paused_until - now
        excess = self._used + weight - self.budget
        if excess > 0:
            for t, w in self._log:
                excess -= w
                if excess <= 0:
                    wait = max(wait, t + self.window_s - now)
                    break
        return max(0.0, wait)

    async def acquire(self, weight: float) -> float:
        """Wait until ``weight`` fits in the budget, then spend it; returns the seconds waited."""
        async with self._lock:
            wait = self.wait_time(weight)
            if wait > 0:
                # One sleep is enough: the lock keeps other requests from spending meanwhile.
                await self._sleep(wait)
            self._spend(self._clock(), min(weight, self.budget))
            return wait

    def observe(self, used: float) -> None:
        """The exchange reports ``used`` weight in its current window (X-MBX-USED-WEIGHT-1M).

        Weight we did not spend ourselves is logged as spent now, so the limiter slows down when
        the IP is close to the limit. Kept a whole window: conservative, since Binance's fixed
        minute resets sooner.
        """
        now = self._clock()
        self._expire(now)
        if used > self._used:
            self._spend(now, used - self._used)

    def pause(self, seconds: float) -> None:
        """Hold back every request for ``seconds`` from now."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _spend(self, now: float, weight: float) -> None:
        self._log.append((now, weight))
        self._used += weight

    def _expire(self, now: float) -> None:
        log = self._log
        horizon = now - self.window_s
        while log and log[0][0] <= horizon:
            self._used -= log.popleft()[1]
        if not log:
            self._used = 0.0  # no float drift once the window is empty
