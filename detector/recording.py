"""Recordings: JSON Lines (optionally gzip) of received messages, one per line, read and written.

A line is ``{"ts": ms, "exchange": "binance"|"bybit", "source": "ws"|"rest", "endpoint": str,
"data": <payload exactly as received>}``. ``ts`` is the receive time and the pipeline's clock.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

import msgspec
import orjson

from detector.errors import RecordingError, caused_by
from detector.models import Exchange, Source


class Record(msgspec.Struct, frozen=True):
    """One received message with its receive time (a Struct: one is made per frame)."""

    ts: int
    exchange: Exchange
    source: Source
    endpoint: str
    data: Any

    def to_json(self) -> bytes:
        data = self.data
        if type(data) is msgspec.Raw:  # a payload read lazily: written back as it was read
            data = orjson.Fragment(bytes(data))
        return orjson.dumps(
            {
                "ts": self.ts,
                "exchange": self.exchange.value,
                "source": self.source.value,
                "endpoint": self.endpoint,
                "data": data,
            }
        )


class _Line(msgspec.Struct):
    """A recording line as :func:`parse_record` with ``lazy`` reads it: the payload undecoded."""

    ts: int
    exchange: str
    source: str
    endpoint: str
    data: msgspec.Raw


_LINE = msgspec.json.Decoder(_Line)


# Lookups by value: calling the enum class per line costs more than the rest of parse_record.
_EXCHANGES = {e.value: e for e in Exchange}
_SOURCES = {s.value: s for s in Source}


def parse_record(line: bytes | str, line_no: int = 0, *, lazy: bool = False) -> Record:
    """Decode one recording line; raises :class:`RecordingError` naming the line and the fault.

    ``lazy``: leave the payload undecoded, as a :class:`msgspec.Raw` of valid JSON, for the
    pipeline to decode typed (:meth:`detector.pipeline.Pipeline.feed` takes both kinds).
    """
    if lazy:
        try:
            found = _LINE.decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # the eager path names the fault
        else:
            exchange = _EXCHANGES.get(found.exchange)
            source = _SOURCES.get(found.source)
            if exchange is not None and source is not None:
                return Record(found.ts, exchange, source, found.endpoint, found.data)
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise caused_by(RecordingError(line_no, f"not JSON ({exc})"), exc) from exc
    if not isinstance(obj, dict):
        raise RecordingError(line_no, "not a JSON object")
    try:
        ts = obj["ts"]
        exchange = _EXCHANGES.get(obj["exchange"])
        source = _SOURCES.get(obj["source"])
        endpoint = obj["endpoint"]
        data = obj["data"]
    except KeyError as exc:
        raise caused_by(RecordingError(line_no, f"missing field {exc.args[0]!r}"), exc) from exc
    except TypeError as exc:  # an unhashable exchange or source, e.g. a list
        raise caused_by(
            RecordingError(line_no, f"exchange and source must be strings ({exc})"), exc
        ) from exc
    if exchange is None:
        raise RecordingError(line_no, f"{obj['exchange']!r} is not a valid Exchange")
    if source is None:
        raise RecordingError(line_no, f"{obj['source']!r} is not a valid Source")
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise RecordingError(line_no, f"ts must be integer milliseconds, got {ts!r}")
    if not isinstance(endpoint, str):
        raise RecordingError(line_no, f"endpoint must be a string, got {endpoint!r}")
    return Record(ts, exchange, source, endpoint, data)


@contextmanager
def open_recording(path: str | Path, mode: str = "rb") -> Iterator[IO[bytes]]:
    """Open a recording for reading or writing bytes; ``.gz`` files are gzip streams."""
    path = Path(path)
    with open(path, mode) as raw:
        if path.suffix != ".gz":
            yield raw
            return
        # mtime=0 and no name in the header: the same records always give the same bytes.
        with gzip.GzipFile(filename="", mode=mode, fileobj=raw, mtime=0) as gz:
            yield cast(IO[bytes], gz)


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) for every non-blank line of a recording."""
    with open_recording(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            if line.strip():
                yield line_no, line


def read_recording(path: str | Path) -> Iterator[Record | RecordingError]:
    """Every line as a :class:`Record`, or the :class:`RecordingError` that explains why not."""
    for line_no, line in iter_lines(path):
        try:
            yield parse_record(line, line_no)
        except RecordingError as exc:
            yield exc


def write_recording(path: str | Path, records: Iterable[Record]) -> int:
    """Write ``records`` to ``path``; returns how many lines were written."""
    count = 0
    with open_recording(path, "wb") as fh:
        for record in records:
            fh.write(record.to_json())
            fh.write(b"\n")
            count += 1
    return count


class RecordingWriter:
    """Appends records to a recording as they arrive (the live ``arbwatch record``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._context = open_recording(self.path, "wb")
        self._fh = self._context.__enter__()
        self.count = 0

    def write(self, record: Record) -> None:
        self._fh.write(record.to_json() + b"\n")
        self.count += 1

    def __call__(self, record: Record) -> None:
        """The writer is the live feeds' record callback."""
        self.write(record)

    def close(self) -> None:
        """Flush and close; the file is complete and readable afterwards."""
        if self._fh.closed:
            return
        self._context.__exit__(None, None, None)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
