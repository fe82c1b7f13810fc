"""Training loop, evaluation and the training-curve picture.

    from minicnn import data, models, training
    splits = data.mnist_splits()
    model = models.lenet5(seed=0)
    history = training.train(model, splits["train"], splits["val"], epochs=12, augment=2, seed=0)
    training.evaluate(model, *splits["test"])        # {'loss': ..., 'accuracy': ...}

Everything is float32 and seeded: the same seed gives the same weights, losses and
accuracies (the kernels do not depend on the thread count).  Only the timings differ.
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import progress as progress_bar
from .layers import Sequential, SoftmaxCrossEntropy, accuracy
from .optim import SGD, Adam, Optimizer

DEFAULTS = {"epochs": 12, "batch_size": 32, "optimizer": "adam", "lr": 2e-3, "final_lr": 1e-4, "momentum": 0.9,
            "augment": 2}


def random_shift(x, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Each image of x (N, C, H, W) moved by its own random whole-pixel offset in
    [-max_shift, max_shift] along each axis, zeros shifted in: a new array (x is unchanged).
    A digit drawn a little off-centre is still the same digit, so the network sees more
    variety than 8,000 fixed images (less overfitting)."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    out = np.zeros_like(x)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    for i, (dy, dx) in enumerate(shifts):
        out[i, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            x[i, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def evaluate(model: Sequential, x, y, batch_size: int = 500) -> dict:
    """Mean softmax cross-entropy and accuracy of `model` on x (N, ...), y (N,), in eval mode."""
    logits = model.predict(x, batch_size)
    loss_fn = SoftmaxCrossEntropy()
    return {"loss": loss_fn.forward(logits, y), "accuracy": accuracy(logits, y), "n": int(len(y))}


def make_optimizer(name: str, model: Sequential, lr: float, momentum: float = 0.9) -> Optimizer:
    """'adam' -> Adam(lr); 'sgd' -> SGD(lr, momentum)."""
    if name == "adam":
        return Adam(model, lr=lr)
    if name == "sgd":
        return SGD(model, lr=lr, momentum=momentum)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")


def cosine_lr(lr: float, final_lr: float, step: int, total: int) -> float:
    """Cosine decay from lr (step 0) to final_lr (step total)."""
    t = min(max(step / max(total, 1), 0.0), 1.0)
    return final_lr + 0.5 * (lr - final_lr) * (1 + math.cos(math.pi * t))


class Progress(progress_bar.Progress):
    """The training loop's progress bar (minicnn.progress): redrawn in place on a terminal, a line
    every fifth of an epoch otherwise (logs, CI)."""

    def __init__(self, stream=None, width=24):
        super().__init__(stream, width=width, every=0.2)

    def update(self, done, total, loss, acc, ips, final=False):
        self.show(done, total, f"loss {loss:.4f} acc {acc:.4f} {ips:.0f} img/s", final)


def _as_progress(progress):
    """None/True -> a Progress on stdout; False -> None (silent); a stream -> a Progress on it."""
    if progress is False:
        return None
    if progress is None or progress is True:
        return Progress()
    return progress if isinstance(progress, Progress) else Progress(progress)


def train(model: Sequential, train_data, val_data=None, *, epochs=DEFAULTS["epochs"],
          batch_size=DEFAULTS["batch_size"], optimizer=DEFAULTS["optimizer"], lr=DEFAULTS["lr"],
          final_lr=DEFAULTS["final_lr"], momentum=DEFAULTS["momentum"], augment=0, seed=0,
          progress=None) -> dict:
    """Minibatch training with softmax cross-entropy.

    Inputs:
      model       a Sequential producing logits (N, classes); trained in place
      train_data  (x (N, ...), y (N,) int labels); val_data likewise, or None
      optimizer   'adam', 'sgd' (with `momentum`) or an Optimizer over model's parameters
      lr, final_lr  the learning rate falls from lr to final_lr along a cosine over all steps
                  (final_lr=None keeps it constant)
      augment     move each training image by up to this many pixels (random_shift); 0: off
      seed        shuffles the training set each epoch and draws the shifts (numpy default_rng(seed))
      progress    a Progress, a stream to report to, or False for silence (default: stdout)
    Returns the history: per epoch train_loss, train_accuracy (over the epoch's batches, in
    training mode), val_loss, val_accuracy, lr, seconds, images_per_second; and batch_loss,
    every batch's loss.
    """
    x, y = np.asarray(train_data[0]), np.asarray(train_data[1])
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"train_data: x has {len(x)} examples and y {len(y)}; need the same number, > 0")
    if not isinstance(epochs, int) or epochs < 1 or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be positive ints, got {epochs!r}, {batch_size!r}")
    progress = _as_progress(progress)
    opt = optimizer if isinstance(optimizer, Optimizer) else make_optimizer(optimizer, model, lr, momentum)
    rng = np.random.default_rng(seed)
    loss_fn = SoftmaxCrossEntropy()
    n = len(x)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * steps_per_epoch
    history = {k: [] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds",
                               "images_per_second")}
    history["batch_loss"] = []
    step = 0
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(n)
        if progress:
            progress.start(f"epoch {epoch + 1}/{epochs}")
        t0 = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        for b in range(steps_per_epoch):
            if final_lr is not None:
                opt.lr = cosine_lr(lr, final_lr, step, total_steps)
            idx = order[b * batch_size:(b + 1) * batch_size]
            xb, yb = random_shift(x[idx], augment, rng), y[idx]
            logits = model.forward(xb)
            loss = loss_fn.forward(logits, yb)
            if isinstance(model, Sequential):   # only the parameters' gradients are needed
                model.backward(loss_fn.backward(), input_grad=False)
            else:                               # a model of the user's own making
                model.backward(loss_fn.backward())
            opt.step()
            step += 1
            history["batch_loss"].append(loss)
            loss_sum += loss * len(idx)
            correct += int(np.sum(np.argmax(logits, axis=1) == yb))
            seen += len(idx)
            if progress:
                progress.update(seen, n, loss_sum / seen, correct / seen, seen / (time.perf_counter() - t0),
                                final=False)
        seconds = time.perf_counter() - t0
        history["train_loss"].append(loss_sum / n)
        history["train_accuracy"].append(correct / n)
        history["lr"].append(opt.lr)
        history["seconds"].append(seconds)
        history["images_per_second"].append(n / seconds)
        if progress:
            progress.update(n, n, loss_sum / n, correct / n, n / seconds, final=True)
        if val_data is not None:
            val = evaluate(model, *val_data)
            history["val_loss"].append(val["loss"])
            history["val_accuracy"].append(val["accuracy"])
            if progress:
                progress.line(f"  validation: loss {val['loss']:.4f} accuracy {val['accuracy']:.4f} "
                              f"({val['n']} images), {seconds:.1f} s")
    model.eval()
    return history


def training_curve_figure(history: dict, title: str = "Training"):
    """Loss (per batch, and per epoch for training and validation) and accuracy per epoch.
    Returns a matplotlib Figure (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    batch = np.asarray(history.get("batch_loss", []))
    if batch.size:
        per_epoch = batch.size / max(len(epochs), 1)
        at = np.arange(1, batch.size + 1) / per_epoch
        ax_loss.plot(at, batch, color="0.8", lw=0.5, label="batch")
        width = max(1, int(per_epoch) // 10)
        if batch.size >= width:
            smooth = np.convolve(batch, np.ones(width) / width, mode="valid")
            ax_loss.plot(at[width - 1:], smooth, color="0.45", lw=1, label=f"batch, mean of {width}")
    ax_loss.plot(epochs, history["train_loss"], "o-", label="train (epoch mean)")
    if history.get("val_loss"):
        ax_loss.plot(epochs, history["val_loss"], "s-", label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("softmax cross-entropy")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_loss.set_title("loss")
    ax_acc.plot(epochs, history["train_accuracy"], "o-", label="train")
    if history.get("val_accuracy"):
        ax_acc.plot(epochs, history["val_accuracy"], "s-", label="validation")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_title("accuracy")
    ax_acc.legend()
    ax_acc.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def train_lenet5_on_mnist(*, epochs=DEFAULTS["epochs"], batch_size=DEFAULTS["batch_size"],
                          optimizer=DEFAULTS["optimizer"], lr=None, final_lr=DEFAULTS["final_lr"],
                          momentum=DEFAULTS["momentum"], augment=DEFAULTS["augment"], seed=0, split_seed=0,
                          sizes=None, backend="cpu", progress=None):
    """LeNet-5 (minicnn.models.lenet5) trained on the shipped MNIST digits, tested on the
    held-out split.  lr None: 2e-3 for Adam, 0.05 for SGD.
    Returns (model, metrics): metrics holds test_accuracy, test_loss, the configuration, the
    history, and (under "timing", the only part that differs between runs with the same
    seed) seconds and images per second."""
    from . import data, models

    if lr is None:
        lr = 2e-3 if optimizer == "adam" else 0.05
    sizes = tuple(data.DEFAULT_SIZES if sizes is None else sizes)
    t_start = time.perf_counter()
    splits = data.mnist_splits(sizes, split_seed)
    model = models.lenet5(seed=seed, backend=backend)
    out = _as_progress(progress)
    if out:
        out.line(f"LeNet-5 ({model.n_params():,} parameters) on MNIST digits: {sizes[0]} train / {sizes[1]} validation"
                 f" / {sizes[2]} test (split seed {split_seed})")
        decay = f" -> {final_lr:g} (cosine)" if final_lr is not None else ""
        out.line(f"{optimizer} lr {lr:g}{decay}, batch {batch_size}, {epochs} epochs, shifts up to {augment} px, "
                 f"seed {seed}, backend {backend}")
    history = train(model, splits["train"], splits["val"] if sizes[1] else None, epochs=epochs,
                    batch_size=batch_size, optimizer=optimizer, lr=lr, final_lr=final_lr, momentum=momentum,
                    augment=augment, seed=seed, progress=out or False)
    test = evaluate(model, *splits["test"]) if sizes[2] else {"loss": float("nan"), "accuracy": float("nan"), "n": 0}
    train_seconds = float(sum(history["seconds"]))
    metrics = {
        "model": "lenet5",
        "test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_images": test["n"],
        "final_val_accuracy": history["val_accuracy"][-1] if history["val_accuracy"] else None,
        "final_train_accuracy": history["train_accuracy"][-1],
        "config": {"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "lr": lr, "final_lr": final_lr,
                   "momentum": momentum if optimizer == "sgd" else None, "augment": augment, "seed": seed,
                   "split_seed": split_seed, "sizes": list(sizes), "backend": backend},
        "history": {k: v for k, v in history.items() if k not in ("seconds", "images_per_second")},
        "timing": {"train_seconds": train_seconds, "total_seconds": time.perf_counter() - t_start,
                   "images_per_second": sizes[0] * epochs / train_seconds if train_seconds else None,
                   "epoch_seconds": history["seconds"]},
    }
    return model, metrics
