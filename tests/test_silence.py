"""Importing minicnn and running every op prints nothing: any stderr output scores a
notebook test cell 0 in nbgrader, and Numba warnings go to stderr."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import warnings
    warnings.simplefilter("always")          # show every warning that would otherwise be hidden
    import numpy as np
    import minicnn
    from minicnn import examples
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, 7, 6)).astype(dt)
        w = rng.standard_normal((4, 3, 3, 3)).astype(dt)
        for impl in ("fast", "loop"):
            y = minicnn.conv2d(x, w, np.ones(4, dt), 2, 1, impl=impl)
            minicnn.conv2d_backward(np.ones_like(y), x, w, 2, 1, impl=impl)
            p = minicnn.max_pool2d(x, 2, impl=impl)
            minicnn.max_pool2d_backward(np.ones_like(p), x, 2, impl=impl)
            p = minicnn.avg_pool2d(x, 3, 2, 1, impl=impl)
            minicnn.avg_pool2d_backward(np.ones_like(p), x, 3, 2, 1, impl=impl)
            t = minicnn.conv_transpose2d(x, rng.standard_normal((3, 2, 3, 3)).astype(dt), None, 2, impl=impl)
            minicnn.conv1d(x[:, :, 0], w[:, :, 0], impl=impl)
            minicnn.dense(x.reshape(2, -1), rng.standard_normal((5, 126)).astype(dt), impl=impl)
        minicnn.softmax_cross_entropy(x.reshape(2, -1), [0, 1])
        minicnn.sigmoid(x); minicnn.tanh_backward(x, x)
    for ex in examples.load():
        examples.check(ex)
""")


def test_import_and_every_op_print_nothing(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", f"stderr was not empty:\n{proc.stderr}"
    assert proc.stdout == ""
