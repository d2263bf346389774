"""arbwatch detector: raw exchange frames in, order books, opportunities and signals out.

Its hot path may run compiled: ``pip install`` builds it with mypyc where it can (see
``setup.py``), as C extensions beside the sources, which Python imports before the ``.py`` files.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _extensions() -> list[Path]:
    """The compiled modules found in the package (the shared ``core__mypyc`` library left out)."""
    found: set[Path] = set()
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:  # they overlap: ".abi3.so", ".so"
        found.update(p for p in _PACKAGE.rglob(f"*{suffix}") if "__mypyc" not in p.name)
    return sorted(found)


def _source_of(extension: Path) -> Path:
    return extension.with_name(extension.name.split(".", 1)[0] + ".py")


def core_build() -> str:
    """``compiled (mypyc)`` when the detector's hot path runs compiled, else ``pure Python``."""
    from detector import book

    compiled = book.__file__ is not None and not book.__file__.endswith(".py")
    return "compiled (mypyc)" if compiled else "pure Python"


def stale_core_modules() -> list[str]:
    """Sources edited since the compiled core was built: Python would still run the old build.

    Empty for an installed package and for a pure-Python one. ``make test`` rebuilds when this
    is not empty; the test suite refuses to run a stale build.
    """
    return [
        str(_source_of(ext).relative_to(_PACKAGE.parent))
        for ext in _extensions()
        if _source_of(ext).exists() and _source_of(ext).stat().st_mtime > ext.stat().st_mtime
    ]
