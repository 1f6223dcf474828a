"""The grader audits itself: mutants of each reference answer, graded by the section's own checks.

operators.py holds the AST changes, mutate.py makes the mutants with them, run.py grades them in one
runtime per section, equivalence.py decides which survivors behave like the reference, report.py prints
and writes docs/AUDIT.md."""
