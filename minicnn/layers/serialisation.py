"""The .npz file a network is saved in: the weights as plain arrays, '<layer index>.<name>'
(e.g. '0.weight'), plus two JSON strings, '__architecture__' (format tag, input shape, output
function, each layer's type and constructor arguments) and '__meta__' (anything the caller
passed, e.g. the training run's settings).  Read with np.load(allow_pickle=False): no pickles.

Sequential.save / Sequential.load and load_model (in sequential.py) use these functions; this
module does not know Sequential, it only needs a model's layers and arrays.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .activations import ReLU, Sigmoid, Tanh
from .conv import Conv2D
from .dense import Dense, Flatten
from .dropout import Dropout
from .pool import AvgPool2D, MaxPool2D

FORMAT = "minicnn.Sequential/1"

#: the layer classes a saved file may name, by their saved "type"
LAYER_TYPES = {cls.__name__: cls for cls in (Conv2D, Dense, MaxPool2D, AvgPool2D, ReLU, Tanh, Sigmoid, Flatten,
                                            Dropout)}
_WITH_BACKEND = (Conv2D, MaxPool2D, AvgPool2D)   # the layers that take backend=


def architecture(layers, input_shape, output) -> dict:
    """The JSON description of a network saved beside its weights."""
    return {"format": FORMAT, "input_shape": None if input_shape is None else list(input_shape),
            "output": output,
            "layers": [{"type": type(layer).__name__, "config": layer.config()} for layer in layers]}


def write(path, arrays: dict, arch: dict, meta=None) -> str:
    """Write `arrays` (name -> array), `arch` and `meta` (any JSON data) to an .npz file; returns
    the path written ('.npz' added if missing)."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    arrays = dict(arrays)
    arrays["__architecture__"] = np.array(json.dumps(arch))
    arrays["__meta__"] = np.array(json.dumps(meta if meta is not None else {}))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def read(path) -> tuple[dict, dict | None]:
    """(every entry of the file as an array, the architecture, or None if the file has none)."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        state = {k: data[k] for k in data.files}
    arch = json.loads(str(state["__architecture__"])) if "__architecture__" in state else None
    return state, arch


def read_meta(path) -> dict:
    """The `meta` dictionary saved with a model."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        return json.loads(str(data["__meta__"])) if "__meta__" in data.files else {}


def check_same_layers(path, saved_arch: dict, layers) -> None:
    """Raise unless the file's layers have the same types, in the same order, as `layers`."""
    mine = [type(layer).__name__ for layer in layers]
    theirs = [layer["type"] for layer in saved_arch.get("layers", [])]
    if mine != theirs:
        raise ValueError(f"{os.fspath(path)} holds a different network: {theirs}, this model is {mine}")


def build_layers(path, arch: dict | None, backend="cpu") -> list:
    """New layer objects (initial weights) as the file's architecture describes them; the
    convolution and pooling layers on `backend`."""
    if arch is None:
        raise ValueError(f"{os.fspath(path)} has no __architecture__ entry; was it written by Sequential.save?")
    if arch.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)}: unknown format {arch.get('format')!r}, expected {FORMAT!r}")
    layers = []
    for spec in arch["layers"]:
        cls = LAYER_TYPES.get(spec["type"])
        if cls is None:
            raise ValueError(f"{os.fspath(path)}: unknown layer type {spec['type']!r}")
        cfg = dict(spec["config"])
        if cls in _WITH_BACKEND:
            cfg["backend"] = backend
        layers.append(cls(**cfg))
    return layers
