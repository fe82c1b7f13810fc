"""Every output of a convolution or pooling written out as the slides write it.

    >>> from minicnn import explain
    >>> e = explain.explain_conv([[3, 2, 1], [1, 2, 3], [1, 1, 1]], [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    >>> print(e.text(compact=True))
    step 1: out[0, 0] = -3 + 1 - 2 + 6 - 1 + 1 = 2

`text()` gives one line per output, "(image x kernel) + ... = value" in the order the window
slides (row by row); `compact=True` writes the products' values and drops the zeros, as
Zese's Sobel slide does; `latex()` gives the same as LaTeX (aligned, one kernel row per line,
as Aksoy's nine steps).  The arithmetic here is plain Python on the numbers given; the tests
check that every value equals what minicnn.correlate2d / conv2d / max_pool2d compute.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .argcheck import padding_pair


def fmt(v) -> str:
    """A number as a slide prints it: integers without a decimal point, others to 6 significant digits."""
    v = float(v)
    if v == 0:
        return "0"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"


def signed_sum(values) -> str:
    """[-3, 1, -2] -> "-3 + 1 - 2" (an empty list -> "0")."""
    out = ""
    for i, v in enumerate(values):
        s = fmt(v)
        if i == 0:
            out = s
        elif s.startswith("-"):
            out += " - " + s[1:]
        else:
            out += " + " + s
    return out or "0"


def _matrix(a, what, ndims=(2,)):
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{what} must be {want}, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or inf")
    return arr


@dataclass
class ConvStep:
    """One output value: out[i, j] = sum over channels c and taps (u, v) of
    window[c][u, v] * kernel[c][u, v], plus the bias."""
    index: int                     # 1-based step number, row-major over the output
    out: tuple                     # (i, j)
    origin: tuple                  # top-left (row, col) of the window in the padded input
    window: np.ndarray             # (C, kH, kW) the input cells under the kernel
    kernel: np.ndarray             # (C, kH, kW)
    bias: float
    channel_sums: list = field(default_factory=list)
    value: float = 0.0


@dataclass
class ConvExplanation:
    image: np.ndarray              # (C, H, W) as given (a 2-D image has C = 1)
    padded: np.ndarray             # (C, H + 2p, W + 2p)
    kernel: np.ndarray             # (C, kH, kW)
    stride: tuple
    padding: tuple
    bias: float
    steps: list
    output: np.ndarray             # (H_out, W_out)
    multichannel: bool

    def _product(self, x, w, style, times):
        if style == "latex":
            return f"({fmt(x)} {times} {fmt(w)})"
        return f"({fmt(x)}{times}{fmt(w)})"

    def _terms(self, step, c, style, times, compact):
        window, kernel = step.window[c], step.kernel[c]
        if compact:
            return signed_sum([x * w for x, w in zip(window.ravel(), kernel.ravel()) if x * w != 0])
        rows = [" + ".join(self._product(x, w, style, times) for x, w in zip(window[u], kernel[u]))
                for u in range(window.shape[0])]
        if style == "latex":
            return " + \\\\ & ".join(rows)
        return " + ".join(rows)

    def step_text(self, step, compact=False, times="x") -> list[str]:
        head = f"step {step.index}: out[{step.out[0]}, {step.out[1]}]"
        if not self.multichannel:
            body = self._terms(step, 0, "text", times, compact)
            if self.bias:
                body += (" - " if self.bias < 0 else " + ") + fmt(abs(self.bias))
            return [f"{head} = {body} = {fmt(step.value)}"]
        lines = [head]
        for c in range(self.kernel.shape[0]):
            lines.append(f"  channel {c}: {self._terms(step, c, 'text', times, compact)} = "
                         f"{fmt(step.channel_sums[c])}")
        parts = list(step.channel_sums) + ([self.bias] if self.bias else [])
        lines.append(f"  {signed_sum(parts)} = {fmt(step.value)}")
        return lines

    def text(self, compact=False, times="x") -> str:
        """One line per output (channel sums on their own lines for a multi-channel input)."""
        return "\n".join(line for s in self.steps for line in self.step_text(s, compact, times))

    def step_latex(self, step, compact=False, times=r"\times") -> str:
        if not self.multichannel:
            body = self._terms(step, 0, "latex", times, compact)
            if self.bias:
                body += (" - " if self.bias < 0 else " + ") + fmt(abs(self.bias))
            if compact:
                return f"$${body} = {fmt(step.value)}$$"
            return rf"$$\begin{{aligned}} & {body} = {fmt(step.value)} \end{{aligned}}$$"
        lines = []
        for c in range(self.kernel.shape[0]):
            body = self._terms(step, c, "latex", times, compact)
            lines.append(f"$${body} = {fmt(step.channel_sums[c])}$$" if compact else
                         rf"$$\begin{{aligned}} & {body} = {fmt(step.channel_sums[c])} \end{{aligned}}$$")
        parts = list(step.channel_sums) + ([self.bias] if self.bias else [])
        lines.append(f"$${signed_sum(parts)} = {fmt(step.value)}$$")
        return "\n".join(lines)

    def latex(self, compact=False, times=r"\times") -> str:
        """Each step as display maths, preceded by a % comment naming the output."""
        out = []
        for s in self.steps:
            out.append(f"% step {s.index}: out[{s.out[0]}, {s.out[1]}]")
            out.append(self.step_latex(s, compact, times))
        return "\n".join(out)


def explain_conv(image, kernel, stride=1, padding=0, bias=0.0, at=None) -> ConvExplanation:
    """Spell out a single-filter convolution (cross-correlation, as CNNs compute it).

    Inputs:
      image    (H, W) or (C, H, W)
      kernel   (kH, kW), (C, kH, kW) or (1, C, kH, kW)
      stride   int or (rows, cols); padding int, pair, 'valid', 'same' or 'full' (zeros)
      bias     a number added to every output
      at       None for every output, or (i, j) for one
    Returns a ConvExplanation: .steps (one ConvStep per output), .output (H_out, W_out),
    .text(), .latex().
    """
    img = _matrix(image, "image", (2, 3))
    ker = _matrix(kernel, "kernel", (2, 3, 4))
    if ker.ndim == 4:
        if ker.shape[0] != 1:
            raise ValueError(f"kernel has {ker.shape[0]} filters (shape {ker.shape}); explain one filter at a time")
        ker = ker[0]
    multichannel = img.ndim == 3
    img3 = img if img.ndim == 3 else img[None]
    ker3 = ker if ker.ndim == 3 else ker[None]
    if img3.shape[0] != ker3.shape[0]:
        raise ValueError(f"image has {img3.shape[0]} channel(s) (shape {img.shape}) but kernel has "
                         f"{ker3.shape[0]} (shape {ker.shape})")
    sh, sw = _stride(stride)
    kh, kw = ker3.shape[1:]
    ph, pw = padding_pair(padding, (kh, kw), (sh, sw), (1, 1))
    padded = np.zeros((img3.shape[0], img3.shape[1] + 2 * ph, img3.shape[2] + 2 * pw))
    padded[:, ph:ph + img3.shape[1], pw:pw + img3.shape[2]] = img3
    out_h, out_w = _out_size(padded.shape[1], kh, sh, "rows"), _out_size(padded.shape[2], kw, sw, "columns")
    b = np.asarray(bias, dtype=np.float64).reshape(-1)
    if b.size != 1 or not np.isfinite(b[0]):
        raise ValueError(f"bias must be one finite number, got {bias!r}")
    bias = float(b[0])
    output = np.zeros((out_h, out_w))
    steps = []
    for i in range(out_h):
        for j in range(out_w):
            r, c = i * sh, j * sw
            window = padded[:, r:r + kh, c:c + kw]
            sums = [float(sum(float(x) * float(w) for x, w in zip(window[ch].ravel(), ker3[ch].ravel())))
                    for ch in range(ker3.shape[0])]
            value = float(sum(sums)) + bias
            output[i, j] = value
            steps.append(ConvStep(len(steps) + 1, (i, j), (r, c), window.copy(), ker3, bias, sums, value))
    if at is not None:
        steps = [s for s in steps if s.out == _at(at, output.shape)]
    return ConvExplanation(img3, padded, ker3, (sh, sw), (ph, pw), bias, steps, output, multichannel)


def _stride(stride):
    pair = stride if isinstance(stride, (tuple, list)) else (stride, stride)
    if len(pair) != 2 or any(isinstance(s, bool) or int(s) != s or s < 1 for s in pair):
        raise ValueError(f"stride must be an int >= 1 or a pair of them, got {stride!r}")
    return int(pair[0]), int(pair[1])


def _out_size(n, k, s, axis):
    if k > n:
        raise ValueError(f"the kernel ({k} {axis}) is larger than the padded input ({n} {axis})")
    return (n - k) // s + 1


def _at(at, shape):
    i, j = (int(v) for v in at)
    if not (0 <= i < shape[0] and 0 <= j < shape[1]):
        raise ValueError(f"at={tuple(at)} is outside the output, which is {shape[0]}x{shape[1]}")
    return (i, j)


# --------------------------------------------------------------------------- pooling

@dataclass
class PoolStep:
    index: int
    channel: int
    out: tuple
    origin: tuple
    cells: list            # the window's values (padding excluded for max, zeros included for avg)
    value: float


@dataclass
class PoolExplanation:
    image: np.ndarray      # (C, H, W)
    mode: str
    kernel_size: tuple
    stride: tuple
    padding: tuple
    steps: list
    output: np.ndarray     # (C, H_out, W_out), or (H_out, W_out) for a 2-D image
    multichannel: bool

    def _head(self, s):
        where = f"out[{s.channel}, {s.out[0]}, {s.out[1]}]" if self.multichannel else f"out[{s.out[0]}, {s.out[1]}]"
        return f"step {s.index}: {where}"

    def step_text(self, s) -> str:
        if self.mode == "max":
            return f"{self._head(s)} = max({', '.join(fmt(v) for v in s.cells)}) = {fmt(s.value)}"
        return f"{self._head(s)} = ({signed_sum(s.cells)}) / {len(s.cells)} = {fmt(s.value)}"

    def text(self, compact=False, times="x") -> str:
        return "\n".join(self.step_text(s) for s in self.steps)

    def step_latex(self, s) -> str:
        if self.mode == "max":
            return rf"$$\max({', '.join(fmt(v) for v in s.cells)}) = {fmt(s.value)}$$"
        return rf"$$\frac{{{signed_sum(s.cells)}}}{{{len(s.cells)}}} = {fmt(s.value)}$$"

    def latex(self, compact=False, times=None) -> str:
        out = []
        for s in self.steps:
            out.append(f"% {self._head(s)}")
            out.append(self.step_latex(s))
        return "\n".join(out)


def explain_pool(image, kernel_size, stride=None, padding=0, mode="max", at=None) -> PoolExplanation:
    """Spell out max or average pooling.

    Inputs: image (H, W) or (C, H, W); kernel_size, stride (default kernel_size), padding
    int or pair; mode 'max' (padding never wins, so padded cells are left out of the list)
    or 'avg' (padded zeros count in the divisor, as minicnn.avg_pool2d by default);
    at None or (i, j).
    Returns a PoolExplanation (.steps, .output, .text(), .latex())."""
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    img = _matrix(image, "image", (2, 3))
    img3 = img if img.ndim == 3 else img[None]
    kh, kw = _stride(kernel_size)
    sh, sw = (kh, kw) if stride is None else _stride(stride)
    ph, pw = padding if isinstance(padding, (tuple, list)) else (padding, padding)
    ph, pw = int(ph), int(pw)
    if ph < 0 or pw < 0 or 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"padding ({ph}, {pw}) must be >= 0 and at most half the kernel ({kh}, {kw})")
    fill = -np.inf if mode == "max" else 0.0
    padded = np.full((img3.shape[0], img3.shape[1] + 2 * ph, img3.shape[2] + 2 * pw), fill)
    padded[:, ph:ph + img3.shape[1], pw:pw + img3.shape[2]] = img3
    out_h, out_w = _out_size(padded.shape[1], kh, sh, "rows"), _out_size(padded.shape[2], kw, sw, "columns")
    output = np.zeros((img3.shape[0], out_h, out_w))
    steps = []
    for ch in range(img3.shape[0]):
        for i in range(out_h):
            for j in range(out_w):
                window = padded[ch, i * sh:i * sh + kh, j * sw:j * sw + kw].ravel()
                if mode == "max":
                    cells = [float(v) for v in window if np.isfinite(v)]
                    value = max(cells)
                else:
                    cells = [float(v) for v in window]
                    value = sum(cells) / len(cells)
                output[ch, i, j] = value
                steps.append(PoolStep(len(steps) + 1, ch, (i, j), (i * sh, j * sw), cells, value))
    if at is not None:
        where = _at(at, (out_h, out_w))
        steps = [s for s in steps if s.out == where]
    return PoolExplanation(img3, mode, (kh, kw), (sh, sw), (ph, pw), steps,
                           output if img.ndim == 3 else output[0], img.ndim == 3)


# --------------------------------------------------------------------------- reading inputs

def latex_matrix(a) -> str:
    """A 2-D array as a LaTeX bmatrix (a 3-D one as one bmatrix per channel)."""
    a = np.asarray(a)
    if a.ndim == 3:
        return " \\quad ".join(latex_matrix(c) for c in a)
    rows = " \\\\ ".join(" & ".join(fmt(v) for v in row) for row in np.atleast_2d(a))
    return rf"\begin{{bmatrix}} {rows} \end{{bmatrix}}"


def grid(a, indent="  ") -> str:
    """A 2-D (or 3-D, channel by channel) array as right-aligned text."""
    a = np.asarray(a)
    if a.ndim == 3:
        return "\n".join(f"{indent}channel {c}:\n" + grid(a[c], indent + "  ") for c in range(a.shape[0]))
    cells = [[fmt(v) for v in row] for row in np.atleast_2d(a)]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(indent + " ".join(c.rjust(width) for c in row) for row in cells)


def parse_matrix(text: str, what: str = "matrix") -> np.ndarray:
    """A matrix from the command line.

    Accepts: inline rows separated by ';' (or newlines), values by ',' or spaces, channels by
    '|' ("1,1,1;0,1,1|0,0,1;1,1,0"); a .npy file (read without pickle); a .txt/.csv file of
    rows (a blank line between channels); or the name of one of the lectures' kernels
    (minicnn.examples.kernels(): sobel_x, x_shape, identity, ...).
    Returns a float64 array, 2-D, or 3-D (C, H, W) for several channels."""
    text = str(text)
    if text.endswith(".npy"):
        if not os.path.exists(text):
            raise ValueError(f"{what}: no such file {text!r}")
        return _matrix(np.load(text, allow_pickle=False), what, (2, 3, 4))
    if os.path.exists(text) and os.path.isfile(text):
        with open(text, encoding="utf-8") as fh:
            content = fh.read()
        chunks = [c for c in _split_blank(content)]
        return _stack([_rows(c.splitlines(), what) for c in chunks], what)
    from . import examples
    named = examples.kernels()
    if text in named:
        return np.array(named[text]["values"], dtype=np.float64)
    if not any(ch.isdigit() for ch in text):
        raise ValueError(f"{what}: {text!r} is neither numbers, a file, nor a kernel name "
                         f"({', '.join(sorted(named))})")
    return _stack([_rows(ch.replace("\n", ";").split(";"), what) for ch in text.split("|")], what)


def _split_blank(content):
    block = []
    for line in content.splitlines():
        if line.strip():
            block.append(line)
        elif block:
            yield "\n".join(block)
            block = []
    if block:
        yield "\n".join(block)


def _rows(lines, what):
    rows = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            rows.append([float(v) for v in line.replace(",", " ").split()])
        except ValueError:
            raise ValueError(f"{what}: cannot read the row {line!r} as numbers") from None
    if not rows:
        raise ValueError(f"{what}: no numbers given")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ValueError(f"{what}: rows have different lengths {[len(r) for r in rows]}")
    return np.array(rows, dtype=np.float64)


def _stack(channels, what):
    if len(channels) == 1:
        return channels[0]
    shapes = {c.shape for c in channels}
    if len(shapes) != 1:
        raise ValueError(f"{what}: channels have different shapes {[c.shape for c in channels]}")
    return np.stack(channels)


def from_example(example_id: str) -> dict:
    """The arguments of explain_conv / explain_pool for a catalogue example:
    {'kind': 'conv' or 'pool', 'image', 'kernel' (conv), 'bias' (conv), 'kernel_size'
    (pool), 'stride', 'padding', 'example'}."""
    from . import examples
    ex = examples.get(example_id)
    p = ex.params
    if ex.op == "correlate2d":
        return {"kind": "conv", "image": ex.array("image"), "kernel": ex.array("kernel"), "bias": 0.0,
                "stride": p.get("stride", 1), "padding": p.get("padding", 0), "example": ex}
    if ex.op == "conv2d":
        w = ex.array("weight")
        if w.shape[0] != 1:
            raise ValueError(f"{example_id} has {w.shape[0]} filters; explain handles one")
        bias = float(ex.array("bias")[0]) if "bias" in ex.inputs else 0.0
        return {"kind": "conv", "image": ex.array("x"), "kernel": w[0], "bias": bias,
                "stride": p.get("stride", 1), "padding": p.get("padding", 0), "example": ex}
    if ex.op == "max_pool2d":
        return {"kind": "pool", "mode": "max", "image": ex.array("x"), "kernel_size": p["kernel_size"],
                "stride": p.get("stride"), "padding": p.get("padding", 0), "example": ex}
    usable = [e.id for e in examples.load() if e.op in ("correlate2d", "conv2d", "max_pool2d")]
    raise ValueError(f"{example_id} is a {ex.op!r} example, not a convolution or pooling one; "
                     f"examples explain can show: {', '.join(usable)}")
