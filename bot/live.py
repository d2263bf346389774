"""Live commands on the console: ``run``, ``demo`` and ``record`` (the detector's I/O shell)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import orjson

from bot.console import format_health, format_signal
from detector.config import DetectorConfig, FeedUrls
from detector.engine import Detector
from detector.recording import RecordingWriter
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


async def run_detector(
    config: DetectorConfig,
    urls: FeedUrls,
    *,
    json_out: bool = False,
    duration_s: float | None = None,
    record_to: Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    health_every_s: float = HEALTH_EVERY_S,
) -> Detector:
    """Run the live detector until ``duration_s`` passes, or SIGINT/SIGTERM; stop cleanly."""
    out = out or sys.stdout
    err = err or sys.stderr
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    writer = RecordingWriter(record_to) if record_to is not None else None
    detector = Detector(config, urls, recorder=writer)
    detector.add_callback(signal_printer(json_out, out))
    try:
        await detector.start()
        err.write(f"arbwatch: watching {', '.join(detector.config.symbols)}\n")
        for problem in detector.symbol_problems:
            err.write(f"arbwatch: {problem}\n")
        deadline = None if duration_s is None else loop.time() + duration_s
        while not stop.is_set():
            timeout = health_every_s
            if deadline is not None:
                timeout = min(timeout, deadline - loop.time())
                if timeout <= 0:
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout)
            err.write(format_health(detector.health()) + "\n")
            err.flush()
    finally:
        await detector.stop()
        if writer is not None:
            writer.close()
            err.write(f"arbwatch: recorded {writer.count} messages to {writer.path}\n")
        for signum in installed:
            loop.remove_signal_handler(signum)
    return detector
