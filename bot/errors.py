"""Exceptions of the bot package.

Every exception raised on purpose by ``bot`` derives from :class:`BotError`::

    BotError
    └── SettingsError      the environment or .env holds an invalid setting (names each one)
"""

from __future__ import annotations


class BotError(Exception):
    """Root of every error the bot raises on purpose."""


class SettingsError(BotError):
    """One or more settings are invalid; ``problems`` lists them as "NAME: reason"."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))
