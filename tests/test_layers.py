"""The package's dependencies point one way: base ← engine ← trace ← library ← views ←
commands.  No module imports from a layer above its own — at the top, under
``if TYPE_CHECKING:`` or inside a function — and the imports form no cycle, whichever
kind they are (a function-level cycle is still two modules that cannot be understood
apart, and a type-only one is the same dependency with the check switched off).

Read from the source with ``ast``, so the test needs nothing imported.  The layer table
names top-level modules and packages of glassnet; a package stands for all its modules,
and a dotted entry (``"explain.document"``) places one module of a package apart from
the rest (the longest entry that covers a module wins).
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "glassnet"

#: Layer by module or package of glassnet (relative to ``glassnet``), lowest first.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "base",
        frozenset(
            {
                "errors",
                "limits",
                "fileio",
                "mathtree",
                "npz",
                "nodes",
                "specvalues",
                "toml_writer",
                "extras",
            }
        ),
    ),
    (
        "engine",
        frozenset(
            {
                "activations",
                "blas",
                "kernels",
                "losses",
                "layers",
                "init",
                "optim",
                "optimizers",
                "network",
                "step",
                "graphs",
            }
        ),
    ),
    ("trace", frozenset({"trace", "notation", "gradcheck", "graphs.bridge"})),
    (
        "library",
        frozenset(
            {
                "training",
                "model",
                "io",
                "data",
                "preprocess",
                "tables",
                "rawtable",
                "stream",
                "metrics",
                "runs",
                "plots",
                "interop",
                "spec",
                "sklearn",
                "parallel",
            }
        ),
    ),
    ("views", frozenset({"explain", "check", "render_terminal", "studio"})),
    ("commands", frozenset({"commands", "cli", "__main__"})),
)

#: Where to add a module the table does not place (said by every failure about one).
WHERE = f"add it to LAYERS in {Path(__file__).name} (a package's name covers its modules)"


def _modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of glassnet by dotted name (a package under its own name)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(("glassnet", *parts))] = path
    return out


MODULES = _modules()


def _entry(module: str) -> tuple[int, str] | None:
    """(layer index, table entry) of the longest entry covering ``glassnet.X...``; None
    for glassnet itself (the lazy facade) and for a module no entry covers."""
    parts = module.split(".")[1:]
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        for i, (_, names) in enumerate(LAYERS):
            if name in names:
                return i, name
    return None


def _layer(module: str) -> int:
    found = _entry(module)
    if found is None:
        raise AssertionError(f"{module} has no layer: {WHERE}")
    return found[0]


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported dotted name lives in: the name itself, or its longest
    prefix that is a module (``from glassnet.x import y`` may import an object y)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names (relative ones resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    # from . import x: in a package's __init__ "." is the package; elsewhere its parent
    drop = node.level - 1 if is_package else node.level
    base = base[: len(base) - drop]
    return ".".join([*base, node.module] if node.module else base)


def _imports(module: str, modules: dict[str, Path] = MODULES) -> list[tuple[str, int, str]]:
    """(imported module, line, how) of every glassnet import in ``module``: ``how`` is
    ``"top"``, ``"type-only"`` (under ``if TYPE_CHECKING:``) or ``"function"``.
    ``importlib.import_module("glassnet...")`` with a literal name counts too."""
    path = modules[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int, str]] = []

    def add(name: str, line: int, how: str) -> None:
        if name == "glassnet" or name.startswith("glassnet."):
            target = _resolve(name, modules)
            if target is not None:
                found.append((target, line, how))

    def visit(node: ast.AST, how: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = how
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                inner = "function" if how == "top" else how
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                # the else branch (if any) runs; the body is for type checkers only
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), "type-only")
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), how)
                continue
            if isinstance(child, ast.ImportFrom):
                base = _absolute(child, module, is_package)
                add(base, child.lineno, how)
                for alias in child.names:  # a name imported may be a submodule
                    if alias.name != "*" and f"{base}.{alias.name}" in modules:
                        add(f"{base}.{alias.name}", child.lineno, how)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child.lineno, how)
            elif (
                isinstance(child, ast.Call)
                and ast.unparse(child.func).endswith("import_module")
                and child.args
                and isinstance(child.args[0], ast.Constant)
                and isinstance(child.args[0].value, str)
            ):
                add(child.args[0].value, child.lineno, how)
            visit(child, inner)

    visit(tree, "top")
    return found


def _graph(modules: dict[str, Path] = MODULES) -> dict[str, dict[str, tuple[int, str]]]:
    """module -> {module it imports: (line, how)}.  Importing ``glassnet.p.m`` runs the
    package ``glassnet.p`` first, so it depends on that package too — except from
    inside ``p``, where the package is already being imported (its own parents are not
    dependencies of a module, they are where it lives)."""
    graph: dict[str, dict[str, tuple[int, str]]] = {}
    for module in modules:
        deps: dict[str, tuple[int, str]] = {}
        for target, line, how in _imports(module, modules):
            chain = [target]
            while "." in chain[-1]:
                chain.append(chain[-1].rpartition(".")[0])
            for t in chain:
                if t == module or module.startswith(t + ".") or t == "glassnet":
                    continue
                deps.setdefault(t, (line, how))
        graph[module] = deps
    return graph


def test_the_table_lists_only_real_modules():
    """Every entry names a module or package that exists (no stale names)."""
    stale = [
        f"{layer}: {name}"
        for layer, names in LAYERS
        for name in sorted(names)
        if f"glassnet.{name}" not in MODULES
    ]
    assert not stale, f"LAYERS lists modules that do not exist: {stale}"


def test_no_entry_is_in_two_layers():
    seen: dict[str, str] = {}
    twice = []
    for layer, names in LAYERS:
        for name in names:
            if name in seen:
                twice.append(f"{name} ({seen[name]} and {layer})")
            seen[name] = layer
    assert not twice, f"listed in two layers: {twice}"


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if m != "glassnet" and _entry(m) is None]
    assert not missing, f"modules with no layer: {missing}: {WHERE}"


def test_no_import_points_up():
    upward = []
    graph = _graph()
    for module in MODULES:
        if module == "glassnet":
            continue
        mine = _layer(module)
        for target, (line, how) in graph[module].items():
            theirs = _layer(target)
            if theirs > mine:
                upward.append(
                    f"{MODULES[module].relative_to(ROOT.parent)}:{line} {module} "
                    f"({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]}, {how})"
                )
    assert not upward, "imports from a higher layer:\n" + "\n".join(sorted(set(upward)))


def _cycles(graph: dict[str, dict[str, tuple[int, str]]]) -> list[tuple[list[str], list[str]]]:
    """(the group, one cycle through it, first module = last) for each group of modules
    that import each other round in circles (each strongly connected component), so one
    run names them all."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[set[str]] = []

    def connect(m: str) -> None:  # Tarjan's algorithm
        index[m] = low[m] = len(index)
        stack.append(m)
        on.add(m)
        for d in sorted(graph.get(m, {})):
            if d not in index:
                connect(d)
                low[m] = min(low[m], low[d])
            elif d in on:
                low[m] = min(low[m], index[d])
        if low[m] == index[m]:
            group = set()
            while True:
                d = stack.pop()
                on.discard(d)
                group.add(d)
                if d == m:
                    break
            if len(group) > 1:
                groups.append(group)

    for m in sorted(graph):
        if m not in index:
            connect(m)
    return [(sorted(g), _circle(graph, g)) for g in groups]


def _circle(graph: dict[str, dict[str, tuple[int, str]]], group: set[str]) -> list[str]:
    """A shortest way from the group's first module round back to it, inside the group."""
    start = min(group)
    paths = {start: [start]}
    todo = [start]
    while todo:
        m = todo.pop(0)
        for d in sorted(graph[m]):
            if d == start:
                return [*paths[m], start]
            if d in group and d not in paths:
                paths[d] = [*paths[m], d]
                todo.append(d)
    raise AssertionError(f"no cycle in {group}")  # a component always has one


def test_no_import_cycles():
    """No cycle through any imports: top-level, type-only or inside functions."""
    graph = _graph()
    # glassnet itself only names everything for the lazy facade (and type checkers)
    graph.pop("glassnet", None)
    found = [
        f"among {', '.join(group)}, e.g.:\n"
        + "\n".join(
            f"  {a} -> {b} (line {graph[a][b][0]}, {graph[a][b][1]})"
            for a, b in itertools.pairwise(cycle)
        )
        for group, cycle in _cycles(graph)
    ]
    assert not found, "import cycles:\n" + "\n\n".join(found)


def test_docs_show_this_table():
    """docs/engine.md's table of layers is this one (so the page says what is enforced)."""
    doc = (ROOT.parents[1] / "docs" / "engine.md").read_text()
    section = doc.split("## Layers of the package", 1)[1]
    shown = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] in {name for name, _ in LAYERS}:
            names = re.sub(r"\([^)]*\)", "", cells[1])  # (words in brackets) are notes
            shown[cells[0]] = frozenset(m.strip().strip("`") for m in names.split(","))
    assert shown == dict(LAYERS), "update the table in docs/engine.md to match LAYERS"


# -- the test's own reading, on made-up sources -----------------------------------------


def test_the_reader_finds_every_kind_of_import(tmp_path):
    """The reader sees top-level, type-only, function-level, relative and
    ``importlib.import_module`` imports, and names which kind each is."""
    pkg = tmp_path / "glassnet"
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__.py", "b.py", "c.py", "d.py", "e.py", "sub/__init__.py"):
        (pkg / name).write_text("")
    (pkg / "a.py").write_text("from glassnet.sub.m import x\n")
    (pkg / "sub" / "m.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import importlib\n"
        "from glassnet.a import thing\n"
        "if TYPE_CHECKING:\n"
        "    from glassnet.b import Type\n"
        "def f():\n"
        "    from glassnet import c\n"
        "    return importlib.import_module('glassnet.d')\n"
        "from .. import e\n"
    )
    modules = _modules(pkg)
    got = {(t, how) for t, _, how in _imports("glassnet.sub.m", modules)}
    assert got >= {
        ("glassnet.a", "top"),
        ("glassnet.b", "type-only"),
        ("glassnet.c", "function"),
        ("glassnet.d", "function"),
        ("glassnet.e", "top"),
    }
    graph = _graph(modules)
    # the package a module lives in is where it is, not a dependency ...
    assert "glassnet.sub" not in graph["glassnet.sub.m"]
    # ... but importing a package's module from outside runs the package first
    assert set(graph["glassnet.a"]) == {"glassnet.sub", "glassnet.sub.m"}
    assert _cycles(graph) == [
        (["glassnet.a", "glassnet.sub.m"], ["glassnet.a", "glassnet.sub.m", "glassnet.a"])
    ]


def test_the_cycle_finder_sees_function_level_cycles():
    graph = {
        "glassnet.w": {"glassnet.e": (1, "function")},
        "glassnet.e": {"glassnet.s": (1, "top")},
        "glassnet.s": {"glassnet.w": (1, "top")},
        "glassnet.z": {},
    }
    group = ["glassnet.e", "glassnet.s", "glassnet.w"]
    assert _cycles(graph) == [(group, [*group, "glassnet.e"])]
    assert _cycles({"glassnet.a": {"glassnet.b": (1, "top")}, "glassnet.b": {}}) == []


def test_a_package_entry_covers_its_modules_and_a_dotted_one_wins():
    assert _entry("glassnet.check.marking") == (_layer("glassnet.check"), "check")
    assert _entry("glassnet.nowhere") is None
    with pytest.raises(AssertionError, match="add it to LAYERS"):
        _layer("glassnet.nowhere.deep")
    table = (("low", frozenset({"explain.document"})), ("high", frozenset({"explain"})))
    old = globals()["LAYERS"]
    try:
        globals()["LAYERS"] = table
        assert _entry("glassnet.explain.document") == (0, "explain.document")
        assert _entry("glassnet.explain.sections") == (1, "explain")
    finally:
        globals()["LAYERS"] = old
