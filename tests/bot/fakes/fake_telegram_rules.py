"""The Bot API rules the fake Telegram server enforces, and its records; pure, no I/O.

Limits, error descriptions, HTML parse_mode parsing into plain text and entities, inline keyboard
and command validation, flood-control windows, and the decoding of PTB's form fields.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 4096  # characters, after entity parsing
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes
BLOCKED = "Forbidden: bot was blocked by the user"
CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: BLOCKED,
    404: "Not Found",
    409: CONFLICT,
    500: "Internal Server Error",
    502: "Bad Gateway",
}
# Form fields PTB JSON-encodes (it encodes every non-string value); strings arrive as they are.
_JSON_FIELDS = frozenset(
    {"chat_id", "message_id", "offset", "limit", "timeout", "disable_notification",
     "show_alert", "drop_pending_updates", "reply_markup", "commands", "scope",
     "allowed_updates", "entities", "caption_entities", "link_preview_options",
     "reply_parameters", "protect_content", "cache_time"}
)  # fmt: skip
_ENTITY_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "code": "code", "pre": "pre", "a": "text_link", "tg-spoiler": "spoiler", "span": "spoiler",
    "blockquote": "blockquote",
}  # fmt: skip
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ATTR = re.compile(r"""([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
# Telegram's HTML mode knows only these four named entities, plus numeric ones.
_CHAR_REF = re.compile(r"&(?:(lt|gt|amp|quot)|#(\d+)|#x([0-9a-fA-F]+));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One successful call by which the bot showed something to a user."""

    method: str  # sendMessage, sendPhoto, editMessageText or answerCallbackQuery
    chat_id: int | str | None
    text: str | None  # text or caption exactly as sent (markup included)
    parse_mode: str | None
    disable_notification: bool
    reply_markup: dict[str, Any] | None  # decoded JSON
    message_id: int | None  # the sent or edited message; the pressed one for answerCallbackQuery
    photo: bytes | None
    photo_size: int | None
    time: float  # the fake's injected clock
    params: Mapping[str, Any] = field(default_factory=dict)  # every decoded parameter

    @property
    def callback_data(self) -> list[str]:
        """The callback_data of every inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


@dataclass(frozen=True, slots=True)
class Rejection:
    """One call the fake answered with an error."""

    method: str
    chat_id: int | str | None
    status: int
    description: str
    time: float


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart request."""

    filename: str
    data: bytes


class ApiError(Exception):
    """An error answer of the Bot API: HTTP status, description and optional retry_after."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(status, description)
        self.status, self.description, self.retry_after = status, description, retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status}
        body["description"] = self.description
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


class FloodWindow:
    """Telegram-like flood control: at most ``capacity`` sends per sliding ``period`` seconds."""

    def __init__(self, per_s: float) -> None:
        self.period = max(1.0, 1.0 / per_s)
        self.capacity = max(1, int(per_s * self.period))
        self.stamps: deque[float] = deque()

    def retry_after(self, now: float) -> int | None:
        """Whole seconds until one more send fits, or None when it fits now."""
        while self.stamps and self.stamps[0] <= now - self.period:
            self.stamps.popleft()
        if len(self.stamps) < self.capacity:
            return None
        return max(1, math.ceil(self.stamps[0] + self.period - now))


def utf16_len(text: str) -> int:
    """Telegram measures entity offsets and lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _unescape(chunk: str) -> str:
    def replace(m: re.Match[str]) -> str:
        if m[1]:
            return _NAMED[m[1]]
        return chr(int(m[2]) if m[2] else int(m[3], 16))

    return _CHAR_REF.sub(replace, chunk)


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse_mode: plain text and entities, or ApiError(400) for bad markup."""
    out: list[str] = []
    length = 0  # UTF-16 length of the output so far
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int, dict[str, str]]] = []
    pos = 0

    def fail(reason: str) -> ApiError:
        return bad_request(f"can't parse entities: {reason}")

    def emit(chunk: str) -> None:
        nonlocal length
        plain = _unescape(chunk)
        out.append(plain)
        length += utf16_len(plain)

    while (start := text.find("<", pos)) != -1:
        emit(text[pos:start])
        offset = len(text[:start].encode())
        match = _TAG.match(text, start)
        if match is None:
            if text.find(">", start) == -1:
                raise fail(f"Can't find end of the entity starting at byte offset {offset}")
            raise fail(f"Unsupported start tag at byte offset {offset}")
        closing, name, raw_attrs = match[1], match[2].lower(), match[3]
        if name not in _ENTITY_TYPES:
            raise fail(f'Unsupported start tag "{name}" at byte offset {offset}')
        if closing:
            if not stack or stack[-1][0] != name:
                expected = f', expected "</{stack[-1][0]}>"' if stack else ""
                raise fail(
                    f'Unmatched end tag at byte offset {offset}{expected}, found "</{name}>"'
                )
            _, begin, attrs = stack.pop()
            # <pre><code class="language-x"> is one pre entity, not two.
            if length > begin and not (name == "code" and stack and stack[-1][0] == "pre"):
                entity: dict[str, Any] = {"type": _ENTITY_TYPES[name], "offset": begin}
                entity["length"] = length - begin
                if name == "a":
                    entity["url"] = attrs["href"]
                if name == "blockquote" and "expandable" in attrs:
                    entity["type"] = "expandable_blockquote"
                entities.append(entity)
        else:
            attrs = {m[1].lower(): m[2] or m[3] or m[4] or "" for m in _ATTR.finditer(raw_attrs)}
            if name == "span" and attrs.get("class") != "tg-spoiler":
                raise fail(f'Unsupported start tag "span" at byte offset {offset}')
            if name == "a" and not attrs.get("href"):
                raise fail(f"Can't find URL of the link at byte offset {offset}")
            stack.append((name, length, attrs))
        pos = match.end()
    emit(text[pos:])
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def parse_text(
    raw: str, parse_mode: str | None, limit: int, too_long: str
) -> tuple[str, list[dict[str, Any]]]:
    """Text or caption as Telegram stores it; the length limit applies after parsing."""
    text, entities = parse_html(raw) if (parse_mode or "").lower() == "html" else (raw, [])
    if len(text) > limit:
        raise bad_request(too_long)
    return text, entities


def check_markup(markup: object) -> dict[str, Any] | None:
    """The decoded reply_markup, or ApiError(400) for what Telegram refuses."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                raise bad_request("BUTTON_DATA_INVALID")
            if not button.get("text"):
                raise bad_request("text buttons are unallowed in the inline keyboard")
    return markup


def check_commands(commands: object) -> list[dict[str, Any]]:
    """setMyCommands' list: names of 1-32 of a-z, 0-9 and _, descriptions of 1-256 characters."""
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    for command in commands:
        if not _COMMAND.fullmatch(str(command.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(command.get("description", "")) <= 256:
            raise bad_request("command description is empty or too long")
    return commands


def decode_param(name: str, value: Any) -> Any:
    """A form field as the Bot API means it: JSON-decoded where PTB JSON-encoded it."""
    if name in _JSON_FIELDS and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if name == "chat_id" and isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    return value


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; 1x1 for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return 1, 1
