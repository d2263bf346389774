"""Throughput of the whole pipeline beside bare ``orjson.loads`` of the same recording lines.

Both loops run over the same lines held in memory, so disk and decompression are left out and the
ratio says what the detector costs on top of merely decoding its input. Progress is reported
between chunks of lines, outside the timed stretches, so watching it costs the figures nothing.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from detector.config import DetectorConfig
from detector.pipeline import Pipeline
from detector.recording import iter_lines, parse_record
from detector.simulator.session import generate_records

Progress = Callable[[str, int, int], None]
"""Called as ``(stage, done, total)`` after each chunk of a stage's lines."""
CHUNK = 20_000
"""Lines per chunk between two progress reports."""


@dataclass(frozen=True, slots=True)
class BenchReport:
    """Frames per second of bare parsing and of the full pipeline."""

    source: str
    frames: int
    parse_s: float
    pipeline_s: float
    signals: int
    events: int

    @property
    def parse_fps(self) -> float:
        return self.frames / self.parse_s

    @property
    def pipeline_fps(self) -> float:
        return self.frames / self.pipeline_s

    @property
    def ratio(self) -> float:
        """How many times slower the full pipeline is than bare ``orjson.loads``."""
        return self.pipeline_s / self.parse_s

    def format(self) -> str:
        return "\n".join(
            [
                f"frames:          {self.frames} ({self.source})",
                f"orjson.loads:    {self.parse_fps:>12,.0f} frames/s  ({self.parse_s:.2f} s)",
                f"full pipeline:   {self.pipeline_fps:>12,.0f} frames/s  ({self.pipeline_s:.2f} s)",
                f"ratio:           {self.ratio:.1f}x the cost of bare parsing",
                f"events: {self.events}, signals: {self.signals}",
            ]
        )


def generate_lines(
    config: DetectorConfig, frames: int, seed: int, progress: Progress | None = None
) -> list[bytes]:
    """``frames`` recording lines of the simulator's calm market on ``config.symbols``, from
    the venues of ``config.exchanges``."""
    records = generate_records(
        "calm",
        seed=seed,
        symbols=config.symbols,
        duration_s=float("inf"),
        max_records=frames,
        venues=config.exchanges,
    )
    lines = []
    for record in records:
        lines.append(record.to_json())
        if progress is not None and len(lines) % CHUNK == 0:
            progress("generating frames", len(lines), frames)
    if progress is not None:
        progress("generating frames", len(lines), len(lines))
    return lines


def _timed(
    step: Callable[[Sequence[bytes], int], None],
    lines: list[bytes],
    stage: str,
    progress: Progress | None,
) -> float:
    """Seconds ``step`` took over ``lines``, chunk by chunk (the first line number passed)."""
    gc.collect()
    spent = 0.0
    for first in range(0, len(lines), CHUNK):
        chunk = lines[first : first + CHUNK]
        start = time.perf_counter()
        step(chunk, first + 1)
        spent += time.perf_counter() - start
        if progress is not None:
            progress(stage, first + len(chunk), len(lines))
    return spent


def run_benchmark(
    config: DetectorConfig,
    *,
    frames: int = 500_000,
    seed: int = 7,
    path: Path | None = None,
    progress: Progress | None = None,
) -> BenchReport:
    """Measure a recording at ``path``, or ``frames`` generated lines when no path is given."""
    if path is None:
        lines = generate_lines(config, frames, seed, progress)
        source = f"simulator calm market, {len(config.symbols)} symbols, seed {seed}"
    else:
        lines = [line for _, line in iter_lines(path)]
        source = str(path)

    def parse_only(chunk: Sequence[bytes], _first: int) -> None:
        loads = orjson.loads
        for line in chunk:
            loads(line)

    pipeline = Pipeline(config)

    def full(chunk: Sequence[bytes], first: int) -> None:
        feed = pipeline.feed
        for line_no, line in enumerate(chunk, start=first):
            feed(parse_record(line, line_no))

    parse_s = _timed(parse_only, lines, "orjson.loads", progress)
    pipeline_s = _timed(full, lines, "full pipeline", progress)
    return BenchReport(
        source=source,
        frames=len(lines),
        parse_s=parse_s,
        pipeline_s=pipeline_s,
        signals=sum(pipeline.stats.signals.values()),
        events=pipeline.stats.events,
    )
