"""The replay's golden outputs: a hot-path change must leave what arbwatch reports unchanged.

``scripts/golden.py`` replays each recording as ``arbwatch replay --json`` would (a fresh process,
default settings) and here its output must equal the committed files byte for byte. When one
differs, the first differing line is shown; renew them (``python scripts/golden.py --write``)
only for a change that means to alter what the detector reports.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from types import ModuleType

import orjson
import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "golden.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("golden", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


golden = _load()


def _first_difference(expected: bytes, produced: bytes) -> str:
    old, new = expected.splitlines(), produced.splitlines()
    for number, (a, b) in enumerate(zip(old, new, strict=False), start=1):
        if a != b:
            return f"line {number}:\n  golden:   {a[:300]!r}\n  produced: {b[:300]!r}"
    return f"golden has {len(old)} lines, the replay {len(new)}"


@pytest.mark.parametrize("name", sorted(golden.RECORDINGS))
def test_replay_is_byte_identical_to_the_golden_output(name: str) -> None:
    for path, produced in golden.outputs(name).items():
        expected = path.read_bytes()
        assert produced == expected, f"{path.name} differs, {_first_difference(expected, produced)}"


def test_the_regression_recording_exercises_every_signal_and_fault() -> None:
    stats = orjson.loads((golden.GOLDEN / "regression.stats.json").read_bytes())["stats"]
    assert set(stats["signals"]) == {
        "arbitrage",
        "funding_rate_divergence",
        "momentum_breakout",
        "spread_anomaly",
        "volume_spike",
    }
    venues = ("binance", "bybit", "okx")
    for counter in ("gaps", "resyncs"):
        assert {key.split(":")[0] for key in stats[counter]} == set(venues), counter
    assert stats["stale"] and stats["frame_errors"]
    signals = [
        orjson.loads(line)
        for line in (golden.GOLDEN / "regression.signals.jsonl").read_bytes().splitlines()
    ]
    pairs = {
        frozenset((s["details"]["buy_exchange"], s["details"]["sell_exchange"]))
        for s in signals
        if s["type"] == "arbitrage"
    }
    assert frozenset(("binance", "okx")) in pairs and frozenset(("binance", "bybit")) in pairs


def test_a_changed_replay_is_caught(tmp_path: Path) -> None:
    """The comparison has teeth: a recording cut short replays to other bytes."""
    recording = golden.RECORDINGS["sample"]
    lines = gzip.decompress(recording.read_bytes()).splitlines(keepends=True)
    shorter = tmp_path / "shorter.jsonl"
    shorter.write_bytes(b"".join(lines[: len(lines) // 2]))
    expected = (golden.GOLDEN / "sample.signals.jsonl").read_bytes()
    assert golden.replay_signals(shorter) != expected
