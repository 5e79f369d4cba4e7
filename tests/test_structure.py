"""The shape of the package: no import cycles, short modules, no plug-in loading, and the layers.

The rules (from the project's issue): no import cycles among ``deepfake_lab`` modules, counting imports
inside functions too; no module over 600 lines; no ``importlib`` loading of code (locating a package's
files without importing it is allowed); a paper module (``gan``, ``cyclegan``, ``pix2pix``,
``faceswap``, ``animation/``) never imports ``lessons``, ``cli/``, ``importers/``, ``evaluation``,
``translate`` or ``app/``; the data layer (``data/``) never imports a lesson module, ``importers/``,
``cli/`` or ``app/``.

The tests read the source with :mod:`ast` and import nothing, so a module that no longer imports
still shows up here with its imports.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "deepfake_lab"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
MAX_LINES = 600

#: the papers, read beside their code: they import the building blocks, never the layers that use them
PAPER_MODULES = ("gan", "cyclegan", "pix2pix", "faceswap", "animation")
PAPER_MUST_NOT_IMPORT = ("lessons", "cli", "importers", "evaluation", "translate", "app")
DATA_LAYER = ("data",)
DATA_MUST_NOT_IMPORT = ("gan", "cyclegan", "pix2pix", "faceswap", "animation", "lessons", "importers", "cli",
                        "app")
#: ``importlib`` functions that locate or refresh the search for files and import nothing
IMPORTLIB_ALLOWED = ("importlib.util.find_spec", "importlib.invalidate_caches")


# --------------------------------------------------------------------------------------------
# Reading the package
# --------------------------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=1)
def _modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


@lru_cache(maxsize=None)
def _tree(name: str) -> ast.Module:
    path = _modules()[name]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_package(name: str) -> bool:
    return _modules()[name].name == "__init__.py"


def _resolve(importer: str, module: str | None, level: int) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in module ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not _is_package(importer):  # in a plain module, one dot is the package holding it
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _nearest_module(name: str) -> str | None:
    """``name`` if it is a module of the package, else the nearest enclosing one that is."""
    while name and name not in _modules():
        name = name.rpartition(".")[0]
    return name or None


@lru_cache(maxsize=None)
def imports_of(name: str) -> dict[str, int]:
    """The package modules that module ``name`` imports, anywhere in it (top level and inside functions),
    each with the line of its first import. ``from pkg import x`` counts as importing ``pkg.x`` when that is
    a module, else as importing ``pkg``."""
    found: dict[str, int] = {}

    def add(target: str | None, line: int) -> None:
        if target and target != name:
            found.setdefault(target, line)

    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _in_package(alias.name):
                    add(_nearest_module(alias.name), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(name, node.module, node.level)
            if not _in_package(source):
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                add(sub if sub in _modules() else _nearest_module(source), node.lineno)
    return found


def _where(name: str) -> str:
    return str(_modules()[name].relative_to(ROOT.parent))


# --------------------------------------------------------------------------------------------
# (a) no import cycles
# --------------------------------------------------------------------------------------------
def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the groups of modules that can all reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(graph[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def _shortest_cycle(graph: dict[str, list[str]], start: str, allowed: set[str]) -> list[str]:
    """A shortest import path from ``start`` back to itself, inside ``allowed`` (breadth-first)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in graph[node]:
                if child not in allowed:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    return [start]


def _graph() -> dict[str, list[str]]:
    return {name: sorted(imports_of(name)) for name in _modules()}


def _show_path(path: list[str]) -> str:
    steps = [f"{a} ({_where(a)}:{imports_of(a)[b]})" for a, b in zip(path, path[1:])]
    return " -> ".join(steps + [path[-1]])


def test_the_package_was_found():
    names = set(_modules())
    assert {f"{PACKAGE}.{m}" for m in ("gan", "cyclegan", "pix2pix", "faceswap", "lessons", "train")} <= names
    assert f"{PACKAGE}.cli" in names and _is_package(f"{PACKAGE}.cli")
    # the resolver itself: a relative import in a package's __init__ and in a plain module
    assert _resolve(f"{PACKAGE}.cli", "train", 1) == f"{PACKAGE}.cli.train"
    assert _resolve(f"{PACKAGE}.cli.train", "lessons", 2) == f"{PACKAGE}.lessons"
    assert _resolve(f"{PACKAGE}.gan", None, 1) == PACKAGE


def test_no_import_cycles():
    graph = _graph()
    cycles = []
    for group in _strongly_connected(graph):
        if len(group) > 1:
            cycles.append(f"{len(group)} modules import each other ({', '.join(group)}), e.g. "
                          + _show_path(_shortest_cycle(graph, group[0], set(group))))
    assert not cycles, "import cycles (counting imports inside functions):\n  " + "\n  ".join(cycles)


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": []}
    groups = [g for g in _strongly_connected(graph) if len(g) > 1]
    assert groups == [["a", "b", "c"]]
    assert _shortest_cycle(graph, "a", set(groups[0])) == ["a", "b", "c", "a"]


# --------------------------------------------------------------------------------------------
# (b) short modules
# --------------------------------------------------------------------------------------------
def test_no_module_over_600_lines():
    long = {_where(n): len(p.read_text(encoding="utf-8").splitlines()) for n, p in _modules().items()}
    long = {where: n for where, n in long.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: " + ", ".join(f"{w} ({n})" for w, n in sorted(long.items()))


# --------------------------------------------------------------------------------------------
# (c) no plug-in loading
# --------------------------------------------------------------------------------------------
def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def importlib_uses(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, what) for every use of ``importlib`` or ``__import__`` in a module, each spelled in full
    (``importlib.util.find_spec``; ``from importlib import import_module`` counts as ``importlib.import_module``)."""
    aliases: dict[str, str] = {}  # local name -> what it is in importlib
    uses: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "importlib":
                    local = alias.asname or alias.name.split(".")[0]
                    aliases[local] = alias.name if alias.asname else "importlib"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "importlib":
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                uses.append((node.lineno, f"{node.module}.{alias.name}"))
        elif isinstance(node, ast.Name) and node.id == "__import__":
            uses.append((node.lineno, "__import__"))
    if not aliases:
        return uses
    seen_inside: set[int] = set()  # Attribute nodes already counted as part of a longer chain
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in seen_inside:
            name = _dotted(node)
            inner = node.value
            while isinstance(inner, ast.Attribute):
                seen_inside.add(id(inner))
                inner = inner.value
            if name and name.split(".")[0] in aliases:
                head, _, rest = name.partition(".")
                uses.append((node.lineno, f"{aliases[head]}.{rest}"))
        elif isinstance(node, ast.Name) and node.id in aliases and isinstance(node.ctx, ast.Load):
            uses.append((node.lineno, aliases[node.id]))
    return uses


def _is_allowed(use: str) -> bool:
    return any(use == ok or ok.startswith(use + ".") for ok in IMPORTLIB_ALLOWED)


def test_no_importlib_loading():
    bad = []
    for name in _modules():
        for line, use in importlib_uses(_tree(name)):
            # a bare name (``importlib.util`` as the object of an attribute) is checked through its attribute
            if not _is_allowed(use):
                bad.append(f"{_where(name)}:{line}: {use}")
    assert not bad, ("importlib that loads code (only " + ", ".join(IMPORTLIB_ALLOWED) + " are allowed: they "
                     "locate files and import nothing); import the module by name instead:\n  " + "\n  ".join(bad))


def test_importlib_checker_tells_locating_from_loading():
    allowed = ast.parse("import importlib.util\nspec = importlib.util.find_spec('sklearn')\n")
    assert all(_is_allowed(u) for _, u in importlib_uses(allowed))
    for source in ("import importlib\nm = importlib.import_module('x')\n",
                   "from importlib import import_module\nm = import_module('x')\n",
                   "import importlib.util as u\ns = u.spec_from_file_location('x', 'x.py')\n",
                   "m = __import__('x')\n"):
        assert not all(_is_allowed(u) for _, u in importlib_uses(ast.parse(source))), source


# --------------------------------------------------------------------------------------------
# (d) the layers
# --------------------------------------------------------------------------------------------
def _part_of(name: str, top: tuple[str, ...]) -> bool:
    return any(name == f"{PACKAGE}.{t}" or name.startswith(f"{PACKAGE}.{t}.") for t in top)


def _forbidden_paths(sources: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    """For every module of ``sources``: the import chains (direct or through other modules) that reach
    a module of ``forbidden``, the shortest one per forbidden module."""
    graph = _graph()
    found = []
    for start in (n for n in graph if _part_of(n, sources)):
        parents = {start: None}
        frontier = [start]
        while frontier:  # breadth-first: the shortest chain to each module
            following = []
            for node in frontier:
                for child in graph[node]:
                    if child in parents:
                        continue
                    parents[child] = node
                    if _part_of(child, forbidden):
                        path = [child]
                        while parents[path[-1]] is not None:
                            path.append(parents[path[-1]])
                        found.append(_show_path(path[::-1]))
                    elif not _part_of(child, sources):
                        following.append(child)
            frontier = following
    return found


def test_paper_modules_do_not_import_the_layers_above():
    bad = _forbidden_paths(PAPER_MODULES, PAPER_MUST_NOT_IMPORT)
    assert not bad, ("a paper module imports (directly or through another module) what is built on it; move the "
                     "code to the layer that uses it:\n  " + "\n  ".join(bad))


def test_data_layer_imports_no_lesson_and_no_layer_above():
    bad = _forbidden_paths(DATA_LAYER, DATA_MUST_NOT_IMPORT)
    assert not bad, ("the data layer imports (directly or through another module) a lesson or a layer above "
                     "it:\n  " + "\n  ".join(bad))
