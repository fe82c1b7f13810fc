"""Bad arguments raise the same exception, with the same message, as the CPU functions.

Arguments are checked before anything touches the GPU, so the NumPy cases run
everywhere (no GPU or simulator needed); the device-array cases need one.
"""
import numpy as np
import pytest

import minicnn
from cuda_testutil import IMPORT_ERROR, mc, needs_cuda

if IMPORT_ERROR:
    pytest.skip(f"minicnn.cuda cannot be imported: {IMPORT_ERROR}", allow_module_level=True)

rng = np.random.default_rng(7)
X = rng.standard_normal((2, 3, 6, 6))
W = rng.standard_normal((4, 3, 3, 3))
B = rng.standard_normal(4)
G = rng.standard_normal((2, 4, 4, 4))          # conv2d(X, W) output shape
GP = rng.standard_normal((2, 3, 3, 3))         # max_pool2d(X, 2) output shape


def with_nan(a, index):
    a = np.array(a, dtype=np.float64)
    a[index] = np.nan
    return a


def with_inf(a, index):
    a = np.array(a, dtype=np.float64)
    a[index] = np.inf
    return a


# (op name, args, kwargs)
BAD_CALLS = [
    ("conv2d", (X[0], W), {}),                                   # x 3-D
    ("conv2d", (X.astype(complex), W), {}),
    ("conv2d", (np.array([["a"]]), W), {}),
    ("conv2d", ([[1, 2], [3]], W), {}),                           # ragged
    ("conv2d", (X, W[0]), {}),
    ("conv2d", (X, W[:, :2]), {}),                                # channel mismatch
    ("conv2d", (X[:, :, :0], W), {}),                             # empty
    ("conv2d", (X, W), {"stride": 0}),
    ("conv2d", (X, W), {"stride": (1, 2, 3)}),
    ("conv2d", (X, W), {"stride": 1.5}),
    ("conv2d", (X, W), {"stride": True}),
    ("conv2d", (X, W), {"dilation": 0}),
    ("conv2d", (X, W), {"padding": -1}),
    ("conv2d", (X, W), {"padding": "bogus"}),
    ("conv2d", (X, W), {"padding": "same", "stride": 2}),
    ("conv2d", (X, W[:, :, :2]), {"padding": "same"}),
    ("conv2d", (X, rng.standard_normal((4, 3, 7, 3))), {}),       # kernel taller than the image
    ("conv2d", (X, W), {"stride": 2, "strict": True}),            # (6 - 3)/2 + 1 = 2.5
    ("conv2d", (X, W, B[:3]), {}),
    ("conv2d", (X, W, B[None]), {}),
    ("conv2d", (with_nan(X, (1, 2, 3, 4)), W), {}),
    ("conv2d", (X, with_inf(W, (0, 1, 2, 0))), {}),
    ("conv2d", (X, W, with_nan(B, 3)), {}),
    ("conv2d_backward", (G[:, :3], X, W), {}),
    ("conv2d_backward", (G, X, W), {"stride": 2}),
    ("conv2d_backward", (G[0], X, W), {}),
    ("conv2d_backward", (G, X, W[:, :2]), {}),
    ("conv2d_backward", (G, X, W), {"padding": "same", "stride": 2}),
    ("max_pool2d", (X[0], 2), {}),
    ("max_pool2d", (X, 0), {}),
    ("max_pool2d", (X, 2), {"stride": 0}),
    ("max_pool2d", (X, 2), {"padding": 2}),
    ("max_pool2d", (X, (4, 2)), {"padding": (2, 2)}),
    ("max_pool2d", (X, 2), {"padding": "same"}),
    ("max_pool2d", (X, 4), {"stride": 3, "strict": True}),
    ("max_pool2d", (X, 7), {}),
    ("max_pool2d", (X[:, :0], 2), {}),
    ("max_pool2d", (with_nan(X, (0, 0, 0, 0)), 2), {}),
    ("max_pool2d_backward", (GP[:, :, :2], X, 2), {}),
    ("max_pool2d_backward", (GP, X[0], 2), {}),
    ("max_pool2d_backward", (GP, X, 2), {"padding": 3}),
    ("avg_pool2d", (X, (2, 3)), {"padding": (1, 2)}),
    ("avg_pool2d", (X, 2.0), {}),
    ("avg_pool2d", (with_inf(X, (1, 1, 5, 5)), 3), {}),
    ("avg_pool2d", (X, 4), {"stride": 3, "strict": True}),
    ("avg_pool2d_backward", (GP, X, 3), {}),
    ("avg_pool2d_backward", (GP, X, 2), {"stride": -1}),
]


def raised(fn, args, kwargs):
    with pytest.raises((ValueError, TypeError)) as info:
        fn(*args, **kwargs)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("name,args,kwargs", BAD_CALLS, ids=[f"{i}-{c[0]}" for i, c in enumerate(BAD_CALLS)])
def test_same_error_as_cpu(name, args, kwargs):
    assert raised(getattr(mc, name), args, kwargs) == raised(getattr(minicnn, name), args, kwargs)


def test_unknown_kernel_name():
    with pytest.raises(ValueError, match="kernel must be 'naive' or 'tiled'"):
        mc.conv2d(X, W, kernel="fast")


DEVICE_CASES = [c for c in BAD_CALLS if isinstance(c[1][0], np.ndarray) and c[1][0].dtype.kind == "f"]


@needs_cuda
@pytest.mark.parametrize("name,args,kwargs", DEVICE_CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(DEVICE_CASES)])
def test_same_error_with_a_device_array(name, args, kwargs):
    """The first array argument on the device: the error is still the CPU's."""
    from minicnn.cuda._target import cuda
    first = cuda.to_device(np.ascontiguousarray(args[0]))
    assert raised(getattr(mc, name), (first,) + args[1:], kwargs) == raised(getattr(minicnn, name), args, kwargs)
