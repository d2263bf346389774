"""The Telegram frontend: python-telegram-bot inside arbwatch's event loop, and the outbox sender.

Every command (and every button press, whose callback data is a command) goes to the
platform-neutral :class:`~bot.commands.CommandHandler` in a worker thread (it may render a
chart); in a group, only its administrators may change it (``getChatMember``), and commands
addressed to another bot are ignored. Its :class:`~bot.commands.Reply` is rendered to Telegram
HTML, split at 4096 characters, and sent, with its chart as a photo, by
:class:`~bot.platforms.telegram_sender.TelegramSender`, which is also the outbox's sender
(:meth:`TelegramFrontend.send` and ``edit`` hand over to it). The bot token is a secret: it is
in every Bot API URL, so the loggers that print URLs (httpx, PTB's bot) are kept at WARNING and
no URL is ever logged.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from telegram import (
    BotCommand,
    Chat,
    ChatMember,
    Update,
)
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.commands import COMMANDS, TELEGRAM_COMMANDS, CommandHandler, Reply, is_chat_name
from bot.config import Settings
from bot.errors import FrontendError
from bot.pacing import Pacer
from bot.platforms.telegram_sender import TelegramSender
from bot.store import DueDelivery, DueEdit, Platform

log = logging.getLogger(__name__)

POLL_TIMEOUT_S = 30.0  # long-poll of getUpdates (Telegram holds it until an update arrives)
# Their INFO/DEBUG lines carry URLs, hence the token (PTB's bots log "Set Bot API URL: ..."
# at DEBUG): kept at WARNING whatever the root level.
_QUIET_LOGGERS = ("httpx", "httpcore", "telegram.Bot", "telegram.ext.ExtBot")

TelegramApp = Application[Any, Any, Any, Any, Any, Any]


def _alerts_target(text: str) -> str | None:
    """The channel named by ``/alerts @channel`` (or ``-100…``); None for any other command."""
    words = text.split()
    if len(words) != 2 or words[0].split("@", 1)[0].lower() != "/alerts":
        return None
    return words[1] if is_chat_name(words[1]) else None


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
        self.sender = TelegramSender(self.app.bot, clock, self._redact)
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
                raise self._start_error(exc) from None
            raise
        self._open = True
        try:
            menu = COMMANDS + TELEGRAM_COMMANDS
            await app.bot.set_my_commands([BotCommand(name, text) for name, text in menu])
            await app.start()
            await app.updater.start_polling(
                poll_interval=0,
                timeout=dtm.timedelta(seconds=self.poll_timeout_s),
                error_callback=self._polling_error,
            )
        except BaseException as exc:
            await self.close()
            if isinstance(exc, TelegramError):
                raise self._start_error(exc) from None
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

    def _start_error(self, exc: TelegramError) -> FrontendError:
        """Why starting failed; only a rejected token (or a refusal of ours) is final."""
        final = isinstance(exc, InvalidToken | Forbidden | BadRequest)
        return FrontendError("telegram", self._describe(exc), retry=not final)

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
        channel_id = channel_name = None
        manages = is_group and await self._administers(chat, update)
        target = _alerts_target(text)
        if target is not None and not is_group and user is not None:
            channel_id, channel_name, manages = await self._channel(target, user.id)
        ctx = self.handler.context(
            Platform.TELEGRAM,
            str(chat.id),
            str(user.id if user is not None else chat.id),
            name,
            self.clock(),
            is_group=is_group,
            channel_id=channel_id,
            channel_name=channel_name,
            may_manage_chat=manages,
            chat_title=chat.title if is_group else None,
        )
        # The store commits before the reply goes out; a worker thread keeps the loop free.
        reply = await asyncio.to_thread(self.handler.handle, text, ctx)
        self.after_command()  # e.g. a /broadcast queued deliveries: wake the outbox
        await self.reply(str(chat.id), reply)

    async def _channel(self, target: str, user_id: int) -> tuple[str | None, str | None, bool]:
        """``/alerts @channel``: the channel's id if the bot may post there (else None), its
        title, and whether the sender administers it."""
        bot = self.app.bot
        try:
            chat = await bot.get_chat(int(target) if target.lstrip("-").isdigit() else target)
            me = await bot.get_chat_member(chat.id, bot.id)
            them = await bot.get_chat_member(chat.id, user_id)
        except TelegramError as exc:  # no such chat, or the bot is not in it
            log.info("telegram: /alerts %s: %s", target, exc.message)
            return None, None, False
        in_channel = chat.type == chat.CHANNEL
        may_post = me.status == ChatMember.OWNER or (
            me.status == ChatMember.ADMINISTRATOR
            and (not in_channel or bool(getattr(me, "can_post_messages", False)))
        )
        if not in_channel:  # a group: any member that is not restricted may post
            may_post = may_post or me.status == ChatMember.MEMBER
        admin = them.status in (ChatMember.OWNER, ChatMember.ADMINISTRATOR)
        return (str(chat.id) if may_post else None), chat.title, admin

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

    # -- outgoing: the sender ----------------------------------------------------------------

    @property
    def pacer(self) -> Pacer | None:
        """The outbox's pacing windows, which command replies share (set by the app)."""
        return self.sender.pacer

    @pacer.setter
    def pacer(self, pacer: Pacer | None) -> None:
        self.sender.pacer = pacer

    async def send(self, delivery: DueDelivery) -> str | None:
        """The outbox's Sender: one alert or broadcast to one chat; returns the message id."""
        return await self.sender.send(delivery)

    async def edit(self, edit: DueEdit) -> None:
        """The outbox's closing edit: the alert as sent, plus how its opportunity ended."""
        await self.sender.edit(edit)

    async def reply(self, chat_id: str, reply: Reply) -> None:
        """Answer a command (see :meth:`TelegramSender.reply`); never raises."""
        await self.sender.reply(chat_id, reply)
