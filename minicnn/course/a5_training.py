"""Assignment 5's training parts: `sgd_step` and `train`, each checked on its own (CS231n-style
sanity checks), before the final accuracy depends on both.

- `sgd_step(net, lr)` is given a small network of the grader's own layers (dicts of parameters
  and gradients, values the grader chose) and must leave every parameter at p - lr * grad.  A
  step that rebinds a name (`p = p - lr * g`: nothing changes), climbs the gradient (`+=`),
  ignores lr or stops after the first layer gets a hint that names the mistake.
- `train(net, x, y, epochs, batch_size, lr, rng)` is given the grader's linear classifier (all
  weights zero, so the first loss is ln 10) and a small batch it can fit.  While it runs, the
  grader's reference `sgd_step` stands in for the student's in the notebook's namespace, so a
  wrong `sgd_step` is charged once, in its own part.  The grader then computes the loss of the
  trained parameters itself; the losses `train` returns are only checked for their count and
  their first value.

As in a5_lenet, the calls run in-process (fork=False); the adapters below run in the student's
process and return plain data, which is judged here, in the grader's process.
"""
from __future__ import annotations

import math

import numpy as np

from .part import Case, Part, compare_arrays

LN10 = math.log(10.0)
CLASSES = 10
FIT_BELOW = 0.25 * LN10   # the training batch's loss after train (the reference gets far below)


# ------------------------------------------------------------------------------ the grader's layers

class _Layer:
    """A layer as the notebook defines them, reduced to its parameters and their gradients."""

    def __init__(self, params, grads):
        self.params = {k: np.array(v, copy=True) for k, v in params.items()}
        self.grads = {k: np.array(v, copy=True) for k, v in grads.items()}


class _Net:
    def __init__(self, layers):
        self.layers = layers


def _params_after(net):
    """Each layer's parameters after the student's code ran, as plain arrays (or None for a
    layer whose `params` is no longer a dict)."""
    return [({k: np.array(v, dtype=np.float64, copy=True) for k, v in layer.params.items()}
             if isinstance(layer.params, dict) else None) for layer in net.layers]


def sgd_runner(step):
    """Give the student's sgd_step a network of the grader's layers; return their parameters after."""
    def run(params, grads, lr):
        net = _Net([_Layer(p, g) for p, g in zip(params, grads)])
        step(net, lr)
        return ("ok", _params_after(net))
    run.__wrapped__ = step
    return run


# ------------------------------------------------------------------------------ sgd_step

def _same(a, b):
    return a is not None and all(k in a and np.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in b)


def compare_sgd(expected, got):
    before, grads, lr, after = expected
    if not (isinstance(got, tuple) and len(got) == 2 and got[0] == "ok" and isinstance(got[1], list)):
        return {"kind": "type", "text": "internal: unexpected result"}
    have = got[1]
    for i, (want, mine) in enumerate(zip(after, have)):
        if not isinstance(mine, dict):
            return {"kind": "type", "text": f"layer {i}'s `params` is no longer a dict after sgd_step"}
        if set(mine) != set(want):
            return {"kind": "type", "text": f"layer {i}'s params has keys {sorted(mine)} after sgd_step, "
                                            f"expected {sorted(want)}"}
    if all(_same(m, b) for m, b in zip(have, before)):
        return {"kind": "unchanged", "text": "no parameter changed: after sgd_step every layer.params[name] holds "
                                             "the values it had before"}
    mistakes = {
        "ascends": [{k: b[k] + lr * g[k] for k in b} for b, g in zip(before, grads)],
        "no-lr": [{k: b[k] - g[k] for k in b} for b, g in zip(before, grads)],
    }
    for i, (want, mine) in enumerate(zip(after, have)):
        for k in sorted(want):
            m = compare_arrays(want[k], mine[k], rtol=1e-5, atol=1e-6)
            if m is None:
                continue
            m["text"] = f"layer {i}, params[{k!r}]: {m['text']}"
            for name, values in mistakes.items():
                if all(_same(mi, v) for mi, v in zip(have, values)):
                    m["mistake"] = name
            stepped = [_same(mi, a) for mi, a, b in zip(have, after, before) if b]
            kept = [_same(mi, b) for mi, b in zip(have, before) if b]
            if "mistake" not in m and all(s or k for s, k in zip(stepped, kept)) and any(stepped) and any(kept):
                m["mistake"] = "some-layers"
            return m
    return None


SGD_HINTS = {
    "unchanged": ("the parameters never change: `p = layer.params[name]` then `p = p - lr * g` only rebinds the "
                  "local name p; change the array in place, layer.params[name] -= lr * layer.grads[name] (with "
                  "parameters that never move, the training loss sits at ln 10 = 2.30)"),
    "ascends": "the sign is wrong: p += lr * grad climbs the loss; a step goes against the gradient, p -= lr * grad",
    "no-lr": "the step is the whole gradient: multiply it by the learning rate, p -= lr * grad",
    "some-layers": ("some layers were updated and others not: every layer in net.layers, and every name in its "
                    "params, gets a step (a `return` inside the loop stops after the first)"),
}


def _sgd_hint(case, got, m):
    return SGD_HINTS.get(m.get("mistake") or m.get("kind"))


def _layer_values(rng, shapes, dtype):
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


def _sgd_cases(rng, hidden):
    nets = [([{"w": (6, 1, 3, 3), "b": (6,)}, {}, {"w": (3, 24), "b": (3,)}], 0.1, np.float32,
             "a conv layer, a tanh layer (no parameters) and a dense layer, lr 0.1"),
            ([{"w": (2, 5), "b": (2,)}], 0.5, np.float64, "one dense layer, lr 0.5"),
            ([{"w": (4, 2, 2, 2), "b": (4,)}, {}, {}, {"w": (2, 4), "b": (2,)}], 0.01, np.float32,
             "two layers with parameters, two without, lr 0.01")]
    if hidden:
        k = int(rng.integers(2, 6))
        nets += [([{"w": (k, 3), "b": (k,)}, {}, {"w": (3, k), "b": (3,)}], float(rng.choice([0.05, 0.2])),
                  np.float32, "two dense layers")]
    cases = []
    for i, (shapes, lr, dtype, what) in enumerate(nets):
        params = [_layer_values(rng, s, dtype) for s in shapes]
        grads = [_layer_values(rng, s, dtype) for s in shapes]
        after = [{k: (p[k] - dtype(lr) * g[k]).astype(np.float64) for k in p} for p, g in zip(params, grads)]
        before = [{k: v.astype(np.float64) for k, v in p.items()} for p in params]
        gr = [{k: v.astype(np.float64) for k, v in g.items()} for g in grads]
        cases.append(Case(f"hidden case {i} ({what})" if i >= 3 else f"public case {i}", (params, grads, lr),
                          (before, gr, lr, after), what, hidden=i >= 3, show_inputs=False))
    return cases


# ------------------------------------------------------------------------------ train

def reference_sgd_step(net, lr):
    """The grader's sgd_step, put in the student's `sgd_step`'s place while their `train` runs.
    (Written as the grader's own code, not as the notebook's solution cell: the package holds no
    solution code.)"""
    for layer in net.layers:
        grads = layer.grads
        for key, value in layer.params.items():
            np.subtract(value, lr * grads[key], out=value)   # in place: the network holds these arrays


class _Linear:
    """A linear classifier (flatten, then x @ w.T + b) starting from zero: its first loss is ln 10."""

    def __init__(self, features, dtype):
        self.params = {"w": np.zeros((CLASSES, features), dtype), "b": np.zeros(CLASSES, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self.shape, self.x = x.shape, x.reshape(x.shape[0], -1)
        return self.x @ self.params["w"].T + self.params["b"]

    def backward(self, grad_out):
        # dL/dw[k, f] = sum over n of grad_out[n, k] * x[n, f];  dL/db[k] = sum over n of grad_out[n, k]
        self.grads["w"] = np.einsum("nk,nf->kf", grad_out, self.x)
        self.grads["b"] = np.einsum("nk->k", grad_out)
        return (grad_out @ self.params["w"]).reshape(self.shape)


class _Classifier(_Net):
    def __init__(self, features, dtype):
        super().__init__([_Linear(features, dtype)])
        self.batches = []   # the batch size of every forward call

    def forward(self, x):
        self.batches.append(int(np.shape(x)[0]))
        return self.layers[0].forward(x)

    def backward(self, grad_out):
        return self.layers[0].backward(grad_out)


def train_runner(train):
    """Run the student's train on the grader's classifier, with the grader's sgd_step in place of
    theirs; return the losses it reported, the batch sizes it ran and the trained parameters."""
    def run(x, y, epochs, batch_size, lr, seed):
        net = _Classifier(int(np.prod(x.shape[1:])), x.dtype)
        names = getattr(train, "__globals__", None)
        names = names if isinstance(names, dict) else {}
        had, previous = "sgd_step" in names, names.get("sgd_step")
        names["sgd_step"] = reference_sgd_step
        try:
            losses = train(net, x, y, epochs, batch_size, lr, np.random.default_rng(seed))
        finally:
            if had:
                names["sgd_step"] = previous
            else:
                names.pop("sgd_step", None)
        try:
            losses = np.asarray(losses, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            losses = None
        layer = net.layers[0]
        return ("ok", losses, list(net.batches), np.array(layer.params["w"], np.float64),
                np.array(layer.params["b"], np.float64))
    run.__wrapped__ = train
    return run


def batch_loss(w, b, x, y):
    """The mean softmax cross-entropy of the linear classifier (w, b) on (x, y), computed here."""
    logits = x.reshape(len(x), -1).astype(np.float64) @ w.T + b
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def compare_train(expected, got):
    x, y, steps, sizes = expected
    if not (isinstance(got, tuple) and len(got) == 5 and got[0] == "ok"):
        return {"kind": "type", "text": "internal: unexpected result"}
    _, losses, batches, w, b = got
    if not (isinstance(w, np.ndarray) and isinstance(b, np.ndarray) and w.shape == (CLASSES, x[0].size)
            and b.shape == (CLASSES,)):
        return {"kind": "type", "text": "the classifier's parameters were replaced by something of another shape"}
    if not np.any(w) and not np.any(b):
        return {"kind": "unchanged", "text": "after train the parameters are all still zero (where they started): "
                                             f"the loss stays at ln 10 = {LN10:.2f}"}
    final = batch_loss(w, b, x, y)
    if not np.isfinite(final) or final > FIT_BELOW:
        return {"kind": "values", "text": f"after train the loss on these {len(y)} examples is {final:.3f} (it "
                                          f"started at ln 10 = {LN10:.3f}); training that fits them gets below "
                                          f"{FIT_BELOW:.2f}", "sizes": batches}
    if not (isinstance(losses, np.ndarray) and losses.shape == (steps,)):
        count = losses.size if isinstance(losses, np.ndarray) else "no"
        return {"kind": "count", "text": f"train returned {count} losses, expected one per batch: epochs * "
                                         f"ceil(N / batch_size) = {steps}"}
    if abs(losses[0] - LN10) > 1e-3:
        return {"kind": "first-loss", "text": f"the first loss returned is {losses[0]:.4f}; with the classifier's "
                                              f"zero weights it is ln 10 = {LN10:.4f}"}
    return None


def _train_hint(case, got, m):
    kind = m.get("kind")
    if kind == "unchanged":
        return ("nothing was learned: for every batch, train must run net.forward, the loss's gradient "
                "(minicnn.softmax_cross_entropy_backward), net.backward of that gradient, and then sgd_step(net, lr)")
    if kind == "count":
        return "append one loss (a float) per batch, for every epoch, and return the whole list"
    if kind == "first-loss":
        return "record minicnn.softmax_cross_entropy(logits, y_batch), the batch's mean loss, before the step"
    if kind == "values":
        sizes = m.get("sizes") or []
        expected = case.expected[3]
        if sorted(sizes) != sorted(expected):
            return (f"the forward passes saw batches of {len(sizes)} sizes {sorted(set(sizes))}; expected "
                    f"{len(expected)} batches per run (every example in every epoch, batch_size at a time, the "
                    "last one possibly smaller)")
        return "each batch's update must use that batch's gradient: forward, backward, then sgd_step, in that order"
    return None


def _train_cases(rng, hidden):
    settings = [(20, (1, 4, 8), 5, 15, 0.5), (12, (1, 6, 6), 5, 20, 0.5)]
    if hidden:
        settings += [(int(rng.integers(14, 22)), (1, 5, 7), int(rng.integers(3, 7)), 20, 0.5)]
    cases = []
    for i, (n, shape, bs, epochs, lr) in enumerate(settings):
        x = rng.standard_normal((n,) + shape).astype(np.float32)
        y = (np.arange(n) % CLASSES)[rng.permutation(n)].astype(np.int64)
        per_epoch = -(-n // bs)
        sizes = [bs] * (n // bs) + ([n % bs] if n % bs else [])
        cases.append(Case(f"{'hidden' if i >= 2 else 'public'} case {i}", (x, y, epochs, bs, lr, int(rng.integers(1 << 30))),
                          (x, y, epochs * per_epoch, sizes * epochs),
                          f"{n} examples of shape {shape}, batch size {bs}, {epochs} epochs, lr {lr}",
                          hidden=i >= 2, show_inputs=False))
    return cases


def training_parts(**common) -> list:
    """The two parts; `common` is what every part of assignment 5 shares (what it may use, ...)."""
    return [Part("a5.sgd_step", "sgd_step", "One SGD step", _sgd_cases, compare=compare_sgd, hint=_sgd_hint,
                 adapter=sgd_runner, **common),
            Part("a5.train", "train", "The training loop on a batch it can fit", _train_cases, compare=compare_train,
                 hint=_train_hint, adapter=train_runner, **common)]
