"""The minicnn course's assignments: what each graded part is, its cases and its feedback.

- `checks`       what the notebooks' test cells call: check(part, fn, points, seed),
                 check_compiled(part, fn, points), show_example; feedback and partial credit.
- `part`         the part/case API: Part, Case, AnyOf, Result, case_rng, the comparisons.
- `cases`        case helpers the assignments share (edge kinds, random inputs, labels, citations).
- `a1_convolution` ... `a5_lenet`   one module per assignment, each listing its PARTS (cases
                 from the worked-example catalogue and seeded random edges; expected values from
                 minicnn's reference kernels).
- `registry`     the key -> part table, from those lists (each module imported on first use).
- `tripwires`    what a graded call may not use (minicnn's kernels, or its layers), disabled
                 inside the sandbox's child.
- `inspection`   static checks: is the function @njit, does it call minicnn/torch/scipy.
- `notebook`     reading a notebook's cells (nbgrader metadata, hidden-test blocks).
- `mutation`     how the known-wrong implementations of `minicnn course verify` are applied
                 (the mutants themselves quote the solutions: solutions/mutants.py, not shipped).

Grading a class (sandboxed runs, gradebook, reports, nbgrader) is minicnn.grader's; the course
never imports it.  Running untrusted calls is minicnn.sandbox's.
"""
