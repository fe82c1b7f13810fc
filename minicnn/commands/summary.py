"""`minicnn summary`: a model's layer table, as the lectures print it."""
from __future__ import annotations

CITATIONS = {
    "lenet5": 'Yue Ding (SJTU), "Convolutional Neural Networks", Summary of LeNet-5 Architecture',
    "zju-two-class": 'Nicola Romanò (ZJU-UoE), "Lecture 12 - Convolutional Neural Networks (CNN)", Summary of our CNN',
}


def summary(args) -> int:
    from .. import layers, models

    if args.weights:
        model = layers.load_model(args.weights)
        print(f"model read from {args.weights}")
    else:
        model = models.get(args.model)
        print(f"{args.model}: {CITATIONS[args.model]}")
    print(model.summary(fold=not args.layers).format(args.notation))
    if not args.weights and args.model == "zju-two-class":
        print("(the slide prints 150 for the first convolution, 50 for the output layer and a total of 47766: "
              "(5x5+1)x6 = 156 and 50 weights + 1 bias = 51 make the total 47773)")
    return 0


def add_parser(sub):
    from ..models import MODELS

    p = sub.add_parser("summary", help="print a model's table: activation shape, size and parameters per layer")
    p.add_argument("model", nargs="?", default="lenet5", choices=sorted(MODELS), help="which model (default lenet5)")
    p.add_argument("--notation", choices=["chw", "hwc"], default="chw",
                   help="shapes as (C, H, W) (minicnn's order) or as the ZJU-UoE slide writes them, (H,W,C)")
    p.add_argument("--layers", action="store_true",
                   help="one row per layer object (activations, Flatten) instead of the lecture's folded rows")
    p.add_argument("--weights", metavar="NPZ", help="summarise a model saved by `minicnn train` instead")
    p.set_defaults(func=summary)
