"""NumPy in -> NumPy out; a device array in -> device arrays out, so layers chain on the GPU."""
import numpy as np
import pytest

import minicnn
from cuda_testutil import assert_close, host, mc, needs_cuda

pytestmark = needs_cuda


def on_device(a):
    from minicnn.cuda._target import is_device_array
    return is_device_array(a)


def to_dev(a):
    from minicnn.cuda._target import cuda
    return cuda.to_device(a)


@pytest.fixture
def data(rng):
    x = rng.standard_normal((2, 2, 6, 5)).astype(np.float32)
    w = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    return x, w, b


def test_numpy_in_numpy_out(data):
    x, w, b = data
    y = mc.conv2d(x, w, b, padding=1)
    assert type(y) is np.ndarray
    assert all(type(a) is np.ndarray for a in mc.conv2d_backward(y, x, w, padding=1))
    assert type(mc.max_pool2d(x, 2)) is np.ndarray
    assert type(mc.avg_pool2d_backward(mc.avg_pool2d(x, 2), x, 2)) is np.ndarray


def test_device_in_device_out_every_op(data):
    x, w, b = data
    xd = to_dev(x)
    y = mc.conv2d(xd, w, b, padding=1)                      # weight and bias from the host
    assert on_device(y)
    assert all(on_device(a) for a in mc.conv2d_backward(y, xd, w, padding=1))
    for fwd, bwd in ((mc.max_pool2d, mc.max_pool2d_backward), (mc.avg_pool2d, mc.avg_pool2d_backward)):
        p = fwd(xd, 3, 2, 1)
        assert on_device(p)
        assert on_device(bwd(p, xd, 3, 2, 1))
    # a device grad_out alone is enough to keep the results on the device
    g = to_dev(np.ones((2, 2, 6, 5), np.float32))
    assert all(on_device(a) for a in mc.conv2d_backward(g, x, w, padding=1))


def test_chained_layers_match_the_host_path(data):
    """conv -> max pool -> avg pool and back, all on the device: the same kernels, so the
    same bits as the NumPy round trip after every layer."""
    x, w, b = data
    xd, wd, bd = to_dev(x), to_dev(w), to_dev(b)
    y = mc.conv2d(xd, wd, bd, padding=1)
    p = mc.max_pool2d(y, 2)
    q = mc.avg_pool2d(p, 2, 1, count_include_pad=False)
    g = to_dev(np.ones(q.shape, np.float32))
    gp = mc.avg_pool2d_backward(g, p, 2, 1, count_include_pad=False)
    gy = mc.max_pool2d_backward(gp, y, 2)
    gx, gw, gb = mc.conv2d_backward(gy, xd, wd, padding=1)
    assert all(on_device(a) for a in (y, p, q, gp, gy, gx, gw, gb))

    y_h = mc.conv2d(x, w, b, padding=1)
    p_h = mc.max_pool2d(y_h, 2)
    q_h = mc.avg_pool2d(p_h, 2, 1, count_include_pad=False)
    gp_h = mc.avg_pool2d_backward(np.ones(q_h.shape, np.float32), p_h, 2, 1, count_include_pad=False)
    gy_h = mc.max_pool2d_backward(gp_h, y_h, 2)
    for a, e in zip((y, p, q, gp, gy) + (gx, gw, gb), (y_h, p_h, q_h, gp_h, gy_h) +
                    mc.conv2d_backward(gy_h, x, w, padding=1)):
        np.testing.assert_array_equal(host(a), e)
    # and the whole chain agrees with the CPU
    assert_close(host(q), minicnn.avg_pool2d(minicnn.max_pool2d(minicnn.conv2d(x, w, b, padding=1), 2), 2, 1,
                                             count_include_pad=False), np.float32, "chain")


def test_device_inputs_are_not_modified(data):
    x, w, b = data
    xd, wd, bd = to_dev(x), to_dev(w), to_dev(b)
    y = mc.conv2d(xd, wd, bd, padding=1)
    mc.conv2d_backward(y, xd, wd, padding=1)
    mc.max_pool2d_backward(mc.max_pool2d(xd, 2), xd, 2)
    mc.avg_pool2d_backward(mc.avg_pool2d(xd, 2), xd, 2)
    for d, h in ((xd, x), (wd, w), (bd, b)):
        np.testing.assert_array_equal(host(d), h)


def test_device_array_of_another_dtype_is_converted(data):
    """float32 on the device with a float64 weight: computed in float64, as on the CPU
    (the float32 array goes through the host to be converted)."""
    x, w, b = data
    y = mc.conv2d(to_dev(x), w.astype(np.float64), b, padding=1)
    assert on_device(y) and y.dtype == np.float64
    assert_close(host(y), minicnn.conv2d(x, w.astype(np.float64), b, padding=1), np.float64, "converted")


def test_nan_on_the_device_is_reported_like_the_cpu(data):
    x, w, b = data
    bad = x.copy()
    bad[1, 0, 2, 3] = np.nan
    with pytest.raises(ValueError) as cpu:
        minicnn.conv2d(bad, w, b)
    with pytest.raises(ValueError) as gpu:
        mc.conv2d(to_dev(bad), w, b)
    assert str(gpu.value) == str(cpu.value)
    bias = b.copy()
    bias[1] = np.inf
    with pytest.raises(ValueError) as cpu:
        minicnn.conv2d(x, w, bias)
    with pytest.raises(ValueError) as gpu:
        mc.conv2d(x, w, to_dev(bias))
    assert str(gpu.value) == str(cpu.value)
    # check_finite=False computes anyway (NaN spreads, as on the CPU)
    y = host(mc.conv2d(to_dev(bad), w, b, check_finite=False))
    assert np.isnan(y[1]).any() and not np.isnan(y[0]).any()
