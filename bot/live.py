"""Console output of the live commands (``run``, ``demo``, ``record``); ``bot.app`` runs them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

import orjson

from bot.console import format_signal
from detector.signals import Signal

HEALTH_EVERY_S = 10.0


def signal_printer(json_out: bool, out: TextIO) -> Callable[[Signal], None]:
    """Print each signal as a readable line, or as one JSON object per line."""

    def emit(sig: Signal) -> None:
        if json_out:
            out.write(orjson.dumps(sig.to_dict()).decode() + "\n")
        else:
            out.write(format_signal(sig) + "\n")
        out.flush()

    return emit
