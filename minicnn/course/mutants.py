"""Known-wrong implementations of every graded part, for `minicnn course verify`.

Each mutant is the instructor's solution with one typical student mistake put in: a text
replacement inside one solution cell (found by its nbgrader grade_id).  Verify autogrades the
mutated notebook with real nbgrader and requires every test cell named in `breaks` to lose
points, so a check that cannot fail (a hidden test that accepts anything) is caught.  A
replacement whose `old` text no longer occurs exactly once in the solution is an error: the
mutants must follow the solutions.
"""
from __future__ import annotations

import ast
import json
import symtable
from dataclasses import dataclass

from .notebook import cells_of, grade_id, nbgrader_meta, source_text


@dataclass(frozen=True)
class Mutant:
    name: str
    assignment: str
    cell: str                 # grade_id of the solution cell to change
    breaks: tuple             # grade_ids of the test cells that must lose points
    description: str
    edits: tuple              # ((old, new), ...) applied to the cell's source, each old exactly once


def M(assignment, name, cell, breaks, description, *edits):
    return Mutant(name, assignment, cell, tuple(breaks), description, tuple(edits))


A1, A2, A3, A4, A5 = "a1_convolution", "a2_volumes_pooling", "a3_backprop", "a4_gpu", "a5_lenet"

MUTANTS = [
    # ---------------------------------------------------------------- assignment 1
    M(A1, "output-size-missing-plus-one", "output_size", ["test_output_size"], "forgets the +1",
      ("// stride + 1", "// stride")),
    M(A1, "output-size-padding-once", "output_size", ["test_output_size"], "adds the padding on one side only",
      ("n + 2 * padding - k", "n + padding - k")),
    M(A1, "param-count-one-bias-per-layer", "param_count", ["test_param_count"],
      "one bias for the whole layer (the ZJU-UoE slide's slip)",
      ("out_channels * (in_channels * kh * kw + (1 if bias else 0))",
       "out_channels * in_channels * kh * kw + (1 if bias else 0)")),
    M(A1, "param-count-ignores-channels", "param_count", ["test_param_count"], "filters span one channel only",
      ("(in_channels * kh * kw +", "(kh * kw +")),
    M(A1, "zero-pad-top-left", "zero_pad", ["test_zero_pad"], "copies the image to the top-left corner",
      ("out[i + p, j + p] = image[i, j]", "out[i, j] = image[i, j]")),
    M(A1, "correlate-padding-off-by-one", "correlate2d", ["test_correlate2d"], "off-by-one padding",
      ("zero_pad(image, padding)", "zero_pad(image, padding + 1)")),
    M(A1, "correlate-stride-ignored", "correlate2d", ["test_correlate2d"],
      "right output size, but the window moves one pixel at a time",
      ("padded[i * stride + u, j * stride + v]", "padded[i + u, j + v]")),
    M(A1, "correlate-kernel-flipped", "correlate2d", ["test_correlate2d"], "flips the kernel (computes convolution)",
      ("* kernel[u, v]", "* kernel[kh - 1 - u, kw - 1 - v]")),
    M(A1, "correlate-not-compiled", "correlate2d", ["test_correlate2d_compiled"], "correct, but without @njit",
      ("@njit\n", "")),
    M(A1, "correlate-calls-minicnn", "correlate2d", ["test_correlate2d", "test_correlate2d_compiled"],
      "hands the work to minicnn.correlate2d",
      ("@njit\n", ""),
      ("    padded = zero_pad(image, padding)\n",
       "    import minicnn\n    return minicnn.correlate2d(image, kernel, stride, padding)\n")),
    M(A1, "convolve-not-flipped", "convolve2d", ["test_convolve2d"], "forgets to flip the kernel",
      ("flipped[u, v] = kernel[kh - 1 - u, kw - 1 - v]", "flipped[u, v] = kernel[u, v]")),
    M(A1, "convolve-flips-rows-only", "convolve2d", ["test_convolve2d"], "reverses the rows but not the columns",
      ("kernel[kh - 1 - u, kw - 1 - v]", "kernel[kh - 1 - u, v]")),
    # ---------------------------------------------------------------- assignment 2
    M(A2, "conv-bias-dropped", "conv2d", ["test_conv2d"], "drops the bias",
      ("total = b[k]", "total = 0.0")),
    M(A2, "conv-first-channel-only", "conv2d", ["test_conv2d"], "sums over channel 0 only",
      ("for c in range(n_chan):\n                        for u in range(kh):",
       "for c in range(1):\n                        for u in range(kh):")),
    M(A2, "conv-stride-ignored", "conv2d", ["test_conv2d"], "the window moves one pixel at a time",
      ("xp[n, c, i * stride + u * dilation, j * stride + v * dilation]",
       "xp[n, c, i + u * dilation, j + v * dilation]")),
    M(A2, "conv-padding-off-by-one", "conv2d", ["test_conv2d"], "off-by-one padding",
      ("p = padding\n", "p = padding + 1\n")),
    M(A2, "conv-dilation-ignored", "conv2d", ["test_dilated"], "right output size, taps not spread out",
      ("i * stride + u * dilation, j * stride + v * dilation", "i * stride + u, j * stride + v")),
    M(A2, "conv1x1-bias-dropped", "conv1x1", ["test_conv1x1"], "drops the bias",
      (" + b[None, :, None]", "")),
    M(A2, "max-pool-wrong-window", "max_pool2d", ["test_max_pool2d"],
      "window (i, j) starts at i*k instead of i*stride",
      ("x[n, c, i * stride + u, j * stride + v]", "x[n, c, i * k + u, j * k + v]")),
    M(A2, "max-pool-starts-at-zero", "max_pool2d", ["test_max_pool2d"], "the running maximum starts at 0",
      ("best = x[n, c, i * stride, j * stride]", "best = 0.0")),
    M(A2, "avg-pool-divides-by-k", "avg_pool2d", ["test_avg_pool2d"], "divides by k instead of k*k",
      ("total / (k * k)", "total / k")),
    M(A2, "table-one-bias-per-layer", "layer_table", ["test_layer_table"], "one bias per conv layer",
      ("params = f * (c * k * k + 1)", "params = f * c * k * k + 1")),
    M(A2, "table-dense-not-flattened", "layer_table", ["test_layer_table"],
      "the first dense layer counts only the channels as its inputs",
      ("for size in shape:", "for size in shape[:1]:")),
    M(A2, "table-pool-stride-one", "layer_table", ["test_layer_table"], "pooling stride defaults to 1",
      ('s = layer.get("stride", k)', 's = layer.get("stride", 1)')),
    M(A2, "table-conv-stride-ignored", "layer_table", ["test_layer_table"],
      "a convolution's output size ignores its stride",
      ("shape = (f, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)",
       "shape = (f, h + 2 * p - k + 1, w + 2 * p - k + 1)")),
    M(A2, "table-pool-always-halves", "layer_table", ["test_layer_table"],
      "every pooling layer halves H and W, whatever its kernel and stride",
      ("shape = (c, (h - k) // s + 1, (w - k) // s + 1)", "shape = (c, h // 2, w // 2)")),
    # ---------------------------------------------------------------- assignment 3
    M(A3, "grad-weight-no-batch-sum", "conv2d_backward", ["test_grad_weight"],
      "grad_weight restarts for every image (misses the batch sum)",
      ("    for n in range(n_img):\n        for k in range(n_filt):\n",
       "    for n in range(n_img):\n        grad_w[:] = 0.0\n        for k in range(n_filt):\n")),
    M(A3, "grad-bias-dropped", "conv2d_backward", ["test_grad_bias"], "never accumulates the bias gradient",
      ("grad_b[k] += g", "grad_b[k] += 0.0")),
    M(A3, "grad-input-stride-ignored", "conv2d_backward", ["test_grad_input"], "scatters without the stride",
      ("grad_xp[n, c, i * stride + u, j * stride + v]", "grad_xp[n, c, i + u, j + v]")),
    M(A3, "grad-input-padding-not-removed", "conv2d_backward", ["test_grad_input"],
      "crops the padded gradient at the wrong offset",
      ("grad_x[n, c, i, j] = grad_xp[n, c, i + p, j + p]", "grad_x[n, c, i, j] = grad_xp[n, c, i, j]")),
    M(A3, "grad-input-overwrites", "conv2d_backward", ["test_grad_input"],
      "overlapping windows overwrite the input gradient instead of adding",
      ("grad_xp[n, c, i * stride + u, j * stride + v] += g * w", "grad_xp[n, c, i * stride + u, j * stride + v] = g * w")),
    M(A3, "grad-input-kernel-flipped", "conv2d_backward", ["test_grad_input"], "uses the flipped kernel",
      ("+= g * w[k, c, u, v]", "+= g * w[k, c, kh - 1 - u, kw - 1 - v]")),
    M(A3, "max-pool-grad-to-every-cell", "max_pool2d_backward", ["test_max_pool2d_backward"],
      "sends the gradient to every cell of the window",
      ("                    grad_x[n, c, i * stride + best_u, j * stride + best_v] += grad_out[n, c, i, j]\n",
       "                    for u in range(k):\n"
       "                        for v in range(k):\n"
       "                            grad_x[n, c, i * stride + u, j * stride + v] += grad_out[n, c, i, j]\n")),
    M(A3, "max-pool-grad-overwrites", "max_pool2d_backward", ["test_max_pool2d_backward"],
      "overlapping windows overwrite instead of adding",
      ("j * stride + best_v] += grad_out", "j * stride + best_v] = grad_out")),
    M(A3, "max-pool-grad-last-tie", "max_pool2d_backward", ["test_max_pool2d_backward"],
      "on a tie, picks the last maximum",
      ("j * stride + v] > best:", "j * stride + v] >= best:")),
    M(A3, "avg-pool-grad-not-shared", "avg_pool2d_backward", ["test_avg_pool2d_backward"],
      "gives every cell the whole gradient",
      ("share = grad_out[n, c, i, j] / (k * k)", "share = grad_out[n, c, i, j]")),
    M(A3, "avg-pool-grad-wrong-window", "avg_pool2d_backward", ["test_avg_pool2d_backward"],
      "window (i, j) starts at i*k",
      ("grad_x[n, c, i * stride + u, j * stride + v] += share", "grad_x[n, c, i * k + u, j * k + v] += share")),
    M(A3, "relu-grad-at-zero", "activations_backward", ["test_relu_backward"], "x >= 0 counts as active",
      ("grad_out * (x > 0)", "grad_out * (x >= 0)")),
    M(A3, "tanh-grad-uses-x", "activations_backward", ["test_tanh_backward"], "1 - x^2 instead of 1 - tanh(x)^2",
      ("return grad_out * (1 - t * t)", "return grad_out * (1 - x * x)")),
    M(A3, "sigmoid-grad-forgets-one-minus", "activations_backward", ["test_sigmoid_backward"],
      "s instead of s(1 - s)",
      ("return grad_out * s * (1 - s)", "return grad_out * s")),
    # ---------------------------------------------------------------- assignment 4
    # The kernels are launched by the grader itself and the host functions are checked with the grader's
    # stand-in kernel, so a kernel's mistake costs the kernel's parts and a host function's the host's.
    M(A4, "gpu-conv-too-few-blocks", "conv2d_gpu", ["test_conv2d_gpu"],
      "rounds the number of blocks down: the last outputs get no thread",
      ("blocks = (out.size + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK", "blocks = out.size // THREADS_PER_BLOCK")),
    M(A4, "gpu-conv-index-mixup", "conv2d_kernel", ["test_conv2d_kernel"],
      "divides the thread index by the output's height where its width belongs",
      ("    i = (t // out_w) % out_h\n", "    i = (t // out_h) % out_h\n")),
    M(A4, "gpu-conv-bias-dropped", "conv2d_kernel", ["test_conv2d_kernel"], "drops the bias",
      ("total = b[k]", "total = 0.0")),
    M(A4, "gpu-conv-fixed-block-size", "conv2d_kernel", ["test_conv2d_kernel"],
      "assumes 32 threads per block instead of asking cuda.grid(1)",
      ("t = cuda.grid(1)", "t = cuda.blockIdx.x * 32 + cuda.threadIdx.x")),
    M(A4, "gpu-conv-calls-minicnn-cuda", "conv2d_gpu", ["test_conv2d_gpu"],
      "hands the work to minicnn.cuda.conv2d",
      ("    n, c, h, wd = x.shape\n",
       "    import minicnn.cuda\n    return minicnn.cuda.conv2d(x, w, b, stride, padding)\n")),
    M(A4, "gpu-pool-stride-ignored", "max_pool2d_kernel", ["test_max_pool2d_kernel"],
      "windows move one pixel at a time",
      ("x[n, c, i * stride + u, j * stride + v]", "x[n, c, i + u, j + v]")),
    M(A4, "gpu-pool-on-the-cpu", "max_pool2d_gpu", ["test_max_pool2d_gpu"],
      "computes the pooling with NumPy on the host, launching nothing",
      ("    out = cuda.device_array(",
       "    return x[:, :, :(h - k) // stride * stride + k, :(w - k) // stride * stride + k][:, :, ::stride, ::stride]\n"
       "    out = cuda.device_array(")),
    M(A4, "tiled-no-syncthreads", "conv2d_tiled_kernel", ["test_conv2d_tiled_kernel"],
      "no cuda.syncthreads() after loading the tile: windows read cells other threads have not stored yet",
      ("            cuda.syncthreads()  # (1) every cell stored before any window reads it\n", "")),
    M(A4, "tiled-halo-one-short", "conv2d_tiled_kernel", ["test_conv2d_tiled_kernel"],
      "loads a halo one row short: the last windows read a row that was never loaded",
      ("for r in range(ty, TILE + kh - 1, TILE)", "for r in range(ty, TILE + kh - 2, TILE)")),
    M(A4, "tiled-skips-partial-tile", "conv2d_tiled_kernel", ["test_conv2d_tiled_kernel"],
      "rounds the number of tile rows down: the last, partial row of tiles is never computed",
      ("tiles_h = (out_h + TILE - 1) // TILE", "tiles_h = out_h // TILE")),
    # ---------------------------------------------------------------- assignment 5
    M(A5, "conv-layer-forgets-grad-bias", "conv_layer", ["test_conv_layer"], "never stores grads['b']",
      ('self.grads["w"], self.grads["b"] = grad_w, grad_b', 'self.grads["w"] = grad_w')),
    M(A5, "conv-layer-zero-init", "conv_layer", ["test_conv_layer"], "starts every weight at 0",
      ('"w": rng.uniform(-limit, limit, shape).astype(np.float32)', '"w": np.zeros(shape, np.float32)')),
    M(A5, "dense-layer-mean-bias-grad", "dense_layer", ["test_dense_layer"], "averages the bias gradient",
      ('self.grads["b"] = grad_out.sum(axis=0)', 'self.grads["b"] = grad_out.mean(axis=0)')),
    M(A5, "pool-layer-backward-stride-one", "small_layers", ["test_pool_layer"],
      "the backward pass forgets the stride",
      ("minicnn.avg_pool2d_backward(grad_out, self.x, self.k, self.stride)",
       "minicnn.avg_pool2d_backward(grad_out, self.x, self.k, 1)")),
    M(A5, "tanh-layer-forgets-square", "small_layers", ["test_tanh_layer"], "1 - tanh instead of 1 - tanh^2",
      ("return grad_out * (1 - self.y * self.y)", "return grad_out * (1 - self.y)")),
    M(A5, "lenet-two-outputs", "network", ["test_lenet5"], "ends with 2 outputs instead of 10",
      ("Dense(84, 10, rng=rng)", "Dense(84, 2, rng=rng)")),
    M(A5, "training-ascends", "training", ["test_sgd_step", "test_accuracy"], "moves the parameters *up* the gradient",
      ("layer.params[name] -= lr * layer.grads[name]", "layer.params[name] += lr * layer.grads[name]")),
    M(A5, "sgd-step-rebinds", "training", ["test_sgd_step"],
      "rebinds a local name (`p = p - lr * g`): the parameters never change",
      ("            layer.params[name] -= lr * layer.grads[name]\n",
       "            p = layer.params[name]\n            p = p - lr * layer.grads[name]\n")),
    M(A5, "train-no-backward", "training", ["test_train"], "never calls net.backward: the gradients stay zero",
      ("            net.backward(minicnn.softmax_cross_entropy_backward(logits, y[batch]))\n", "")),
    M(A5, "train-one-batch-per-epoch", "training", ["test_train"], "runs only the first batch of every epoch",
      ("for start in range(0, len(x), batch_size)", "for start in range(0, batch_size, batch_size)")),
    M(A5, "conv-layer-from-minicnn", "conv_layer", ["test_conv_layer"], "uses minicnn.layers.Conv2D",
      ("class Conv2D:", "from minicnn.layers import Conv2D as _Theirs\n\n\nclass Conv2D(_Theirs):\n    pass\n\n\nclass _Unused:")),
]


class StaleMutant(ValueError):
    pass


def apply(mutant: Mutant, source: str) -> str:
    """The cell source with the mutant's edits applied; StaleMutant if an edit does not fit."""
    for old, new in mutant.edits:
        count = source.count(old)
        if count != 1:
            raise StaleMutant(f"mutant {mutant.name!r}: {old!r} occurs {count} times in cell {mutant.cell!r} "
                              "(expected exactly once); update minicnn/course/mutants.py to follow the solution")
        source = source.replace(old, new)
    return source


def for_assignment(assignment: str) -> list:
    return [m for m in MUTANTS if m.assignment == assignment]


def mutate_notebook(notebook: dict, mutants) -> dict:
    """A copy of the source notebook with every given mutant applied (to distinct cells)."""
    nb = json.loads(json.dumps(notebook))
    by_cell = {}
    for m in mutants:
        if m.cell in by_cell:
            raise ValueError(f"mutants {by_cell[m.cell].name!r} and {m.name!r} change the same cell")
        by_cell[m.cell] = m
    found = set()
    for cell in cells_of(nb):
        gid = grade_id(cell)
        if gid in by_cell:
            cell["source"] = apply(by_cell[gid], source_text(cell))
            found.add(gid)
    missing = set(by_cell) - found
    if missing:
        raise StaleMutant(f"no solution cell with grade_id {sorted(missing)} in the notebook")
    return nb


# ------------------------------------------------------------------ which cells each test depends on

def _global_uses(src: str) -> set:
    """Names a cell reads from the notebook's global namespace (a function's locals do not count)."""
    def walk(table):
        out = set()
        for sym in table.get_symbols():
            if not sym.is_referenced():
                continue
            if table.get_type() == "module" or sym.is_global() or (table.get_type() == "class"
                                                                    and not sym.is_assigned()):
                out.add(sym.get_name())
        for child in table.get_children():
            out |= walk(child)
        return out
    return walk(symtable.symtable(src, "<cell>", "exec"))


def _cell_info(notebook: dict):
    """(defines, uses) per solution cell, and the function each test cell checks."""
    defines, uses, tests = {}, {}, {}
    for cell in cells_of(notebook):
        meta = nbgrader_meta(cell)
        src = source_text(cell)
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        if meta.get("solution"):
            names = set()
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for t in targets:
                        names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
            defines[meta["grade_id"]] = names
            uses[meta["grade_id"]] = _global_uses(src)
        elif meta.get("grade"):
            called = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("check", "check_compiled"):
                    called |= {a.id for a in node.args if isinstance(a, ast.Name)}
            tests[meta["grade_id"]] = called
    return defines, uses, tests


def test_dependencies(notebook: dict) -> dict:
    """{test grade_id: set of solution-cell grade_ids whose code that test runs}."""
    defines, uses, tests = _cell_info(notebook)
    owner = {fn: cell for cell, fns in defines.items() for fn in fns}
    deps = {}
    for test, funcs in tests.items():
        todo = [owner[f] for f in funcs if f in owner]
        seen = set()
        while todo:
            cell = todo.pop()
            if cell in seen:
                continue
            seen.add(cell)
            todo.extend(owner[n] for n in uses.get(cell, ()) if n in owner and owner[n] not in seen)
        deps[test] = seen
    return deps


def batches(notebook: dict, mutants) -> list:
    """Group mutants into submissions that cannot disturb each other's verdicts.

    Two mutants share a submission only when they change different cells and neither one's
    cell is run by a test the other must break."""
    deps = test_dependencies(notebook)
    groups = []
    for m in mutants:
        mine = set().union(*(deps.get(t, set()) for t in m.breaks))
        for g in groups:
            clash = any(o.cell == m.cell or o.cell in mine or
                        m.cell in set().union(*(deps.get(t, set()) for t in o.breaks)) for o in g)
            if not clash:
                g.append(m)
                break
        else:
            groups.append([m])
    return groups
