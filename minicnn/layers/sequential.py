"""`Sequential`: layers applied in order, with the whole network's forward, backward, parameters,
summary table and saving; `load_model` rebuilds one from a saved file."""
from __future__ import annotations

import numpy as np

from .. import activations, losses
from . import serialisation
from ..argcheck import flag
from .base import Layer, Parameter, param_dtype, reraise
from .summary import Summary, summarise


class Sequential:
    """Layers applied in order.

    Sequential(layer, layer, ..., input_shape=(C, H, W), output="softmax")
      input_shape  per-sample input shape, used by summary() (optional)
      output       the function that turns the last layer's output (logits) into
                   probabilities: 'softmax', 'sigmoid' or None; it lives in the loss, so
                   forward() returns logits; summary() shows it on the last row.
    forward(x (N, ...)) -> logits; backward(dL/dlogits) -> dL/dx, filling every parameter's grad.
    model[i] is a layer, model[a:b] a Sequential sharing the same layer objects.
    """

    def __init__(self, *layers, input_shape=None, output=None):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is {type(layer).__name__}, not a minicnn.layers.Layer")
        if output not in (None, "softmax", "sigmoid"):
            raise ValueError(f"output must be None, 'softmax' or 'sigmoid', got {output!r}")
        self.layers = list(layers)
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        self.output = output

    # containers ---------------------------------------------------------------------
    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, index):
        if isinstance(index, slice):
            start = index.start or 0
            shape = self.input_shape if start == 0 else None
            return Sequential(*self.layers[index], input_shape=shape)
        return self.layers[index]

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"

    # running --------------------------------------------------------------------------
    def forward(self, x):
        """x (N, ...) -> output of the last layer (logits); every layer caches for backward."""
        for i, layer in enumerate(self.layers):
            try:
                x = layer.forward(x)
            except (ValueError, TypeError) as exc:
                reraise(exc, f"layer {i} ")
        return x

    __call__ = forward

    def backward(self, grad_out, *, input_grad=True):
        """dL/d(output) -> dL/d(input); sets .grad of every parameter.

        input_grad=False (training needs only the parameters' gradients) returns None, and no
        layer computes a gradient nobody uses: the layers before the first one with parameters
        (a Flatten, say) are not run backward at all, and that first one is asked for no
        dL/d(its input), which Conv2D and Dense then do not compute."""
        first = 0
        if not flag("input_grad", input_grad):
            first = next((i for i, layer in enumerate(self.layers) if layer.parameters()), len(self.layers))
        for i in range(len(self.layers) - 1, first - 1, -1):
            try:
                grad_out = self.layers[i].backward(grad_out, input_grad=input_grad if i == first else True)
            except (ValueError, TypeError, RuntimeError) as exc:
                reraise(exc, f"layer {i} ")
        return grad_out if input_grad else None

    def predict(self, x, batch_size=500):
        """Logits for x (N, ...) in eval mode, batch by batch; the mode is restored afterwards."""
        modes = [layer.training for layer in self.layers]
        self.eval()
        try:
            x = np.asarray(x)
            outs = [self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        finally:
            for layer, mode in zip(self.layers, modes):
                layer.training = mode
        return np.concatenate(outs) if outs else np.empty((0,))

    def predict_proba(self, x, batch_size=500):
        """Probabilities: softmax or sigmoid (per `output`) of predict(x)."""
        z = self.predict(x, batch_size)
        if self.output == "softmax":
            return losses.softmax(z)
        if self.output == "sigmoid":
            return activations.sigmoid(z)
        raise ValueError("this model has output=None; set output='softmax' or 'sigmoid' to get probabilities")

    def train(self, mode=True):
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        return self.train(False)

    # parameters ---------------------------------------------------------------------
    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [(f"{i}.{p.name}", p) for i, layer in enumerate(self.layers) for p in layer.parameters()]

    def n_params(self) -> int:
        return sum(p.size for p in self.parameters())

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def astype(self, dtype):
        """Convert every parameter to float32 or float64, in place; returns self."""
        dt = param_dtype(dtype)
        for p in self.parameters():
            p.value = p.value.astype(dt)
            p.grad = None
        return self

    # description --------------------------------------------------------------------
    def summary(self, input_shape=None, fold=True) -> Summary:
        """The lecture-style table (ZJU-UoE, Romanò, "Summary of our CNN"): per layer its
        activation shape, activation size and number of parameters, and the total.

        fold=True gives one row per convolution / pooling / fully connected layer, with the
        activation function that follows it noted on the row (as the lectures draw them);
        fold=False gives one row per layer object."""
        shape = input_shape if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError("summary() needs the input shape: pass input_shape=(C, H, W) here or to Sequential")
        return summarise(self.layers, shape, self.output, fold)

    # saving (the file format is in serialisation.py) ----------------------------------
    def architecture(self) -> dict:
        return serialisation.architecture(self.layers, self.input_shape, self.output)

    def state_dict(self) -> dict:
        """{'<layer index>.<name>': a copy of the parameter}."""
        return {name: p.value.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict):
        """Copy arrays from `state` into the parameters (same names and shapes; cast to each
        parameter's dtype).  The arrays given are not kept or modified."""
        named = dict(self.named_parameters())
        missing = sorted(set(named) - set(state))
        extra = sorted(k for k in set(state) - set(named) if not k.startswith("__"))
        if missing or extra:
            raise ValueError(f"weights do not match the model: missing {missing}, unexpected {extra}")
        for name, p in named.items():
            arr = np.asarray(state[name])
            if arr.shape != p.value.shape:
                raise ValueError(f"weights do not match the model: {name} has shape {arr.shape} in the file, "
                                 f"{p.value.shape} in the model")
            p.value = np.array(arr, dtype=p.value.dtype, copy=True)
            p.grad = None
        return self

    def save(self, path, meta=None) -> str:
        """Write the weights and a JSON description of the layers (and `meta`, any JSON data)
        to an .npz file (no pickles).  Returns the path written."""
        return serialisation.write(path, self.state_dict(), self.architecture(), meta)

    def load(self, path):
        """Read weights saved by save() into this model (its layers must match); returns self."""
        state, saved = serialisation.read(path)
        if saved is not None:
            serialisation.check_same_layers(path, saved, self.layers)
        return self.load_state_dict(state)


def load_model(path, backend="cpu") -> Sequential:
    """Rebuild a Sequential from an .npz written by Sequential.save: layers from the saved
    description, then the weights."""
    state, arch = serialisation.read(path)
    layers = serialisation.build_layers(path, arch, backend)
    model = Sequential(*layers, input_shape=arch.get("input_shape"), output=arch.get("output"))
    return model.load_state_dict(state)
