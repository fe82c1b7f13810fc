"""Would the tests notice a missing cuda.syncthreads() in the tiled convolution?

The tiled kernel has two barriers per input channel:
  (1) after the cooperative load: a thread's window holds cells that OTHER threads loaded;
  (2) after the multiply-adds: the next channel's load must not overwrite cells that
      slower threads are still reading.
A test cannot remove a barrier from the real kernel, so this one builds *mutants*:
the kernel's own source with one barrier deleted (a mutation test), runs them and the
real kernel on the same data, and requires the mutants to be caught (wrong output)
while the real kernel is right.

What this shows, honestly: on the simulator, threads are Python threads started one
after another, and between two barriers each one tends to run a long stretch before
the next gets the interpreter.  So the first thread reads its window before its
neighbours have loaded it (mutant 1 reads zeros), and after barrier (1) releases, the
first thread to wake computes channel c and overwrites the tile with channel c+1
while the others have not yet read channel c (mutant 2).  That makes the race
visible - but the simulator does not *detect* races; it only makes these two likely
to show.  On a real GPU a missing barrier may go unnoticed when a block is one warp
(its threads run in lockstep), so the mutant checks run on the simulator only.  The
real kernel is checked everywhere.
"""
import inspect
import textwrap

import numba
import numpy as np
import pytest

import minicnn
from cuda_testutil import SIMULATOR, assert_close, mc, needs_cuda

pytestmark = needs_cuda

BARRIER = "cuda.syncthreads()"


def tiled_source():
    from minicnn.cuda.kernels import kernels_for
    return textwrap.dedent(inspect.getsource(kernels_for(np.float64).conv2d_tiled.py_func))


def build_mutant(drop):
    """The tiled kernel with its `drop`-th (0 or 1) syncthreads replaced by `pass`
    (drop=None: the unmodified source, rebuilt the same way - the control)."""
    from minicnn.cuda._target import cuda
    lines = tiled_source().splitlines()
    barriers = [i for i, line in enumerate(lines) if line.strip() == BARRIER]
    assert len(barriers) == 2, "the tiled kernel should have exactly two barriers"
    if drop is not None:
        i = barriers[drop]
        lines[i] = lines[i].replace(BARRIER, "pass  # barrier removed by the mutation test")
    namespace = {"cuda": cuda, "real": numba.float64, "ZERO": np.float64(0.0), "NEG_INF": -np.inf}
    exec(compile("\n".join(lines), f"<tiled kernel, barrier {drop} removed>", "exec"), namespace)
    return namespace["conv2d_tiled"]


def launch_tiled(kernel, x, w, b, block_hw):
    """Launch a tiled-conv kernel (stride 1, no padding, dilation 1) as ops.conv2d would."""
    from minicnn.cuda._target import cuda
    from minicnn.cuda.kernels import tile_halo
    n, k = x.shape[0], w.shape[0]
    out_h, out_w = x.shape[2] - w.shape[2] + 1, x.shape[3] - w.shape[3] + 1
    halo = tile_halo(block_hw, w.shape[2:], (1, 1), (1, 1))
    out = cuda.device_array((n, k, out_h, out_w), dtype=np.float64)
    grid = (-(-out_w // block_hw[1]), -(-out_h // block_hw[0]), n * k)
    kernel[grid, (block_hw[1], block_hw[0]), 0, halo[0] * halo[1] * 8](
        cuda.to_device(x), cuda.to_device(w), cuda.to_device(b), out, 1, 1, 0, 0, 1, 1, halo[0], halo[1])
    return out.copy_to_host()


@pytest.fixture
def problem(rng):
    """3 channels (so barrier 2 matters between channels), an 8x8 output in one 8x8 block."""
    x = rng.standard_normal((1, 3, 10, 10))
    w = rng.standard_normal((1, 3, 3, 3))
    b = rng.standard_normal(1)
    return x, w, b, minicnn.conv2d(x, w, b)


def test_source_has_two_commented_barriers():
    src = tiled_source()
    assert src.count(BARRIER) == 2
    assert "# (1)" in src and "# (2)" in src


def test_real_tiled_kernel_is_right(problem):
    from minicnn.cuda.kernels import kernels_for
    x, w, b, want = problem
    got = launch_tiled(kernels_for(np.float64).conv2d_tiled, x, w, b, (8, 8))
    assert_close(got, want, np.float64, "tiled kernel")
    assert_close(mc.conv2d(x, w, b), want, np.float64, "conv2d")


def test_rebuilt_unmodified_kernel_is_right(problem):
    """Control: the mutants are built by exec'ing the kernel's source; unmodified, that
    source must give the right answer, so a caught mutant is caught for its missing barrier."""
    x, w, b, want = problem
    assert_close(launch_tiled(build_mutant(None), x, w, b, (8, 8)), want, np.float64, "rebuilt kernel")


@pytest.mark.skipif(not SIMULATOR, reason="a missing barrier need not show on a real GPU (see module docstring)")
@pytest.mark.parametrize("drop", [0, 1], ids=["without-barrier-1", "without-barrier-2"])
def test_mutant_without_a_barrier_is_caught(problem, drop):
    x, w, b, want = problem
    mutant = build_mutant(drop)
    # A race need not show on every run; three tries, and one wrong answer is enough.
    for _ in range(3):
        got = launch_tiled(mutant, x, w, b, (8, 8))
        if not np.allclose(got, want, rtol=1e-10, atol=1e-10):
            return
    pytest.fail(f"removing barrier {drop + 1} went unnoticed: the test shape cannot see that race")
