"""The per-implementation op table (one row per implementation, as in early tinygrad).

"loop" is the teaching version: the plain loops of `loops.py`, one per formula.
"fast" is what the public functions use by default: `fast.py` (with `fast_conv.py`,
`fast_pool.py` and `fast_dense.py`), same results.
Ops the fast module does not redefine (the average-pooling divisors) come from the loops.
"""
from . import fast, loops

OPS = (
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "bias_backward",
    "conv_transpose2d_forward", "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d_forward", "avg_pool2d_backward", "avg_pool_divisors", "dense_forward", "dense_backward",
)

KERNELS = {
    "loop": {op: getattr(loops, op) for op in OPS},
    "fast": {op: getattr(fast, op, None) or getattr(loops, op) for op in OPS},
}
# Optional ops an implementation may add: conv2d and conv2d_backward use them when present.
# They take the unpadded x and the conv.ConvGeometry, and pad while laying the input out.
KERNELS["fast"]["conv2d_forward_padding"] = fast.conv2d_forward_padding
KERNELS["fast"]["conv2d_backward_padding"] = fast.conv2d_backward_padding


def kernels(impl: str) -> dict:
    """The op table for `impl` ('fast' or 'loop'); a clear error for anything else."""
    try:
        return KERNELS[impl]
    except (KeyError, TypeError):
        raise ValueError(f"impl must be one of {sorted(KERNELS)}, got {impl!r}") from None
