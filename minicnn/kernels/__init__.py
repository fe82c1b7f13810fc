"""The per-implementation op table (one row per implementation, as in early tinygrad).

"loop" is the teaching version: the plain loops of `loops.py`, one per formula, behind thin
adapters (`loop_row.py`: pad, call the loop, crop).
"fast" is what the public functions use by default: the `fast/` package, same results.

Every row implements every op with the same signature, so a public function makes one
table lookup and never asks what a row can do.  Convolution and pooling ops take the
UNPADDED input and the geometry as one value (`minicnn.geometry.ConvGeometry` g or
`PoolGeometry` g); each row pads however suits it (the loops pad a copy, the fast
convolution pads while laying its input out).  Arrays arrive validated, C-contiguous,
all of one float dtype; every op allocates its outputs and never writes to its inputs, except
that the ops with an `out` argument write into `out` when it is given (an array the public
function has checked: the result's shape and dtype, C-contiguous, not overlapping the inputs).

    conv2d_forward(x, w, b, g, out=None)       x (N,C,H,W), w (K,C,kH,kW), b (K,) -> (N,K,g.out_h,g.out_w)
    conv2d_backward_input(grad_out, w, g, x_hw, out=None)   grad_out (N,K,Ho,Wo), x_hw = (H,W) -> grad_x (N,C,H,W)
    conv2d_backward_weight(grad_out, x, g)     -> grad_w (K,C,g.kh,g.kw)
    bias_backward(grad_out)                    -> grad_b (K,)
    conv_transpose2d_forward(x, w, g)          x (N,Cin,H,W), w (Cin,Cout,kH,kW), g the transposed
                                               geometry -> (N,Cout,g.out_h,g.out_w), cropped, no bias
    max_pool2d_forward(x, g, out=None)                   -> (N,C,g.out_h,g.out_w)
    max_pool2d_backward(grad_out, x, g, out=None)        -> grad_x (N,C,H,W)
    avg_pool2d_forward(x, g, count_include_pad, out=None)        -> (N,C,g.out_h,g.out_w)
    avg_pool2d_backward(grad_out, g, x_hw, count_include_pad, out=None)   -> grad_x (N,C,H,W)
    dense_forward(x, w, b)                     x (N,I), w (O,I), b (O,) -> (N,O)
    dense_backward(grad_out, x, w, input_grad=True)   -> (grad_x, grad_w, grad_b), grad_x None if not input_grad

There is no "cuda" row: a row must implement every op on NumPy arrays, and minicnn.cuda
has no dense or transposed-convolution kernels, takes and returns device arrays (kept on
the GPU between layers, which a NumPy-in, NumPy-out row would copy back after every op),
and needs numba.cuda imported (a row here would make `import minicnn` import it).  The CUDA
ops share the geometry instead (`minicnn.geometry`), which is where the backends must agree.
"""
from . import fast, loop_row

OPS = (
    "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "bias_backward",
    "conv_transpose2d_forward", "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d_forward", "avg_pool2d_backward", "dense_forward", "dense_backward",
)

KERNELS = {
    "loop": {op: getattr(loop_row, op) for op in OPS},
    "fast": {op: getattr(fast, op) for op in OPS},
}


def kernels(impl: str) -> dict:
    """The op table for `impl` ('fast' or 'loop'); a clear error for anything else."""
    try:
        return KERNELS[impl]
    except (KeyError, TypeError):
        raise ValueError(f"impl must be one of {sorted(KERNELS)}, got {impl!r}") from None
