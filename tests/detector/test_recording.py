"""Recording lines: round trip, gzip determinism, and a named error for every bad line."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.errors import RecordingError
from detector.models import Exchange, Source
from detector.recording import Record, parse_record, read_recording, write_recording

RECORDS = [
    Record(1, Exchange.BINANCE, Source.WS, "/public/stream", {"stream": "x", "data": {"e": "y"}}),
    Record(2, Exchange.BYBIT, Source.REST, "/v5/market/orderbook?symbol=BTCUSDT", {"retCode": 0}),
]


@pytest.mark.parametrize("name", ["rec.jsonl", "rec.jsonl.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert write_recording(path, RECORDS) == 2
    assert list(read_recording(path)) == RECORDS


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    write_recording(tmp_path / "a.jsonl.gz", RECORDS)
    write_recording(tmp_path / "b.jsonl.gz", RECORDS)
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"exchange":"binance","source":"ws","endpoint":"/","data":{}}', "missing field 'ts'"),
        (b'{"ts":1,"exchange":"kraken","source":"ws","endpoint":"/","data":{}}', "'kraken'"),
        (b'{"ts":1,"exchange":"bybit","source":"ftp","endpoint":"/","data":{}}', "'ftp'"),
        (b'{"ts":1,"exchange":["bybit"],"source":"ws","endpoint":"/","data":{}}', "strings"),
        (b'{"ts":1.5,"exchange":"bybit","source":"ws","endpoint":"/","data":{}}', "integer"),
        (b'{"ts":true,"exchange":"bybit","source":"ws","endpoint":"/","data":{}}', "integer"),
        (b'{"ts":1,"exchange":"bybit","source":"ws","endpoint":7,"data":{}}', "endpoint"),
        (b'{"ts":1,"exchange":"bybit","source":"ws","endpoint":"/"}', "missing field 'data'"),
    ],
)
def test_bad_lines_name_line_and_reason(line: bytes, reason: str) -> None:
    with pytest.raises(RecordingError) as info:
        parse_record(line, 42)
    assert info.value.line_no == 42
    assert "line 42" in str(info.value)
    assert reason in str(info.value)


def test_reading_skips_blank_lines_and_reports_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(RECORDS[0].to_json() + b"\n\n{oops\n" + RECORDS[1].to_json() + b"\n")
    items = list(read_recording(path))
    assert items[0] == RECORDS[0]
    assert isinstance(items[1], RecordingError) and items[1].line_no == 3
    assert items[2] == RECORDS[1]
