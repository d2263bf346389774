"""Pacing windows: how many messages a platform accepts, per chat and overall (pure).

A :class:`Pacer` keeps a sliding window for every chat and one for the bot as a whole; the
outbox asks it when a send to a chat fits (:meth:`Pacer.next_slot`), records each send, and
pauses a chat (or everything) for a 429's ``retry_after``. Command replies share the same
windows with priority: ``reply_reserve`` slots of the global window are theirs alone, so a
reply never waits behind a burst of alerts. Times are passed in, in ms.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from bot.store import Platform


@dataclass(frozen=True, slots=True)
class Limits:
    """The platform's flood limits, kept with a safety ``margin`` (clock and network jitter)."""

    global_per_s: float = 30.0
    private_per_s: float = 1.0
    group_per_min: float = 20.0
    margin: float = 0.1  # a chat's window 10 % longer than the platform's (clock jitter)
    # The global window needs less: every send counts from its completion, which is after
    # the platform saw it, so a window never holds more than the platform's.
    global_margin: float = 0.01
    reply_reserve: int = 1  # global slots per window kept for command replies


TELEGRAM_LIMITS = Limits()
# Discord: 50 requests/s per bot; a DM or channel takes about 5 messages per 5 s. discord.py
# also waits out the per-route buckets itself; pacing keeps us clear of them in the first place.
DISCORD_LIMITS = Limits(global_per_s=40.0, private_per_s=1.0, group_per_min=50.0)
LIMITS = {Platform.TELEGRAM: TELEGRAM_LIMITS, Platform.DISCORD: DISCORD_LIMITS}


class _Window:
    """At most ``capacity`` sends in any sliding ``period_ms``."""

    __slots__ = ("capacity", "paused_until", "period_ms", "stamps")

    def __init__(self, capacity: int, period_ms: int) -> None:
        self.capacity = capacity
        self.period_ms = period_ms
        self.stamps: deque[int] = deque()
        self.paused_until = 0

    def next_slot(self, now_ms: int, capacity: int | None = None) -> int:
        """The earliest time (ms) one more send fits (in ``capacity``, if less than the
        window's); ``<= now_ms`` means now."""
        while self.stamps and self.stamps[0] <= now_ms - self.period_ms:
            self.stamps.popleft()
        slot = self.paused_until
        room = self.capacity if capacity is None else capacity
        if len(self.stamps) >= room:
            slot = max(slot, self.stamps[-room] + self.period_ms)
        return slot

    def restamp(self, old_ms: int, new_ms: list[int]) -> None:
        """Move ``len(new_ms)`` sends counted at ``old_ms`` to the times ``new_ms``.

        Sends recorded since (a reply, say) may stand after them; the stamps stay in order.
        """
        stamps = sorted(self.stamps)
        for new in new_ms:
            try:
                stamps.remove(old_ms)
            except ValueError:
                break  # aged out of the window meanwhile: nothing left to move
            stamps.append(new)
        stamps.sort()
        self.stamps = deque(stamps)

    def idle(self, now_ms: int) -> bool:
        return self.paused_until <= now_ms and (
            not self.stamps or self.stamps[-1] <= now_ms - self.period_ms
        )


class Pacer:
    """Per-chat and global send windows (pure: times are passed in, in ms)."""

    def __init__(self, limits: Limits = TELEGRAM_LIMITS) -> None:
        stretch = 1.0 + limits.margin
        self.limits = limits
        global_period = round(1000 * (1.0 + limits.global_margin))
        self._global = _Window(max(1, int(limits.global_per_s)), global_period)
        self._private = (1, round(1000 / limits.private_per_s * stretch))
        self._group = (max(1, int(limits.group_per_min)), round(60_000 * stretch))
        self._chats: dict[str, _Window] = {}
        self._recorded = 0
        self._alert_room = max(1, self._global.capacity - limits.reply_reserve)
        self.horizon_ms = max(self._global.period_ms, self._private[1], self._group[1])
        """How far back a send still counts against some window."""

    def _chat(self, chat_id: str, is_group: bool) -> _Window:
        window = self._chats.get(chat_id)
        if window is None:
            capacity, period = self._group if is_group else self._private
            window = self._chats[chat_id] = _Window(capacity, period)
        return window

    def next_slot(self, chat_id: str, is_group: bool, now_ms: int, *, reply: bool = False) -> int:
        """When a send to ``chat_id`` fits both its chat's window and the global one.

        Alerts leave the global window's last ``reply_reserve`` slots to command replies.
        """
        window = self._chats.get(chat_id)
        chat_slot = 0 if window is None else window.next_slot(now_ms)
        room = None if reply else self._alert_room
        return max(chat_slot, self._global.next_slot(now_ms, room))

    def record(self, chat_id: str, is_group: bool, now_ms: int) -> None:
        self._chat(chat_id, is_group).stamps.append(now_ms)
        self._global.stamps.append(now_ms)
        self._recorded += 1
        if self._recorded % 1000 == 0:  # forget quiet chats, so memory follows active ones
            self._chats = {c: w for c, w in self._chats.items() if not w.idle(now_ms)}

    def settle(self, sends: list[tuple[str, bool, int]], started_ms: int) -> None:
        """Sends recorded at ``started_ms`` completed at their own times: count each from then.

        ``sends`` holds (chat, is_group, done_ms). The platform saw each one somewhere in
        between; counting from its completion makes the next slot safe whatever the latency (a
        slow send never leads to a 429 in the next window), and counting from each one's own
        completion, not the batch's slowest, keeps the rate near the limit.
        """
        moved = [done for _, _, done in sends if done > started_ms]
        if not moved:
            return
        for chat_id, is_group, done_ms in sends:
            if done_ms > started_ms:
                self._chat(chat_id, is_group).restamp(started_ms, [done_ms])
        self._global.restamp(started_ms, moved)

    def pause(self, chat_id: str | None, is_group: bool, until_ms: int) -> None:
        """Nothing to ``chat_id`` (None: to anyone) before ``until_ms`` (a 429's retry_after)."""
        window = self._global if chat_id is None else self._chat(chat_id, is_group)
        window.paused_until = max(window.paused_until, until_ms)
