"""``SYMBOLS=ALL`` offline: the symbols a recording carries from two or more watched venues."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from detector.models import Exchange, Source
from detector.recording import Record, iter_lines
from detector.replay import recorded_symbols

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sample.jsonl.gz"
REGRESSION = ROOT / "tests" / "golden" / "regression.jsonl.gz"
B, Y, X = Exchange.BINANCE, Exchange.BYBIT, Exchange.OKX


def lines(*records: Record) -> list[tuple[int, bytes]]:
    return [(n, record.to_json()) for n, record in enumerate(records, start=1)]


def binance(stream: str) -> Record:
    return Record(1, B, Source.WS, "/public/stream", {"stream": stream, "data": {"e": "x"}})


def bybit(topic: str) -> Record:
    return Record(1, Y, Source.WS, "/v5/public/linear", {"topic": topic, "data": {}})


def okx(inst_id: str) -> Record:
    arg = {"channel": "books", "instId": inst_id}
    return Record(1, X, Source.WS, "/ws/v5/public", {"arg": arg, "data": []})


def test_the_shipped_recordings_carry_what_their_golden_outputs_name() -> None:
    assert recorded_symbols(iter_lines(SAMPLE), (B, Y)) == ("BTCUSDT", "ETHUSDT")
    assert recorded_symbols(iter_lines(SAMPLE), (B, X)) == ()  # no OKX in the sample
    assert recorded_symbols(iter_lines(REGRESSION), (B, X)) == ("BTCUSDT", "ETHUSDT")


def test_names_are_mapped_as_an_explicit_list_maps_them() -> None:
    recording = lines(
        binance("1000pepeusdt@depth@100ms"),
        okx("PEPE-USDT-SWAP"),  # a thousandth of Binance's 1000PEPE
        binance("1000shibusdt@aggTrade"),
        bybit("orderbook.50.SHIB1000USDT"),  # Bybit's name for 1000SHIBUSDT
        okx("DOGE-USDT-SWAP"),
        bybit("publicTrade.DOGEUSDT"),
        okx("BTC-USD-SWAP"),  # coin-margined: not a USDT perpetual
        binance("btcusdt@depth@100ms"),
        Record(1, Y, Source.WS, "/v5/public/linear", {"op": "subscribe", "success": True}),
        Record(2, B, Source.REST, "/fapi/v1/depth?symbol=XRPUSDT&limit=1000", {"bids": []}),
        bybit("tickers.XRPUSDT"),
        binance("solusdt@bookTicker"),  # one venue only
    )
    recording.insert(3, (99, b"not json"))
    found = recorded_symbols(recording, (B, Y, X))
    assert found == ("1000PEPEUSDT", "1000SHIBUSDT", "DOGEUSDT", "XRPUSDT")
    assert recorded_symbols(recording, (B, Y)) == ("1000SHIBUSDT", "XRPUSDT")


def test_replay_of_all_takes_the_recorded_symbols_less_the_exclusions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "empty.env").write_text("")
    monkeypatch.setenv("SYMBOLS", "ALL")
    monkeypatch.setenv("SYMBOLS_EXCLUDE", "ETHUSDT")
    argv = ["replay", "--json", "-q", "--env-file", str(tmp_path / "empty.env"), str(SAMPLE)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "arbwatch replay: SYMBOLS=ALL: 1 recorded (BTCUSDT)" in err
    symbols = {line.split('"symbol":"')[1].split('"')[0] for line in out.splitlines()}
    assert symbols == {"BTCUSDT"}
