"""Build arbwatch with its detector core compiled by mypyc, or in pure Python where it cannot be.

The metadata is in ``pyproject.toml``; this file only adds the compiled core. The modules below
are the per-frame hot path (decoding, books, analyzer, detectors). mypyc compiles them from the
same type-checked sources into C extensions that sit beside the ``.py`` files: same results
(the golden outputs are checked against both builds), a frame for about two thirds of the cost.

Whatever stops the compiled build (no C compiler, no Python headers, mypyc missing or failing)
leaves the pure-Python package, which works the same, with one clear line saying so. Set
``ARBWATCH_PURE_PYTHON=1`` to skip the compiled build on purpose.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = [
    "detector/aggregator.py",
    "detector/analyzer.py",
    "detector/book.py",
    "detector/opportunity.py",
    "detector/pipeline.py",
    "detector/processor.py",
    "detector/recording.py",
    "detector/symbols.py",
    "detector/signals/arbitrage.py",
    "detector/signals/confidence.py",
    "detector/signals/funding.py",
    "detector/signals/momentum.py",
    "detector/signals/spread.py",
    "detector/signals/volume.py",
    "detector/venues/_fields.py",
    "detector/venues/okx.py",
]
"""The modules compiled by mypyc; ``detector.core_build()`` tells at run time which build runs.

Binance's and Bybit's parsers stay pure Python: compiled, their frames cost more (0.3 to 1 µs a
frame: the typed Structs they decode into are built faster by msgspec in pure modules)."""

GROUP = "detector.core"
"""The compiled modules share one library, ``detector/core__mypyc``, inside the package."""
FALLBACK = "arbwatch: the compiled detector core was not built ({reason}); using pure Python"


def _say_fallback(reason: str) -> None:
    print(FALLBACK.format(reason=reason), file=sys.stderr)


def _remove_inplace_builds() -> None:
    """Remove an earlier compiled build from the source tree, which would shadow the sources."""
    root = Path(__file__).resolve().parent
    for source in [*COMPILED, GROUP.replace(".", "/") + "__mypyc.py"]:
        path = root / source
        for built in path.parent.glob(f"{path.stem}.*"):
            if built.suffix in (".so", ".pyd"):
                built.unlink()


class OptionalBuildExt(build_ext):
    """``build_ext`` that leaves the pure-Python package when the compiled core fails to build."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any compiler or mypyc failure: the pure package still works
            self._remove_outputs()
            _say_fallback(f"{type(exc).__name__}: {exc}".splitlines()[0])
            return
        # An extension found up to date is copied with its old time; the build is as new as the
        # sources it just checked (``detector.stale_core_modules()`` compares the two).
        for ext in self.extensions:
            for path in {self.get_ext_fullpath(ext.name), self._inplace_path(ext.name)}:
                if Path(path).exists():
                    os.utime(path)

    def _remove_outputs(self) -> None:
        # A half-built core would mix compiled and pure modules of one group: remove all of it.
        for ext in self.extensions:
            for path in (self.get_ext_fullpath(ext.name), self._inplace_path(ext.name)):
                Path(path).unlink(missing_ok=True)

    def _inplace_path(self, name: str) -> str:
        inplace, self.inplace = self.inplace, True
        try:
            return str(self.get_ext_fullpath(name))
        finally:
            self.inplace = inplace


def _extensions() -> list[Any]:
    """The compiled core's extensions; none, said and with an earlier build removed, when the
    core is not to be compiled or mypyc cannot."""
    if os.environ.get("ARBWATCH_PURE_PYTHON", "").strip() not in ("", "0"):
        reason = "ARBWATCH_PURE_PYTHON is set"
    else:
        try:
            from mypyc.build import mypycify

            return list(mypycify(COMPILED, opt_level="3", debug_level="0", group_name=GROUP))
        except ImportError as exc:
            reason = f"mypyc is not installed: {exc}"
        except BaseException as exc:  # mypyc exits via SystemExit on a type error
            reason = f"mypyc failed: {type(exc).__name__}: {exc}".splitlines()[0]
    _say_fallback(reason)
    _remove_inplace_builds()
    return []


if __name__ == "__main__":  # how pip's build backend runs it; tests import it
    setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
