"""Exceptions of the bot package.

Every exception raised on purpose by ``bot`` derives from :class:`BotError`::

    BotError
    ├── SettingsError         the environment or .env holds an invalid setting (names each one)
    ├── StoreError            the database file cannot be opened or used (``path``)
    │   ├── SchemaTooNew      the file was written by a newer arbwatch (``found``, ``supported``)
    │   └── UnknownUser       no user with this id (``user_id``)
    ├── SubscriptionLimit     a user already has ``limit`` subscriptions
    ├── BadInput              a chat command was not accepted (``lines``: the reply saying why)
    └── InvalidButton         a button's callback data is longer than the platform allows
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.formatting import Line


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


class BadInput(BotError):
    """A user's command was not accepted; ``lines`` is the neutral text that explains why."""

    def __init__(self, *lines: Line) -> None:
        self.lines = lines
        super().__init__(" / ".join("".join(span.text for span in ln) for ln in lines))


class InvalidButton(BotError):
    """A button's callback data exceeds ``limit`` bytes (Telegram allows 64)."""

    def __init__(self, data: str, limit: int) -> None:
        self.data = data
        self.limit = limit
        super().__init__(f"callback data {data!r} is longer than {limit} bytes")
