"""Console output: a readable line (or a JSON object) per signal, health lines, summaries.

``signals`` (a signal's headline and details, a closed opportunity, the replay summary's
figures), ``health`` (the periodic line and the lines of each change of state) and ``printer``
(what the live commands attach to the detector). Import from here, not from the modules behind it.
"""

from bot.console.health import (
    HEALTH_CHECK_S,
    HEALTH_EVERY_S,
    HealthWatch,
    feed_hosts,
    format_health,
    health_changes,
    is_offline,
)
from bot.console.printer import SignalPrinter, print_summary, signal_printer
from bot.console.signals import (
    HEADLINE_LIMIT,
    console_zone,
    format_closed,
    format_confidence,
    format_opportunity_stats,
    format_signal,
    format_time,
)

__all__ = [
    "HEADLINE_LIMIT",
    "HEALTH_CHECK_S",
    "HEALTH_EVERY_S",
    "HealthWatch",
    "SignalPrinter",
    "console_zone",
    "feed_hosts",
    "format_closed",
    "format_confidence",
    "format_health",
    "format_opportunity_stats",
    "format_signal",
    "format_time",
    "health_changes",
    "is_offline",
    "print_summary",
    "signal_printer",
]
