"""The command line: replay output (text and JSON), bad input, and the benchmark."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bot.cli import main
from detector.models import Exchange, Source
from detector.recording import Record, write_recording
from detector.simulator.session import generate_records

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sample.jsonl.gz"


@pytest.fixture(autouse=True)
def _defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The sample covers BTCUSDT and ETHUSDT; no .env of the developer's may leak in.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYMBOLS", "BTCUSDT,ETHUSDT")
    for name in ("MIN_PROFIT_PCT", "STALE_AFTER_S", "MIN_NOTIONAL_USD"):
        monkeypatch.delenv(name, raising=False)


def test_replay_json_is_one_schema_object_per_line(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    assert main(["replay", str(SAMPLE), "--json"]) == 0
    out, err = capsysbinary.readouterr()
    signals = [orjson.loads(line) for line in out.splitlines()]
    assert {s["type"] for s in signals} == {
        "arbitrage",
        "spread_anomaly",
        "volume_spike",
        "funding_rate_divergence",
        "momentum_breakout",
    }
    for s in signals:
        assert s["schema_version"] == 1
        assert s["strength"] in {"weak", "moderate", "strong"}
        assert 0 <= s["confidence"] <= 1
        assert isinstance(s["timestamp"], int) and s["expires_at"] > s["timestamp"]
        assert s["symbol"] in {"BTCUSDT", "ETHUSDT"}
    arb = next(s for s in signals if s["type"] == "arbitrage")["details"]
    for name in (
        "symbol", "direction", "profit_percentage", "profit_absolute", "buy_price", "sell_price",
        "max_volume", "timestamp", "buy_exchange", "sell_exchange", "net_profit_percentage",
        "expected_profit",
    ):  # fmt: skip
        assert name in arb
    assert b"replayed" in err and b"opportunities:" in err


def test_replay_output_is_byte_for_byte_repeatable(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    outputs = []
    for args in (["--json"], ["--json"], [], []):
        assert main(["replay", str(SAMPLE), *args]) == 0
        outputs.append(capsysbinary.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0]
    assert outputs[2] == outputs[3] and outputs[2]
    assert b"ARBITRAGE" in outputs[2] and b"net " in outputs[2]


def test_bad_lines_are_reported_with_their_number_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = list(generate_records("arbitrage", seed=3, symbols=("BTCUSDT", "ETHUSDT")))
    good = tmp_path / "good.jsonl"
    write_recording(good, records)
    lines = good.read_bytes().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join([lines[0], b"{broken", *lines[1:5], b'{"ts": 1}', *lines[5:]]))
    assert main(["replay", str(good), "--json"]) == 0
    clean = capsys.readouterr().out
    assert main(["replay", str(bad), "--json"]) == 0
    out, err = capsys.readouterr()
    assert out == clean and out
    assert "line 2: not JSON" in err
    assert "line 7: missing field 'exchange'" in err
    assert "(2 bad)" in err


def test_malformed_exchange_frames_are_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "frames.jsonl"
    write_recording(
        path,
        [
            Record(1, Exchange.BYBIT, Source.WS, "/v5/public/linear", {"topic": "orderbook.50.X"}),
            Record(2, Exchange.BINANCE, Source.REST, "/fapi/v1/depth?symbol=BTCUSDT", [1, 2]),
        ],
    )
    assert main(["replay", str(path)]) == 0
    err = capsys.readouterr().err
    assert "frame errors: binance 1, bybit 1" in err


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["replay", "missing.jsonl"], {}, "no such recording: missing.jsonl"),
        (["replay", "SAMPLE"], {"MIN_PROFIT_PCT": "much"}, "MIN_PROFIT_PCT"),
        (["replay", "SAMPLE"], {"SYMBOLS": "BTC/USDT"}, "SYMBOLS"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = [str(SAMPLE) if a == "SAMPLE" else a for a in args]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_a_corrupt_gzip_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.jsonl.gz"
    path.write_bytes(SAMPLE.read_bytes()[:5000])
    assert main(["replay", str(path)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_bench_reports_both_rates_and_their_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--frames", "3000"]) == 0
    out = capsys.readouterr().out
    assert "frames:          3000" in out
    assert "orjson.loads:" in out and "full pipeline:" in out and "ratio:" in out


def test_demo_shows_several_signal_types_and_exits_0(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYMBOLS", "BTCUSDT,ETHUSDT,SOLUSDT")
    assert main(["demo", "--duration", "20", "--json"]) == 0
    out, err = capsys.readouterr()
    signals = [orjson.loads(line) for line in out.splitlines()]
    types = {s["type"] for s in signals}
    assert len(types) >= 3, types
    assert "arbitrage" in types
    assert "health" in err and "books 6/6 healthy" in err


@pytest.mark.parametrize("duration", ["nan", "inf", "-3", "0", "soon"])
def test_a_duration_is_a_finite_number_of_seconds(
    capsys: pytest.CaptureFixture[str], duration: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--duration", duration])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--duration" in err and duration in err
    assert len(err.strip().splitlines()[-1]) < 200  # argparse's one-line complaint
