"""minicnn.geometry: the one geometry that the CPU ops, the CUDA ops and the op table share."""
import ast
import doctest
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn import geometry
from minicnn.geometry import ConvGeometry, PoolGeometry, conv_geometry, conv_transpose_geometry, pool_geometry

PACKAGE = Path(minicnn.__file__).parent


def test_conv_geometry_fields_follow_the_output_formula():
    g = conv_geometry("conv2d", (2, 3, 17, 12), (4, 3, 3, 5), (2, 1), (1, 2), (1, 2))
    assert isinstance(g, ConvGeometry)
    assert (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw) == (3, 5, 2, 1, 1, 2, 1, 2)
    assert (g.out_h, g.out_w) == ((17 + 2 - 2 - 1) // 2 + 1, (12 + 4 - 8 - 1) // 1 + 1)
    assert all(type(v) is int for v in g), g   # plain ints: Numba types the tuple as ints


def test_conv_geometry_same_padding_and_names_in_errors():
    assert conv_geometry("conv2d", (1, 1, 9, 9), (1, 1, 5, 5), 1, "same", 1)[4:6] == (2, 2)
    with pytest.raises(ValueError, match=r"correlate2d: image has 2 channels .* kernel expects 3"):
        conv_geometry("correlate2d", (1, 2, 5, 5), (1, 3, 3, 3), 1, 0, 1, names=("image", "kernel"))


def test_transposed_geometry_matches_the_output_size_function():
    g = conv_transpose_geometry("conv_transpose2d", (2, 3, 5, 6), (3, 4, 3, 3), 2, 1, 1, 1)
    assert (g.out_h, g.out_w) == minicnn.conv_transpose_output_size((5, 6), 3, 2, 1, 1)
    assert minicnn.conv_transpose2d(np.ones((2, 3, 5, 6)), np.ones((3, 4, 3, 3)), None, 2, 1, 1).shape[2:] == (
        g.out_h, g.out_w)


def test_pool_geometry_is_a_named_tuple_with_default_stride():
    g = pool_geometry("max_pool2d", (2, 3, 9, 8), (3, 2), None, (1, 0))
    assert isinstance(g, PoolGeometry)
    assert g == PoolGeometry(3, 2, 3, 2, 1, 0, (9 + 2 - 3) // 3 + 1, (8 - 2) // 2 + 1)
    assert minicnn.max_pool2d(np.ones((2, 3, 9, 8)), (3, 2), None, (1, 0)).shape[2:] == (g.out_h, g.out_w)
    with pytest.raises(ValueError, match=r"avg_pool2d: padding \(2, 0\) must be at most half the kernel_size"):
        pool_geometry("avg_pool2d", (1, 1, 8, 8), 3, 1, (2, 0))


def test_bias_vector_zeros_and_errors():
    np.testing.assert_array_equal(geometry.bias_vector(None, 3, np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\), one value per filter; got \(4,\)"):
        geometry.bias_vector(np.ones(4), 3, np.float64)
    with pytest.raises(ValueError, match="bias"):
        geometry.bias_vector(np.array([1.0, np.nan, 0.0]), 3, np.float64)


def test_padded_copies_only_when_padding():
    x = np.arange(6.0).reshape(1, 2, 3)
    assert geometry.padded(x, 0, 0) is x
    p = geometry.padded(x, 1, 0, -np.inf)
    assert p.shape == (1, 4, 3) and np.all(p[:, 0] == -np.inf) and np.array_equal(p[:, 1:3], x)
    assert minicnn.pad2d is geometry.pad2d and minicnn.conv.pad2d is geometry.pad2d


class _CountingWrites(np.ndarray):
    """An ndarray that counts assignments into it (out[...] = ...)."""
    writes = 0

    def __setitem__(self, key, value):
        type(self).writes += 1
        super().__setitem__(key, value)


def test_cropped_copies_once_and_never_onto_itself():
    rng = np.random.default_rng(0)
    xp = rng.standard_normal((2, 3, 7, 8))
    inner = xp[:, :, 1:6, 2:6]
    new = geometry.cropped(xp, 1, 2, (5, 4))
    assert np.array_equal(new, inner) and new.flags.c_contiguous and not np.shares_memory(new, xp)
    out = np.full((2, 3, 5, 4), np.nan).view(_CountingWrites)
    _CountingWrites.writes = 0
    assert geometry.cropped(xp, 1, 2, (5, 4), out) is out and np.array_equal(out, inner)
    assert _CountingWrites.writes == 1
    # a kernel that wrote straight into `out` (no padding): returned as it is, not copied onto itself
    direct = rng.standard_normal((2, 3, 5, 4)).view(_CountingWrites)
    before = np.array(direct)
    _CountingWrites.writes = 0
    assert geometry.cropped(direct, 0, 0, (5, 4), direct) is direct
    assert _CountingWrites.writes == 0 and np.array_equal(direct, before)


def test_docstring_examples_run():
    result = doctest.testmod(geometry, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0


def _imported_names(path):
    """(module, name) for every `from X import name` in the file, relative imports resolved
    against minicnn's package layout."""
    tree = ast.parse(path.read_text())
    package = ".".join(("minicnn",) + path.relative_to(PACKAGE).with_suffix("").parts)  # a/__init__ too
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:-node.level]
                base = ".".join(parts + ([base] if base else []))
            found += [(base, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("path", ["conv.py", "pool.py", "cuda/ops.py", "kernels/fast/__init__.py",
                                  "kernels/loop_row.py"])
def test_backends_take_the_geometry_from_the_public_module(path):
    """No backend reaches into another module's private geometry helpers (as cuda/ops.py once
    imported conv._bias, conv._conv_geometry and pool._pool_geometry)."""
    imported = _imported_names(PACKAGE / path)
    private = [(m, n) for m, n in imported if m.startswith("minicnn") and n.startswith("_")]
    assert not private, private
    source = (PACKAGE / path).read_text()
    assert "def _conv_geometry" not in source and "def _pool_geometry" not in source
    if path != "kernels/fast/__init__.py" and path != "kernels/loop_row.py":
        assert any(m == "minicnn.geometry" for m, _ in imported), imported


@pytest.mark.parametrize("bad, match", [
    (dict(stride=True), "stride must be an int"), (dict(stride=np.int64(1), padding=0.0), "padding"),
    (dict(dilation=True), "dilation must be an int"), (dict(padding=True), "padding"),
])
def test_a_remembered_geometry_never_lets_through_what_the_checks_refuse(bad, match):
    """conv_geometry remembers settings given as plain ints that passed (a training loop asks the same
    question every step); True == 1 and np.int64(1) == 1 as dict keys, so those must not hit the memory."""
    settings = dict(stride=1, padding=1, dilation=1)
    first = conv_geometry("conv2d", (2, 3, 9, 9), (4, 3, 3, 3), **settings)
    assert conv_geometry("conv2d", (2, 3, 9, 9), (4, 3, 3, 3), **settings) is first    # remembered
    with pytest.raises((TypeError, ValueError), match=match):
        conv_geometry("conv2d", (2, 3, 9, 9), (4, 3, 3, 3), **{**settings, **bad})


def test_a_remembered_geometry_is_per_shape_and_strictness():
    g = conv_geometry("conv2d", (1, 1, 8, 8), (1, 1, 3, 3), 2, 0, 1)
    assert g.out_h == 3
    with pytest.raises(ValueError, match="does not tile"):
        conv_geometry("conv2d", (1, 1, 8, 8), (1, 1, 3, 3), 2, 0, 1, strict=True)
    with pytest.raises(ValueError, match="channels"):
        conv_geometry("conv2d", (1, 2, 8, 8), (1, 1, 3, 3), 2, 0, 1)
    assert conv_geometry("conv2d", (1, 1, 9, 9), (1, 1, 3, 3), 2, 0, 1).out_h == 4
    assert conv_geometry("conv2d", (1, 1, 9, 9), (1, 1, 3, 3), 2, 1, 1).out_h == 5
