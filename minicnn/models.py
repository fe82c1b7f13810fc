"""Ready-made networks from the lectures.

    lenet5()          Ding (SJTU), "Convolutional Neural Networks", LeNet-5 table
    zju_two_class()   Romanò (ZJU-UoE), "Lecture 12 - Convolutional Neural Networks (CNN)",
                      the 32x32 two-class CNN of "Summary of our CNN"

Both return a `minicnn.layers.Sequential` whose forward gives logits; `output` names the
function that the loss (or predict_proba) applies to them.
"""
from __future__ import annotations

import numpy as np

from .layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, Tanh


def lenet5(seed=0, backend="cpu", dtype=np.float32) -> Sequential:
    """LeNet-5 as in the SJTU lecture's table: input 1x32x32; conv 6@5x5, tanh; average pool
    2x2 stride 2, tanh; conv 16@5x5, tanh; average pool 2x2 stride 2, tanh; conv 120@5x5, tanh;
    FC 84, tanh; FC 10, softmax (in the loss).

    The table puts tanh after the pooling layers as well (LeCun's subsampling layers had a
    trainable coefficient, bias and squashing function); here the pooling is a plain average
    followed by tanh.  Conv 3 convolves 5x5 maps with 5x5 filters, so its output is 120x1x1.
    Weights: Glorot uniform (for tanh) from numpy.random.default_rng(seed), biases 0.
    61,706 parameters."""
    rng = np.random.default_rng(seed)
    kw = dict(init="glorot", rng=rng, dtype=dtype)
    return Sequential(
        Conv2D(1, 6, 5, backend=backend, **kw), Tanh(),
        AvgPool2D(2, 2, backend=backend), Tanh(),
        Conv2D(6, 16, 5, backend=backend, **kw), Tanh(),
        AvgPool2D(2, 2, backend=backend), Tanh(),
        Conv2D(16, 120, 5, backend=backend, **kw), Tanh(),
        Flatten(),
        Dense(120, 84, **kw), Tanh(),
        Dense(84, 10, **kw),
        input_shape=(1, 32, 32), output="softmax")


def zju_two_class(seed=0, backend="cpu", dtype=np.float32) -> Sequential:
    """The ZJU-UoE lecture's CNN for a 32x32 one-channel image and two classes: conv 6 x
    (f=5, s=1, p=0), ReLU; max pool (f=2, s=2); conv 16 x (f=5, s=1, p=0), ReLU; max pool
    (f=2, s=2); FC 100, ReLU; FC 50, ReLU; output 1 unit, sigmoid (in the loss).

    The lecture names ReLU as the usual activation and draws none in the table; the slide's
    pooling stride is printed as 0 (it must be 2).  He-normal weights from
    numpy.random.default_rng(seed).  47,773 parameters (the slide's total, 47,766, adds two
    miscounted rows)."""
    rng = np.random.default_rng(seed)
    kw = dict(init="he", rng=rng, dtype=dtype)
    return Sequential(
        Conv2D(1, 6, 5, backend=backend, **kw), ReLU(),
        MaxPool2D(2, 2, backend=backend),
        Conv2D(6, 16, 5, backend=backend, **kw), ReLU(),
        MaxPool2D(2, 2, backend=backend),
        Flatten(),
        Dense(400, 100, **kw), ReLU(),
        Dense(100, 50, **kw), ReLU(),
        Dense(50, 1, init="glorot", rng=rng, dtype=dtype, label="Output"),
        input_shape=(1, 32, 32), output="sigmoid")


MODELS = {"lenet5": lenet5, "zju-two-class": zju_two_class}


def get(name: str, **kwargs) -> Sequential:
    """A model by name: 'lenet5' or 'zju-two-class'."""
    try:
        return MODELS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None
