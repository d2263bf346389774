"""Exceptions of the bot package.

Every exception raised on purpose by ``bot`` derives from :class:`BotError`::

    BotError
    ├── SettingsError         the environment or .env holds an invalid setting (names each one)
    ├── StoreError            the database file cannot be opened or used (``path``)
    │   ├── SchemaTooNew      the file was written by a newer arbwatch (``found``, ``supported``)
    │   └── UnknownUser       no user with this id (``user_id``)
    ├── SubscriptionLimit     a user already has ``limit`` subscriptions
    ├── BadInput              a chat command was not accepted (``lines``: the reply saying why;
    │                         defined in ``bot.commands.arguments``, beside the text it carries)
    ├── InvalidButton         a button's callback data is longer than the platform allows
    ├── FrontendError         a chat frontend cannot start (``platform``, ``reason``, ``retry``)
    ├── AlreadyRunning        another arbwatch uses the same database (``database``, ``holder``)
    └── SendError             a platform refused or failed one outbox send (``reason``)
        ├── FloodLimited      429: wait ``retry_after_s`` (for ``chat_id``, or every chat)
        ├── Blocked           403: the user blocked the bot; never send to them again
        ├── TransientSendError  5xx or network: retry later with backoff
        └── PermanentSendError  400: this message can never be sent as it is
"""

from __future__ import annotations

from pathlib import Path


class BotError(Exception):
    """Root of every error the bot raises on purpose."""


class SettingsError(BotError):
    """One or more settings are invalid; ``problems`` lists them as "NAME: reason"."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))


class StoreError(BotError):
    """The database at ``path`` cannot be opened or used."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class SchemaTooNew(StoreError):
    """The file's schema version is newer than this arbwatch knows: refuse rather than corrupt."""

    def __init__(self, path: Path | str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            path,
            f"schema version {found} is newer than this arbwatch supports ({supported}); "
            "upgrade arbwatch or point DATABASE_PATH at another file",
        )


class UnknownUser(StoreError):
    """An operation named a user id the store does not hold."""

    def __init__(self, path: Path | str, user_id: int) -> None:
        self.user_id = user_id
        super().__init__(path, f"no user with id {user_id}")


class SubscriptionLimit(BotError):
    """Adding one more subscription would exceed the per-user cap ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"a user may hold at most {limit} subscriptions")


class InvalidButton(BotError):
    """A button's callback data exceeds ``limit`` bytes (Telegram allows 64)."""

    def __init__(self, data: str, limit: int) -> None:
        self.data = data
        self.limit = limit
        super().__init__(f"callback data {data!r} is longer than {limit} bytes")


class SendError(BotError):
    """One send of the outbox failed; frontends translate their library's errors into these."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class FloodLimited(SendError):
    """The platform's flood limit (429): wait ``retry_after_s`` (for ``chat_id``; None: every chat).

    Not the detector's ``RateLimited`` (an exchange's REST weight): this one is a chat platform's.
    """

    def __init__(self, retry_after_s: float, chat_id: str | None = None) -> None:
        self.retry_after_s = retry_after_s
        self.chat_id = chat_id
        super().__init__(f"rate limited: retry after {retry_after_s:g} s")


class Blocked(SendError):
    """The user blocked the bot (Telegram 403): deactivate them, keep their data."""


class TransientSendError(SendError):
    """A server error or a network failure: the same send may succeed later."""


class PermanentSendError(SendError):
    """The platform rejected the message itself (Telegram 400): retrying cannot help."""


class AlreadyRunning(BotError):
    """Another running arbwatch holds the database: a second one would double-send alerts."""

    def __init__(self, database: Path, holder: str) -> None:
        self.database = database
        self.holder = holder
        super().__init__(
            f"another arbwatch ({holder}) is running on {database}; stop it first, or give this"
            " one its own DATABASE_PATH"
        )


class FrontendError(BotError):
    """A chat frontend could not start (a rejected token, the platform unreachable).

    ``retry``: the cause may pass (the network, a 5xx, a timeout), so starting again later may
    succeed; a rejected token never will.
    """

    def __init__(self, platform: str, reason: str, *, retry: bool = False) -> None:
        self.platform = platform
        self.reason = reason
        self.retry = retry
        super().__init__(f"{platform}: cannot start: {reason}")
