"""Run a worked example through minicnn and compare with what the slide printed."""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from .. import activations, conv, pool, shapes

_MAX_WORK_FOR_REAL_RUN = 5e7  # multiply-adds: above this a layer example checks shapes by formula only


@dataclass
class CheckResult:
    ok: bool
    expected: object
    got: object
    message: str

    def __bool__(self):
        return self.ok


def _hwc_to_chw(hwc):
    h, w, c = hwc
    return (c, h, w)


def _conv_layer(p, impl):
    h, w, c = p["input_hwc"]
    k, f = p["kernel_size"], p["filters"]
    stride, padding = p.get("stride", 1), p.get("padding", 0)
    oh, ow = shapes.conv_output_size((h, w), (k, k), stride, padding)
    if oh * ow * f * c * k * k <= _MAX_WORK_FOR_REAL_RUN:  # small enough: run the real kernel
        out = conv.conv2d(np.zeros((1, c, h, w)), np.zeros((f, c, k, k)), None, stride, padding, impl=impl)
        oh, ow = out.shape[2], out.shape[3]
    return {"output_hwc": [oh, ow, f],
            "weights": shapes.conv2d_param_count(c, f, k, bias=False),
            "params": shapes.conv2d_param_count(c, f, k, bias=True),
            "units": oh * ow * f}


def _row_shape(row, notation):
    """A layer_table row's shape in the slide's notation."""
    shape = row["shape"]
    if notation == "shape_chw":
        return list(shape)
    if len(shape) == 1:  # the ZJU-UoE table writes vectors as (n, 1)
        return [shape[0], 1]
    c, h, w = shape
    return [h, w] if (row["type"] == "input" and c == 1) else [h, w, c]


def _model_table(ex):
    rows = shapes.layer_table(ex.params["input_chw"], ex.params["layers"])
    expected_rows = ex.expected["rows"]
    if len(expected_rows) == len(rows) - 1:  # the table has no input row
        rows = rows[1:]
    got_rows = []
    for row, want in zip(rows, expected_rows):
        notation = "shape_chw" if "shape_chw" in want else "shape"
        got = {"layer": want["layer"], notation: _row_shape(row, notation)}
        if "size" in want:
            got["size"] = row["size"]
        if "params" in want:
            got["params"] = row["params"]
        got_rows.append(got)
    got = {"rows": got_rows}
    if "total_params" in ex.expected:
        got["total_params"] = sum(r["params"] for r in rows)
    return got


def _kernel_effect(ex, impl):
    kernel = ex.array("kernel")
    image = np.arange(1.0, 43.0).reshape(6, 7)  # distinct values, so any misplaced pixel shows
    out = conv.correlate2d(image, kernel, 1, ex.params.get("padding", "same"), impl=impl)
    if np.array_equal(out, image):
        return "unchanged"
    if not out.any():
        return "zero"
    if np.array_equal(out[:, :-1], image[:, 1:]) and not out[:, -1].any():
        return "shift_left"
    if np.array_equal(out[:, 1:], image[:, :-1]) and not out[:, 0].any():
        return "shift_right"
    return "other"


def run(ex, impl="fast"):
    """Compute an example with minicnn; returns what the slide's `expected` field describes."""
    p, op = ex.params, ex.op
    if op == "correlate2d":
        return conv.correlate2d(ex.array("image"), ex.array("kernel"), p.get("stride", 1), p.get("padding", 0),
                                impl=impl)
    if op == "conv2d":
        bias = ex.array("bias") if "bias" in ex.inputs else None
        return conv.conv2d(ex.array("x")[None], ex.array("weight"), bias, p.get("stride", 1), p.get("padding", 0),
                           impl=impl)[0]
    if op == "max_pool2d":
        return pool.max_pool2d(ex.array("x")[None, None], p["kernel_size"], p.get("stride"), p.get("padding", 0),
                               impl=impl)[0, 0]
    if op == "conv_output_size":
        return shapes.conv_output_size(p["n"], p["kernel_size"], p.get("stride", 1), p.get("padding", 0))
    if op == "pool_output_size":
        return shapes.pool_output_size(p["n"], p["kernel_size"], p.get("stride"), p.get("padding", 0))
    if op == "conv2d_param_count":
        return shapes.conv2d_param_count(p["in_channels"], p["out_channels"], p["kernel_size"], p["bias"])
    if op == "dense_param_count":
        return sum(shapes.dense_param_count(i, o) for i, o in p["layers"])
    if op == "product":
        return prod(int(f) for f in p["factors"])
    if op == "l1_distance":
        return float(np.abs(ex.array("a") - ex.array("b")).sum())
    if op == "conv_layer":
        got = _conv_layer(p, impl)
        return {key: got[key] for key in ex.expected}
    if op == "layer_chain":
        rows = shapes.layer_table(_hwc_to_chw(p["input_hwc"]), p["layers"])[1:]
        return {"shapes_hwc": [[r["shape"][1], r["shape"][2], r["shape"][0]] for r in rows]}
    if op == "conv_transpose_layer":
        n, h, w, c = p["input_nhwc"]
        k, f = p["kernel_size"], p["filters"]
        out = conv.conv_transpose2d(np.zeros((n, c, h, w)), np.zeros((c, f, k, k)), None, p["stride"],
                                    p.get("padding", 0), impl=impl)
        return {"output_nhwc": [out.shape[0], out.shape[2], out.shape[3], out.shape[1]]}
    if op == "model_table":
        return _model_table(ex)
    if op == "sigmoid_of_relu_lower_bound":
        z = np.linspace(p["z_min"], p["z_max"], p["count"])
        return float(activations.sigmoid(activations.relu(z)).min())
    if op == "receptive_field":
        return [shapes.receptive_field(stack) for stack in p["stacks"]]
    if op == "kernel_effect":
        return _kernel_effect(ex, impl)
    raise ValueError(f"example {ex.id!r} has unknown op {op!r}")


def _extra_checks(ex, impl):
    """Further printed facts some examples carry besides `expected`; returns failure messages."""
    failures = []
    extra = ex.extra or {}
    if "expected_strict_error" in extra:
        p = ex.params
        try:
            shapes.conv_output_size(p["n"], p["kernel_size"], p.get("stride", 1), p.get("padding", 0), strict=True)
            failures.append("strict=True did not raise for a filter that does not tile the input")
        except ValueError as exc:
            if extra["expected_strict_error"] not in str(exc):
                failures.append(f"strict error does not show {extra['expected_strict_error']}: {exc}")
    if "expected_channel_sums" in extra:
        x, w = ex.array("x"), ex.array("weight")[0]
        pad = ex.params.get("padding", 0)
        sums = [float(conv.correlate2d(x[c], w[c], 1, pad, impl=impl)[0, 0]) for c in range(x.shape[0])]
        if not np.allclose(sums, extra["expected_channel_sums"]):
            failures.append(f"per-channel sums {sums} != {extra['expected_channel_sums']}")
    if "expected_differences" in extra:
        diff = np.abs(ex.array("a") - ex.array("b"))
        if not np.array_equal(diff, np.array(extra["expected_differences"], dtype=float)):
            failures.append("pixel-wise differences differ from the slide's")
    return failures


def check(ex, impl="fast") -> CheckResult:
    """Run `ex` and compare every value the slide printed (cells printed as blank are skipped)."""
    got = run(ex, impl)
    failures = _extra_checks(ex, impl)
    if isinstance(got, np.ndarray):
        want, printed = ex.expected_array()
        if got.shape != want.shape:
            failures.append(f"output shape {got.shape}, slide shows {want.shape}")
        else:
            bad = printed & ~np.isclose(got, want, rtol=1e-9, atol=1e-9)
            if bad.any():
                i = tuple(int(v) for v in np.argwhere(bad)[0])
                failures.append(f"{int(bad.sum())} printed value(s) differ, first at {list(i)}: "
                                f"got {got[i]:g}, slide {want[i]:g}")
    elif isinstance(ex.expected, float) or isinstance(got, float):
        if not np.isclose(float(got), float(ex.expected), rtol=1e-12, atol=1e-12):
            failures.append(f"got {got}, expected {ex.expected}")
    elif got != ex.expected:
        failures.append(f"got {got!r}, expected {ex.expected!r}")
    message = "; ".join(failures) if failures else "matches the slide"
    return CheckResult(not failures, ex.expected, got, message)
