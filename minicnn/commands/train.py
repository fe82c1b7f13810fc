"""`minicnn train`: LeNet-5 on the shipped MNIST digits, with the weights, metrics and pictures written out."""
from __future__ import annotations

import json
import os
import sys


def _positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:
            raise ValueError
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def train(args) -> int:
    # Numba's OpenMP workers busy-wait between kernels by default; on a machine whose cores are
    # shared with other work that spinning starves the workers themselves (we measured LeNet-5
    # steps 10-40x slower on 2 busy cores).  Sleeping instead costs little on an idle machine.
    # It must be set before the first parallel kernel runs; a value the user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .. import pictures, training
    from ..allocator import keep_freed_memory
    keep_freed_memory()   # new arrays reuse freed memory instead of page-faulting (see allocator.py)

    sizes = (args.train_size, args.val_size, args.test_size)
    if sum(sizes) > 10000 or args.train_size < 1 or args.val_size < 0 or args.test_size < 0:
        print(f"minicnn train: --train-size/--val-size/--test-size {sizes} must be >= 1/0/0 and add up to at most "
              "10000 (the digits shipped)", file=sys.stderr)
        return 2
    if args.require_accuracy is not None and not 0 <= args.require_accuracy <= 1:
        print(f"minicnn train: --require-accuracy must be a fraction in [0, 1], got {args.require_accuracy}",
              file=sys.stderr)
        return 2
    if args.backend == "cuda":
        import minicnn.cuda as mc
        if not mc.is_available():
            print("minicnn train: --backend cuda needs a CUDA GPU (or NUMBA_ENABLE_CUDASIM=1, far too slow to train "
                  "with); numba.cuda finds none here. The default --backend cpu computes the same.", file=sys.stderr)
            return 2
    if args.threads is not None:
        import numba
        if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
            print(f"minicnn train: --threads must be in 1..{numba.config.NUMBA_NUM_THREADS}", file=sys.stderr)
            return 2
        numba.set_num_threads(args.threads)

    model, metrics = training.train_lenet5_on_mnist(
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        final_lr=None if args.final_lr == 0 else args.final_lr, momentum=args.momentum, augment=args.augment,
        seed=args.seed, split_seed=args.split_seed, sizes=sizes, backend=args.backend,
        progress=False if args.quiet else None)
    import numba
    metrics["timing"]["threads"] = numba.get_num_threads()

    os.makedirs(args.out, exist_ok=True)
    weights = model.save(os.path.join(args.out, "lenet5.npz"),
                         meta={"model": "lenet5", "input": "MNIST digit, 1x32x32 float32 in [0, 1] (28x28 padded by 2)",
                               "labels": list(range(10)), "test_accuracy": metrics["test_accuracy"],
                               "config": metrics["config"]})
    metrics_path = os.path.join(args.out, "metrics.json")
    with open(metrics_path, "w", encoding="utf-8") as fh:
        json.dump(metrics, fh, indent=1)
    curve = pictures.save_png(training.training_curve_figure(metrics["history"], "LeNet-5 on MNIST digits"),
                              os.path.join(args.out, "training_curve.png"))
    filters = pictures.save_png(pictures.filters_figure(model[0].weight.value, "LeNet-5 first-layer filters"),
                                os.path.join(args.out, "filters.png"))
    t = metrics["timing"]
    print(f"wrote {weights}, {metrics_path}, {curve}, {filters}")
    print(f"trained in {t['train_seconds']:.1f} s ({t['images_per_second']:.0f} images/s, {t['threads']} threads); "
          f"total {t['total_seconds']:.1f} s")
    print(f"test accuracy: {metrics['test_accuracy']:.4f} (held-out {metrics['test_images']} images)")
    if args.require_accuracy is not None and not metrics["test_accuracy"] >= args.require_accuracy:
        print(f"minicnn train: test accuracy {metrics['test_accuracy']:.4f} is below --require-accuracy "
              f"{args.require_accuracy}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub):
    from ..training import DEFAULTS

    p = sub.add_parser("train", help="train LeNet-5 on the shipped MNIST digits and report held-out accuracy",
                       description="Train LeNet-5 (SJTU lecture's table) on the MNIST test-set digits shipped with "
                       "minicnn (split 8000/1000/1000 by default), print progress, and write lenet5.npz, "
                       "metrics.json, training_curve.png and filters.png to --out.")
    p.add_argument("--out", default="minicnn-run", help="output folder (default ./minicnn-run)")
    p.add_argument("--epochs", type=_positive(int), default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=_positive(int), default=DEFAULTS["batch_size"])
    p.add_argument("--optimizer", choices=["adam", "sgd"], default=DEFAULTS["optimizer"])
    p.add_argument("--lr", type=_positive(float), default=None,
                   help="initial learning rate (default 0.002 for adam, 0.05 for sgd)")
    p.add_argument("--final-lr", type=float, default=DEFAULTS["final_lr"],
                   help="the learning rate after the cosine decay (0: constant lr)")
    p.add_argument("--momentum", type=float, default=DEFAULTS["momentum"], help="SGD momentum")
    p.add_argument("--augment", type=int, default=DEFAULTS["augment"],
                   help="shift training digits by up to this many pixels (0: off)")
    p.add_argument("--seed", type=int, default=0, help="initial weights, shuffling and shifts")
    p.add_argument("--split-seed", type=int, default=0, help="which digits go to train/validation/test")
    p.add_argument("--train-size", type=int, default=8000)
    p.add_argument("--val-size", type=int, default=1000)
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--backend", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=None, help="Numba threads (default: all cores)")
    p.add_argument("--require-accuracy", type=float, default=None, metavar="X",
                   help="exit with status 1 if the test accuracy is below X (e.g. 0.97)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=train)
