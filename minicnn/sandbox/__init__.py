"""Running untrusted code so that nothing it does reaches the caller.  Imports nothing of minicnn.

- `calls`      one call of a function in a forked child: a time limit, everything it prints
               captured, the caller's tripwires armed and blocked imports refused.
- `isolation`  a whole untrusted program (`python -I -m MODULE`) under bubblewrap or resource
               limits, a user namespace or a cgroup per run, and every process of it killed at
               the end.
- `cgroups`    the cgroup (v2 or v1) of one run: pids and memory limits, members, killing.
- `wire`       the data-only format results cross the wall in (no pickle from the untrusted side).

What to run and what it may see (the module, the directories to bind, the tripwires) is
always the caller's to say: the grader (minicnn.grader) and the course's checks
(minicnn.course) pass them in.
"""
