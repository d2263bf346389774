"""A fake Telegram Bot API server on 127.0.0.1 for driving the real python-telegram-bot offline.

``FakeTelegram`` serves the methods arbwatch uses (getMe, deleteWebhook, long-polled getUpdates,
set/getMyCommands, sendMessage, sendPhoto, editMessageText, answerCallbackQuery, getChat and
getChatMember, with the chats' administrators set by ``make_admin``) and answers
like the Bot API: ``{"ok": true, "result": ...}``, or an error body with the same HTTP status.
A test acts as users (``send_user_message``, ``press_button``), reads what the bot did (``sent``,
``calls``, ``rejected``, ``wait_for``) and injects Telegram's failures: 429 flood control (on
demand, or by enforcing per-chat and global rates on an injected clock), 403 for a user who
blocked the bot, and the 400s of ``fake_telegram_rules`` (text and caption length, callback_data
size, HTML markup). ``prepare_ptb_env`` and ``run_application`` run a real PTB Application
against it inside the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import BodyPartReader, web
from telegram.ext import Application

from tests.bot.fakes.fake_telegram_rules import (
    BLOCKED,
    CONFLICT,
    DEFAULT_DESCRIPTIONS,
    MAX_CAPTION,
    MAX_TEXT,
    NOT_MODIFIED,
    QUERY_INVALID,
    ApiError,
    FloodWindow,
    Rejection,
    SentMessage,
    Upload,
    bad_request,
    check_commands,
    check_markup,
    decode_param,
    parse_text,
    png_size,
    too_many_requests,
    utf16_len,
)
from tests.bot.waits import Pulse

__all__ = [
    "CHANNEL_ID",
    "FakeTelegram",
    "Rejection",
    "SentMessage",
    "prepare_ptb_env",
    "run_application",
]

# Sends that Telegram rate-limits; with edits, refused for a chat that blocked the bot.
_SEND_METHODS = frozenset({"sendMessage", "sendPhoto"})
_CHAT_METHODS = _SEND_METHODS | {"editMessageText"}


CHANNEL_ID = -1001000000000
"""The id of the channel every ``@name`` stands for."""

_ADMIN_RIGHTS = (
    "can_be_edited",
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)


@dataclass(slots=True)
class _Fault:
    method: str
    error: ApiError
    chat_id: int | None
    times: int


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query, then a JSON, url-encoded or multipart body: Telegram accepts them all."""
    params: dict[str, Any] = dict(request.query)
    try:
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        elif request.content_type == "multipart/form-data":
            # Read parts ourselves: request.post() spools files to temporary files left open.
            async for part in await request.multipart():
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is None:
                    params[part.name] = await part.text()
                else:
                    params[part.name] = Upload(part.filename, bytes(await part.read()))
        elif request.body_exists:
            params.update(await request.post())
    except ValueError as exc:
        raise bad_request("can't parse request body") from exc
    return {name: decode_param(name, value) for name, value in params.items()}


def _error_response(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status)


def _now() -> int:
    return int(time.time())  # Message.date is a Unix time; only shown, never asserted


class FakeTelegram:
    """A loopback Bot API for one bot token; see the module docstring."""

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        bot_username: str = "arbwatch_test_bot",
        per_chat_per_s: float | None = None,
        global_per_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        bot_id = token.split(":", 1)[0]
        self.bot_user: dict[str, Any] = {"id": int(bot_id) if bot_id.isdigit() else 123}
        self.bot_user.update(is_bot=True, first_name="arbwatch test", username=bot_username)
        self.per_chat_per_s, self.global_per_s, self.clock = per_chat_per_s, global_per_s, clock
        self.base_url = ""  # set by start(): http://127.0.0.1:PORT/bot
        self.base_file_url = ""
        self.sent: list[SentMessage] = []
        self.rejected: list[Rejection] = []
        self.calls: Counter[str] = Counter()
        self.commands_set: list[dict[str, Any]] = []  # decoded setMyCommands parameters
        self.rate_limited = 0  # 429 answers sent, enforced or injected
        self.blocked: set[int | str] = set()
        self.admins: dict[int, dict[int, str]] = {}  # group -> user -> "creator"/"administrator"
        self._faults: list[_Fault] = []
        self._updates: list[dict[str, Any]] = []  # not yet confirmed by an offset
        self._next_update_id = 100_001
        self._message_ids: Counter[int | str] = Counter()
        self._messages: dict[tuple[int | str, int], dict[str, Any]] = {}
        self._chats: dict[int | str, dict[str, Any]] = {}
        self._queries: dict[str, tuple[int | str, int]] = {}  # unanswered callback queries
        self._commands: dict[str, list[Any]] = {}
        self._chat_windows: dict[int | str, FloodWindow] = {}
        self._global_window = FloodWindow(global_per_s) if global_per_s else None
        self._updates_pulse = Pulse()
        self._sent_pulse = Pulse()
        self._calls_pulse = Pulse()
        self._poll_epoch = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getMe": self._get_me,
            "deleteWebhook": self._delete_webhook,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "editMessageText": self._edit_message_text,
            "answerCallbackQuery": self._answer_callback_query,
            "getChatMember": self._get_chat_member,
            "getChat": self._get_chat,
        }
        self._canonical = {name.lower(): name for name in [*self._handlers, "getUpdates"]}

    # lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/bot"
        self.base_file_url = f"http://127.0.0.1:{port}/file/bot"

    async def stop(self) -> None:
        """Answer held getUpdates at once, then close every connection."""
        self._closing = True
        self._updates_pulse.fire()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # acting as users

    def send_user_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Ann",
        chat_type: str = "private",
    ) -> int:
        """Queue an Update with a user's Message; a leading /command gets its bot_command entity."""
        if chat_type == "private":
            chat = {"id": chat_id, "type": "private", "first_name": first_name}
        else:
            chat = {"id": chat_id, "type": chat_type, "title": f"Chat {chat_id}"}
        self._chats[chat_id] = chat
        user = self._user(chat_id, user_id, first_name)
        message: dict[str, Any] = {"message_id": self._take_message_id(chat_id), "date": _now()}
        message.update(chat=chat, text=text)
        message["from"] = user
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]  # "/start" or "/start@arbwatch_test_bot"
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
            ]
        self._messages[chat_id, message["message_id"]] = message
        return self._queue({"message": message})

    def press_button(
        self, chat_id: int, message_id: int, data: str, *, user_id: int | None = None
    ) -> int:
        """Queue a callback_query Update, as when a user presses an inline button."""
        message = self._messages.get((chat_id, message_id))
        if message is None:  # e.g. sent before a restart: Telegram still delivers the press
            message = {"message_id": message_id, "date": _now(), "chat": self._chat(chat_id)}
            message.update({"from": self.bot_user, "text": ""})
        else:
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            if data not in [b.get("callback_data") for row in rows for b in row]:
                raise ValueError(f"message {message_id} in chat {chat_id} has no button {data!r}")
        query_id = str(9_000_000 + self._next_update_id)
        self._queries[query_id] = (chat_id, message_id)
        query = {"id": query_id, "from": self._user(chat_id, user_id, "Ann")}
        query.update(chat_instance=str(chat_id), data=data, message=message)
        return self._queue({"callback_query": query})

    # observing the bot

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Queued updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    async def wait_for(
        self,
        predicate: Callable[[SentMessage], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the point of this helper
        *,
        since: int = 0,
    ) -> SentMessage:
        """The first recorded call at index >= ``since`` matching ``predicate``, waiting for it."""
        index = since
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for entry in self.sent[index:]:
                        if predicate(entry):
                            return entry
                    index = len(self.sent)
                    await self._sent_pulse.wait()
        except TimeoutError:
            recent = self.sent[since:][-5:]
            raise TimeoutError(f"no matching call within {timeout}s; last sent: {recent}") from None

    async def wait_for_calls(
        self,
        method: str,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - as in wait_for
    ) -> None:
        """Wait until the bot has called ``method`` ``count`` times in all."""
        async with asyncio.timeout(timeout):
            while self.calls[method] < count:
                await self._calls_pulse.wait()

    # fault injection

    def fail_next(
        self,
        method: str,
        status: int,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (to ``chat_id`` if given) with an error."""
        if status == 429:
            retry_after = 1 if retry_after is None else retry_after
            error = too_many_requests(retry_after)
            error.description = description or error.description
        else:
            text = description or DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
            error = ApiError(status, text, retry_after)
        self._faults.append(
            _Fault(self._canonical.get(method.lower(), method), error, chat_id, times)
        )

    def make_admin(self, chat_id: int, user_id: int, status: str = "administrator") -> None:
        """``user_id`` administers the group ``chat_id`` ("creator" for its owner)."""
        if status not in ("creator", "administrator"):
            raise ValueError(f"not an administrator's status: {status!r}")
        self.admins.setdefault(chat_id, {})[user_id] = status

    def block(self, chat_id: int) -> None:
        """From now on every send to ``chat_id`` answers 403, as for a user who blocked the bot."""
        self.blocked.add(chat_id)

    # the HTTP side

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error_response(ApiError(401, "Unauthorized"))
        name = request.match_info["method"]
        method = self._canonical.get(name.lower(), name)  # method names are case-insensitive
        self.calls[method] += 1
        self._calls_pulse.fire()
        if method not in self._canonical.values():
            return _error_response(ApiError(404, "Not Found"))
        params: dict[str, Any] = {}
        try:
            params = await _read_params(request)
            self._apply_faults(method, params.get("chat_id"))
            if method == "getUpdates":
                result = await self._get_updates(params, request)
            else:
                result = self._handlers[method](params)
        except ApiError as err:
            if err.status == 429:
                self.rate_limited += 1
            chat_id = params.get("chat_id")
            self.rejected.append(
                Rejection(method, chat_id, err.status, err.description, self.clock())
            )
            return _error_response(err)
        return web.json_response({"ok": True, "result": result})

    def _apply_faults(self, method: str, chat_id: Any) -> None:
        for fault in self._faults:
            if fault.method == method and fault.chat_id in (None, chat_id):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                raise fault.error
        if method in _CHAT_METHODS and chat_id in self.blocked:
            raise ApiError(403, BLOCKED)

    async def _get_updates(self, params: dict[str, Any], request: web.Request) -> Any:
        offset = params.get("offset")
        if isinstance(offset, int):  # confirms every update below it; negative: keep the last -N
            kept = self._updates[offset:] if offset < 0 else self._updates
            self._updates = [u for u in kept if offset < 0 or u["update_id"] >= offset]
        limit = min(max(int(params.get("limit", 100)), 1), 100)
        self._poll_epoch += 1
        epoch = self._poll_epoch
        self._updates_pulse.fire()  # a newer poll ends an older one with 409, as Telegram does
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(float(params.get("timeout", 0))):
                while not self._updates and not self._closing and epoch == self._poll_epoch:
                    await self._updates_pulse.wait()
        if self._closing:
            return []
        if epoch != self._poll_epoch:
            # An abandoned poll (PTB cancels it on stop) has no reader: end it quietly.
            if request.transport is None or request.transport.is_closing():
                return []
            raise ApiError(409, CONFLICT)
        return self._updates[:limit]

    # methods

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        flags = {"can_join_groups": True, "can_read_all_group_messages": False}
        return {**self.bot_user, **flags, "supports_inline_queries": False}

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = check_commands(params.get("commands"))
        self.commands_set.append(params)
        self._commands[self._commands_key(params)] = commands
        return True

    def _get_my_commands(self, params: dict[str, Any]) -> list[Any]:
        return self._commands.get(self._commands_key(params), [])

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        text, entities = parse_text(
            str(params.get("text") or ""), params.get("parse_mode"), MAX_TEXT, "message is too long"
        )
        if not text.strip():
            raise bad_request("message text is empty")
        markup = check_markup(params.get("reply_markup"))
        self._admit(chat_id)
        message = self._new_message(chat_id, markup, text=text, entities=entities)
        self._record("sendMessage", params, message, params.get("text"))
        return message

    def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        upload = params.get("photo")
        if not isinstance(upload, Upload | str) or not upload:
            raise bad_request("there is no photo in the request")
        if isinstance(upload, Upload) and not upload.data:
            raise bad_request("file must be non-empty")
        caption, entities = parse_text(
            str(params.get("caption") or ""),
            params.get("parse_mode"),
            MAX_CAPTION,
            "message caption is too long",
        )
        markup = check_markup(params.get("reply_markup"))
        self._admit(chat_id)
        data = upload.data if isinstance(upload, Upload) else None
        width, height = png_size(data or b"")
        size: dict[str, Any] = {
            "file_id": f"photo-{len(self.sent)}",
            "file_unique_id": f"u{len(self.sent)}",
        }
        size.update(width=width, height=height, file_size=len(data or b""))
        extra: dict[str, Any] = {"photo": [size]}
        if caption:
            extra.update(caption=caption, caption_entities=entities)
        message = self._new_message(chat_id, markup, **extra)
        self._record("sendPhoto", params, message, params.get("caption"), photo=data)
        return message

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        stored = self._messages.get((chat_id, params.get("message_id", 0)))
        if stored is None:
            raise bad_request("message to edit not found")
        if stored["from"].get("id") != self.bot_user["id"]:
            raise bad_request("message can't be edited")
        if "text" not in stored:
            raise bad_request("there is no text in the message to edit")
        text, entities = parse_text(
            str(params.get("text") or ""), params.get("parse_mode"), MAX_TEXT, "message is too long"
        )
        markup = check_markup(params.get("reply_markup"))
        old = (stored["text"], stored.get("entities", []), stored.get("reply_markup"))
        if (text, entities, markup) == old:
            raise bad_request(NOT_MODIFIED)
        # Without reply_markup an edit removes the inline keyboard, as on Telegram.
        message = {k: v for k, v in stored.items() if k not in ("entities", "reply_markup")}
        message.update(text=text, edit_date=_now())
        if entities:
            message["entities"] = entities
        if markup:
            message["reply_markup"] = markup
        self._messages[chat_id, message["message_id"]] = message
        self._record("editMessageText", params, message, params.get("text"))
        return message

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        where = self._queries.pop(str(params.get("callback_query_id")), None)
        if where is None:
            raise bad_request(QUERY_INVALID)
        chat_id, message_id = where
        self._append(
            SentMessage("answerCallbackQuery", chat_id, params.get("text"), None, False, None,
                        message_id, None, None, self.clock(), params)
        )  # fmt: skip
        return True

    # helpers

    def _get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        """A chat's full info (the fields PTB requires); @names are one channel's."""
        raw = params.get("chat_id")
        chat_id = int(raw) if isinstance(raw, str) and raw.lstrip("-").isdigit() else raw
        if not isinstance(chat_id, int | str) or chat_id == "":
            raise bad_request("chat_id is empty")
        chat = dict(self._chat(chat_id))
        chat.update(accent_color_id=0, max_reaction_count=11, accepted_gift_types={})
        chat["accepted_gift_types"] = dict.fromkeys(
            (
                "unlimited_gifts",
                "limited_gifts",
                "unique_gifts",
                "premium_subscription",
                "gifts_from_channels",
            ),
            False,
        )
        return chat

    def _get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        raw_chat = params.get("chat_id")
        if isinstance(raw_chat, str) and raw_chat.lstrip("-").isdigit():
            params = {**params, "chat_id": int(raw_chat)}
        chat_id = self._chat_id(params)
        raw = params.get("user_id")
        if not (isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit())):
            raise bad_request("invalid user_id specified")
        user_id = int(raw)
        user = {"id": user_id, "is_bot": False, "first_name": f"user {user_id}"}
        admins = self.admins.get(chat_id, {}) if isinstance(chat_id, int) else {}
        status = admins.get(user_id, "member")
        member: dict[str, Any] = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":  # the rights PTB requires of ChatMemberAdministrator
            member.update(dict.fromkeys(_ADMIN_RIGHTS, False), can_manage_chat=True)
            member["can_post_messages"] = True
        return member

    def _chat_id(self, params: dict[str, Any]) -> int | str:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int | str) or chat_id == "":
            raise bad_request("chat_id is empty")
        return chat_id

    def _admit(self, chat_id: int | str) -> None:
        """Enforce the configured flood limits; a refused send does not count against them."""
        now = self.clock()
        windows = [self._global_window] if self._global_window else []
        if self.per_chat_per_s:
            windows.append(self._chat_windows.setdefault(chat_id, FloodWindow(self.per_chat_per_s)))
        waits = [w for w in (window.retry_after(now) for window in windows) if w is not None]
        if waits:
            raise too_many_requests(max(waits))
        for window in windows:
            window.stamps.append(now)

    def _new_message(
        self, chat_id: int | str, markup: dict[str, Any] | None, **content: Any
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"message_id": self._take_message_id(chat_id), "date": _now()}
        message.update({"chat": self._chat(chat_id), "from": self.bot_user})
        message.update({k: v for k, v in content.items() if v or k == "text"})
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[chat_id, message["message_id"]] = message
        return message

    def _record(
        self,
        method: str,
        params: dict[str, Any],
        message: dict[str, Any],
        text: str | None,
        photo: bytes | None = None,
    ) -> None:
        recorded = {k: v for k, v in params.items() if not isinstance(v, Upload)}
        silent = bool(params.get("disable_notification", False))
        size = None if photo is None else len(photo)
        self._append(
            SentMessage(method, params["chat_id"], text, params.get("parse_mode"), silent,
                        params.get("reply_markup"), message["message_id"], photo, size,
                        self.clock(), recorded)
        )  # fmt: skip

    def _append(self, entry: SentMessage) -> None:
        self.sent.append(entry)
        self._sent_pulse.fire()

    def _queue(self, content: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self._updates.append({"update_id": update_id, **content})
        self._updates_pulse.fire()
        return update_id

    def _take_message_id(self, chat_id: int | str) -> int:
        self._message_ids[chat_id] += 1
        return self._message_ids[chat_id]

    def _chat(self, chat_id: int | str) -> dict[str, Any]:
        if chat_id in self._chats:
            return self._chats[chat_id]
        if isinstance(chat_id, str):  # "@channelusername": one channel, known by its id too
            channel = {"id": CHANNEL_ID, "type": "channel", "title": chat_id}
            self._chats[CHANNEL_ID] = channel
            return channel
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Ann"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}

    def _user(self, chat_id: int, user_id: int | None, first_name: str) -> dict[str, Any]:
        uid = user_id if user_id is not None else (chat_id if chat_id > 0 else 1)
        return {"id": uid, "is_bot": False, "first_name": first_name}

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code", "")], sort_keys=True)


def prepare_ptb_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Environment for python-telegram-bot against a loopback fake, for tests."""
    # httpx honours proxy variables, which would send 127.0.0.1 traffic to a proxy.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    # PTB 22 warns (PTBDeprecationWarning) whenever RetryAfter is *constructed* unless
    # time periods are opted in to datetime.timedelta; with it, retry_after is a timedelta.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@contextlib.asynccontextmanager
async def run_application(
    app: Application[Any, Any, Any, Any, Any, Any], *, poll_timeout: float = 1.0
) -> AsyncIterator[list[Exception]]:
    """Run ``app`` polling inside the current event loop; yields the polling errors seen.

    ``run_polling`` owns the loop, so: initialize (getMe), start, start_polling (deleteWebhook,
    then long-polled getUpdates); and on exit the reverse: updater.stop (one last getUpdates with
    timeout 0 confirms the fetched updates), stop, shutdown.
    """
    errors: list[Exception] = []
    assert app.updater is not None
    try:
        await app.initialize()
    except BaseException:
        # A failed initialize (InvalidToken, NetworkError) leaves the bot's httpx clients open
        # and app.shutdown() skips an uninitialized app: close them here.
        await app.bot.shutdown()
        raise
    try:
        await app.start()
        try:
            # error_callback must be a plain function: PTB calls it without awaiting.
            await app.updater.start_polling(
                poll_interval=0,
                timeout=dtm.timedelta(seconds=poll_timeout),
                error_callback=errors.append,
            )
            try:
                yield errors
            finally:
                await app.updater.stop()
        finally:
            await app.stop()
    finally:
        await app.shutdown()
