"""The chat platforms: the only code in arbwatch that imports python-telegram-bot or discord.py.

``base`` (the :class:`Frontend` protocol), ``telegram_frontend`` with what it sends
(``telegram_sender``), ``discord_frontend`` with its slash commands (``discord_commands``),
embeds (``discord_embeds``, pure) and its library's errors in our words (``discord_errors``).
Each frontend turns the platform's messages into command text for ``bot.commands`` and is the
outbox's sender for its platform, translating the library's errors into
``bot.errors.SendError``. Nothing
else in ``bot`` imports this package but the composition root, ``bot.app``.
"""

from bot.platforms.base import Frontend
from bot.platforms.discord_frontend import DiscordFrontend
from bot.platforms.telegram_frontend import POLL_TIMEOUT_S, TelegramFrontend

__all__ = ["POLL_TIMEOUT_S", "DiscordFrontend", "Frontend", "TelegramFrontend"]
