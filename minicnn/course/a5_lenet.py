"""Assignment 5's graded parts: the student's own layers, LeNet-5 built from them, and its accuracy
after training on the digits that ship with minicnn.

Here the student may use minicnn's *functional* kernels (conv2d, conv2d_backward, avg_pool2d,
dense, tanh, softmax_cross_entropy, ...: what assignments 1-3 built), but not its ready-made
layers, models or optimisers (minicnn.layers, minicnn.models, minicnn.optim, minicnn.training):
those are what this assignment asks for.  minicnn's fast kernels run on Numba's thread pool,
which does not survive a fork, so these checks run in-process (without the sandbox's time limit).
"""
from __future__ import annotations

import numpy as np

from .. import activations, conv, examples, pool, shapes
from ..dense import dense as dense_forward, dense_backward
from .inspection import LIBRARIES
from .a5_training import training_parts
from .part import Case, Part, compare_arrays

ALLOWED = ("minicnn", "minicnn.conv", "minicnn.pool", "minicnn.dense", "minicnn.activations", "minicnn.losses",
           "minicnn.data", "minicnn.shapes", "minicnn.gradcheck", "minicnn.examples", "minicnn.pictures")
OWN_WORK = ("layers", "models", "optim", "training")
RTOL = ATOL = 1e-4
ACCURACY_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9)   # full marks at 90% on the held-out digits

PARTS: list[Part] = []   # this assignment's graded parts, in notebook order


def _common():
    return dict(forbidden=LIBRARIES, allowed_modules=ALLOWED, forbidden_attrs=OWN_WORK, tripwires="layers",
                fork=False, timeout=120.0)


# ------------------------------------------------------------------------------ the layers

def layer_runner(cls):
    """Build the student's layer, give it known parameters, run forward and backward."""
    def run(ctor_args, ctor_kwargs, params, x, g):
        layer = cls(*ctor_args, **ctor_kwargs)
        own = getattr(layer, "params", None)
        if not isinstance(own, dict):
            return ("bad-layer", "the layer has no `params` dict (use {} for a layer without parameters)")
        init = {k: np.array(v, copy=True) for k, v in own.items()}
        for k, v in params.items():
            own[k] = v.copy()
        y = layer.forward(x.copy())
        gx = layer.backward(g.copy())
        grads = getattr(layer, "grads", {})
        grads = {k: np.array(v, copy=True) for k, v in grads.items()} if isinstance(grads, dict) else grads
        return ("ok", init, np.asarray(y), np.asarray(gx), grads)
    run.__wrapped__ = cls
    return run


def compare_layer(expected, got):
    init_shapes, y, gx, grads = expected
    if isinstance(got, tuple) and got and got[0] == "bad-layer":
        return {"kind": "type", "text": got[1]}
    if not (isinstance(got, tuple) and len(got) == 5):
        return {"kind": "type", "text": f"internal: unexpected result {type(got).__name__}"}
    _, init, y_got, gx_got, grads_got = got
    if set(init) != set(init_shapes):
        return {"kind": "params", "text": f"params has keys {sorted(init)}, expected {sorted(init_shapes)}"}
    for k, shape in init_shapes.items():
        if init[k].shape != shape:
            return {"kind": "params", "text": f"params[{k!r}] starts with shape {init[k].shape}, expected {shape}"}
    if "w" in init and init["w"].size > 1 and np.all(init["w"] == init["w"].flat[0]):
        return {"kind": "init", "text": "every weight starts with the same value: the filters would all learn the "
                                        "same thing; draw them at random (e.g. normal with std sqrt(1 / fan_in))"}
    for name, want, have in (("forward output", y, y_got), ("backward's grad_x", gx, gx_got)):
        m = compare_arrays(want, have, RTOL, ATOL)
        if m is not None:
            m["text"] = f"{name}: {m['text']}"
            return m
    if not isinstance(grads_got, dict) or set(grads_got) != set(grads):
        return {"kind": "grads", "text": f"after backward, grads should have the keys {sorted(grads)}"}
    for k in grads:
        m = compare_arrays(grads[k], grads_got[k], RTOL, ATOL)
        if m is not None:
            m["text"] = f"grads[{k!r}]: {m['text']}"
            return m
    return None


def _layer_hint(case, got, m):
    t = m.get("text", "")
    if m.get("kind") == "init":
        return ("draw the weights at random from rng, as the notebook asks: Glorot's uniform, "
                "rng.uniform(-limit, limit, shape) with limit = sqrt(6 / (fan_in + fan_out)); the biases start at 0")
    if t.startswith("grads"):
        return ("backward must store dL/dparam for every parameter in self.grads (the sum over the batch), "
                "computed with the forward's cached input")
    if t.startswith("backward"):
        return "backward gets dL/d(output) and returns dL/d(input); cache what you need in forward"
    return None


def _layer_error_hint(case, error):
    """minicnn's backward kernels check grad_out against the forward they are told about: a backward
    called with other settings than the forward's (a stride of 1, ...) fails there."""
    if "grad_out has shape" in error:
        return ("backward must call minicnn's backward with the settings the forward used (the kernel size, "
                "self.stride, self.padding kept in __init__), and the input cached by forward")
    return None


def _rng_like(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _conv_layer_cases(rng, hidden):
    cases = []
    ex = examples.get("sjtu-lenet5")
    geoms = [((1, 6, 5), 0, 1, (2, 1, 12, 12), _cite_slide(ex, "its first layer: 6 filters 5x5")),
             ((3, 4, 3), 1, 1, (2, 3, 7, 6), "conv 3->4, 3x3, padding 1"),
             ((2, 3, 3), 0, 2, (3, 2, 9, 8), "conv 2->3, 3x3, stride 2"),
             ((2, 2, 1), 0, 1, (2, 2, 4, 5), "conv 2->2, 1x1")]
    if hidden:
        geoms += [((2, 3, 2), 1, 3, (2, 2, 7, 7), "conv 2->3, 2x2, stride 3, padding 1")]
    for i, ((c, k, ks), p, s, xshape, label) in enumerate(geoms):
        w = _rng_like(rng, (k, c, ks, ks), 0.5)
        b = _rng_like(rng, (k,))
        x = _rng_like(rng, xshape)
        y = conv.conv2d(x, w, b, s, p)
        g = _rng_like(rng, y.shape)
        gx, gw, gb = conv.conv2d_backward(g, x, w, s, p)
        cases.append(Case(label if i == 0 else f"{'hidden' if hidden else 'public'} case {i} ({label})",
                          ((c, k, ks), {"stride": s, "padding": p, "rng": np.random.default_rng(i)},
                           {"w": w, "b": b}, x, g),
                          ({"w": (k, c, ks, ks), "b": (k,)}, y, gx, {"w": gw, "b": gb}),
                          f"in {c}, out {k}, kernel {ks}, stride {s}, padding {p}, x {xshape}",
                          worked=i == 0, example_id=ex.id if i == 0 else "", show_inputs=False,
                          hidden=hidden and i > 0))
    return cases


def _cite_slide(ex, what):
    return f"worked example: {ex.citation} ({what})"


def _dense_layer_cases(rng, hidden):
    cases = []
    sizes = [(120, 84, 4), (84, 10, 3), (5, 7, 1)] + ([(30, 2, 6)] if hidden else [])
    ex = examples.get("sjtu-lenet5")
    for i, (fin, fout, n) in enumerate(sizes):
        w, b = _rng_like(rng, (fout, fin), 0.3), _rng_like(rng, (fout,))
        x = _rng_like(rng, (n, fin))
        y = dense_forward(x, w, b)
        g = _rng_like(rng, y.shape)
        gx, gw, gb = dense_backward(g, x, w)
        label = (_cite_slide(ex, f"its FC layer {fin} -> {fout}") if i < 2
                 else f"{'hidden' if hidden else 'public'} case {i} (dense {fin} -> {fout}, batch {n})")
        cases.append(Case(label, ((fin, fout), {"rng": np.random.default_rng(i)}, {"w": w, "b": b}, x, g),
                          ({"w": (fout, fin), "b": (fout,)}, y, gx, {"w": gw, "b": gb}),
                          f"{fin} -> {fout}, batch {n}", worked=i < 2, example_id=ex.id if i < 2 else "",
                          show_inputs=False, hidden=hidden and i >= 2))
    return cases


def _pool_layer_cases(rng, hidden):
    cases = []
    ex = examples.get("sjtu-lenet5")
    for i, (k, s, xshape) in enumerate([(2, 2, (2, 6, 28, 28)), (2, 2, (1, 16, 10, 10)), (3, 1, (2, 2, 5, 6))]
                                       + ([(2, 3, (2, 1, 7, 7))] if hidden else [])):
        x = _rng_like(rng, xshape)
        y = pool.avg_pool2d(x, k, s)
        g = _rng_like(rng, y.shape)
        gx = pool.avg_pool2d_backward(g, x, k, s)
        label = (_cite_slide(ex, f"average pooling of {xshape[1:]}") if i < 2
                 else f"{'hidden' if hidden else 'public'} case {i} (kernel {k}, stride {s})")
        cases.append(Case(label, ((k, s), {}, {}, x, g), ({}, y, gx, {}), f"kernel {k}, stride {s}, x {xshape}",
                          worked=i < 2, example_id=ex.id if i < 2 else "", show_inputs=False,
                          hidden=hidden and i >= 2))
    return cases


def _tanh_layer_cases(rng, hidden):
    cases = []
    for i, shape in enumerate([(2, 6, 5, 5), (3, 84), (4,)] + ([(2, 3, 1, 1)] if hidden else [])):
        x = _rng_like(rng, shape, 2.0)
        y = activations.tanh(x)
        g = _rng_like(rng, shape)
        cases.append(Case(f"{'hidden' if hidden else 'public'} case {i} (shape {shape})", ((), {}, {}, x, g),
                          ({}, y, activations.tanh_backward(g, x), {}), f"x {shape}", hidden=hidden,
                          show_inputs=False))
    return cases


for _key, _cls, _title, _cases in (("conv_layer", "Conv2D", "Convolution layer", _conv_layer_cases),
                                   ("dense_layer", "Dense", "Fully connected layer", _dense_layer_cases),
                                   ("pool_layer", "AvgPool2D", "Average pooling layer", _pool_layer_cases),
                                   ("tanh_layer", "Tanh", "tanh layer", _tanh_layer_cases)):
    PARTS.append(Part(f"a5.{_key}", _cls, _title, _cases, compare=compare_layer, hint=_layer_hint,
                      error_hint=_layer_error_hint, adapter=layer_runner, **_common()))


# ------------------------------------------------------------------------------ LeNet-5

def _lenet_reference():
    ex = examples.get("sjtu-lenet5")
    rows = shapes.layer_table(ex.params["input_chw"], ex.params["layers"])
    return ex, [r["params"] for r in rows if r["params"]]


def lenet_runner(builder):
    def run(x):
        net = builder(np.random.default_rng(0))
        layers = getattr(net, "layers", None)
        if layers is None:
            return ("bad", "the network has no `layers` list")
        counts = [int(sum(np.asarray(v).size for v in layer.params.values()))
                  for layer in layers if getattr(layer, "params", None)]
        out = np.asarray(net.forward(x.copy()))
        gx = np.asarray(net.backward(np.ones_like(out)))
        return ("ok", counts, out.shape, gx.shape, bool(np.isfinite(out).all()))
    run.__wrapped__ = builder
    return run


def compare_lenet(expected, got):
    counts, out_shape, gx_shape = expected
    if not (isinstance(got, tuple) and got and got[0] == "ok"):
        return {"kind": "type", "text": got[1] if isinstance(got, tuple) and len(got) > 1 else "no network"}
    _, c, o, g, finite = got
    if c != counts:
        return {"kind": "params", "text": f"parameters per layer (layers with parameters, in order): {c}, "
                                          f"expected {counts} (total {sum(counts):,})"}
    if tuple(o) != out_shape:
        return {"kind": "shape", "text": f"the network's output has shape {tuple(o)}, expected {out_shape} "
                                         "(ten logits per image)"}
    if tuple(g) != gx_shape:
        return {"kind": "shape", "text": f"backward through the network returned shape {tuple(g)}, expected {gx_shape}"}
    if not finite:
        return {"kind": "values", "text": "the output holds NaN or inf"}
    return None


def _lenet_cases(rng, hidden):
    ex, counts = _lenet_reference()
    x = np.random.default_rng(1).random((2, 1, 32, 32)).astype(np.float32)
    return [Case(_cite_slide(ex, f"{sum(counts):,} parameters"), (x,), (counts, (2, 10), (2, 1, 32, 32)),
                 "LeNet-5 on a batch of 2 images 1x32x32", worked=True, example_id=ex.id, show_inputs=False)]


PARTS.append(Part("a5.lenet5", "lenet5", "LeNet-5 built from your layers", _lenet_cases, compare=compare_lenet,
                  adapter=lenet_runner,
                  hint=lambda c, g, m: ("conv 6@5x5, tanh, avg pool 2, tanh, conv 16@5x5, tanh, avg pool 2, tanh, "
                                        "conv 120@5x5, tanh, flatten, dense 84, tanh, dense 10"), **_common()))


# ------------------------------------------------------------------------------ sgd_step and train (a5_training)

PARTS.extend(training_parts(**_common()))


# ------------------------------------------------------------------------------ accuracy
#
# The grader measures the accuracy itself, in its own process: the student's process hands over the
# trained parameters (arrays over the wire), and minicnn's LeNet-5 forward runs them on the held-out
# digits, which never reach the student's process.  A network that recognises the held-out images
# (a lookup by their bytes, a nearest neighbour among minicnn.data's digits) has nothing to recognise
# them with: only parameters that classify digits through LeNet-5's forward earn these points.

# LeNet-5's parameters, layer by layer (layers with parameters only), as the layer parts check them:
# conv 6@5x5, conv 16@5x5, conv 120@5x5, dense 120 -> 84, dense 84 -> 10.
LENET_SHAPES = ({"w": (6, 1, 5, 5), "b": (6,)}, {"w": (16, 6, 5, 5), "b": (16,)},
                {"w": (120, 16, 5, 5), "b": (120,)}, {"w": (84, 120), "b": (84,)}, {"w": (10, 84), "b": (10,)})
PROBE_SHAPE = (8, 1, 32, 32)   # the images the student's own forward is run on (random, not digits)


def held_out_digits():
    from .. import data

    return data.mnist_splits()["test"]


def lenet5_logits(params, x):
    """minicnn's LeNet-5 forward with the given parameters, as the notebook builds it.

    params: five dicts {"w", "b"} shaped as LENET_SHAPES; x: (N, 1, 32, 32).  Returns (N, 10) logits:
    conv, tanh, avg pool 2, tanh (twice); conv, tanh; flatten; dense, tanh; dense."""
    from .. import models   # the grader's process only: the runner's tripwires forbid minicnn's layers

    net = models.lenet5()   # the one LeNet-5 of minicnn, its parameters replaced by the given ones
    layers = [layer for layer in net.layers if hasattr(layer, "weight")]
    for layer, own in zip(layers, params, strict=True):
        layer.weight.value = np.asarray(own["w"], dtype=np.float32)
        layer.bias.value = np.asarray(own["b"], dtype=np.float32)
    return net.predict(np.asarray(x, dtype=np.float32))


def accuracy_runner(net):
    """In the student's process: hand over the trained parameters (those of every layer of
    net.layers that has any, in order), and run net.forward on the grader's probe images, so that
    the forward is still run under the part's tripwires (no minicnn.layers).  The held-out digits
    are not sent; the grader scores the parameters with its own forward (compare_accuracy)."""
    def run(probe):
        layers = getattr(net, "layers", None)
        if not isinstance(layers, (list, tuple)):
            return ("bad", "the network has no `layers` list: the grader reads the trained parameters "
                           "from net.layers[i].params")
        params = [{k: np.array(v, copy=True) for k, v in own.items()}
                  for own in (getattr(layer, "params", None) for layer in layers) if isinstance(own, dict) and own]
        return ("ok", params, np.asarray(net.forward(probe.copy())))
    run.__wrapped__ = net
    return run


def _params_mismatch(params):
    """None when params are LeNet-5's five {"w", "b"} dicts of finite numbers of the right shapes."""
    if not isinstance(params, list) or len(params) != len(LENET_SHAPES):
        n = len(params) if isinstance(params, list) else 0
        return (f"net.layers holds {n} layers with parameters, LeNet-5 has {len(LENET_SHAPES)} (three convolutions, "
                "two dense layers): the grader scores the trained parameters of those layers, in order")
    for i, (have, want) in enumerate(zip(params, LENET_SHAPES)):
        if not isinstance(have, dict) or set(have) != set(want):
            keys = sorted(map(str, have)) if isinstance(have, dict) else type(have).__name__
            return f"layer {i + 1} with parameters has params {keys}, expected {sorted(want)}"
        for k, shape in want.items():
            v = have[k]
            if not (isinstance(v, np.ndarray) and v.dtype.kind in "iuf"):
                return f"layer {i + 1}'s params[{k!r}] is a {type(v).__name__}, expected an array of numbers"
            if v.shape != shape:
                return f"layer {i + 1}'s params[{k!r}] has shape {v.shape}, expected {shape}"
            if not np.isfinite(v).all():
                return f"layer {i + 1}'s params[{k!r}] holds NaN or inf"
    return None


_scored: dict = {}   # the last parameters scored, by their bytes: five levels are one network


def _accuracy(params, x, y) -> float:
    key = b"".join(np.ascontiguousarray(layer[k]).tobytes() for layer in params for k in sorted(layer))
    key += str(id(x)).encode()
    if key not in _scored:
        _scored.clear()
        _scored[key] = float((lenet5_logits(params, x).argmax(axis=1) == y).mean())
    return _scored[key]


def accuracy_mismatch(level, acc, note=""):
    """The mismatch for an accuracy `acc` below `level` (the hint reads "acc")."""
    return {"kind": "values", "acc": acc,
            "text": f"accuracy {acc:.3f} on the held-out test digits is below {level:.2f} (measured by the grader: "
                    f"LeNet-5's forward, minicnn's own, with your trained parameters){note}"}


def compare_accuracy(expected, got):
    level, x, y, probe = expected
    if not (isinstance(got, tuple) and len(got) == 3 and got[0] == "ok"):
        said = got[1] if isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], str) else None
        return {"kind": "type", "text": said or f"could not read the trained network ({type(got).__name__})"}
    _, params, out = got
    bad = _params_mismatch(params)
    if bad is not None:
        return {"kind": "params", "text": bad}
    acc = _accuracy(params, x, y)
    if acc >= level:
        return None
    note = ""
    ours = lenet5_logits(params, probe)
    if not (isinstance(out, np.ndarray) and out.shape == ours.shape
            and np.allclose(np.asarray(out, np.float64), ours, rtol=1e-3, atol=1e-3)):
        note = ("; your net.forward gives other outputs than LeNet-5's forward with the same parameters: a "
                "layer (or the order of the layers) differs from LeNet-5's, see the parts above")
    return accuracy_mismatch(level, acc, note)


CHANCE = 0.2   # below this, 10 classes: the network has learned (next to) nothing


def _accuracy_hint(case, got, m):
    if m.get("acc", 1.0) < CHANCE:
        return ("that is about chance (1 in 10): the network has learned nothing. If the training loss stays "
                "near ln 10 = 2.30, the parameters never change or move the wrong way: sgd_step must change them "
                "in place and against the gradient (layer.params[name] -= lr * layer.grads[name]; "
                "`p = p - lr * g` only rebinds a local name, and += climbs the loss)")
    if m.get("kind") == "params":
        return ("net must be your LeNet-5 (lenet5(rng)) after training: the grader reads the parameters of "
                "net.layers and runs LeNet-5 with them on the held-out digits")
    return ("train longer, or check the learning rate and the backward passes (gradcheck each layer); the reference "
            "solution reaches about 92% after one epoch (batch 16, learning rate 0.1)")


def _accuracy_cases(rng, hidden):
    x, y = held_out_digits()
    probe = np.random.default_rng(5).random(PROBE_SHAPE).astype(np.float32)
    return [Case(f"accuracy of at least {level:.0%}", (probe,), (level, x, y, probe),
                 f"{len(y)} MNIST digits never used in training, scored by the grader with your parameters",
                 show_inputs=False) for level in ACCURACY_LEVELS]


PARTS.append(Part("a5.accuracy", "net", "Accuracy of your trained LeNet-5", _accuracy_cases, compare=compare_accuracy,
                  adapter=accuracy_runner,
                  hint=_accuracy_hint,
                  **_common()))
