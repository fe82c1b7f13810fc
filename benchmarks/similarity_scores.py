"""The similarity scores the README quotes, measured on the corpora of tests/course/test_similarity.py.

    python benchmarks/similarity_scores.py

Every pair of every graded function is scored with the flagging thresholds switched off
(threshold 0, one shared fingerprint), so the scores below the flag line are printed too (against
minicnn's own code, the closest of its files per student and part):

  ann   the instructor's solution handed in (tests/course/submissions/correct.ipynb)
  bob   ann's code with every chosen name renamed, comments replaced, lines reformatted
  cay   an independently written solution in another style (a1 and a2)
  dan   the untouched release
  fay   minicnn's teaching loops (kernels/loops.py) pasted under new names into a2

A pair's score is shared fingerprints / the smaller side's fingerprints (see minicnn.grader.similarity).
The flags use the defaults (`minicnn course similarity --threshold 0.75 --min-shared 12`).
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "course"))   # the corpora live with their tests

import test_similarity as corpora  # noqa: E402

from minicnn.course.notebook import read_notebook  # noqa: E402
from minicnn.grader import similarity as sim  # noqa: E402

ALL_PAIRS = sim.Settings(threshold=0.0, min_shared=1)


def table(title: str, result) -> None:
    print(f"\n{title}")
    print(f"  {'pair':<40} {'part':<20} {'score':>6} {'shared':>7}  flagged")
    best = {}   # against minicnn's code: the closest of its files, per student and part
    rows = []
    for m in result.matches:
        if m.b.startswith("minicnn:"):
            key = (m.a, m.part)
            if key not in best or m.score > best[key].score:
                best[key] = m
        else:
            rows.append(m)
    for m in sorted(rows + list(best.values()), key=lambda m: (m.a, m.b, m.part)):
        flagged = m.score >= sim.THRESHOLD and m.shared >= sim.MIN_SHARED
        print(f"  {m.a + ' ~ ' + m.b:<40} {m.part:<20} {m.score:6.2f} {m.shared:7d}  {'yes' if flagged else 'no'}")


def main() -> int:
    a1, a2 = corpora.A1, corpora.A2
    correct = read_notebook(corpora.SUBMISSIONS / "correct.ipynb")
    funcs = sim.graded_functions(corpora.source(a1))
    renamed = {gid: corpora.disguise(code, keep=funcs) for gid, code in corpora.answer_cells(correct).items()}
    one = {"ann": correct, "bob": corpora.filled(a1, renamed), "cay": corpora.filled(a1, corpora.A1_OTHER),
           "dan": corpora.release(a1)}
    table("assignment 1: a disguised copy, an independent solution, the untouched release",
          sim.class_similarity(a1, corpora.source(a1), one, corpora.release(a1), ALL_PAIRS))

    pool = corpora.disguise(corpora._loops_function("max_pool2d_forward"))
    two = {"cay": corpora.filled(a2, corpora.A2_OTHER),
           "sol": corpora.filled(a2, corpora.answer_cells(corpora.source(a2)))}
    table("assignment 2: an independent solution and the instructor's own",
          sim.class_similarity(a2, corpora.source(a2), two, corpora.release(a2), ALL_PAIRS))
    conv = corpora.disguise(corpora._loops_function("conv2d_forward"))
    hp, hc = (text.split("def ", 1)[1].split("(", 1)[0] for text in (pool, conv))
    pasted = {"fay": corpora.filled(a2, {
        "max_pool2d": (f"@njit\n{pool}\n@njit\ndef max_pool2d(x, k, stride):\n"
                       f"    out_h = (x.shape[2] - k) // stride + 1\n    out_w = (x.shape[3] - k) // stride + 1\n"
                       f"    return {hp}(x, k, k, stride, stride, out_h, out_w)\n"),
        "conv2d": (f"{conv}\n@njit\ndef conv2d(x, w, b, stride, padding, dilation):\n"
                   f"    xp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * padding, x.shape[3] + 2 * padding))\n"
                   f"    xp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]] = x\n"
                   f"    oh = (xp.shape[2] - dilation * (w.shape[2] - 1) - 1) // stride + 1\n"
                   f"    ow = (xp.shape[3] - dilation * (w.shape[3] - 1) - 1) // stride + 1\n"
                   f"    return {hc}(xp, w, b, stride, stride, dilation, dilation, oh, ow)\n")})}
    table("assignment 2: minicnn's max-pooling and convolution loops pasted under new names",
          sim.class_similarity(a2, corpora.source(a2), pasted, corpora.release(a2), ALL_PAIRS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
