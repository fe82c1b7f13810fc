"""The package's import rules, read from the source with `ast` (nothing is imported or run).

A *module graph* maps every module of a tree to the modules it imports, with the line of each
import; imports inside functions count like top-level ones, because a cycle hidden in a function
is still a cycle (the import only moves to the first call).

The rules (issue 12, the brief's "Dependencies run one way"):
- no import cycle among the package's modules;
- the sandbox (`minicnn.sandbox`) imports nothing else of minicnn;
- the assignments (`minicnn.course`) never import the grader (`minicnn.grader`);
- no module imports an underscore name (a `_module` or a `_name`) that lives in another package.

Each rule is a function from a graph to a list of violations (strings), so that the tests can
show every rule failing on a small made-up tree as well as passing on the real one.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Edge:
    target: str        # the module imported ("minicnn.conv")
    names: tuple       # the names taken from it (empty for `import x`)
    line: int


def module_name(path: Path, root: Path) -> str:
    """minicnn/cuda/ops.py -> 'minicnn.cuda.ops'; minicnn/cuda/__init__.py -> 'minicnn.cuda'."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_tree(root: Path) -> dict:
    """{module name: (source text, is_package)} for every .py file under the package folder `root`."""
    return {module_name(p, root): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
            for p in sorted(root.rglob("*.py"))}


def package_of(module: str, is_package: bool) -> str:
    """The package a module belongs to: itself for a package's __init__, else its parent."""
    return module if is_package else module.rpartition(".")[0]


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = package_of(module, is_package).split(".")
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def graph(tree: dict, top: str = "minicnn") -> dict:
    """{module: [Edge, ...]} for the imports of `top`'s modules that stay inside `top`.

    `from pkg import name` is an edge to `pkg.name` when that is a module of the tree (a
    submodule imported by name), else to `pkg` itself."""
    out = {}
    for module, (source, is_package) in tree.items():
        edges = []
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == top or alias.name.startswith(top + "."):
                        edges.append(Edge(alias.name, (), node.lineno))
            elif isinstance(node, ast.ImportFrom):
                target = (_absolute(module, is_package, node.level, node.module) if node.level
                          else node.module or "")
                if not (target == top or target.startswith(top + ".")):
                    continue
                plain = []
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in tree:
                        edges.append(Edge(sub, (), node.lineno))
                    else:
                        plain.append(alias.name)
                if plain or not node.names:
                    edges.append(Edge(target, tuple(plain), node.lineno))
        out[module] = edges
    return out


def cycles(g: dict) -> list:
    """The import cycles: one per strongly connected component of the graph (Tarjan), shown as one
    concrete cycle 'a -> b -> ... -> a' through it; a component of one module counts only if it
    imports itself."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for e in g.get(v, ()):
            w = e.target
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or any(e.target == v for e in g.get(v, ())):
                found.append(_cycle_path(g, sorted(comp)))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def _cycle_path(g: dict, comp: list) -> str:
    """One concrete cycle through the first module of a strongly connected component."""
    members, start = set(comp), comp[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for e in g.get(v, ()):
                if e.target == start:
                    return " -> ".join(paths[v] + [start])
                if e.target in members and e.target not in paths:
                    paths[e.target] = paths[v] + [e.target]
                    nxt.append(e.target)
        frontier = nxt
    return " -> ".join(comp)


def imports_outside(g: dict, package: str, allowed=()) -> list:
    """Imports by modules of `package` of any module of the tree outside it (and outside `allowed`)."""
    out = []
    for module, edges in g.items():
        if module != package and not module.startswith(package + "."):
            continue
        for e in edges:
            inside = e.target == package or e.target.startswith(package + ".")
            if not inside and e.target not in allowed:
                out.append(f"{module} (line {e.line}) imports {e.target}")
    return out


def imports_into(g: dict, importer: str, forbidden: str) -> list:
    """Imports of `forbidden` (or its modules) by modules of `importer`."""
    out = []
    for module, edges in g.items():
        if module != importer and not module.startswith(importer + "."):
            continue
        for e in edges:
            if e.target == forbidden or e.target.startswith(forbidden + "."):
                out.append(f"{module} (line {e.line}) imports {e.target}")
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(g: dict, tree: dict) -> list:
    """Imports of an underscore module or name that lives in another package than the importer's."""
    out = []
    for module, edges in g.items():
        home = package_of(module, tree[module][1])
        for e in edges:
            parts = e.target.split(".")
            # the first underscore part of the target's path decides whose private thing it is
            for i, part in enumerate(parts):
                if _private(part):
                    owner = ".".join(parts[:i])
                    if owner != home:
                        out.append(f"{module} (line {e.line}) imports private module {e.target}")
                    break
            else:
                owner = e.target if e.target in tree and tree[e.target][1] else e.target.rpartition(".")[0]
                if e.target in tree and not tree[e.target][1]:
                    owner = e.target.rpartition(".")[0]
                for name in e.names:
                    if _private(name) and owner != home:
                        out.append(f"{module} (line {e.line}) imports private name {name} from {e.target}")
    return out


def long_modules(root: Path, limit: int, exempt=()) -> list:
    """Modules of more than `limit` lines, except those named in `exempt` (paths relative to root)."""
    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        n = len(p.read_text(encoding="utf-8").splitlines())
        if n > limit and rel not in exempt:
            out.append(f"{rel}: {n} lines")
    return out
