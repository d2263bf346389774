"""The replay's golden outputs: ``python scripts/golden.py`` checks them, ``--write`` renews them.

A golden output is what ``arbwatch replay --json`` prints for a recording (its signals, byte for
byte) and the replay's counters and closed opportunities (``<name>.stats.json``). Every hot-path
change must leave them unchanged; ``tests/detector/test_golden.py`` fails when one differs.
Renew them only for a change that means to alter what the detector reports, and say why in the
commit.

The recordings: ``samples/sample.jsonl.gz`` (Binance and Bybit, the shipped sample) and
``tests/golden/regression.jsonl.gz`` (``scripts/make_sample.py --scenario regression --venues
binance,bybit,okx``: every signal type and every feed fault on three venues).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
RECORDINGS = {
    "sample": ROOT / "samples" / "sample.jsonl.gz",
    "regression": GOLDEN / "regression.jsonl.gz",
}
"""Each golden output's recording, by the name its files start with."""


EMPTY_ENV = GOLDEN / "empty.env"
"""An empty settings file: the golden outputs are those of the default settings."""


def _run(command: list[str]) -> bytes:
    """The stdout of ``command``, run with none of the user's settings variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "PYTHONPATH")
    }
    done = subprocess.run(command, capture_output=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return done.stdout


def replay_signals(recording: Path) -> bytes:
    """The stdout of ``arbwatch replay --json``, as a fresh process."""
    arbwatch = Path(sys.executable).parent / "arbwatch"
    return _run(
        [str(arbwatch), "replay", "--json", "-q", "--env-file", str(EMPTY_ENV), str(recording)]
    )


def replay_stats(recording: Path) -> bytes:
    """The replay's counters and closed opportunities as indented JSON, from a fresh process."""
    return _run([sys.executable, __file__, "--stats-of", str(recording)])


def _stats_of(recording: Path) -> bytes:
    from bot.config import load_settings
    from bot.symbols_cli import offline_config
    from detector.analyzer import TrackedOpportunity
    from detector.recording import iter_lines
    from detector.replay import replay_lines

    config = offline_config(load_settings(str(EMPTY_ENV)), "replay", recording)  # as replay
    closed: list[TrackedOpportunity] = []
    result = replay_lines(
        iter_lines(recording), config, lambda _signal: None, on_closed=closed.append
    )
    body = {
        "lines": result.lines,
        "bad_lines": [str(error) for error in result.bad_lines],
        "stats": result.pipeline.stats.to_dict(),
        "closed_opportunities": [tracked.to_dict() for tracked in closed],
    }
    return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def outputs(name: str) -> dict[Path, bytes]:
    """The golden files of ``name`` as the current code produces them."""
    recording = RECORDINGS[name]
    return {
        GOLDEN / f"{name}.signals.jsonl": replay_signals(recording),
        GOLDEN / f"{name}.stats.json": replay_stats(recording),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="renew the golden files")
    parser.add_argument("--stats-of", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stats_of is not None:
        sys.stdout.buffer.write(_stats_of(args.stats_of))
        return 0
    differ = 0
    for name in RECORDINGS:
        for path, produced in outputs(name).items():
            if args.write:
                path.write_bytes(produced)
                print(f"wrote {path.relative_to(ROOT)} ({len(produced)} bytes)")
            elif not path.is_file() or path.read_bytes() != produced:
                differ += 1
                print(f"DIFFERS: {path.relative_to(ROOT)}", file=sys.stderr)
            else:
                print(f"same: {path.relative_to(ROOT)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
