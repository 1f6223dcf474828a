"""Batch grading for instructors: `python grade.py --batch submissions/`.

discover (which files) -> pool (worker processes run d2lgrade.grading.grade) -> gradebook (SQLite,
one writer) -> exports (CSV, Gradescope, Canvas), class_report (HTML) and review (written answers).
`run.run_batch` ties them together.
"""
