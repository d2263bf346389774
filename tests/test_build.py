"""The compiled detector core: both builds give the same results, and a failed build falls back.

``setup.py`` compiles the hot path with mypyc; when it cannot, the pure-Python package is left,
with one line saying why. The suite runs against whichever build is installed (its header says
which); here the other one is checked too.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from setuptools import Distribution, Extension

import detector

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_script = _load(ROOT / "setup.py", "arbwatch_setup")
golden = _load(ROOT / "scripts" / "golden.py", "golden_for_build")


def _pure_copy(where: Path) -> Path:
    """The ``detector`` and ``bot`` packages' sources, without any compiled module."""
    for package in ("detector", "bot"):
        shutil.copytree(
            ROOT / package,
            where / package,
            ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"),
        )
    return where


def test_every_compiled_module_is_a_detector_source() -> None:
    for source in build_script.COMPILED:
        assert (ROOT / source).is_file(), source
        assert source.startswith("detector/"), "only the detector core is compiled"


def test_the_pure_python_build_gives_the_golden_outputs_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if detector.core_build() == "pure Python":
        pytest.skip("the core under test is pure Python already: test_golden covers it")
    pure = _pure_copy(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(pure))
    # The replays below run ``arbwatch`` with this environment: that process runs pure Python.
    arbwatch = Path(sys.executable).parent / "arbwatch"
    version = subprocess.run(
        [str(arbwatch), "--version"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert version.stdout.strip().endswith("(detector core: pure Python)")
    for name in sorted(golden.RECORDINGS):
        for path, produced in golden.outputs(name).items():
            assert produced == path.read_bytes(), f"{path.name}: the pure build differs"


def test_a_failed_compile_leaves_the_pure_package_with_one_clear_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A broken C file stands in for a missing compiler: build_ext fails the same way.
    (tmp_path / "broken.c").write_text("this is not C\n")
    dist = Distribution(
        {
            "name": "broken",
            "ext_modules": [Extension("broken", [str(tmp_path / "broken.c")])],
            "cmdclass": {"build_ext": build_script.OptionalBuildExt},
        }
    )
    command = dist.get_command_obj("build_ext")
    command.build_lib = str(tmp_path / "lib")
    command.build_temp = str(tmp_path / "temp")
    dist.run_command("build_ext")
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("arbwatch:")]
    assert len(lines) == 1
    assert lines[0].startswith("arbwatch: the compiled detector core was not built (CompileError")
    assert lines[0].endswith("; using pure Python")
    assert not list(tmp_path.rglob("broken*.so"))


def test_asking_for_pure_python_skips_the_compiled_build(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ARBWATCH_PURE_PYTHON", "1")
    removed: list[bool] = []
    monkeypatch.setattr(build_script, "_remove_inplace_builds", lambda: removed.append(True))
    assert build_script._extensions() == []
    assert capsys.readouterr().err.strip() == (
        "arbwatch: the compiled detector core was not built "
        "(ARBWATCH_PURE_PYTHON is set); using pure Python"
    )
    assert removed == [True], "an earlier compiled build must not shadow the pure sources"


def test_a_source_edited_after_the_build_is_reported_stale(tmp_path: Path) -> None:
    package = tmp_path / "detector"
    package.mkdir()
    shutil.copy(ROOT / "detector" / "__init__.py", package / "__init__.py")
    source = package / "book.py"
    built = package / f"book{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    source.write_text("")
    built.write_bytes(b"")
    os.utime(source, (1_000, 1_000))
    os.utime(built, (2_000, 2_000))
    code = "import detector; print(detector.stale_core_modules())"
    run = [sys.executable, "-c", code]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    kwargs = {"capture_output": True, "text": True, "env": env, "cwd": tmp_path}
    assert subprocess.run(run, **kwargs).stdout.strip() == "[]"
    os.utime(source, (3_000, 3_000))
    stale = subprocess.run(run, **kwargs).stdout.strip()
    assert stale == "['detector/book.py']"
