"""Replay a recording through the pipeline, with the recording's receive times as the clock."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from detector.analyzer import TrackedOpportunity
from detector.config import DetectorConfig
from detector.errors import RecordingError
from detector.pipeline import Pipeline
from detector.recording import Record, iter_lines, parse_record
from detector.signals import Signal

POSITION_EVERY_BYTES = 1 << 16
"""How far the file is read between two calls of ``iter_lines_tracked``'s ``on_position``."""


@dataclass(slots=True)
class ReplayResult:
    """What a replay saw: the pipeline (for its stats) and the lines it had to skip."""

    pipeline: Pipeline
    bad_lines: list[RecordingError] = field(default_factory=list)
    lines: int = 0


def replay_lines(
    lines: Iterable[tuple[int, bytes]],
    config: DetectorConfig,
    on_signal: Callable[[Signal], None],
    on_bad_line: Callable[[RecordingError], None] | None = None,
    on_closed: Callable[[TrackedOpportunity], None] | None = None,
) -> ReplayResult:
    """Feed numbered raw lines through a new pipeline; bad lines are reported and skipped;
    ``on_closed`` hears of each arbitrage opportunity that closes."""
    result = ReplayResult(Pipeline(config))
    result.pipeline.on_opportunity_closed = on_closed
    feed = result.pipeline.feed
    for line_no, line in lines:
        result.lines += 1
        try:
            record = parse_record(line, line_no, lazy=True)
        except RecordingError as exc:
            result.bad_lines.append(exc)
            if on_bad_line is not None:
                on_bad_line(exc)
            continue
        for signal in feed(record):
            on_signal(signal)
    return result


def iter_lines_tracked(
    path: str | Path, on_position: Callable[[int], None]
) -> Iterator[tuple[int, bytes]]:
    """:func:`detector.recording.iter_lines`, calling ``on_position`` with the bytes of the file
    read so far (of a ``.gz`` file: compressed bytes) every 64 KiB and at the end, so that a
    progress bar can show the file's size as its total."""
    path = Path(path)
    with open(path, "rb") as raw:
        fh = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")) if path.suffix == ".gz" else raw
        with fh:
            reported = 0
            for line_no, line in enumerate(fh, start=1):
                position = raw.tell()
                if position - reported >= POSITION_EVERY_BYTES:
                    on_position(position)
                    reported = position
                if line.strip():
                    yield line_no, line
            on_position(raw.tell())


def replay_file(
    path: str | Path,
    config: DetectorConfig,
    on_signal: Callable[[Signal], None],
    on_bad_line: Callable[[RecordingError], None] | None = None,
) -> ReplayResult:
    """Replay a recording file (``.jsonl`` or ``.jsonl.gz``)."""
    return replay_lines(iter_lines(path), config, on_signal, on_bad_line)


def replay_records(records: Iterable[Record], config: DetectorConfig) -> Iterator[Signal]:
    """Signals of already-decoded records, in order (for tests and in-process comparisons)."""
    pipeline = Pipeline(config)
    for record in records:
        yield from pipeline.feed(record)
