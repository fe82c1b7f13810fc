"""Shape and parameter-count formulas, as the lectures write them.

    output = floor((n + 2p - d(k - 1) - 1) / s) + 1

With dilation d = 1 this is the lectures' floor((n + 2p - k) / s + 1)
(Romanò, ZJU-UoE; Ding, SJTU; Aksoy, Halmstad).  Every helper takes ints or
(rows, cols) pairs; given a pair anywhere it answers with a pair.
"""
from __future__ import annotations

from .argcheck import as_int, check_fits, int_pair, padding_pair


def _pairs(*named):
    """Normalise (name, value, minimum) triples; report whether any value was a pair."""
    any_pair = any(isinstance(v, (tuple, list)) for _, v, _ in named)
    return any_pair, [int_pair(name, v, m) for name, v, m in named]


def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1, strict=False):
    """Spatial output size of a convolution.

    Inputs: n input size, kernel_size, stride (>= 1), padding (>= 0, or 'valid'/'same'/'full'),
    dilation (>= 1); each an int or a (rows, cols) pair.
    strict=True raises, with the arithmetic spelled out, when (n - F + 2P)/S + 1 is not an
    integer (SJTU lecture: N=7, F=3, stride 3 gives 2.33) instead of flooring.
    Returns an int, or a pair if any argument was a pair.
    """
    as_pair, (nn, k, s, d) = _pairs(("n", n, 1), ("kernel_size", kernel_size, 1), ("stride", stride, 1),
                                    ("dilation", dilation, 1))
    if isinstance(padding, (tuple, list)):
        as_pair = True
    p = padding_pair(padding, k, s, d)
    out = tuple(check_fits("conv_output_size", nn[i], k[i], s[i], p[i], d[i], strict, ("rows", "columns")[i])
                for i in range(2))
    return out if as_pair else out[0]


def pool_output_size(n, kernel_size, stride=None, padding=0, strict=False):
    """Spatial output size of max/average pooling; stride defaults to kernel_size."""
    return conv_output_size(n, kernel_size, kernel_size if stride is None else stride, padding, 1, strict)


def conv_transpose_output_size(n, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """Spatial output size of a transposed convolution:
    (n - 1) * s - 2p + d(k - 1) + output_padding + 1.
    TCD lecture (Pitié): (4, 10, 8, 128) with a 3x3 kernel, stride 2 -> (4, 21, 17, 32)."""
    as_pair, (nn, k, s, p, op, d) = _pairs(
        ("n", n, 1), ("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0),
        ("output_padding", output_padding, 0), ("dilation", dilation, 1))
    out = []
    for i in range(2):
        if op[i] >= max(s[i], d[i]):
            raise ValueError(f"output_padding {op[i]} must be smaller than stride {s[i]} or dilation {d[i]}")
        size = (nn[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1
        if size < 1:
            raise ValueError(f"conv_transpose_output_size: padding {p[i]} leaves no output (size {size})")
        out.append(size)
    return tuple(out) if as_pair else out[0]


def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True) -> int:
    """Trainable parameters of a conv layer: K * (C * kH * kW + 1) with bias.
    SJTU/Halmstad lectures: ten 5x5 filters on 32x32x3 -> 10 * (5*5*3 + 1) = 760."""
    c = as_int("in_channels", in_channels)
    k = as_int("out_channels", out_channels)
    kh, kw = int_pair("kernel_size", kernel_size, 1)
    if c < 1 or k < 1:
        raise ValueError(f"in_channels and out_channels must be >= 1, got {c} and {k}")
    return k * (c * kh * kw + (1 if bias else 0))


def dense_param_count(in_features, out_features, bias=True) -> int:
    """Trainable parameters of a fully connected layer: out * (in + 1) with bias."""
    i = as_int("in_features", in_features)
    o = as_int("out_features", out_features)
    if i < 1 or o < 1:
        raise ValueError(f"in_features and out_features must be >= 1, got {i} and {o}")
    return o * (i + (1 if bias else 0))


def conv2d_flops(in_shape_chw, out_channels, kernel_size, stride=1, padding=0, bias=True) -> int:
    """Floating-point operations of one conv layer's forward pass on one image.

    Inputs: in_shape_chw (C, H, W); out_channels K; kernel_size, stride, padding as ints or
    (rows, cols) pairs.  Returns K * H_out * W_out * (2 * C * kh * kw - 1 + bias).

    What is counted: multiplications *and* additions, as Zese counts them ("Edge Detection by
    Convolution": a two-tap difference costs "two multiplications and one addition per output
    pixel").  One output value multiplies C * kh * kw weights with the pixels under them and adds
    the C * kh * kw products with C * kh * kw - 1 additions; the bias is one more addition.  A
    multiply-add (MAC) count would be K * H_out * W_out * C * kh * kw, about half.
    Zese's example: conv2d_flops((1, 280, 320), 1, (1, 2), bias=False) = 319 * 280 * 3 = 267,960.
    """
    if not isinstance(in_shape_chw, (tuple, list)) or len(in_shape_chw) != 3:
        raise ValueError(f"in_shape_chw must be (C, H, W), got {in_shape_chw!r}")
    c, h, w = (as_int(f"in_shape_chw[{i}]", v) for i, v in enumerate(in_shape_chw))
    if min(c, h, w) < 1:
        raise ValueError(f"in_shape_chw must be positive, got {(c, h, w)}")
    k = as_int("out_channels", out_channels)
    if k < 1:
        raise ValueError(f"out_channels must be >= 1, got {k}")
    kh, kw = int_pair("kernel_size", kernel_size, 1)
    oh, ow = conv_output_size((h, w), (kh, kw), stride, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel_size {(kh, kw)} with stride {stride!r} and padding {padding!r} leaves no output "
                         f"on an input of (H, W) = {(h, w)}")
    return k * oh * ow * (2 * c * kh * kw - 1 + (1 if bias else 0))


def dense_flops(in_features, out_features, bias=True) -> int:
    """Floating-point operations of one dense layer's forward pass on one input vector:
    out * (2 * in - 1 + bias), multiplications and additions counted as in `conv2d_flops`
    (each output multiplies `in` weights, adds the products with in - 1 additions, then the bias).
    Zese's dense matrix for the edge detector: dense_flops(320 * 280, 319 * 280, bias=False)
    = 89,320 * 179,199 = 16,006,054,680 ("> 16e9" on the slide)."""
    i = as_int("in_features", in_features)
    o = as_int("out_features", out_features)
    if i < 1 or o < 1:
        raise ValueError(f"in_features and out_features must be >= 1, got {i} and {o}")
    return o * (2 * i - 1 + (1 if bias else 0))


def receptive_field(layers) -> int:
    """Receptive field (along one axis) of a stack of layers given as (kernel_size, stride, dilation)
    tuples, first layer first.  Halmstad lecture (Aksoy): stacked 3x3 convolutions see 3, 5, 7, ...
    pixels; a dilated layer grows it faster."""
    rf, jump = 1, 1
    for i, layer in enumerate(layers):
        k, s, d = (tuple(layer) + (1, 1))[:3]
        k = as_int(f"layers[{i}] kernel_size", k)
        s = as_int(f"layers[{i}] stride", s)
        d = as_int(f"layers[{i}] dilation", d)
        if k < 1 or s < 1 or d < 1:
            raise ValueError(f"layers[{i}] = {layer!r}: kernel_size, stride and dilation must be >= 1")
        rf += d * (k - 1) * jump
        jump *= s
    return rf


def layer_table(input_chw, layers):
    """Activation shape, size and parameter count of each layer of a plain CNN stack.

    Inputs: input_chw (C, H, W); layers, a list of dicts with "type" one of 'conv' (filters,
    kernel_size, stride=1, padding=0), 'max_pool'/'avg_pool' (kernel_size, stride=kernel_size),
    'dense' (units; the first dense layer flattens its input).
    Returns: a list of dicts {"type", "shape": (C, H, W) or (units,), "size", "params"}, starting
    with the input row, as in the ZJU-UoE lecture's "Summary of our CNN" table.
    """
    c, h, w = (int(v) for v in input_chw)
    shape = (c, h, w)
    rows = [{"type": "input", "shape": shape, "size": c * h * w, "params": 0}]
    for i, layer in enumerate(layers):
        kind = layer.get("type")
        if kind == "conv":
            if len(shape) != 3:
                raise ValueError(f"layers[{i}]: a conv layer needs a (C, H, W) input, got {shape}")
            k = layer["kernel_size"]
            s, p = layer.get("stride", 1), layer.get("padding", 0)
            oh, ow = conv_output_size((shape[1], shape[2]), (k, k) if isinstance(k, int) else k, s, p)
            params = conv2d_param_count(shape[0], layer["filters"], k)
            shape = (int(layer["filters"]), oh, ow)
        elif kind in ("max_pool", "avg_pool"):
            if len(shape) != 3:
                raise ValueError(f"layers[{i}]: a pooling layer needs a (C, H, W) input, got {shape}")
            k = layer["kernel_size"]
            oh, ow = pool_output_size((shape[1], shape[2]), (k, k) if isinstance(k, int) else k,
                                      layer.get("stride"), layer.get("padding", 0))
            params, shape = 0, (shape[0], oh, ow)
        elif kind == "dense":
            fan_in = 1
            for v in shape:
                fan_in *= v
            params = dense_param_count(fan_in, layer["units"])
            shape = (int(layer["units"]),)
        else:
            raise ValueError(f"layers[{i}]: unknown layer type {kind!r}; use conv, max_pool, avg_pool or dense")
        size = 1
        for v in shape:
            size *= v
        rows.append({"type": kind, "shape": shape, "size": size, "params": params})
    return rows
