"""A parameter-count formula as a slide prints it, checked on sample layers.

Romanò's "Convolutional layer" slide prints "num filters x filter size + 1 (bias)"; written in an
answer key as `answer = "filters * filter_size + 1"`, it is evaluated on a few sample layers and
compared with the true count there.  The names a formula may use:

  conv:  filters, channels, kernel_size, filter_size (= channels x kernel_size x kernel_size)
  dense: inputs, units
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from .ops import Op
from .values import KeyFileError

CONV_SAMPLES = [(1, 6, 5), (6, 16, 5), (3, 10, 3), (2, 7, 1), (4, 3, 2)]    # (channels, filters, kernel_size)
DENSE_SAMPLES = [(400, 100), (100, 50), (50, 1), (3, 7)]                    # (inputs, units)
RIGHT = {"conv": "filters * (filter_size + 1)", "dense": "units * (inputs + 1)"}
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b}


def samples(layer):
    if layer == "conv":
        return [{"channels": c, "filters": f, "kernel_size": k, "filter_size": c * k * k} for c, f, k in CONV_SAMPLES]
    return [{"inputs": i, "units": u} for i, u in DENSE_SAMPLES]


def evaluate(tree, names):
    """Arithmetic only: numbers, the layer's names, + - * / ** and brackets."""
    if isinstance(tree, ast.Expression):
        return evaluate(tree.body, names)
    if isinstance(tree, ast.Constant) and isinstance(tree.value, (int, float)) and not isinstance(tree.value, bool):
        return tree.value
    if isinstance(tree, ast.Name) and tree.id in names:
        return names[tree.id]
    if isinstance(tree, ast.BinOp) and type(tree.op) in _OPS:
        left, right = evaluate(tree.left, names), evaluate(tree.right, names)
        if isinstance(tree.op, ast.Pow) and not -4 <= right <= 4:  # k ** 2 is what a slide needs
            raise ValueError(f"the power {ast.unparse(tree)}")
        if isinstance(tree.op, ast.Div) and right == 0:
            raise ValueError(f"the division by zero in {ast.unparse(tree)}")
        return _OPS[type(tree.op)](left, right)
    if isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.USub):
        return -evaluate(tree.operand, names)
    raise ValueError(ast.unparse(tree) if isinstance(tree, ast.AST) else repr(tree))


@dataclass(frozen=True)
class Formula:
    """A printed formula: `value` is its count on every sample layer."""
    value: tuple
    text: str

    def matches(self, counts) -> bool:
        return tuple(counts) == self.value

    def __str__(self):
        return self.text


def parse(text, layer, where):
    if not isinstance(text, str) or not text.strip():
        raise KeyFileError(f"{where}: a formula is a string such as \"filters * (filter_size + 1)\", got {text!r}")
    src = text.replace("×", "*")
    try:
        tree = ast.parse(src, mode="eval")
        value = tuple(evaluate(tree, names) for names in samples(layer))
    except SyntaxError:
        raise KeyFileError(f"{where}: cannot read the formula {text!r}") from None
    except ValueError as exc:
        allowed = ", ".join(samples(layer)[0])
        raise KeyFileError(f"{where}: {exc} is not allowed in a formula (use numbers, + - * / ** and "
                           f"{allowed})") from None
    return Formula(value, text)


def counts(layer, fn):
    return tuple(fn(**names) for names in samples(layer))


def _read(q, refs):
    layer = q.fields.get("layer", "conv")
    if layer not in ("conv", "dense"):
        raise KeyFileError(f"{q.where('layer')}: must be 'conv' or 'dense', got {layer!r}")
    return {"layer": layer}


def _compute(inp):
    if inp["layer"] == "conv":
        return {"formula": counts("conv", lambda channels, filters, kernel_size, filter_size:
                                  filters * (filter_size + 1))}
    return {"formula": counts("dense", lambda inputs, units: units * (inputs + 1))}


def _answer(q, inp):
    return {"formula": parse(q.answer, inp.get("layer", "conv"), q.where("answer"))}


def _working(inp, cell):
    right = RIGHT[inp["layer"]]
    rows = [f"{right}, on sample layers:"]
    for names, n in zip(samples(inp["layer"]), _compute(inp)["formula"]):
        rows.append("  " + ", ".join(f"{k} {v}" for k, v in names.items()) + f": {n}")
    return ("\n".join(rows),
            "$$" + right.replace("*", r"\times").replace("_", r"\_") + "$$")


FORMULA = Op("param_formula", "a parameter-count formula (checked on sample layers)", ("layer",), (),
             _read, _compute, _answer, _working, show=lambda inp, cell: RIGHT[inp["layer"]])
