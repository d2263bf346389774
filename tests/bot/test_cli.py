"""The command line: replay output (text and JSON), its conventions (help, version, logging),
every mistake's one-line message and exit code, progress on long work, and the demo's database.
"""

from __future__ import annotations

import logging
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tqdm import tqdm

from bot import cli
from bot.cli import main
from bot.demo import DEMO_RULES, demo_config, format_warmup
from detector.config import DetectorConfig, SignalRules
from detector.models import Exchange, Source
from detector.recording import Record, iter_lines, write_recording
from detector.replay import iter_lines_tracked
from detector.simulator.session import generate_records
from tests.detector.clients.conftest import closed_port

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sample.jsonl.gz"
WAIT_S = 30.0


@pytest.fixture(autouse=True)
def _defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The sample covers BTCUSDT and ETHUSDT; no .env of the developer's may leak in.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYMBOLS", "BTCUSDT,ETHUSDT")
    for name in ("MIN_PROFIT_PCT", "STALE_AFTER_S", "MIN_NOTIONAL_USD", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("DATABASE_PATH", "TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """main() configures logging for the whole process: put it back for the tests after us."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    own = {name: logging.getLogger(name).level for name in ("bot", "detector")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in own.items():
        logging.getLogger(name).setLevel(saved)


def run(argv: list[str]) -> int:
    """main(argv), with argparse's own exits (usage errors, --help, --version) as return codes."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


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
    assert b" arbitrage " in outputs[2] and b"net " in outputs[2]


def test_replay_tells_how_each_announced_opportunity_closed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", str(SAMPLE), "--utc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    opened = [n for n, text in enumerate(lines) if " arbitrage new · " in text]
    closes = [n for n, text in enumerate(lines) if " arbitrage closed after " in text]
    assert len(opened) == len(closes) == 2
    assert all(o < c for o, c in zip(opened, closes, strict=True))
    assert "a book went stale" in lines[closes[0]]  # the sample's Bybit stall ends the first
    assert main(["replay", str(SAMPLE), "--json"]) == 0
    assert "closed after" not in capsys.readouterr().out


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
    assert main(["replay", str(path)]) == 1  # it ran, and the file failed it
    err = capsys.readouterr().err
    assert "cannot read" in err and "Traceback" not in err


def test_bench_reports_the_rates_and_their_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--frames", "3000"]) == 0
    out = capsys.readouterr().out
    assert "frames:          3000" in out
    assert re.search(r"^detector core:   (compiled \(mypyc\)|pure Python)$", out, re.M)
    rates = {}
    for line in out.splitlines():
        name, sep, rest = line.partition(":")
        if sep and "frames/s" in rest:
            fps, per_frame = rest.split("frames/s")
            rates[name] = (float(fps.replace(",", "")), float(per_frame.split("us/frame")[0]))
    assert set(rates) == {"orjson.loads", "typed decoding", "full pipeline"}
    for fps, per_frame in rates.values():
        assert fps > 0 and abs(fps * per_frame / 1e6 - 1) < 0.01  # frames/s and us/frame agree
    ratio = re.search(r"ratio: +([\d.]+)x the cost of typed decoding, ([\d.]+)x", out)
    assert ratio is not None
    typed = rates["full pipeline"][1] / rates["typed decoding"][1]
    assert float(ratio.group(1)) == pytest.approx(typed, rel=0.06, abs=0.06)


def test_bench_measures_the_first_n_symbols_of_the_simulated_market(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXCHANGES", "binance,bybit,okx")
    assert main(["bench", "--frames", "4000", "--symbols", "40"]) == 0
    out = capsys.readouterr().out
    assert "frames:          4000 (simulator calm market, 40 symbols, seed 7)" in out
    events = re.search(r"^events: (\d+)", out, re.M)
    assert events is not None and int(events.group(1)) > 0


def test_demo_shows_several_signal_types_and_exits_0(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SYMBOLS", "BTCUSDT,ETHUSDT,SOLUSDT")
    production = tmp_path / "production.db"
    monkeypatch.setenv("DATABASE_PATH", str(production))
    folders: list[str] = []

    class Recorded(tempfile.TemporaryDirectory[str]):
        def __enter__(self) -> str:
            folders.append(super().__enter__())
            return folders[-1]

    monkeypatch.setattr(cli.tempfile, "TemporaryDirectory", Recorded)
    assert main(["demo", "--duration", "20", "--json"]) == 0
    out, err = capsys.readouterr()
    signals = [orjson.loads(line) for line in out.splitlines()]
    types = {s["type"] for s in signals}
    assert len(types) >= 3, types
    assert "arbitrage" in types
    assert "health" in err and "books 9/9" in err  # three symbols on three venues
    # Its own database, gone at exit; the production file is never touched.
    assert not production.exists() and not production.with_name("production.db.lock").exists()
    assert len(folders) == 1 and not Path(folders[0]).exists()
    assert "arbwatch demo: a temporary database, removed at exit" in err
    assert f"arbwatch demo: {format_warmup(DEMO_RULES)}" in err
    assert "warm up for about 5 s" in err
    # The closing summary, in replay's shape.
    summary = re.search(r"\nran \d+ s, \d+ events\n(  .*\n)+", err)
    assert summary is not None, err
    assert "  signals: arbitrage " in summary[0] and "  opportunities: " in summary[0]


def test_other_scenarios_keep_the_default_windows_and_a_given_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = DetectorConfig()
    assert demo_config(config, "demo").rules == DEMO_RULES
    for name in ("showcase", "calm", "live_faults"):
        assert demo_config(config, name).rules == SignalRules()
    kept = tmp_path / "kept.db"
    argv = ["demo", "--scenario", "calm", "--duration", "1", "--database", str(kept)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"arbwatch demo: database {kept}\n" in err
    assert "warm up for about 60 s" in err  # the default windows
    assert kept.exists()  # given with --database: kept
    assert not (tmp_path / "arbwatch.db").exists()


def test_help_version_and_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert re.fullmatch(
        r"arbwatch \d+\.\d+\.\d+\S* \(detector core: (compiled \(mypyc\)|pure Python)\)\n",
        capsys.readouterr().out,
    )
    assert run([]) == 0  # arbwatch alone: the help, not an error
    out = capsys.readouterr().out
    assert out.startswith("usage: arbwatch") and "demo" in out and "replay" in out
    for command in ("demo", "simulate"):
        assert run([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "demo, calm, arbitrage, faults, showcase, live_faults" in text


LEVELS = [
    ([], {}, logging.WARNING, logging.WARNING),
    (["-v"], {}, logging.INFO, logging.WARNING),
    (["-vv"], {}, logging.DEBUG, logging.WARNING),
    (["-vvv"], {}, logging.DEBUG, logging.DEBUG),
    (["-q"], {}, logging.ERROR, logging.ERROR),
    ([], {"LOG_LEVEL": "info"}, logging.INFO, logging.WARNING),
    (["--log-level", "debug"], {"LOG_LEVEL": "error"}, logging.DEBUG, logging.WARNING),
    (["--log-level", "ERROR"], {}, logging.ERROR, logging.ERROR),
]


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
@pytest.mark.parametrize(("flags", "env", "own", "libraries"), LEVELS)
def test_log_levels_before_or_after_the_command(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    env: dict[str, str],
    own: int,
    libraries: int,
    after: bool,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    command = ["bench", "--frames", "100"]
    assert main([*command, *flags] if after else [*flags, *command]) == 0
    assert logging.getLogger("bot").level == own
    assert logging.getLogger("detector.engine").getEffectiveLevel() == own
    for library in ("websockets", "httpx", "httpcore", "telegram", "discord", "asyncio"):
        assert logging.getLogger(library).getEffectiveLevel() == libraries, library
    capsys.readouterr()
    logging.getLogger("detector.feeds").error("bybit down")
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR detector.feeds: bybit down\n", err
    )


def test_verbose_and_quiet_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["bench", "-v", "-q"]) == 2
    assert "not allowed with" in capsys.readouterr().err


def test_an_unknown_setting_in_env_is_named_with_the_closest_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text("MIN_PROFT_PCT=0.2\nSYMBOLS=BTCUSDT\n")
    assert main(["bench", "--frames", "100"]) == 0
    err = capsys.readouterr().err
    assert err == (
        "arbwatch: warning: .env: unknown setting MIN_PROFT_PCT ignored"
        " (did you mean MIN_PROFIT_PCT?)\n"
    )
    assert main(["bench", "--frames", "100", "-q"]) == 0
    assert capsys.readouterr().err == ""


def _text_file(tmp_path: Path) -> None:
    """A README-like file with one recording line among prose."""
    good = Record(1, Exchange.BYBIT, Source.WS, "/v5/public/linear", {"op": "pong"}).to_json()
    prose = [b"# notes", b"Some words about arbwatch.", b"- a list item", b"```sh", b"make", b"```"]
    (tmp_path / "notes.md").write_bytes(b"\n".join([*prose, good, *prose, b"end"]) + b"\n")


def _existing_recording(tmp_path: Path) -> None:
    (tmp_path / "taken.jsonl").write_bytes(b"")


@pytest.mark.parametrize(
    ("argv", "env", "setup", "code", "message"),
    [
        pytest.param(
            ["demo", "--scenario", "nope"], {}, None, 2,
            "arbwatch demo: argument --scenario: invalid choice: 'nope' (choose from 'demo',"
            " 'calm', 'arbitrage', 'faults', 'showcase', 'live_faults', 'regression')"
            " (see arbwatch demo --help)",
            id="demo-unknown-scenario",
        ),
        pytest.param(
            ["simulate", "--scenario", "nope"], {}, None, 2,
            "arbwatch simulate: argument --scenario: invalid choice: 'nope' (choose from 'demo',"
            " 'calm', 'arbitrage', 'faults', 'showcase', 'live_faults', 'regression')"
            " (see arbwatch simulate --help)",
            id="simulate-unknown-scenario",
        ),
        pytest.param(
            ["demo"], {"SYMBOLS": "BTCUSDT,DOGEUSDT"}, None, 2,
            "arbwatch: the simulator has no DOGEUSDT; it simulates BTCUSDT, ETHUSDT, SOLUSDT"
            " and SIM000USDT to SIM999USDT: set SYMBOLS to some of them, or ALL (with --symbols"
            " N for the first N of them)",
            id="demo-unknown-symbol",
        ),
        pytest.param(
            ["demo", "--symbols", "0"], {}, None, 2,
            "arbwatch demo: argument --symbols: a count of 1 to 1003, not '0'"
            " (see arbwatch demo --help)",
            id="demo-symbol-count-out-of-range",
        ),
        pytest.param(
            ["simulate", "--symbols", "50"], {"SYMBOLS": "BTCUSDT,SIM100USDT"}, None, 2,
            "arbwatch: --symbols 50 lists BTCUSDT, ETHUSDT, SOLUSDT … SIM046USDT, not SIM100USDT:"
            " set SYMBOLS=ALL, or to some of the listed",
            id="simulate-symbol-beyond-the-count",
        ),
        pytest.param(
            ["simulate", "--scenario", "demo"], {"SYMBOLS": "DOGEUSDT"}, None, 2,
            "arbwatch: the simulator has no DOGEUSDT; it simulates BTCUSDT, ETHUSDT, SOLUSDT"
            " and SIM000USDT to SIM999USDT: set SYMBOLS to some of them, or ALL (with --symbols"
            " N for the first N of them)",
            id="simulate-unknown-symbol",
        ),
        pytest.param(
            ["record", "--out", "missing/rec.jsonl"], {}, None, 2,
            "arbwatch: cannot record to missing/rec.jsonl: there is no folder missing; create"
            " it, or choose another --out",
            id="record-into-a-missing-folder",
        ),
        pytest.param(
            ["record", "--out", "taken.jsonl"], {}, _existing_recording, 2,
            "arbwatch: taken.jsonl exists; add --force to overwrite it, or choose another --out",
            id="record-over-an-existing-file",
        ),
        pytest.param(
            ["record", "--out", "."], {}, None, 2,
            "arbwatch: --out . is a folder; give a file name, e.g. rec.jsonl.gz",
            id="record-into-a-folder",
        ),
        pytest.param(
            ["replay", "missing.jsonl"], {}, None, 2,
            "arbwatch: no such recording: missing.jsonl (arbwatch record --out FILE makes one)",
            id="replay-a-missing-file",
        ),
        pytest.param(
            ["replay", "notes.md"], {"SYMBOLS": "BTCUSDT"}, _text_file, 1,
            "arbwatch: notes.md: 13 of 14 lines are unreadable: not a recording?"
            " (arbwatch record --out FILE makes one)",
            id="replay-a-text-file",
        ),
        pytest.param(
            ["bench", "--env-file", "prod.env"], {}, None, 2,
            "arbwatch: no settings file prod.env (--env-file); check the path, or leave the"
            " option out to read .env",
            id="a-missing-env-file",
        ),
        pytest.param(
            ["bench"], {"MIN_PROFIT_PCT": "much"}, None, 2,
            "arbwatch: invalid setting MIN_PROFIT_PCT: Input should be a valid number, unable to"
            " parse string as a number (got 'much'); fix it in .env or the environment",
            id="an-invalid-setting",
        ),
        pytest.param(
            ["bench", "--symbols", "40", "--file", "notes.md"], {}, _text_file, 2,
            "arbwatch: --symbols N generates a market to measure: leave out --file",
            id="bench-symbols-and-a-file",
        ),
        pytest.param(
            ["bench", "--frames", "0"], {}, None, 2,
            "arbwatch: --frames 0: give a number of frames above 0",
            id="bench-no-frames",
        ),
        pytest.param(
            ["replay", "notes.md"], {"SYMBOLS": "ALL"}, _text_file, 2,
            "arbwatch: SYMBOLS=ALL: notes.md carries no symbol from two of binance, bybit, okx"
            " (0 found, 0 of them excluded): is it a recording? Replay another file, or name the"
            " symbols in SYMBOLS",
            id="replay-all-of-nothing",
        ),
        pytest.param(
            ["run", "--duration", "soon"], {}, None, 2,
            "arbwatch run: argument --duration: not a number of seconds: 'soon'"
            " (see arbwatch run --help)",
            id="a-bad-duration",
        ),
    ],
)  # fmt: skip
def test_each_mistake_gets_one_line_and_its_exit_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    env: dict[str, str],
    setup: Any,
    code: int,
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if setup is not None:
        setup(tmp_path)
    assert run(argv) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out == ""
    if argv[0] == "replay" and code == 1:  # after the bad lines (the first 10) and the summary
        assert err.count("(skipped)") == 10 and "more unreadable lines" in err
        assert "replayed 14 lines (13 bad)" in err
        err = err.splitlines()[-1] + "\n"
    assert err == message + "\n"


def test_a_port_in_use_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["simulate", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"arbwatch: port {port} is already in use; choose another with --port P (0: any free one)\n"
    )


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[dict[str, str], subprocess.Popen[str]]]:
    """``arbwatch simulate --scenario demo`` in a process of its own: its .env lines, itself."""
    with subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "simulate", "--scenario", "demo"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:  # closes its pipes at the end
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(ln) for ln in process.stdout or ()])
        reader.start()
        urls: dict[str, str] = {}
        try:
            while "BYBIT_WS_URL" not in urls:
                line = lines.get(timeout=WAIT_S)  # bounded: queue.Empty if it never prints them
                if "_URL=" in line:
                    name, value = line.strip().split("=", 1)
                    urls[name] = value
            yield urls, process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            reader.join(WAIT_S)


def test_simulate_serves_the_demo_scenario_and_record_overwrites_with_force(
    simulator: tuple[dict[str, str], subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    urls, process = simulator
    response = httpx.get(f"{urls['BINANCE_REST_URL']}/fapi/v1/ticker/bookTicker?symbol=BTCUSDT")
    assert response.status_code == 200
    for name, value in urls.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "rec.jsonl"
    out.write_text("an older recording\n")
    assert main(["record", "--out", str(out), "--force", "--duration", "2"]) == 0
    err = capsys.readouterr().err
    records = [line for _, line in iter_lines(out)]
    assert records and all(b'"exchange"' in line for line in records)
    assert "warm up for about 60 s" in err and re.search(r"\nran \d+ s, \d+ events\n", err)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=WAIT_S) is not None
    assert process.stderr is not None
    stderr = process.stderr.read()
    assert process.returncode == 0, stderr
    assert "arbwatch simulate: demo is timed for the demo's short signal windows" in stderr
    assert "Traceback" not in stderr


def test_symbols_lists_the_mapped_market_as_a_table_and_as_json(
    simulator: tuple[dict[str, str], subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    urls, _ = simulator
    for name, value in urls.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SYMBOLS_EXCLUDE", "ETHUSDT")
    monkeypatch.setenv("EXCHANGES", "binance,bybit")  # the simulator serves these two here
    assert main(["symbols"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["symbol", "binance", "bybit", "status"]
    assert lines[1].split() == ["BTCUSDT", "BTCUSDT", "BTCUSDT", "watched"]
    assert lines[2].split() == ["ETHUSDT", "-", "-", "excluded"]
    assert lines[3] == (
        "1 symbols on two or more venues (Binance 1, Bybit 1); "
        "0 with different multipliers; 0 on one venue only; 1 excluded"
    )
    assert main(["symbols", "--json"]) == 0
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == {
        "symbol": "BTCUSDT",
        "coin": "BTC",
        "status": "watched",
        "venues": {
            "binance": {"symbol": "BTCUSDT", "multiplier": 1.0},
            "bybit": {"symbol": "BTCUSDT", "multiplier": 1.0},
        },
    }
    monkeypatch.setenv("BINANCE_REST_URL", f"http://127.0.0.1:{closed_port()}")
    assert main(["symbols"]) == 1
    # The retries are logged as warnings; the failure itself is one line.
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("arbwatch: the instrument lists are needed: binance: unavailable: ")


def test_bench_shows_progress_with_totals_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["bench", "--frames", "3000"]) == 0
    out, err = capsys.readouterr()
    assert "frames:          3000" in out
    for stage in ("generating frames", "orjson.loads", "full pipeline"):
        assert re.search(rf"{re.escape(stage)}: +\d+%.*3000/3000", err), stage
    assert "<00:00" in err  # tqdm's elapsed<remaining: the ETA


def test_replay_shows_progress_over_the_file_size(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(cli, "PROGRESS_MIN_BYTES", 0)
    assert main(["replay", str(SAMPLE)]) == 0
    err = capsys.readouterr().err
    total = tqdm.format_sizeof(SAMPLE.stat().st_size)  # e.g. 1.67M
    assert re.search(rf"\d+%\|.*\| [\d.]+k?/{re.escape(total)} \[\d\d:\d\d<\d\d:\d\d", err)
    assert "replayed" in err


@pytest.mark.parametrize("name", ["rec.jsonl", "rec.jsonl.gz"])
def test_tracked_lines_report_positions_up_to_the_file_size(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_recording(path, generate_records("calm", seed=1, symbols=("BTCUSDT",), max_records=3000))
    positions: list[int] = []
    assert list(iter_lines_tracked(path, positions.append)) == list(iter_lines(path))
    assert positions == sorted(positions) and len(positions) >= 2
    assert positions[-1] == path.stat().st_size


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
