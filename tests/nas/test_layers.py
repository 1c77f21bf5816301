"""The layers of ``nas/`` are its folders, and each imports only the layers below it.

Read from the code's own imports (every ``import`` and ``from ... import``, at module
level or inside a function), so a deferred import cannot hide an arrow that runs back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAYERS = (
    "core",
    "data",
    "kinds",
    "tasks",
    "strategies",
    "storage",
    "training",
    "export",
    "engine",
    "analysis",
    "testing",
    "cli",
)
"""Bottom to top. ``cli`` is ``nas/cli/`` and ``nas/__main__.py``; ``testing`` holds the
conformance suites a plugin's own tests run."""

PLUGINS = ("search_spaces", "baselines")
"""Found by name (``load_space``, ``load_seed``); they import only ``nas.core``."""

PLUGINS_IMPORTED_BY_NAS = {
    "nas/cli/baseline.py": {"baselines"},
    "nas/engine/experiment.py": {"baselines", "search_spaces"},
    "nas/engine/fidelity.py": {"baselines"},
    "nas/engine/search.py": {"baselines"},
    "nas/training/evaluate.py": {"baselines"},
}
"""Where ``nas/`` still names a plugin package directly (the seeds' and pre-trained
weights' registry, the list of built-in spaces): not to grow."""


def _layer(path: Path) -> str:
    parts = path.relative_to(ROOT / "nas").parts
    return parts[0] if len(parts) > 1 else "cli"


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports: ``from a.b import c`` is ``a.b.c`` when that is a
    module, else ``a.b``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if _is_module(full) else node.module)
    return found


def _nas_modules() -> list[Path]:
    return sorted((ROOT / "nas").rglob("*.py"))


def test_every_module_of_nas_is_in_a_layer():
    assert {_layer(p) for p in _nas_modules()} <= set(LAYERS)
    top = {p.name for p in (ROOT / "nas").glob("*.py")}
    assert top == {"__main__.py"}, "a module belongs in a layer's folder"


def test_each_layer_imports_only_the_layers_below_it():
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for path in _nas_modules():
        own = rank[_layer(path)]
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "nas" or len(parts) < 2 or parts[1] not in rank:
                continue
            if rank[parts[1]] > own:
                upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert upward == []


def test_plugins_import_only_the_core_and_nas_names_them_only_where_listed():
    wrong = []
    for package in PLUGINS:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "nas" and (len(parts) < 2 or parts[1] != "core"):
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    for path in _nas_modules():
        named = {n.split(".")[0] for n in _imports(path)} & set(PLUGINS)
        allowed = PLUGINS_IMPORTED_BY_NAS.get(path.relative_to(ROOT).as_posix(), set())
        if named - allowed:
            wrong.append(f"{path.relative_to(ROOT)} imports {sorted(named - allowed)}")
    assert wrong == []


def test_no_module_imports_a_module_that_imports_it_back():
    graph: dict[str, set[str]] = {}
    for path in _nas_modules():
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[module] = {n for n in _imports(path) if n.startswith("nas.")}
    modules = set(graph)
    graph = {m: {n for n in deps if n in modules and n != m} for m, deps in graph.items()}
    cycles = []
    for start in graph:
        stack, seen = [(start, (start,))], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" -> ".join((*trail, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*trail, nxt)))
    assert cycles == []


MAX_LINES = 600


def test_no_module_is_longer_than_a_reader_can_hold():
    long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for package in ("nas", *PLUGINS)
        for path in sorted((ROOT / package).rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert long == [], f"split these into modules of at most {MAX_LINES} lines"


def test_the_tests_mirror_the_packages():
    """A test of ``nas/<package>/`` lives in ``tests/nas/<package>/``; only this file, which
    checks the whole package, sits at the top."""
    tests = ROOT / "tests" / "nas"
    packages = {p.name for p in (ROOT / "nas").iterdir() if (p / "__init__.py").is_file()}
    folders = {p.name for p in tests.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= packages, f"test folders without a package: {sorted(folders - packages)}"
    assert [p.name for p in tests.glob("test_*.py")] == [Path(__file__).name]
