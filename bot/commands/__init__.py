"""Chat text in, a Reply out: the one rule book of commands that Telegram and Discord share.

``handler`` (the front desk), ``subscriptions`` (what a user receives), ``reports`` (the bodies
of /stats, /chart, /status, /users), ``arguments`` (parsing, :class:`BadInput`), ``charts``
(rows in, PNG out; with ``chart_frame``, the time axis, title and legend both pictures share,
and ``gaps``, the gap chart's points and where its line breaks), ``reply`` (context and
reply). It imports the store, messages and config, never a platform library. Import from
here, not from the modules behind it.
"""

from bot.commands.arguments import BadInput, is_chat_name
from bot.commands.charts import CAPTION_LIMIT, Chart
from bot.commands.handler import (
    ADMIN_COMMANDS,
    COMMANDS,
    DISCORD_COMMANDS,
    TELEGRAM_COMMANDS,
    CommandHandler,
)
from bot.commands.reply import CommandContext, Reply

__all__ = [
    "ADMIN_COMMANDS",
    "CAPTION_LIMIT",
    "COMMANDS",
    "DISCORD_COMMANDS",
    "TELEGRAM_COMMANDS",
    "BadInput",
    "Chart",
    "CommandContext",
    "CommandHandler",
    "Reply",
    "is_chat_name",
]
