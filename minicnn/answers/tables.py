"""Questions about whole layers and network tables: a conv layer's output shape and counts, and the
lectures' "activation shape / size / parameters" tables (Romanò's "Summary of our CNN", Ding's LeNet-5)."""
from __future__ import annotations

from .. import shapes
from .ops import Op, _int, _padding, _size_working, conv_params_working
from .values import KeyFileError, printed, printed_shape, shape_text

_TYPES = ("conv", "max_pool", "avg_pool", "dense")


def _input_chw(q):
    v = q.fields.get("input")
    if (not isinstance(v, list) or len(v) not in (2, 3)
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in v)):
        raise KeyFileError(f"{q.where('input')}: must be [H, W, C] (or [H, W] for one channel) of positive ints, "
                           f"got {v!r}")
    h, w = v[0], v[1]
    return (v[2] if len(v) == 3 else 1, h, w)


def layer_output(chw, layer):
    """(C, H, W) or (n,) after one layer (a layer dict as shapes.layer_table takes it)."""
    if layer["type"] == "dense":
        return (layer["units"],)
    if len(chw) != 3:
        raise ValueError(f"a {layer['type']} layer needs an (H, W, C) input")
    return tuple(shapes.layer_table(chw, [layer])[1]["shape"])


# --------------------------------------------------------------------------- one conv layer

def _read_conv_layer(q, refs):
    inp = {"input": _input_chw(q)}
    _int(q, inp, "filters", None, 1)
    k = _int(q, inp, "kernel_size", None, 1)
    _int(q, inp, "stride", 1, 1)
    pad = _padding(q, inp)
    if isinstance(pad, str):
        inp["padding"] = 0 if pad == "valid" else (k - 1) // 2
    c, h, w = inp["input"]
    if k > min(h, w) + 2 * inp["padding"]:
        raise KeyFileError(f"{q.where('kernel_size')}: a {k}x{k} filter does not fit the {h}x{w} input "
                           f"with padding {inp['padding']}")
    return inp


def _conv_layer_compute(inp):
    c, h, w = inp["input"]
    f, k, s, p = inp["filters"], inp["kernel_size"], inp["stride"], inp["padding"]
    oh, ow = shapes.conv_output_size((h, w), k, s, p)
    return {"shape": (f, oh, ow), "weights": shapes.conv2d_param_count(c, f, k, bias=False),
            "params": shapes.conv2d_param_count(c, f, k), "units": oh * ow * f}


def _conv_layer_answer(q, inp):
    a = q.answer
    if not isinstance(a, dict) or not a or set(a) - {"shape", "weights", "params", "units"}:
        raise KeyFileError(f"{q.where('answer')}: must be a table with some of shape, weights, params, units; "
                           f"got {a!r}")
    return {name: (printed_shape if name == "shape" else printed)(v, q.where("answer") + f" {name}")
            for name, v in a.items()}


def _conv_layer_working(inp, cell):
    c, h, w = inp["input"]
    f, k, s, p = inp["filters"], inp["kernel_size"], inp["stride"], inp["padding"]
    if cell == "shape":
        rows, cols = _size_working(h, k, s, p), _size_working(w, k, s, p)
        return (f"rows: {rows[0]}; columns: {cols[0]}; {f} filters",
                f"{rows[1]}\n{cols[1]}")
    if cell in ("weights", "params"):
        return conv_params_working(c, f, k, cell == "params")
    got = _conv_layer_compute(inp)
    oh = got["shape"][1]
    ow = got["shape"][2]
    return f"{oh} x {ow} x {f} = {got['units']}", rf"$${oh} \times {ow} \times {f} = {got['units']}$$"


CONV_LAYER = Op("conv_layer", "a conv layer's output shape, weights, parameters and units",
                ("input", "filters", "kernel_size", "stride", "padding"), ("input", "filters", "kernel_size"),
                _read_conv_layer, _conv_layer_compute, _conv_layer_answer, _conv_layer_working,
                ("filters", "kernel_size", "stride", "padding"))


# --------------------------------------------------------------------------- a network table

def _read_layer(q, i, layer):
    where = q.where(f"layers[{i}]")
    if not isinstance(layer, dict):
        raise KeyFileError(f"{where}: must be a table such as {{type = \"conv\", filters = 6, kernel_size = 5}}")
    kind = layer.get("type")
    if kind not in _TYPES:
        raise KeyFileError(f"{where}.type: must be one of {', '.join(_TYPES)}, got {kind!r}")
    allowed = {"conv": {"filters", "kernel_size", "stride", "padding"}, "max_pool": {"kernel_size", "stride"},
               "avg_pool": {"kernel_size", "stride"}, "dense": {"units"}}[kind] | {"type", "name"}
    for name in layer:
        if name not in allowed:
            raise KeyFileError(f"{where}.{name}: a {kind} layer has no such field ({', '.join(sorted(allowed))})")
    out = {"type": kind}
    needs = {"conv": ("filters", "kernel_size"), "max_pool": ("kernel_size",), "avg_pool": ("kernel_size",),
             "dense": ("units",)}[kind]
    for name in needs:
        v = layer.get(name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise KeyFileError(f"{where}.{name}: must be an int >= 1, got {v!r}")
        out[name] = v
    if "stride" in layer:
        v = layer["stride"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise KeyFileError(f"{where}.stride: must be an int >= 1, got {v!r}")
        out["stride"] = v
    if kind == "conv":
        p = layer.get("padding", 0)
        if p not in ("same", "valid") and (isinstance(p, bool) or not isinstance(p, int) or p < 0):
            raise KeyFileError(f"{where}.padding: must be an int >= 0, 'same' or 'valid', got {p!r}")
        out["padding"] = 0 if p == "valid" else (out["kernel_size"] - 1) // 2 if p == "same" else p
    return out


def _read_network(q, refs):
    chw = _input_chw(q)
    layers = q.fields.get("layers")
    if not isinstance(layers, list) or not layers:
        raise KeyFileError(f"{q.where('layers')}: must be a list of layer tables")
    layers = [_read_layer(q, i, layer) for i, layer in enumerate(layers)]
    rows = (q.answer or {}).get("rows", []) if isinstance(q.answer, dict) else []
    if not isinstance(rows, list) or len(rows) not in (0, len(layers), len(layers) + 1):
        raise KeyFileError(f"{q.where('answer')}.rows: {len(rows) if isinstance(rows, list) else rows!r} rows for "
                           f"{len(layers)} layers (give one row per layer, optionally an input row first)")
    has_input = len(rows) == len(layers) + 1
    inp = {"input": chw, "layers": layers, "has_input_row": has_input, "diagnoses": {}, "printed_inputs": {}}
    shape = chw
    for i, layer in enumerate(layers):
        # A stride printed as 0 cannot be computed with; when the row prints its output shape, the
        # stride that gives that shape is the one meant, and the printed 0 becomes a wrong cell.
        if layer.get("stride", 1) < 1:
            row = rows[i + has_input] if rows else {}
            want = printed_shape(row.get("shape", "?"), q.where(f"answer.rows[{i + has_input}].shape")) \
                if isinstance(row, dict) else None
            fits = [s for s in range(1, max(shape[1:] + (1,)) + 1)
                    if want is not None and want.matches(layer_output(shape, {**layer, "stride": s}))]
            if not fits:
                raise KeyFileError(f"{q.where(f'layers[{i}]')}.stride: {layer['stride']} is not a stride (>= 1), "
                                   "and no stride gives the row's printed shape")
            cell = f"layers[{i}].stride"
            inp["printed_inputs"][cell] = (layer["stride"], fits[0])
            inp["diagnoses"][cell] = (f"the printed shape {want} of this row needs stride {fits[0]}; "
                                      f"a stride of {layer['stride']} would not move the window")
            layer["stride"] = fits[0]
        try:
            shape = layer_output(shape, layer)
        except ValueError as exc:
            raise KeyFileError(f"{q.where(f'layers[{i}]')}: {exc} (its input is {shape_text(shape)})") from None
    return inp


def table_cells(chw, rows, has_input_row):
    """Cells of a network table from shapes.layer_table-style rows (input row first)."""
    rows = rows if has_input_row else rows[1:]
    cells = {}
    for r, row in enumerate(rows):
        cells[f"rows[{r}].shape"] = tuple(row["shape"])
        cells[f"rows[{r}].size"] = row["size"]
        cells[f"rows[{r}].params"] = row["params"]
    cells["total"] = sum(row["params"] for row in rows)
    return cells


def _network_compute(inp):
    cells = table_cells(inp["input"], shapes.layer_table(inp["input"], inp["layers"]), inp["has_input_row"])
    for cell, (_, right) in inp["printed_inputs"].items():
        cells[cell] = right
    return cells


def _network_answer(q, inp):
    a = q.answer
    if not isinstance(a, dict) or set(a) - {"rows", "total"} or not a:
        raise KeyFileError(f"{q.where('answer')}: must be a table with 'rows' (a list of {{shape, size, params}}) "
                           f"and/or 'total', got {a!r}")
    cells = {}
    for r, row in enumerate(a.get("rows", [])):
        where = q.where("answer") + f".rows[{r}]"
        if not isinstance(row, dict) or set(row) - {"layer", "shape", "size", "params"}:
            raise KeyFileError(f"{where}: must be a table with some of layer (a name), shape, size, params; "
                               f"got {row!r}")
        for name in ("shape", "size", "params"):
            if name in row:
                cells[f"rows[{r}].{name}"] = (printed_shape if name == "shape" else printed)(row[name],
                                                                                            f"{where}.{name}")
    if "total" in a:
        cells["total"] = printed(a["total"], q.where("answer") + ".total")
    for cell, (shown, _) in inp["printed_inputs"].items():
        cells[cell] = printed(shown, q.where(cell.split(".")[0]) + ".stride")
    return cells


def _network_working(inp, cell):
    if cell == "total":
        rows = shapes.layer_table(inp["input"], inp["layers"])[1:]
        total = sum(r["params"] for r in rows)
        terms = " + ".join(str(r["params"]) for r in rows)
        return f"{terms} = {total}", f"$${terms} = {total}$$"
    if cell.startswith("layers["):
        i = int(cell[7:cell.index("]")])
        return f"stride {inp['layers'][i]['stride']}", f"$$s = {inp['layers'][i]['stride']}$$"
    r = int(cell[5:cell.index("]")])
    li = r - 1 if inp["has_input_row"] else r
    table = shapes.layer_table(inp["input"], inp["layers"])
    before, row = table[li]["shape"], table[li + 1]
    if li < 0:
        return f"the input, {shape_text(before)}", f"$${shape_text(before)}$$"
    layer = inp["layers"][li]
    if cell.endswith(".size"):
        dims = " x ".join(str(d) for d in row["shape"])
        latex = " \\times ".join(str(d) for d in row["shape"])
        return f"{dims} = {row['size']}", f"$${latex} = {row['size']}$$"
    if cell.endswith(".params"):
        if layer["type"] == "conv":
            return conv_params_working(before[0], layer["filters"], layer["kernel_size"])
        if layer["type"] == "dense":
            fan_in = 1
            for d in before:
                fan_in *= d
            v = layer["units"] * (fan_in + 1)
            return (f"{layer['units']} x ({fan_in} + 1) = {v}", rf"$${layer['units']} \times ({fan_in} + 1) = {v}$$")
        return "0 (pooling has no parameters)", "$$0$$"
    if layer["type"] == "dense":
        return f"{layer['units']} units", f"$${layer['units']}$$"
    k = layer["kernel_size"]
    s = layer.get("stride", 1 if layer["type"] == "conv" else k)
    p = layer.get("padding", 0)
    t, l = _size_working(before[1], k, s, p)
    return f"{t}; {row['shape'][0]} channels -> {shape_text(row['shape'])}", l


NETWORK = Op("network", "a network table: each layer's activation shape, size and parameters, and the total",
             ("input", "layers"), ("input", "layers"), _read_network, _network_compute, _network_answer,
             _network_working)
