"""Replay a recording through the pipeline, with the recording's receive times as the clock."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast
from urllib.parse import parse_qs, urlsplit

import msgspec

from detector.analyzer import TrackedOpportunity
from detector.config import DetectorConfig
from detector.errors import RecordingError
from detector.models import Exchange, Source
from detector.pipeline import Pipeline
from detector.recording import Record, iter_lines, parse_record
from detector.signals import Signal
from detector.symbols import KNOWN_BYBIT_LISTINGS

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


class _Arg(msgspec.Struct):
    instId: str = ""  # OKX's key, as sent


class _Names(msgspec.Struct):
    """The keys of a payload that name its symbol: Binance ``stream``, Bybit ``topic``, OKX
    ``arg.instId`` (every other key is skipped unread)."""

    stream: str = ""
    topic: str = ""
    arg: _Arg | None = None


_NAMES = msgspec.json.Decoder(_Names)
_BYBIT_RENAMED = {listing.venue_symbol: canon for canon, listing in KNOWN_BYBIT_LISTINGS.items()}


def _venue_name(record: Record) -> str | None:
    """The venue's symbol a recorded message is about, or None (acks, instrument lists)."""
    if record.source is Source.REST:
        if record.exchange is Exchange.BINANCE:  # /fapi/v1/depth?symbol=BTCUSDT&limit=1000
            found = parse_qs(urlsplit(record.endpoint).query).get("symbol")
            return found[0] if found else None
        return None
    raw = record.data
    try:
        names = _NAMES.decode(raw) if type(raw) is msgspec.Raw else msgspec.convert(raw, _Names)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if record.exchange is Exchange.BINANCE:
        stream = names.stream.partition("@")[0]
        return stream.upper() if stream else None
    if record.exchange is Exchange.BYBIT:
        return names.topic.rpartition(".")[2] or None
    return names.arg.instId if names.arg is not None and names.arg.instId else None


def recorded_symbols(
    lines: Iterable[tuple[int, bytes]], exchanges: Iterable[Exchange]
) -> tuple[str, ...]:
    """``SYMBOLS=ALL`` for a recording, which holds no instrument list to discover from: every
    symbol the recording carries from two or more of ``exchanges``, in canonical names by the
    name rules of an explicit list (Bybit's known renames; OKX ``PEPE-USDT-SWAP`` is
    ``1000PEPEUSDT`` where Binance or Bybit recorded that name, else ``PEPEUSDT``), sorted.
    Unreadable lines are skipped here; the replay reports them."""
    watched = set(exchanges)
    seen: dict[Exchange, set[str]] = {exchange: set() for exchange in watched}
    for line_no, line in lines:
        try:
            record = parse_record(line, line_no, lazy=True)
        except RecordingError:
            continue
        if record.exchange in watched and (name := _venue_name(record)) is not None:
            seen[record.exchange].add(name)
    venues: dict[str, set[Exchange]] = {}
    for exchange in (Exchange.BINANCE, Exchange.BYBIT):
        for name in seen.get(exchange, ()):
            canon = _BYBIT_RENAMED.get(name, name) if exchange is Exchange.BYBIT else name
            venues.setdefault(canon, set()).add(exchange)
    for inst_id in seen.get(Exchange.OKX, ()):
        base, _, kind = inst_id.partition("-USDT-")
        if kind != "SWAP":
            continue
        bundled = f"1000{base}USDT"
        canon = bundled if bundled in venues else f"{base}USDT"
        venues.setdefault(canon, set()).add(Exchange.OKX)
    return tuple(sorted(s for s, on in venues.items() if len(on) >= 2))


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
