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
    assert pacer.next_slot("alert", False, 0) == 1_010  # the 30th slot is not for alerts
    assert pacer.next_slot("reply", False, 0, reply=True) <= 0  # but a reply may take it
    pacer.record("reply", False, 0)
    assert pacer.next_slot("another reply", False, 0, reply=True) == 1_010
    # A reply still keeps its chat's own window (1 s + 10 %): after an alert to chat 3, it waits.
    assert pacer.next_slot("3", False, 1_050, reply=True) == 1_100


def test_each_send_counts_from_its_own_completion() -> None:
    pacer = Pacer(Limits(global_per_s=2, reply_reserve=0))
    pacer.record("a", False, 0)
    pacer.record("b", False, 0)
    pacer.record("reply", False, 10)  # recorded while the two were in flight
    pacer.settle([("a", False, 40), ("b", False, 300)], 0)
    # The window (2 per 1.03 s) frees when the earlier of the two moved stamps ages out.
    assert pacer.next_slot("c", False, 400, reply=True) == 40 + 1_010
    assert pacer.next_slot("a", False, 400) == 40 + 1_100  # its chat: 1 per (1 s + 10 %)
    assert pacer.next_slot("b", False, 400) == 300 + 1_100
