"""The lecture-style table of a network (ZJU-UoE, Romanò, "Summary of our CNN"): per layer its
activation shape, activation size and number of parameters, and the total.  Sequential.summary()
builds it with `summarise`."""
from __future__ import annotations

from math import prod


def summarise(layers, input_shape, output=None, fold=True) -> "Summary":
    """The Summary of `layers` (objects with label, role, output_shape() and n_params()) for a
    per-sample `input_shape`; `output` ('softmax', 'sigmoid' or None) is noted on the last row.

    fold=True: one row per convolution / pooling / fully connected layer, the activation that
    follows noted on its row (role 'activation'), Flatten and Dropout left out (role 'reshape');
    fold=False: one row per layer object."""
    shape = tuple(int(v) for v in input_shape)
    rows = [{"layer": "Input", "type": "Input", "shape": shape, "size": prod(shape), "params": 0,
             "activation": None}]
    for i, layer in enumerate(layers):
        try:
            shape = tuple(int(v) for v in layer.output_shape(shape))
        except ValueError as exc:
            raise ValueError(f"layer {i} {exc}") from None
        row = {"layer": layer.label, "type": type(layer).__name__, "shape": shape, "size": prod(shape),
               "params": layer.n_params(), "activation": None}
        if fold and layer.role == "activation" and len(rows) > 1:
            prev = rows[-1]
            prev["activation"] = layer.label if prev["activation"] is None else \
                f"{prev['activation']}, {layer.label}"
        elif fold and layer.role == "reshape":
            continue
        else:
            rows.append(row)
    if output is not None:
        last = rows[-1]
        last["activation"] = output if last["activation"] is None else f"{last['activation']}, {output}"
    return Summary(rows)


def _shape_text(shape, notation, is_input=False):
    if notation == "chw":
        return "(" + ", ".join(str(v) for v in shape) + ("," if len(shape) == 1 else "") + ")"
    if len(shape) == 1:  # the ZJU-UoE table writes vectors as (n,1) and images as (H,W,C)
        return f"({shape[0]},1)"
    c, h, w = shape
    return f"({h},{w})" if (is_input and c == 1) else f"({h},{w},{c})"


class Summary:
    """The rows of Sequential.summary(): each a dict with layer (label), type, shape (per
    sample, (C, H, W) or (n,)), size, params, activation (the function that follows, or None).
    str() lays them out as the lecture table; format(notation='hwc') writes shapes as the
    ZJU-UoE slide does ((28,28,6), vectors (100,1))."""

    def __init__(self, rows):
        self.rows = rows

    @property
    def total_params(self) -> int:
        return sum(r["params"] for r in self.rows)

    def format(self, notation="chw") -> str:
        if notation not in ("chw", "hwc"):
            raise ValueError(f"notation must be 'chw' or 'hwc', got {notation!r}")
        header = ("", "Activation shape", "Activation size", "Number of params")
        body = []
        for i, r in enumerate(self.rows):
            name = r["layer"] + (f" + {r['activation']}" if r["activation"] else "")
            body.append((name, _shape_text(r["shape"], notation, i == 0), str(r["size"]),
                         "-" if i == 0 else str(r["params"])))
        total = ("", "", "TOTAL", f"{self.total_params} parameters")
        widths = [max(len(row[k]) for row in [header, *body, total]) for k in range(4)]

        def line(cells):
            return "  ".join([cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]).rstrip()
        rule = "-" * (sum(widths) + 6)
        return "\n".join([line(header), rule, *[line(b) for b in body], rule, line(total)])

    def __str__(self):
        return self.format()

    def __repr__(self):
        return self.format()
