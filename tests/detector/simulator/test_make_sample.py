"""scripts/make_sample.py writes deterministic, readable recordings."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from detector.recording import Record, read_recording, write_recording
from detector.simulator.scenarios import SCENARIOS

SCRIPT = Path(__file__).parents[3] / "scripts" / "make_sample.py"


@pytest.fixture(scope="module")
def make_sample() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_same_arguments_same_bytes(make_sample: ModuleType, tmp_path: Path) -> None:
    args = ["--scenario", "faults", "--duration", "15", "--seed", "5"]
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    assert make_sample.main([str(first), *args]) == 0
    assert make_sample.main([str(second), *args]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    records = list(read_recording(first))
    assert len(records) > 1000
    assert all(isinstance(r, Record) for r in records)


def test_plain_jsonl_and_symbols(make_sample: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "sol.jsonl"
    assert make_sample.main([str(out), "--symbols", "solusdt", "--duration", "5"]) == 0
    records = [r for r in read_recording(out) if isinstance(r, Record)]
    assert records
    assert {"/fapi/v1/depth?symbol=SOLUSDT&limit=1000"} <= {r.endpoint for r in records}


def test_list_prints_every_timeline(
    make_sample: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert make_sample.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in SCENARIOS:
        assert f"{name} (" in out
    assert "ArbitrageWindow" in out


def test_out_is_required(make_sample: ModuleType) -> None:
    with pytest.raises(SystemExit):
        make_sample.main([])


def test_shipped_sample_stays_small(showcase: list[Record], tmp_path: Path) -> None:
    out = tmp_path / "sample.jsonl.gz"
    write_recording(out, showcase)
    assert out.stat().st_size < 2_000_000
