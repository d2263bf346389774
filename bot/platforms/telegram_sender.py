"""Everything arbwatch sends on Telegram: the outbox's alerts and edits, and command replies.

:class:`TelegramSender` is the outbox's :class:`~bot.outbox.Sender` for Telegram: it turns PTB's
errors into the bot's send errors (RetryAfter → FloodLimited, Forbidden → Blocked, BadRequest →
PermanentSendError, network and server errors → TransientSendError). Command replies take a
slot in the outbox's own pacing windows first (``pacer``), so they go before queued alerts and
never trip a flood limit; each reply message is retried on its own, never dropped in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial
from typing import TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.commands import CAPTION_LIMIT, Chart, Reply
from bot.errors import Blocked, FloodLimited, PermanentSendError, TransientSendError
from bot.messages import (
    Button,
    Text,
    alert_buttons,
    format_alert,
    format_broadcast,
    format_digest,
    line,
    telegram_messages,
    text_length,
)
from bot.pacing import Pacer
from bot.store import DueDelivery, DueEdit

log = logging.getLogger(__name__)

_T = TypeVar("_T")
REPLY_ATTEMPTS = 3
"""Tries of one reply message before it is logged as lost."""
CHART_FAILED: Text = (line("⚠️ The chart could not be sent; please try again later."),)


def _chat_id(chat_id: str) -> int | str:
    """Store chat ids are text; Telegram wants an integer (or an @channel name)."""
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


def _keyboard(buttons: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in buttons]
    )


def _seconds(value: dtm.timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def telegram_caption(text: str) -> str:
    """``text`` within Telegram's photo caption limit (UTF-16 units), cut with "…" if longer."""
    if text_length(text) <= CAPTION_LIMIT:
        return text
    cut = CAPTION_LIMIT - 1  # code points; each is one or two UTF-16 units
    while text_length(text[:cut]) > CAPTION_LIMIT - 1:
        cut -= 1
    return text[:cut] + "…"


class TelegramSender:
    """Alerts, edits and replies to Telegram chats through one PTB ``Bot`` (see module doc)."""

    def __init__(self, bot: Bot, clock: Callable[[], int], redact: Callable[[str], str]) -> None:
        self.bot = bot
        self.clock = clock
        self._redact = redact  # the token out of every message we pass on
        self.pacer: Pacer | None = None  # the outbox's, set by the app: replies share it

    def _describe(self, exc: TelegramError) -> str:
        return self._redact(f"{type(exc).__name__}: {exc.message}")

    async def reply(self, chat_id: str, reply: Reply) -> None:
        """Answer a command: the text, then the chart as a photo, if any; never raises.

        Each message takes a reply slot in the outbox's pacing windows (:meth:`_as_reply`), so
        it goes before queued alerts and never trips a flood limit. A chart that cannot be sent
        is answered with a line saying so; a reply whose text failed gets no chart. A reply
        that cannot be sent at all is logged as lost, never dropped in silence.
        """
        try:
            await self._send_text(chat_id, reply.lines, reply.buttons, reply.silent, as_reply=True)
        except TelegramError as exc:
            log.error("telegram: a reply to %s was lost: %s", chat_id, self._describe(exc))
            return
        image = reply.image
        if image is None:
            return
        try:
            await self._as_reply(chat_id, partial(self._send_photo, chat_id, image, reply.silent))
        except TelegramError as exc:
            log.warning("telegram: chart failed: %s", self._describe(exc))
            try:
                await self._send_text(chat_id, CHART_FAILED, (), reply.silent, as_reply=True)
            except TelegramError as again:
                log.error("telegram: a reply to %s was lost: %s", chat_id, self._describe(again))

    async def _as_reply(self, chat_id: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """One reply message, in its pacing slot; 429s and network errors are retried.

        Up to :data:`REPLY_ATTEMPTS` attempts: a 429 pauses the chat in the shared windows (the
        alerts to it wait too), a network error backs off a second per attempt.
        """
        is_group = chat_id.startswith("-")
        for attempt in range(1, REPLY_ATTEMPTS + 1):
            taken = await self._reply_slot(chat_id, is_group)
            try:
                return await call()
            except RetryAfter as exc:
                wait_s = _seconds(exc.retry_after)
                if attempt == REPLY_ATTEMPTS:
                    raise
                if self.pacer is None:
                    await asyncio.sleep(wait_s)
                else:  # the next slot comes after the pause
                    self.pacer.pause(chat_id, is_group, self.clock() + round(wait_s * 1000))
            except BadRequest:
                raise  # the message itself was refused: sending it again cannot help
            except NetworkError:
                if attempt == REPLY_ATTEMPTS:
                    raise
                await asyncio.sleep(attempt)
            finally:
                # Counted from its completion, as the outbox's sends are: never earlier than
                # the platform saw it, so the shared windows never hold more than it allows.
                if self.pacer is not None and taken is not None:
                    self.pacer.settle([(chat_id, is_group, self.clock())], taken)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _reply_slot(self, chat_id: str, is_group: bool) -> int | None:
        """Wait for, and take, a reply slot in the outbox's windows; returns when it was taken
        (None: no windows set, go at once)."""
        pacer = self.pacer
        if pacer is None:
            return None
        while True:  # the slot is a time, not an event: sleep until it, then look again
            now = self.clock()
            slot = pacer.next_slot(chat_id, is_group, now, reply=True)
            if slot <= now:
                pacer.record(chat_id, is_group, now)
                return now
            await asyncio.sleep((slot - now) / 1000)

    async def send(self, delivery: DueDelivery) -> str | None:
        """The outbox's Sender: one alert, digest or broadcast to one chat; returns its id."""
        routed = delivery.channel_id  # a channel the user administers, set with /alerts
        if delivery.signal is not None:
            text = format_alert(delivery.signal, self.clock())
            # A channel's readers are not the subscriber: no buttons that would act for them.
            buttons = () if routed else alert_buttons(delivery.signal)
        elif delivery.digest is not None:
            d = delivery.digest
            text, buttons = format_digest(d.from_ms, d.to_ms, d.signals, d.caught), ()
        else:
            text, buttons = format_broadcast(delivery.broadcast_text or ""), ()
        target = routed or delivery.chat_id
        with self._send_errors(target):
            sent = await self._send_text(target, text, buttons, delivery.silent)
        if sent is None:
            return None
        # In a channel, the edit needs to know where: "channel:message", as on Discord.
        return f"{routed}:{sent.message_id}" if routed else str(sent.message_id)

    async def edit(self, edit: DueEdit) -> None:
        """The outbox's closing edit: the alert as sent, plus how its opportunity ended."""
        text = format_alert(
            edit.signal,
            edit.sent_ms,  # the age it showed when it was sent
            closed_after_ms=edit.closed_after_ms,
            peak_net_pct=edit.peak_net_pct,
        )
        channel, _, message_id = edit.message_id.rpartition(":")
        chat = channel or edit.chat_id
        with self._send_errors(chat):
            try:
                await self.bot.edit_message_text(
                    telegram_messages(text)[0],  # an alert is far below 4096 characters
                    chat_id=_chat_id(chat),
                    message_id=int(message_id),
                    parse_mode=ParseMode.HTML,
                    reply_markup=None if channel else _keyboard(alert_buttons(edit.signal)),
                )
            except BadRequest as exc:
                if "not modified" not in exc.message:  # else: a retry whose answer was lost
                    raise

    @contextlib.contextmanager
    def _send_errors(self, chat_id: str) -> Iterator[None]:
        """PTB's errors as the outbox's :class:`~bot.errors.SendError` subclasses."""
        try:
            yield
        except RetryAfter as exc:
            raise FloodLimited(_seconds(exc.retry_after), chat_id) from exc
        except Forbidden as exc:
            raise Blocked(self._redact(exc.message)) from exc
        except BadRequest as exc:  # before NetworkError: PTB derives BadRequest from it
            raise PermanentSendError(self._redact(exc.message)) from exc
        except TelegramError as exc:  # NetworkError, TimedOut, 5xx, Conflict, ...
            raise TransientSendError(self._describe(exc)) from exc

    async def _send_text(
        self,
        chat_id: str,
        text: Text,
        buttons: Sequence[Sequence[Button]],
        silent: bool,
        *,
        as_reply: bool = False,
    ) -> Message | None:
        """Send ``text`` in chunks of at most 4096 characters; buttons go under the last one.

        ``as_reply``: each chunk paced and retried on its own (:meth:`_as_reply`), so a retry
        never repeats a chunk that already arrived.
        """
        chunks = telegram_messages(text)
        first: Message | None = None
        for n, chunk in enumerate(chunks):
            call = partial(
                self.bot.send_message,
                chat_id=_chat_id(chat_id),
                text=chunk,
                parse_mode=ParseMode.HTML,
                disable_notification=silent,
                reply_markup=_keyboard(buttons) if n == len(chunks) - 1 else None,
            )
            message = await (self._as_reply(chat_id, call) if as_reply else call())
            first = first or message
        return first

    async def _send_photo(self, chat_id: str, chart: Chart, silent: bool) -> Message:
        """The chart as a photo; its caption is plain text (no parse mode)."""
        message: Message = await self.bot.send_photo(
            chat_id=_chat_id(chat_id),
            photo=InputFile(chart.png, filename=chart.filename),
            caption=telegram_caption(chart.caption),
            disable_notification=silent,
        )
        return message
