"""The one-way layout (issue 12), checked on the source with `ast`: no import cycles (imports inside
functions included), the sandbox imports nothing of minicnn, the assignments never import the
grader, nobody imports another package's underscore names, no module over 600 lines.

Each rule is first shown to catch a made-up violation, so that a rule that cannot fail is caught.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import layout_rules as rules

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minicnn"
MAX_LINES = 600
EXEMPT = ("kernels/loops.py",)   # the teaching loops: one plain loop per formula, kept in one file


def made_up(**modules):
    """A small tree: module name -> source; names ending in '/' are packages (their __init__)."""
    return {name.rstrip("/"): (src, name.endswith("/")) for name, src in modules.items()}


# ------------------------------------------------------------------ the rules catch what they should

def test_a_cycle_through_a_function_level_import_is_found():
    tree = made_up(**{"minicnn/": "", "minicnn.course/": "",
                      "minicnn.course.checks": "def parts():\n    from . import parts\n    return parts\n",
                      "minicnn.course.parts": "from .checks import Part\n"})
    found = rules.cycles(rules.graph(tree))
    assert found == ["minicnn.course.checks -> minicnn.course.parts -> minicnn.course.checks"]


def test_a_longer_cycle_and_a_self_import_are_found_and_a_chain_is_not():
    tree = made_up(**{"minicnn/": "", "minicnn.a": "import minicnn.b\n", "minicnn.b": "from minicnn import c\n",
                      "minicnn.c": "from . import a\n", "minicnn.d": "import minicnn.d\n",
                      "minicnn.e": "from minicnn import a\n"})
    found = rules.cycles(rules.graph(tree))
    assert sorted(found) == ["minicnn.a -> minicnn.b -> minicnn.c -> minicnn.a", "minicnn.d -> minicnn.d"]
    chain = made_up(**{"minicnn/": "from .b import f\n", "minicnn.b": "from .c import g\n", "minicnn.c": "x = 1\n"})
    assert rules.cycles(rules.graph(chain)) == []


def test_the_sandbox_importing_minicnn_is_found():
    tree = made_up(**{"minicnn/": "", "minicnn.kernels/": "", "minicnn.sandbox/": "",
                      "minicnn.sandbox.limits": "import os\nfrom ..sandbox import wire\n",
                      "minicnn.sandbox.wire": "def f():\n    import minicnn.kernels\n"})
    found = rules.imports_outside(rules.graph(tree), "minicnn.sandbox")
    assert found == ["minicnn.sandbox.wire (line 2) imports minicnn.kernels"]


def test_the_assignments_importing_the_grader_is_found():
    tree = made_up(**{"minicnn/": "", "minicnn.course/": "", "minicnn.grader/": "",
                      "minicnn.grader.plan": "from minicnn.course import checks\n",
                      "minicnn.course.checks": "x = 1\n",
                      "minicnn.course.a1": "from ..grader.plan import spec\n"})
    g = rules.graph(tree)
    assert rules.imports_into(g, "minicnn.course", "minicnn.grader") == [
        "minicnn.course.a1 (line 1) imports minicnn.grader.plan"]
    assert rules.imports_into(g, "minicnn.grader", "minicnn.sandbox") == []


def test_underscore_imports_across_packages_are_found_and_within_a_package_allowed():
    tree = made_up(**{"minicnn/": "", "minicnn._checks": "", "minicnn.conv": "from ._checks import _as_int\n",
                      "minicnn.cuda/": "", "minicnn.cuda._target": "",
                      "minicnn.cuda.ops": "from .._checks import as_array\nfrom ._target import cuda\n"
                                          "from minicnn.conv import _bias, conv2d\n",
                      "minicnn.course/": "", "minicnn.course.gpu": "from minicnn.cuda._target import simulator\n"})
    found = sorted(rules.private_imports(rules.graph(tree), tree))
    assert found == [
        "minicnn.course.gpu (line 1) imports private module minicnn.cuda._target",
        "minicnn.cuda.ops (line 1) imports private module minicnn._checks",
        "minicnn.cuda.ops (line 3) imports private name _bias from minicnn.conv",
    ]


def test_a_long_module_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "short.py").write_text("x = 1\n" * 10)
    (pkg / "sub" / "long.py").write_text("x = 1\n" * 11)
    (pkg / "loops.py").write_text("x = 1\n" * 50)
    assert rules.long_modules(pkg, 10, exempt=("loops.py",)) == ["sub/long.py: 11 lines"]


# ------------------------------------------------------------------ the real package keeps them

@pytest.fixture(scope="module")
def tree():
    return rules.read_tree(PACKAGE)


@pytest.fixture(scope="module")
def imports(tree):
    return rules.graph(tree)


def test_the_graph_sees_the_real_imports(imports):
    # a guard against a reader that silently sees nothing
    assert any(e.target == "minicnn.conv" for e in imports["minicnn"])
    assert sum(len(edges) for edges in imports.values()) > 50


def test_no_import_cycles_in_minicnn(imports):
    assert rules.cycles(imports) == []


def test_the_sandbox_imports_nothing_of_minicnn(tree, imports):
    assert "minicnn.sandbox" in tree, "the sandbox package is missing"
    assert rules.imports_outside(imports, "minicnn.sandbox") == []


def test_the_assignments_never_import_the_grader(tree, imports):
    assert "minicnn.course" in tree and "minicnn.grader" in tree
    assert rules.imports_into(imports, "minicnn.course", "minicnn.grader") == []


def test_no_underscore_names_from_another_package(tree, imports):
    assert rules.private_imports(imports, tree) == []


def test_benchmarks_use_public_names_only(tree):
    bench = {rules.module_name(p, ROOT / "benchmarks"): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
             for p in sorted((ROOT / "benchmarks").rglob("*.py"))}
    both = {**tree, **bench}
    g = rules.graph(both)
    found = [v for v in rules.private_imports(g, both) if v.startswith("benchmarks")]
    assert found == []


def test_no_module_over_600_lines():
    assert rules.long_modules(PACKAGE, MAX_LINES, exempt=EXEMPT) == []
