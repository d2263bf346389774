"""The Discord API rules of the fake Discord server; pure, no I/O.

Message, embed, component and file limits; application command, option and autocomplete
validation; Discord's error bodies (``ApiError``, Invalid Form Body trees); and the options a
Discord client sends for what a test says a user typed (``build_options``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000  # title + description + field names/values + footer + author, all embeds
EMBED_LIMITS = {"title": 256, "description": 4096}
MAX_FIELDS, MAX_FIELD_NAME, MAX_FIELD_VALUE = 25, 256, 1024
MAX_FOOTER, MAX_AUTHOR = 2048, 256
MAX_FILES = 10
ATTACHMENT_SIZE_LIMIT = 10 * 2**20  # bytes a bot may upload where nobody boosted the limit
MAX_ROWS, MAX_ROW_ITEMS, MAX_CUSTOM_ID, MAX_LABEL = 5, 5, 100, 80
MAX_COMMANDS = 100  # per command type
MAX_OPTIONS, MAX_CHOICES, MAX_CHOICE_NAME, MAX_CHOICE_VALUE, MAX_DESCRIPTION = 25, 25, 100, 100, 100

EPHEMERAL = 1 << 6
LOADING = 1 << 7  # a deferred "bot is thinking..." message
SUPPRESS_NOTIFICATIONS = 1 << 12
COMPONENTS_V2 = 1 << 15

# Discord's JSON error codes.
UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, UNKNOWN_USER, UNKNOWN_WEBHOOK = 10003, 10008, 10013, 10015
UNKNOWN_INTERACTION, ENTITY_TOO_LARGE, ALREADY_ACKNOWLEDGED = 10062, 40005, 40060
MISSING_ACCESS, EMPTY_MESSAGE, CANNOT_DM, INVALID_FORM_BODY = 50001, 50006, 50007, 50035
INVALID_JSON = 50109

# Option types.
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN = 1, 2, 3, 4, 5
USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 6, 7, 8, 9, 10, 11
_NESTED = (SUB_COMMAND, SUB_COMMAND_GROUP)
_SNOWFLAKE_TYPES = {USER: "users", CHANNEL: "channels", ROLE: "roles", MENTIONABLE: "users"}
_PYTHON_TYPES: dict[int, Any] = {STRING: str, INTEGER: int, BOOLEAN: bool, NUMBER: (int, float)}
# Discord's rule is ^[-_\p{L}\p{N}]{1,32}$; Python's \w is letters, digits and "_".
_NAME = re.compile(r"[-\w]{1,32}")
# The messages Discord writes next to the codes of an Invalid Form Body.
_FORM_MESSAGES = {
    "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID": "Autocomplete cannot be set with choices",
    "APPLICATION_COMMAND_INVALID_NAME": "Command name is invalid",
    "APPLICATION_COMMAND_INVALID_TYPE": "Context menu commands take no description or options",
    "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS": "Option names must be unique",
    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID":
        "Required options must be placed before non-required options",
    "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID": "Sub-commands and options are nested wrongly",
    "APPLICATION_COMMAND_OPTION_CHOICES_INVALID": "Only string, integer and number take choices",
    "APPLICATION_COMMAND_TOO_MANY": "Maximum number of application commands reached",
    "APPLICATION_COMMANDS_DUPLICATE_NAME": "Application command names must be unique",
    "BASE_TYPE_CHOICES": "Value must be one of the option types",
    "BASE_TYPE_REQUIRED": "This field is required",
    "COMPONENT_CUSTOM_ID_DUPLICATED": "Component custom id cannot be duplicated",
    "COMPONENT_LAYOUT_WIDTH_EXCEEDED": f"An action row holds 1 to {MAX_ROW_ITEMS} components",
    "DICT_TYPE_CONVERT": "Only dictionaries may be used in a DictType",
    "INTERACTION_RESPONSE_TYPE_INVALID": "Invalid interaction response type",
    "LIST_TYPE_CONVERT": "Must be an array.",
    "MAX_EMBED_SIZE_EXCEEDED": f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
    "MODEL_TYPE_CONVERT": "Only dictionaries may be used in a ModelType",
    "NUMBER_TYPE_COERCE": "Value is not a valid number of the option's type.",
    "NUMBER_TYPE_MAX": "min_value must be less than or equal to max_value",
    "STRING_TYPE_CONVERT": "Could not interpret value as string.",
}  # fmt: skip


class ApiError(Exception):
    """An error answer: HTTP status plus Discord's JSON body ``{"message", "code"[, "errors"]}``."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {message} (code {code})")
        self.status, self.code, self.message = status, code, message
        self.errors, self.retry_after = errors, retry_after

    def body(self) -> dict[str, Any]:
        if self.status == 429:  # discord.py reads retry_after and global from the body
            retry_after = 1.0 if self.retry_after is None else self.retry_after
            return {"message": self.message or "You are being rate limited.",
                    "retry_after": retry_after, "global": False, "code": self.code}  # fmt: skip
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


class FormErrors:
    """Field errors, in the nested ``errors`` tree of Discord's Invalid Form Body (50035)."""

    def __init__(self) -> None:
        self.errors: dict[str, Any] = {}

    def add(self, path: Iterable[str | int], code: str, message: str | None = None) -> None:
        node = self.errors
        for key in path:
            node = node.setdefault(str(key), {})
        error = {"code": code, "message": message or _FORM_MESSAGES[code]}
        node.setdefault("_errors", []).append(error)

    def too_long(self, path: Sequence[str | int], limit: int) -> None:
        self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def check_length(self, path: Sequence[str | int], value: Any, low: int, high: int) -> None:
        if not isinstance(value, str) or not low <= len(value) <= high:
            self.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")

    def raise_if_any(self) -> None:
        if self.errors:
            raise ApiError(400, INVALID_FORM_BODY, "Invalid Form Body", errors=self.errors)


def form_error(path: Iterable[str | int], code: str) -> ApiError:
    errors = FormErrors()
    errors.add(path, code)
    return ApiError(400, INVALID_FORM_BODY, "Invalid Form Body", errors=errors.errors)


class CommandUsageError(ValueError):
    """A test asked the fake for an interaction no Discord user could produce."""


@dataclass(frozen=True, slots=True)
class Upload:
    """One ``files[n]`` part of a multipart request."""

    index: int
    filename: str
    data: bytes


# messages


def check_message(data: dict[str, Any], uploads: Sequence[Upload]) -> None:
    """Discord's create/edit message rules, on the message as it would read afterwards."""
    content = data.get("content") or ""
    embeds, components = data.get("embeds") or [], data.get("components") or []
    v2 = bool(int(data.get("flags") or 0) & COMPONENTS_V2)
    # Action rows alone do not make a message; Components V2 messages are all components.
    if not (content or embeds or uploads or data.get("attachments") or (v2 and components)):
        raise ApiError(400, EMPTY_MESSAGE, "Cannot send an empty message")
    errors = FormErrors()
    if not isinstance(content, str):
        errors.add(["content"], "STRING_TYPE_CONVERT")
    elif len(content) > MAX_CONTENT:
        errors.too_long(["content"], MAX_CONTENT)
    if len(embeds) > MAX_EMBEDS:
        errors.too_long(["embeds"], MAX_EMBEDS)
    if sum(_check_embed(errors, ["embeds", i], embed) for i, embed in enumerate(embeds)) > (
        MAX_EMBED_TOTAL
    ):
        errors.add(["embeds"], "MAX_EMBED_SIZE_EXCEEDED")
    if not v2:
        _check_components(errors, components)
    if len(uploads) > MAX_FILES:
        errors.too_long(["files"], MAX_FILES)
    errors.raise_if_any()
    if any(len(upload.data) > ATTACHMENT_SIZE_LIMIT for upload in uploads):
        raise ApiError(413, ENTITY_TOO_LARGE, "Request entity too large")


def _check_embed(errors: FormErrors, path: list[str | int], embed: dict[str, Any]) -> int:
    """Record the embed's violations; return its characters towards the 6000 total."""
    texts: list[tuple[list[str | int], str, int]] = [
        ([*path, key], embed.get(key) or "", limit) for key, limit in EMBED_LIMITS.items()
    ]
    fields = embed.get("fields") or []
    if len(fields) > MAX_FIELDS:
        errors.too_long([*path, "fields"], MAX_FIELDS)
    for index, item in enumerate(fields):
        for key, limit in (("name", MAX_FIELD_NAME), ("value", MAX_FIELD_VALUE)):
            if not item.get(key):
                errors.add([*path, "fields", index, key], "BASE_TYPE_REQUIRED")
            texts.append(([*path, "fields", index, key], item.get(key) or "", limit))
    texts.append(
        ([*path, "footer", "text"], (embed.get("footer") or {}).get("text", ""), MAX_FOOTER)
    )
    texts.append(
        ([*path, "author", "name"], (embed.get("author") or {}).get("name", ""), MAX_AUTHOR)
    )
    for where, text, limit in texts:
        if len(text) > limit:
            errors.too_long(where, limit)
    return sum(len(text) for _, text, _ in texts)


def _check_components(errors: FormErrors, rows: list[dict[str, Any]]) -> None:
    if len(rows) > MAX_ROWS:
        errors.too_long(["components"], MAX_ROWS)
    seen: set[str] = set()
    for r, row in enumerate(rows):
        items = row.get("components") or []
        if row.get("type") != 1 or not 1 <= len(items) <= MAX_ROW_ITEMS:
            errors.add(["components", r], "COMPONENT_LAYOUT_WIDTH_EXCEEDED")
        for i, item in enumerate(items):
            path: list[str | int] = ["components", r, "components", i]
            if len(item.get("label") or "") > MAX_LABEL:
                errors.too_long([*path, "label"], MAX_LABEL)
            if item.get("style") == 5:  # link buttons carry a url, never a custom_id
                continue
            errors.check_length([*path, "custom_id"], item.get("custom_id"), 1, MAX_CUSTOM_ID)
            if item.get("custom_id") in seen:
                errors.add([*path, "custom_id"], "COMPONENT_CUSTOM_ID_DUPLICATED")
            seen.add(str(item.get("custom_id")))


def check_autocomplete(data: dict[str, Any], option_type: int | None) -> None:
    """The choices of an autocomplete result (callback type 8) for an option of that type."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise form_error(["data", "choices"], "BASE_TYPE_REQUIRED")
    errors = FormErrors()
    if len(choices) > MAX_CHOICES:
        errors.too_long(["data", "choices"], MAX_CHOICES)
    for index, choice in enumerate(choices):
        _check_choice(errors, ["data", "choices", index], choice, option_type)
    errors.raise_if_any()


def _check_choice(errors: FormErrors, path: list[str | int], choice: Any, kind: int | None) -> None:
    """A choice's name, and a value of the option's type (``None``: any of them)."""
    if not isinstance(choice, dict):
        errors.add(path, "MODEL_TYPE_CONVERT")
        return
    errors.check_length([*path, "name"], choice.get("name"), 1, MAX_CHOICE_NAME)
    value = choice.get("value")
    if kind == STRING or (kind is None and isinstance(value, str)):
        errors.check_length([*path, "value"], value, 1, MAX_CHOICE_VALUE)
    elif isinstance(value, bool) or not isinstance(value, int if kind == INTEGER else int | float):
        errors.add([*path, "value"], "NUMBER_TYPE_COERCE")


# application commands


def check_commands(commands: Any) -> list[dict[str, Any]]:
    """A bulk overwrite (PUT .../commands) body, validated like Discord does."""
    if not isinstance(commands, list):
        raise form_error([], "LIST_TYPE_CONVERT")
    errors = FormErrors()
    seen: dict[int, set[str]] = {}
    for index, command in enumerate(commands):
        if not isinstance(command, dict):
            errors.add([index], "MODEL_TYPE_CONVERT")
            continue
        kind, name = int(command.get("type") or 1), command.get("name")
        if name in seen.setdefault(kind, set()):
            errors.add([index, "name"], "APPLICATION_COMMANDS_DUPLICATE_NAME")
        seen[kind].add(str(name))
        if kind == 1:
            _check_named(errors, [index], command)
            _check_options(errors, [index, "options"], command.get("options") or [], None)
        else:  # user and message context menus: free-form names, no description or options
            errors.check_length([index, "name"], name, 1, 32)
            if command.get("description") or command.get("options"):
                errors.add([index], "APPLICATION_COMMAND_INVALID_TYPE")
    if any(len(names) > MAX_COMMANDS for names in seen.values()):
        errors.add([], "APPLICATION_COMMAND_TOO_MANY")
    errors.raise_if_any()
    return commands


def _check_named(errors: FormErrors, path: list[str | int], item: dict[str, Any]) -> None:
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name != name.lower():
        errors.add([*path, "name"], "APPLICATION_COMMAND_INVALID_NAME")
    errors.check_length([*path, "description"], item.get("description"), 1, MAX_DESCRIPTION)


def _check_options(
    errors: FormErrors, path: list[str | int], options: list[dict[str, Any]], parent: int | None
) -> None:
    """Options of a command (parent None), of a sub-command group (2) or of a sub-command (1)."""
    if len(options) > MAX_OPTIONS:
        errors.too_long(path, MAX_OPTIONS)
    names: set[str] = set()
    optional_seen = False
    for index, option in enumerate(options):
        where, kind = [*path, index], option.get("type")
        _check_named(errors, where, option)
        if option.get("name") in names:
            errors.add([*where, "name"], "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS")
        names.add(str(option.get("name")))
        # A command holds sub-commands and groups, or plain options; a group only sub-commands;
        # a sub-command only plain options.
        if parent is None:
            allowed = (kind in _NESTED) == (options[0].get("type") in _NESTED)
        else:
            allowed = kind == SUB_COMMAND if parent == SUB_COMMAND_GROUP else kind not in _NESTED
        if not allowed:
            errors.add([*where, "type"], "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID")
        if kind in _NESTED:
            _check_options(errors, [*where, "options"], option.get("options") or [], kind)
            continue
        if kind not in range(STRING, ATTACHMENT + 1):
            errors.add([*where, "type"], "BASE_TYPE_CHOICES")
        if not option.get("required"):
            optional_seen = True
        elif optional_seen:
            errors.add(where, "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID")
        choices = option.get("choices") or []
        if choices and kind not in (STRING, INTEGER, NUMBER):
            errors.add([*where, "choices"], "APPLICATION_COMMAND_OPTION_CHOICES_INVALID")
        if choices and option.get("autocomplete"):
            errors.add([*where, "autocomplete"], "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID")
        if len(choices) > MAX_CHOICES:
            errors.too_long([*where, "choices"], MAX_CHOICES)
        for c, choice in enumerate(choices):
            _check_choice(errors, [*where, "choices", c], choice, kind)
        low, high = option.get("min_value"), option.get("max_value")
        if low is not None and high is not None and low > high:
            errors.add([*where, "min_value"], "NUMBER_TYPE_MAX")


# interaction options, from what a test says a user typed

Resolver = Callable[[int, int], dict[str, Any]]  # (option type, snowflake) -> resolved object


def find_command(commands: Iterable[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((c for c in commands if c.get("name") == name and c.get("type", 1) == 1), None)


def build_options(
    command: dict[str, Any],
    values: dict[str, Any],
    *,
    subcommand: str | None,
    focused: str | None,
    resolve: Resolver,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The ``data.options`` (and ``data.resolved``) a Discord client sends for these values.

    ``subcommand`` is "sub" or "group sub". Types follow the registered command, so values
    arrive typed as discord.py expects. ``focused`` marks an autocomplete interaction, in which
    Discord sends the focused option as the raw text typed so far and no resolved objects.
    """
    label = f"/{command['name']}" + (f" {subcommand}" if subcommand else "")
    params: list[dict[str, Any]] = command.get("options") or []
    chain: list[dict[str, Any]] = []
    for part in (subcommand or "").split():
        found = next((p for p in params if p["name"] == part and p["type"] in _NESTED), None)
        if found is None:
            known = [p["name"] for p in params if p["type"] in _NESTED]
            raise CommandUsageError(f"{label}: no subcommand {part!r}; registered: {known}")
        chain.append(found)
        params = found.get("options") or []
    if any(p["type"] in _NESTED for p in params):
        raise CommandUsageError(f"{label} needs a subcommand, one of {[p['name'] for p in params]}")
    by_name = {p["name"]: p for p in params}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise CommandUsageError(f"{label} has no option {unknown}; options: {list(by_name)}")
    if focused is not None and not by_name.get(focused, {}).get("autocomplete"):
        raise CommandUsageError(f"{label}: option {focused!r} does not autocomplete")
    missing = [p["name"] for p in params if p.get("required") and p["name"] not in values]
    if focused is None and missing:
        raise CommandUsageError(f"{label}: required options missing: {missing}")
    resolved: dict[str, dict[str, Any]] = {}
    options: list[dict[str, Any]] = []
    for param in params:  # in the order the command declares them, as Discord sends them
        name = param["name"]
        if name == focused:  # the raw text typed so far, whatever the option's type
            text = str(values.get(name, ""))
            options.append({"type": param["type"], "name": name, "value": text, "focused": True})
        elif name in values:
            options.append(_option(label, param, values[name], focused is None, resolved, resolve))
    for wrapper in reversed(chain):
        options = [{"type": wrapper["type"], "name": wrapper["name"], "options": options}]
    return options, resolved


def _option(
    label: str,
    param: dict[str, Any],
    value: Any,
    final: bool,
    resolved: dict[str, dict[str, Any]],
    resolve: Resolver,
) -> dict[str, Any]:
    """One filled option; ``final`` for the command itself, False for an autocomplete."""
    kind, name = param["type"], param["name"]
    where = f"{label} option {name!r}"
    if kind in _SNOWFLAKE_TYPES:
        snowflake = int(getattr(value, "id", value))
        if final:  # Discord resolves mentioned objects only for the command itself
            obj = resolve(kind, snowflake)
            types = param.get("channel_types")
            if kind == CHANNEL and types and obj.get("type") not in types:
                raise CommandUsageError(f"{where} accepts channel types {types}")
            resolved.setdefault(_SNOWFLAKE_TYPES[kind], {})[str(snowflake)] = obj
        return {"type": kind, "name": name, "value": str(snowflake)}
    expected = _PYTHON_TYPES.get(kind)
    if expected is None:
        raise CommandUsageError(f"{where}: option type {kind} is not supported by the fake")
    if not isinstance(value, expected) or (kind != BOOLEAN and isinstance(value, bool)):
        raise CommandUsageError(f"{where} takes {expected}, got {value!r}")
    # What Discord's own client enforces before it sends anything.
    choices = [c["value"] for c in param.get("choices") or []]
    if choices and value not in choices:
        raise CommandUsageError(f"{where} must be one of the choices {choices}, got {value!r}")
    low, high = param.get("min_value"), param.get("max_value")
    if (low is not None and value < low) or (high is not None and value > high):
        raise CommandUsageError(f"{where} must be within [{low}, {high}], got {value!r}")
    if kind == STRING and not param.get("min_length", 0) <= len(value) <= param.get(
        "max_length", 6000
    ):
        raise CommandUsageError(f"{where} has a length outside its min_length/max_length")
    return {"type": kind, "name": name, "value": value}
