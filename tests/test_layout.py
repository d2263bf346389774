"""The house's rules, read from the code's own imports: which room may use which, and sizes.

arbwatch is one flow, raw frames → books → signals → subscribers → chat messages; these tests keep
its arrows pointing one way (``platforms → outbox/commands → routing/store → messages``), SQL in
the store, the chat libraries in ``bot/platforms/``, and modules small enough to read.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "detector")
MAX_BOT_LINES = 450

# Which parts of bot/ each part may import ("*": anything). A part is a package or a module.
ALLOWED: dict[str, set[str]] = {
    "bot.errors": set(),
    "bot.messages": {"bot.errors"},
    "bot.store": {"bot.errors", "bot.messages"},
    "bot.pacing": {"bot.store"},
    # Routing queues no more rows than each platform's rate can send before a signal expires.
    "bot.routing": {"bot.store", "bot.messages", "bot.pacing"},
    "bot.config": {"bot.errors"},
    "bot.commands": {"bot.errors", "bot.messages", "bot.store", "bot.config"},
    "bot.outbox": {"bot.errors", "bot.store", "bot.pacing"},
    "bot.platforms": {
        "bot.errors",
        "bot.messages",
        "bot.store",
        "bot.config",
        "bot.commands",
        "bot.outbox",
        "bot.pacing",
    },
    # The console says what the chat alerts say, in the same number formats.
    "bot.console": {"bot.messages"},
    "bot.demo": set(),
    # `arbwatch symbols`: settings in, the mapped market out
    "bot.symbols_cli": {"bot.config", "bot.errors"},
    "bot.app": {"*"},
    "bot.cli": {"*"},
}
PLATFORM_LIBRARIES = ("telegram", "discord")
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE FROM|CREATE|PRAGMA|BEGIN|COMMIT)\b")


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


MODULES = {name for name, _ in modules()}


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def runtime_imports(path: Path) -> set[str]:
    """Modules that ``path`` imports, anywhere but in ``if TYPE_CHECKING:`` blocks."""
    module = tree(path)
    typing_only = {
        id(inner)
        for node in ast.walk(module)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    found: set[str] = set()
    for node in ast.walk(module):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # ``from pkg import room`` imports the room, not the face's names.
            for alias in node.names:
                room = f"{node.module}.{alias.name}"
                found.add(room if room in MODULES else node.module)
    return found


def part_of(module: str) -> str:
    """``bot.store.history`` → ``bot.store``; ``bot.outbox`` → ``bot.outbox``."""
    return ".".join(module.split(".")[:2])


BOT_MODULES = [(name, path) for name, path in modules() if name.startswith("bot.")]


@pytest.mark.parametrize(("name", "path"), BOT_MODULES, ids=[n for n, _ in BOT_MODULES])
def test_each_part_of_bot_imports_only_what_lies_below_it(name: str, path: Path) -> None:
    part = part_of(name)
    allowed = ALLOWED[part]
    if "*" in allowed:
        return
    wrong = sorted(
        imported
        for imported in runtime_imports(path)
        if imported.startswith("bot.") and part_of(imported) not in allowed | {part}
    )
    assert wrong == [], f"{name} may not import {wrong}"


def test_no_import_cycles() -> None:
    graph = {
        name: {m for m in runtime_imports(path) if m.split(".")[0] in PACKAGES}
        for name, path in modules()
    }
    done: set[str] = set()

    def walk(node: str, trail: list[str]) -> None:
        if node in trail:
            cycle = [*trail[trail.index(node) :], node]
            # A package's face importing its own rooms is how a face works, not a cycle.
            if not all(b.startswith(a + ".") for a, b in itertools.pairwise(cycle)):
                pytest.fail("import cycle: " + " → ".join(cycle))
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            walk(nxt, [*trail, node])
        done.add(node)

    for name in graph:
        walk(name, [])


def test_rooms_import_their_siblings_not_their_own_face() -> None:
    for name, path in modules():
        if path.name == "__init__.py" or name.count(".") < 2:
            continue
        package = name.rsplit(".", 1)[0]
        assert package not in runtime_imports(path), f"{name} imports its own face {package}"


def test_detector_never_imports_bot_and_feeds_never_see_a_book() -> None:
    for name, path in modules():
        if name.startswith("detector"):
            assert not any(m.split(".")[0] == "bot" for m in runtime_imports(path)), name
    assert "detector.book" not in runtime_imports(ROOT / "detector" / "feeds.py")


@pytest.mark.parametrize(("name", "path"), BOT_MODULES, ids=[n for n, _ in BOT_MODULES])
def test_chat_libraries_only_in_platforms(name: str, path: Path) -> None:
    if name.startswith("bot.platforms"):
        return
    used = {m.split(".")[0] for m in runtime_imports(path)} & set(PLATFORM_LIBRARIES)
    assert not used, f"{name} imports {used}; only bot/platforms/ may"


@pytest.mark.parametrize(("name", "path"), BOT_MODULES, ids=[n for n, _ in BOT_MODULES])
def test_sql_only_in_the_store(name: str, path: Path) -> None:
    if name.startswith("bot.store"):
        return
    module = tree(path)
    calls = [
        ast.unparse(node)
        for node in ast.walk(module)
        if isinstance(node, ast.Attribute) and node.attr in ("execute", "executemany", "db")
    ]
    statements = [
        node.value
        for node in ast.walk(module)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value)
    ]
    assert calls == [] and statements == [], f"{name} runs SQL: {calls or statements}"


@pytest.mark.parametrize(("name", "path"), BOT_MODULES, ids=[n for n, _ in BOT_MODULES])
def test_bot_modules_stay_readable(name: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_BOT_LINES, f"{name} has {lines} lines; split it"
    assert ast.get_docstring(tree(path)), f"{name} has no docstring"
