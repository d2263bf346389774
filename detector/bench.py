"""Throughput of the whole pipeline beside two floors: decoding the same recording lines.

Every loop runs over the same lines held in memory, so disk and decompression are left out:

- ``orjson.loads`` of each line, into dicts;
- typed decoding of each line (msgspec): the line's envelope, then the frame into the Structs the
  pipeline's fast path uses, prices and sizes as floats (plain msgspec decoding for frames that
  have no typed decoder: OKX, Bybit tickers, funding) — the floor of any detector in Python that
  reads these frames;
- the full pipeline: what ``arbwatch replay`` does per line, without its output.

The ratios say what the detector costs on top of merely decoding its input. Progress is reported
between chunks of lines, outside the timed stretches, so watching it costs the figures nothing.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import orjson

from detector import core_build
from detector.config import DetectorConfig
from detector.models import Exchange, Source
from detector.pipeline import Pipeline
from detector.recording import iter_lines, parse_record
from detector.simulator.session import generate_records
from detector.venues import binance, bybit
from detector.venues._typed import REFUSED

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
    typed_s: float
    pipeline_s: float
    signals: int
    events: int

    @property
    def parse_fps(self) -> float:
        return self.frames / self.parse_s

    @property
    def typed_fps(self) -> float:
        return self.frames / self.typed_s

    @property
    def pipeline_fps(self) -> float:
        return self.frames / self.pipeline_s

    @property
    def ratio(self) -> float:
        """How many times slower the full pipeline is than bare ``orjson.loads``."""
        return self.pipeline_s / self.parse_s

    @property
    def typed_ratio(self) -> float:
        """How many times slower the full pipeline is than typed decoding (the goal: <= 4)."""
        return self.pipeline_s / self.typed_s

    def format(self) -> str:
        def line(name: str, seconds: float) -> str:
            per_frame = seconds / self.frames * 1e6
            return (
                f"{name:<16} {self.frames / seconds:>10,.0f} frames/s "
                f"{per_frame:>7.2f} us/frame  ({seconds:.2f} s)"
            )

        return "\n".join(
            [
                f"frames:          {self.frames} ({self.source})",
                f"detector core:   {core_build()}",
                line("orjson.loads:", self.parse_s),
                line("typed decoding:", self.typed_s),
                line("full pipeline:", self.pipeline_s),
                f"ratio:           {self.typed_ratio:.1f}x the cost of typed decoding, "
                f"{self.ratio:.1f}x that of orjson.loads",
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


_TYPED = {Exchange.BINANCE: binance.decode_typed, Exchange.BYBIT: bybit.decode_typed}
_UNTYPED = msgspec.json.Decoder()


def typed_decode(line: bytes) -> object:
    """The typed-decoding floor of one recording line (see the module's docstring)."""
    record = parse_record(line, lazy=True)
    decode = _TYPED.get(record.exchange) if record.source is Source.WS else None
    if decode is not None:
        try:
            return decode(record.data)
        except REFUSED:
            pass
    return _UNTYPED.decode(record.data)


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

    def typed_only(chunk: Sequence[bytes], _first: int) -> None:
        for line in chunk:
            typed_decode(line)

    pipeline = Pipeline(config)

    def full(chunk: Sequence[bytes], first: int) -> None:
        feed = pipeline.feed
        for line_no, line in enumerate(chunk, start=first):
            feed(parse_record(line, line_no, lazy=True))

    parse_s = _timed(parse_only, lines, "orjson.loads", progress)
    typed_s = _timed(typed_only, lines, "typed decoding", progress)
    pipeline_s = _timed(full, lines, "full pipeline", progress)
    return BenchReport(
        source=source,
        frames=len(lines),
        parse_s=parse_s,
        typed_s=typed_s,
        pipeline_s=pipeline_s,
        signals=sum(pipeline.stats.signals.values()),
        events=pipeline.stats.events,
    )
