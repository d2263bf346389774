"""The Telegram frontend: python-telegram-bot inside arbwatch's event loop, and the outbox sender.

Every command (and every button press, whose callback data is a command) goes to the
platform-neutral :class:`~bot.commands.CommandHandler` in a worker thread (it may render a
chart); its :class:`~bot.commands.Reply` is rendered to Telegram HTML and split at 4096
characters, and its chart, if any, follows as a photo. :meth:`TelegramFrontend.send` is the
outbox's :class:`~bot.outbox.Sender`: it turns PTB's errors into the bot's send errors
(RetryAfter → FloodLimited, Forbidden → Blocked, BadRequest → PermanentSendError, network and
server errors → TransientSendError). The bot token is a secret: it is in every Bot API URL, so
the loggers that print URLs (httpx, PTB's bot) are kept at WARNING and no URL is ever logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    Chat,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.commands import CAPTION_LIMIT, COMMANDS, Chart, CommandHandler, Reply
from bot.config import Settings
from bot.errors import Blocked, FloodLimited, FrontendError, PermanentSendError, TransientSendError
from bot.messages import (
    Button,
    Text,
    alert_buttons,
    format_alert,
    format_broadcast,
    line,
    telegram_messages,
    text_length,
)
from bot.pacing import Pacer
from bot.store import DueDelivery, DueEdit, Platform

log = logging.getLogger(__name__)

POLL_TIMEOUT_S = 30.0  # long-poll of getUpdates (Telegram holds it until an update arrives)
# Their INFO/DEBUG lines carry URLs, hence the token (PTB's bots log "Set Bot API URL: ..."
# at DEBUG): kept at WARNING whatever the root level.
_QUIET_LOGGERS = ("httpx", "httpcore", "telegram.Bot", "telegram.ext.ExtBot")

TelegramApp = Application[Any, Any, Any, Any, Any, Any]
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


class TelegramFrontend:
    """The Telegram bot: commands in, replies and alerts out (see module doc)."""

    platform = Platform.TELEGRAM

    def __init__(
        self,
        settings: Settings,
        handler: CommandHandler,
        *,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
        after_command: Callable[[], None] = lambda: None,
        poll_timeout_s: float = POLL_TIMEOUT_S,
    ) -> None:
        if settings.telegram_bot_token is None:
            raise ValueError("TelegramFrontend needs TELEGRAM_BOT_TOKEN")
        # PTB 22 reports retry_after as a timedelta with this opt-in (and warns without it).
        os.environ.setdefault("PTB_TIMEDELTA", "true")
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        self._token = settings.telegram_bot_token.get_secret_value()
        self.handler = handler
        self.clock = clock
        self.after_command = after_command
        self.pacer: Pacer | None = None  # the outbox's, set by the app: replies share it
        self.poll_timeout_s = poll_timeout_s
        self.polling_errors = 0
        self.app: TelegramApp = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(settings.telegram_base_url())
            # No PTB rate limiter: after a 429 its AIORateLimiter halts every chat; the outbox
            # paces per chat and overall, and pauses only the chat that was limited.
            .build()
        )
        self.app.add_handler(MessageHandler(filters.COMMAND, self._on_command))
        self.app.add_handler(
            MessageHandler(
                filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE, self._on_command
            )
        )
        self.app.add_handler(CallbackQueryHandler(self._on_button))
        self._open = False  # initialized and not yet shut down
        self._lifecycle = asyncio.Lock()  # stop_receiving and close, one at a time

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """getMe, the commands menu, then long polling; all inside the running event loop."""
        app = self.app
        assert app.updater is not None
        try:
            await app.initialize()
        except BaseException as exc:
            # A failed initialize leaves the bot's HTTP clients open; shutdown() would skip them.
            await app.bot.shutdown()
            if isinstance(exc, TelegramError):  # InvalidToken, NetworkError: say so plainly
                # "from None": PTB's InvalidToken quotes the token; no traceback may show it.
                raise FrontendError("telegram", self._describe(exc)) from None
            raise
        self._open = True
        try:
            await app.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
            await app.start()
            await app.updater.start_polling(
                poll_interval=0,
                timeout=dtm.timedelta(seconds=self.poll_timeout_s),
                error_callback=self._polling_error,
            )
        except BaseException as exc:
            await self.close()
            if isinstance(exc, TelegramError):
                raise FrontendError("telegram", self._describe(exc)) from None
            raise
        log.info("telegram: polling as @%s", app.bot.username)

    @property
    def status(self) -> str:
        """``connected`` while polling (with the count of failed polls, which PTB retries)."""
        updater = self.app.updater
        if not self._open or updater is None or not updater.running:
            return "stopped"
        errors = self.polling_errors
        return f"connected ({errors} failed polls, retrying)" if errors else "connected"

    async def stop(self) -> None:
        """:meth:`stop_receiving`, then :meth:`close`; safe to repeat."""
        await self.stop_receiving()
        await self.close()

    async def stop_receiving(self) -> None:
        """Stop polling: no more commands are fetched; safe to repeat, and before :meth:`start`.

        PTB's ``updater.stop`` confirms the updates already fetched with one last getUpdates;
        commands already fetched are still answered. Sending (:meth:`send`, :meth:`reply`) keeps
        working until :meth:`close`, so the outbox can flush in between.
        """
        updater = self.app.updater
        assert updater is not None
        async with self._lifecycle:
            if updater.running:
                await updater.stop()

    async def close(self) -> None:
        """Stop the application (finishing commands in progress) and shut it down, closing the
        bot's HTTP clients; polling is stopped first if it still runs. Safe to repeat."""
        await self.stop_receiving()
        app = self.app
        async with self._lifecycle:
            if not self._open:
                return
            self._open = False
            try:
                if app.running:
                    await app.stop()
            finally:
                await app.shutdown()

    def _redact(self, text: str) -> str:
        """PTB quotes the token in some messages (InvalidToken): never pass it on."""
        return text.replace(self._token, "<TELEGRAM_BOT_TOKEN>")

    def _describe(self, exc: TelegramError) -> str:
        return self._redact(f"{type(exc).__name__}: {exc.message}")

    def _polling_error(self, exc: TelegramError) -> None:
        # A plain function: PTB calls it without awaiting. PTB retries polling by itself.
        self.polling_errors += 1
        log.warning("telegram: polling failed: %s", self._describe(exc))

    # -- incoming -------------------------------------------------------------------------------

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.text is None:
            return
        if not self._addressed_to_us(message.text):
            return  # "/subscribe@otherbot ...": another bot's command in a shared group
        await self._run(update, message.text)

    def _addressed_to_us(self, text: str) -> bool:
        """A command with no ``@bot`` suffix, or with ours (Telegram's rule for groups)."""
        head = text.split(maxsplit=1)[0] if text.strip() else ""
        _, at, addressee = head.partition("@")
        username = self.app.bot.username or ""
        return not at or addressee.lower() == username.lower()

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        await query.answer()
        if query.data:
            await self._run(update, query.data)

    async def _run(self, update: Update, text: str) -> None:
        chat, user = update.effective_chat, update.effective_user
        if chat is None:
            return
        name = user.full_name if user is not None else (chat.title or "")
        is_group = chat.type != chat.PRIVATE
        ctx = self.handler.context(
            Platform.TELEGRAM,
            str(chat.id),
            str(user.id if user is not None else chat.id),
            name,
            self.clock(),
            is_group=is_group,
            may_manage_chat=is_group and await self._administers(chat, update),
            chat_title=chat.title if is_group else None,
        )
        # The store commits before the reply goes out; a worker thread keeps the loop free.
        reply = await asyncio.to_thread(self.handler.handle, text, ctx)
        self.after_command()  # e.g. a /broadcast queued deliveries: wake the outbox
        await self.reply(str(chat.id), reply)

    async def _administers(self, chat: Chat, update: Update) -> bool:
        """Whether the sender is the group's creator or one of its administrators.

        An anonymous administrator writes as the group itself (``sender_chat``). When Telegram
        cannot say (a network error), the answer is no: a group's settings stay as they are.
        """
        message = update.effective_message
        if message is not None and message.sender_chat is not None:
            return message.sender_chat.id == chat.id
        user = update.effective_user
        if user is None:
            return False
        try:
            member = await self.app.bot.get_chat_member(chat.id, user.id)
        except TelegramError as exc:
            log.warning("telegram: cannot check the group's administrators: %s", exc.message)
            return False
        return member.status in (ChatMember.OWNER, ChatMember.ADMINISTRATOR)

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
            await self._reply_slot(chat_id, is_group)
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
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _reply_slot(self, chat_id: str, is_group: bool) -> None:
        """Wait for, and take, a reply slot in the outbox's windows (none set: go at once)."""
        pacer = self.pacer
        if pacer is None:
            return
        while True:  # the slot is a time, not an event: sleep until it, then look again
            now = self.clock()
            slot = pacer.next_slot(chat_id, is_group, now, reply=True)
            if slot <= now:
                pacer.record(chat_id, is_group, now)
                return
            await asyncio.sleep((slot - now) / 1000)

    # -- outgoing -------------------------------------------------------------------------------

    async def send(self, delivery: DueDelivery) -> str | None:
        """The outbox's Sender: one alert or broadcast to one chat; returns the message id."""
        if delivery.signal is not None:
            text = format_alert(delivery.signal, self.clock())
            buttons = alert_buttons(delivery.signal)
        else:
            text, buttons = format_broadcast(delivery.broadcast_text or ""), ()
        with self._send_errors(delivery.chat_id):
            sent = await self._send_text(delivery.chat_id, text, buttons, delivery.silent)
        return None if sent is None else str(sent.message_id)

    async def edit(self, edit: DueEdit) -> None:
        """The outbox's closing edit: the alert as sent, plus how its opportunity ended."""
        text = format_alert(
            edit.signal,
            edit.sent_ms,  # the age it showed when it was sent
            closed_after_ms=edit.closed_after_ms,
            peak_net_pct=edit.peak_net_pct,
        )
        with self._send_errors(edit.chat_id):
            try:
                await self.app.bot.edit_message_text(
                    telegram_messages(text)[0],  # an alert is far below 4096 characters
                    chat_id=_chat_id(edit.chat_id),
                    message_id=int(edit.message_id),
                    parse_mode=ParseMode.HTML,
                    reply_markup=_keyboard(alert_buttons(edit.signal)),
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
                self.app.bot.send_message,
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
        message: Message = await self.app.bot.send_photo(
            chat_id=_chat_id(chat_id),
            photo=InputFile(chart.png, filename=chart.filename),
            caption=telegram_caption(chart.caption),
            disable_notification=silent,
        )
        return message
