"""Grading the course's notebooks: a class in sandboxed processes, or nbgrader itself.

A submitted notebook goes through these stages, each once, as one record (record.Grade):

    batch.grade_batch      read every submission, skip those with a current record (the journal),
                           collect the records as they arrive
      cluster              the Dask engine: a LocalCluster or an existing cluster, TLS, isolation checks
        task               one Dask task: the single-threaded worker program as a child, per submission
      grading.grade        one submission: plan -> read -> run -> finish
        plan               the instructor's test cells (read as text) and the student's cells to run
        remote / runner    the student's cells in a sandboxed runner (minicnn.sandbox.isolation);
                           each case called there, compared here (minicnn.course.checks.run_part)
    outputs                gradebook.db, grades/<assignment>.csv, the report, feedback, autograded notebooks
    similarity             copies caught (fingerprint.py: winnowed fingerprints of each graded function):
                           grades/<assignment>-similarity.csv and a flag line per flagged student

Also: `nbg` drives the real nbgrader (release, autograde, feedback); `nbgrader_ext` is the
Execute preprocessor autograder/nbgrader_config.py installs; `verify` is the instructor's
one-command check of the whole course; `locate` finds the course directory and its notebooks.

Dependencies run one way: grader -> course (the assignments' parts and checks) -> sandbox.
"""
