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


def test_replies_keep_a_slot_that_alerts_cannot_take() -> None:
    pacer = Pacer(Limits(global_per_s=30, reply_reserve=1))
    for n in range(29):
        assert pacer.next_slot(str(n), False, 0) <= 0
        pacer.record(str(n), False, 0)
    assert pacer.next_slot("alert", False, 0) == 1_100  # the 30th slot is not for alerts
    assert pacer.next_slot("reply", False, 0, reply=True) <= 0  # but a reply may take it
    pacer.record("reply", False, 0)
    assert pacer.next_slot("another reply", False, 0, reply=True) == 1_100
    # A reply still keeps its chat's own window: after an alert to chat 3, it waits.
    assert pacer.next_slot("3", False, 500, reply=True) == 1_100
