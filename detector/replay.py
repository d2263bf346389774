"""Replay a recording through the pipeline, with the recording's receive times as the clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from detector.config import DetectorConfig
from detector.errors import RecordingError
from detector.pipeline import Pipeline
from detector.recording import Record, iter_lines, parse_record
from detector.signals import Signal


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
) -> ReplayResult:
    """Feed numbered raw lines through a new pipeline; bad lines are reported and skipped."""
    result = ReplayResult(Pipeline(config))
    feed = result.pipeline.feed
    for line_no, line in lines:
        result.lines += 1
        try:
            record = parse_record(line, line_no)
        except RecordingError as exc:
            result.bad_lines.append(exc)
            if on_bad_line is not None:
                on_bad_line(exc)
            continue
        for signal in feed(record):
            on_signal(signal)
    return result


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
