"""WeightLimiter and Backoff, with a fake clock and sleep: waits are observed, never waited."""

from __future__ import annotations

import asyncio

import pytest

from detector.clients.backoff import Backoff
from detector.clients.ratelimit import WeightLimiter
from tests.detector.clients.conftest import FakeTime


def limiter(t: FakeTime, budget: float = 100, window_s: float = 60) -> WeightLimiter:
    return WeightLimiter(budget, window_s, clock=t.clock, sleep=t.sleep)


async def test_the_whole_budget_goes_without_waiting(fake_time: FakeTime) -> None:
    lim = limiter(fake_time)
    for _ in range(5):
        assert await lim.acquire(20) == 0
    assert lim.used == 100
    assert fake_time.sleeps == []


async def test_a_request_over_budget_waits_for_the_oldest_to_expire(fake_time: FakeTime) -> None:
    lim = limiter(fake_time)
    await lim.acquire(30)  # t = 0
    fake_time.now += 10
    await lim.acquire(30)  # t = 10
    fake_time.now += 10
    await lim.acquire(30)  # t = 20; 90 used
    assert lim.wait_time(10) == 0
    # 90 + 50 = 140: 40 must expire, i.e. the first two entries (t = 0 and 10) → until t = 70.
    assert lim.wait_time(50) == pytest.approx(50.0)
    assert await lim.acquire(50) == pytest.approx(50.0)
    assert fake_time.sleeps == [pytest.approx(50.0)]
    assert lim.used == 80  # 30 (t = 20) + 50 (t = 70)


async def test_the_window_slides(fake_time: FakeTime) -> None:
    lim = limiter(fake_time)
    await lim.acquire(100)
    fake_time.now += 59.9
    assert lim.wait_time(1) == pytest.approx(0.1)
    fake_time.now += 0.1
    assert lim.used == 0
    assert lim.wait_time(100) == 0


async def test_a_request_heavier_than_the_budget_waits_for_an_empty_window(
    fake_time: FakeTime,
) -> None:
    lim = limiter(fake_time)
    await lim.acquire(1)
    assert lim.wait_time(500) == pytest.approx(60.0)


async def test_observed_usage_counts_as_spent(fake_time: FakeTime) -> None:
    lim = limiter(fake_time)
    await lim.acquire(10)
    lim.observe(95)  # the exchange saw more than we spent: other users of the IP
    assert lim.used == 95
    assert lim.wait_time(10) == pytest.approx(60.0)
    lim.observe(50)  # less than we know of: nothing changes
    assert lim.used == 95


async def test_pause_holds_every_request(fake_time: FakeTime) -> None:
    lim = limiter(fake_time)
    lim.pause(2.0)
    assert lim.wait_time(1) == 2.0
    assert await lim.acquire(1) == 2.0
    assert fake_time.sleeps == [2.0]


async def test_waiters_are_served_in_order(fake_time: FakeTime) -> None:
    lim = limiter(fake_time, budget=10)
    await lim.acquire(10)
    first = asyncio.create_task(lim.acquire(10))
    second = asyncio.create_task(lim.acquire(10))
    assert await first == pytest.approx(60.0)
    assert await second == pytest.approx(60.0)
    assert fake_time.sleeps == [pytest.approx(60.0), pytest.approx(60.0)]


@pytest.mark.parametrize(("budget", "window_s"), [(0, 60), (10, 0), (-1, 1)])
def test_limiter_rejects_bad_settings(budget: float, window_s: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        WeightLimiter(budget, window_s, clock=lambda: 0.0, sleep=asyncio.sleep)


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(0, 0.5), (1, 1.0), (2, 2.0), (5, 16.0), (6, 30.0), (10_000, 30.0)]
)
def test_backoff_ceiling_grows_to_the_cap(attempt: int, ceiling: float) -> None:
    assert Backoff().ceiling(attempt) == ceiling


def test_backoff_full_jitter_draws_below_the_ceiling() -> None:
    draws = iter([0.0, 0.25, 0.999])
    backoff = Backoff(random=lambda: next(draws))
    assert [backoff.delay(3) for _ in range(3)] == [0.0, 1.0, pytest.approx(3.996)]


def test_backoff_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="invalid backoff"):
        Backoff(factor=0.5)
