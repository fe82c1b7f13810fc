"""The lectures' pictures, drawn with matplotlib's Agg canvas (no display needed).

Every function returns a matplotlib Figure (a notebook shows it when it is the cell's
value); `save_png(fig, path)` writes it.  The numbers in the pictures come from minicnn's
own functions, so a picture is also a check: the Sobel panel *is* minicnn.conv2d's output.

    filters_figure(weight)                         a layer's filters as a grid of small images
    kernel_feature_maps_figure()                   a colour photo (Grace Hopper, shipped with
                                                   matplotlib) under the lectures' hand-made kernels
    layer_feature_maps_figure(model, image)        the same photo under a trained first layer
    convolution_step_figure(image, kernel, at)     one step of a convolution, as on the slides
    activation_maximisation_figure(model, layer)   inputs that excite each filter most (Pitié, TCD)
"""
from __future__ import annotations

import os

import numpy as np

from .conv import conv2d
from .explain import explain_conv, fmt
from .pool import avg_pool2d

PHOTO = "grace_hopper.jpg"


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path, dpi=110) -> str:
    """Write a Figure as PNG (creating the folder); returns the path."""
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


# --------------------------------------------------------------------------- images

def photo(shrink: int = 4, gray: bool = False) -> np.ndarray:
    """The colour photo of Grace Hopper that ships with matplotlib (600 x 512 pixels).

    shrink: average-pool by this factor (minicnn.avg_pool2d), 4 -> 150 x 128.
    Returns float32 in [0, 1]: (3, H, W), or (H, W) luminance (0.299 R + 0.587 G + 0.114 B)
    with gray=True."""
    import matplotlib.cbook as cbook
    import matplotlib.image as mimage

    with cbook.get_sample_data(PHOTO) as fh:
        rgb = mimage.imread(fh, format="jpg")
    x = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / np.float32(255)
    if shrink > 1:
        x = avg_pool2d(x[None], int(shrink))[0]
    if gray:
        return (np.float32(0.299) * x[0] + np.float32(0.587) * x[1] + np.float32(0.114) * x[2]).astype(np.float32)
    return x


def _display_range(kernel, fmap):
    """(vmin, vmax, note) for showing a feature map: kernels summing to s > 0 keep brightness
    (0..s, so identity and sharpen show the photo as it is); zero-sum kernels respond to change
    (symmetric about 0); others (the line and corner detectors) are stretched to their range."""
    total = float(kernel.sum())
    if not kernel.any():
        return 0.0, 1.0, "0..1"
    if total > 1e-6:
        return 0.0, total, f"0..{fmt(total)}"
    if abs(total) <= 1e-6:
        lo, hi = _limits(fmap, True)
        return lo, hi, "grey = 0"
    lo, hi = (float(v) for v in np.percentile(fmap, [0.5, 99.5]))
    return lo, max(hi, lo + 1e-6), "stretched"


def _limits(a, signed):
    if signed:
        m = float(np.percentile(np.abs(a), 99.5)) or 1.0
        return -m, m
    return 0.0, 1.0


# --------------------------------------------------------------------------- filters

def filters_figure(weight, title="filters", ncols=None, channel_names=None):
    """A grid of filters.

    weight (K, C, kH, kW): one small image per filter and input channel (K rows of C panels
    when C > 1, else K panels in a grid), grey levels symmetric about 0 (mid-grey = 0,
    white = positive), each filter scaled to its own largest |weight|.  Returns a Figure."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim == 2:
        w = w[None, None]
    if w.ndim != 4:
        raise ValueError(f"weight must be (K, C, kH, kW), got shape {w.shape}")
    k, c = w.shape[:2]
    if c == 1:
        ncols = ncols or min(k, 8)
        nrows = -(-k // ncols)
    else:
        nrows, ncols = k, c
    fig = _figure((1.3 * ncols + 0.5, 1.3 * nrows + 0.6))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for f in range(k):
        m = float(np.abs(w[f]).max()) or 1.0
        for ch in range(c):
            ax = axes[f if c == 1 else f * c + ch]
            ax.imshow(w[f, ch], cmap="gray", vmin=-m, vmax=m, interpolation="nearest")
            name = f"filter {f}" if c == 1 else f"{f}/{channel_names[ch] if channel_names else ch}"
            ax.set_title(name, fontsize=8)
    fig.suptitle(f"{title}: {k} x {c} x {w.shape[2]} x {w.shape[3]} (grey = 0, white > 0)")
    return fig


# --------------------------------------------------------------------------- feature maps

def handmade_kernels(names=None) -> dict:
    """{name: (3, 3) float32} of the lectures' hand-made kernels (minicnn.examples.kernels())."""
    from . import examples

    table = examples.kernels()
    names = list(table) if names is None else list(names)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown kernel(s) {unknown}; choose from {sorted(table)}")
    return {n: np.array(table[n]["values"], dtype=np.float32) for n in names}


def kernel_feature_maps(image, kernels: dict, padding="same") -> dict:
    """Each kernel applied to a grey image by minicnn.conv2d.

    image (H, W); kernels {name: (kH, kW)}; padding as conv2d ('same' keeps H x W).
    Returns {name: feature map (H_out, W_out) float32}."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"image must be a grey (H, W) array, got shape {img.shape}")
    out = {}
    for name, k in kernels.items():
        k = np.asarray(k, dtype=np.float32)
        out[name] = conv2d(img[None, None], k[None, None], None, 1, padding)[0, 0]
    return out


def kernel_feature_maps_figure(image=None, names=None, ncols=5):
    """The colour photo, then its grey version under each hand-made kernel of the lectures
    (identity, shift, delete, sharpen, edge, Sobel, line and corner detectors, Laplacian).

    Kernels with a positive sum s (identity, shift, sharpen, X) keep brightness and are shown
    on the 0..s scale; kernels that sum to 0 (Sobel, Laplacian, edge) respond to change and
    are shown symmetric about 0 (mid-grey = no response, white = positive, black =
    negative); the rest (line and corner detectors, negative sum) are stretched from their
    0.5th to 99.5th percentile.  Each panel's title says which.  Returns a Figure."""
    colour = photo() if image is None else np.asarray(image, dtype=np.float32)
    grey = colour if colour.ndim == 2 else (0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]).astype(
        np.float32)
    kernels = handmade_kernels(names)
    maps = kernel_feature_maps(grey, kernels)
    n = len(maps) + 1
    nrows = -(-n // ncols)
    fig = _figure((2.6 * ncols, 3.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    axes[0].imshow(colour.transpose(1, 2, 0) if colour.ndim == 3 else colour, cmap=None if colour.ndim == 3 else
                   "gray", vmin=0, vmax=1)
    axes[0].set_title("input photo", fontsize=9)
    for ax, (name, fmap) in zip(axes[1:], maps.items()):
        k = kernels[name]
        lo, hi, how = _display_range(k, fmap)
        ax.imshow(fmap, cmap="gray", vmin=lo, vmax=hi)
        rows = " / ".join(" ".join(fmt(v) for v in row) for row in k)
        ax.set_title(f"{name}  ({how})\n[{rows}]", fontsize=8)
    fig.suptitle("A photo under the lectures' hand-made 3x3 kernels (minicnn.conv2d, padding 'same')")
    return fig


def _first_conv(model):
    from .layers import Conv2D

    for i, layer in enumerate(model):
        if isinstance(layer, Conv2D):
            return i, layer
    raise ValueError("the model has no Conv2D layer")


def layer_feature_maps(model, image, layer_index=None) -> np.ndarray:
    """The feature maps a model's layer computes from one image.

    model: a Sequential; image (H, W) grey or (C, H, W) matching the model's input channels
    (a convolution accepts any H x W, so a photo works with a network trained on digits);
    layer_index: the last layer to run (default: the first Conv2D).
    Returns (K, H_out, W_out)."""
    if layer_index is None:
        layer_index, _ = _first_conv(model)
    x = np.asarray(image, dtype=np.float32)
    x = x[None, None] if x.ndim == 2 else x[None]
    sub = model[:layer_index + 1]
    return sub.predict(x)[0]


def layer_feature_maps_figure(model, image=None, layer_index=None, title=None):
    """Top row: the first convolution's filters; below: the image and what each filter makes
    of it (the layer's output before its activation, symmetric grey scale).  image defaults to
    the grey Grace Hopper photo.  Returns a Figure."""
    if layer_index is None:
        layer_index, conv = _first_conv(model)
    else:
        conv = model[layer_index]
    img = photo(gray=True) if image is None else np.asarray(image, dtype=np.float32)
    maps = layer_feature_maps(model, img, layer_index)
    k = maps.shape[0]
    ncols = k + 1
    fig = _figure((2.2 * ncols, 4.6))
    axes = fig.subplots(2, ncols, squeeze=False, height_ratios=[1, 2.2])
    for ax in axes.ravel():
        ax.set_axis_off()
    weight = conv.weight.value
    for f in range(min(k, weight.shape[0])):
        m = float(np.abs(weight[f]).max()) or 1.0
        axes[0, f + 1].imshow(weight[f].mean(axis=0), cmap="gray", vmin=-m, vmax=m, interpolation="nearest")
        axes[0, f + 1].set_title(f"filter {f}", fontsize=8)
    axes[1, 0].imshow(img if img.ndim == 2 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
    axes[1, 0].set_title("input", fontsize=9)
    for f in range(k):
        lo, hi = _limits(maps[f], True)
        axes[1, f + 1].imshow(maps[f], cmap="gray", vmin=lo, vmax=hi)
        axes[1, f + 1].set_title(f"map {f}", fontsize=8)
    fig.suptitle(title or f"Feature maps of layer {layer_index} ({conv!r})")
    return fig


# --------------------------------------------------------------------------- one convolution step

def _annotated(ax, a, title, highlight=None, blank=None, shade=None, cmap="Blues"):
    """A small matrix drawn as coloured cells with its numbers written in (blank cells hidden)."""
    from matplotlib.patches import Rectangle

    a = np.asarray(a, dtype=np.float64)
    shown = a if blank is None else np.where(blank, 0.0, a)
    m = float(np.abs(shown).max()) or 1.0
    # pale colours so that black numbers stay readable: red/blue for signs, light-to-mid blue otherwise
    lo, hi = (-1.6 * m, 1.6 * m) if cmap == "RdBu" else (-0.4 * m, 1.8 * m)
    ax.imshow(shown, cmap=cmap, vmin=lo, vmax=hi)
    if shade is not None:
        for (r, c) in zip(*np.nonzero(shade)):
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, color="0.85", zorder=1))
    h, w = a.shape
    if h * w <= 400:
        for r in range(h):
            for c in range(w):
                if blank is not None and blank[r, c]:
                    continue
                ax.text(c, r, fmt(a[r, c]), ha="center", va="center", fontsize=9 if h * w <= 100 else 7, zorder=3)
    if highlight is not None:
        r0, c0, hh, ww = highlight
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), ww, hh, fill=False, ec="red", lw=2.5, zorder=4))
    ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
    ax.grid(which="minor", color="0.6", lw=0.5)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(title, fontsize=10)


def convolution_step_figure(image, kernel, at=(0, 0), stride=1, padding=0, bias=0.0):
    """One step of a convolution as the slides draw it: the (padded) input with the window
    in red, the kernel, the products window x kernel with their sum, and the output so far
    (the outputs computed before this step, this one in red).

    image (H, W), kernel (kH, kW); at = (i, j) the output being computed; stride, padding,
    bias as for minicnn.correlate2d.  The numbers come from minicnn.explain.explain_conv.
    Returns a Figure."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"convolution_step_figure draws one channel: image must be (H, W), got {img.shape}")
    full = explain_conv(img, kernel, stride, padding, bias)
    at = tuple(int(v) for v in at)
    step = next((s for s in full.steps if s.out == at), None)
    if step is None:
        raise ValueError(f"at={at} is outside the {full.output.shape[0]}x{full.output.shape[1]} output")
    padded = full.padded[0]
    ph, pw = full.padding
    pad_mask = np.ones_like(padded, dtype=bool)
    pad_mask[ph:ph + img.shape[0], pw:pw + img.shape[1]] = False
    kern = full.kernel[0]
    products = step.window[0] * kern
    done = np.ones(full.output.shape, dtype=bool)
    for s in full.steps:
        if s.index <= step.index:
            done[s.out] = False
    fig = _figure((13, 3.8))
    axes = fig.subplots(1, 4, width_ratios=[padded.shape[1], kern.shape[1] + 1, kern.shape[1] + 1,
                                            full.output.shape[1] + 1])
    kh, kw = kern.shape
    _annotated(axes[0], padded, f"input{' (padded)' if ph or pw else ''}, window at row {step.origin[0]}, "
               f"col {step.origin[1]}", highlight=(step.origin[0], step.origin[1], kh, kw),
               shade=pad_mask if (ph or pw) else None)
    _annotated(axes[1], kern, "kernel", cmap="RdBu")
    total = f" + {fmt(bias)}" if bias else ""
    _annotated(axes[2], products, f"products, sum{total} = {fmt(step.value)}", cmap="RdBu")
    _annotated(axes[3], full.output, f"output, step {step.index} of {len(full.steps)}", blank=done,
               highlight=(at[0], at[1], 1, 1))
    fig.suptitle(full.step_text(step)[0], fontsize=9)
    return fig


# --------------------------------------------------------------------------- activation maximisation

def activation_maximisation(model, layer_index, filter_index, steps=60, step_size=0.05, seed=0, start=None,
                            input_shape=None, clip=(0.0, 1.0)):
    """The input that makes one filter respond most (Pitié, TCD: define the loss as the mean
    activation of the filter, backpropagate its gradient to the input image, and climb it).

    model: a Sequential; layer_index: the layer whose output is read (e.g. the Tanh after a
    convolution); filter_index: the channel (or unit) of that output.
    Each step: x <- clip(x + step_size * g / rms(g)), g = d mean(activation) / dx (the
    gradient divided by its root mean square, so the step size does not depend on the
    gradient's scale).  Starts from grey 0.5 plus small seeded noise (or `start`).
    Returns (image (C, H, W) float32, activations: the mean activation before each step and
    after the last, length steps + 1)."""
    shape = tuple(input_shape or model.input_shape or ())
    if len(shape) != 3:
        raise ValueError("activation_maximisation needs the model's input_shape (C, H, W)")
    if not 0 <= layer_index < len(model):
        raise ValueError(f"layer_index {layer_index} is outside the model's {len(model)} layers")
    sub = model[:layer_index + 1]
    modes = [layer.training for layer in sub]
    sub.eval()
    rng = np.random.default_rng(seed)
    if start is None:
        x = (0.5 + 0.05 * rng.standard_normal((1, *shape))).astype(np.float32)
    else:
        x = np.array(start, dtype=np.float32).reshape((1, *shape))
    lo, hi = (np.float32(clip[0]), np.float32(clip[1])) if clip is not None else (None, None)
    history = []
    try:
        for t in range(steps + 1):
            out = sub.forward(x)
            if not 0 <= filter_index < out.shape[1]:
                raise ValueError(f"filter_index {filter_index} is outside layer {layer_index}'s {out.shape[1]} channels")
            history.append(float(out[0, filter_index].mean()))
            if t == steps:
                break
            grad_out = np.zeros_like(out)
            grad_out[0, filter_index] = 1.0 / out[0, filter_index].size   # d mean / d activation
            g = sub.backward(grad_out)
            rms = np.float32(np.sqrt(np.mean(g.astype(np.float64) ** 2)) + 1e-12)
            x = x + np.float32(step_size) * g / rms
            if clip is not None:
                x = np.clip(x, lo, hi)
    finally:
        for layer, mode in zip(sub, modes):
            layer.training = mode
        for p in sub.parameters():
            p.grad = None
    return x[0], history


def activation_maximisation_figure(model, layer_index, filters=None, steps=60, step_size=0.05, seed=0):
    """Activation maximisation for each filter of one layer, as a grid of images with the
    mean activation before and after.  Returns a Figure."""
    if model.input_shape is None:
        raise ValueError("activation_maximisation_figure needs the model's input_shape (C, H, W)")
    probe = model[:layer_index + 1].predict(np.zeros((1, *model.input_shape), np.float32))
    filters = list(range(probe.shape[1])) if filters is None else list(filters)
    ncols = min(len(filters), 8)
    nrows = -(-len(filters) // ncols)
    fig = _figure((1.7 * ncols, 1.95 * nrows + 0.5))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    what = "filter" if probe.ndim == 4 else "unit"
    for ax, f in zip(axes, filters):
        img, hist = activation_maximisation(model, layer_index, f, steps, step_size, seed)
        ax.imshow(img.mean(axis=0), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{what} {f}\n{hist[0]:+.2f} -> {hist[-1]:+.2f}", fontsize=8)
    fig.suptitle(f"Inputs that maximise the mean activation of layer {layer_index} ({model[layer_index]!r}); "
                 f"{steps} steps of gradient ascent from grey")
    return fig


def digits_figure(images, labels=None, predictions=None, ncols=10):
    """A grid of digit images (N, 1, H, W) or (N, H, W), titled with label / prediction
    (red when they differ).  Returns a Figure."""
    x = np.asarray(images)
    if x.ndim == 4:
        x = x[:, 0]
    n = len(x)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = _figure((1.2 * ncols, 1.35 * nrows + 0.3))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for i in range(n):
        axes[i].imshow(x[i], cmap="gray_r", vmin=0, vmax=1)
        if labels is not None:
            text = f"{labels[i]}" if predictions is None else f"{labels[i]} -> {predictions[i]}"
            bad = predictions is not None and predictions[i] != labels[i]
            axes[i].set_title(text, fontsize=8, color="red" if bad else "black")
    return fig


__all__ = ["photo", "save_png", "filters_figure", "handmade_kernels", "kernel_feature_maps",
           "kernel_feature_maps_figure", "layer_feature_maps", "layer_feature_maps_figure",
           "convolution_step_figure", "activation_maximisation", "activation_maximisation_figure",
           "digits_figure"]
