"""The pacing windows: per chat and overall, and the pauses a 429 asks for (pure, times in ms)."""

from __future__ import annotations

import pytest

from bot.pacing import Limits, Pacer


@pytest.mark.parametrize(
    ("sends", "at_ms", "expected_slot"),
    [
        (0, 0, 0),  # fresh chat: now
        (19, 1_000, 0),  # 19 in the window: one more fits
        (20, 1_000, 66_000),  # 20 per (60 s + 10 %): the 21st waits for the first to age out
    ],
)
def test_a_group_gets_at_most_20_messages_a_minute(
    sends: int, at_ms: int, expected_slot: int
) -> None:
    pacer = Pacer(Limits(global_per_s=1_000))
    for _ in range(sends):
        pacer.record("-5", True, 0)
    assert max(0, pacer.next_slot("-5", True, at_ms)) == expected_slot


def test_a_pause_holds_only_its_chat() -> None:
    pacer = Pacer()
    pacer.pause("1", False, 5_000)
    assert pacer.next_slot("1", False, 0) == 5_000
    assert pacer.next_slot("2", False, 0) == 0
    pacer.pause(None, False, 7_000)
    assert pacer.next_slot("2", False, 0) == 7_000
