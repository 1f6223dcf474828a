"""Batch grading for instructors: `python grade.py --batch submissions/`.

term (the class folder's roster.csv, course.toml, submitted.csv; roster, late, lms) and discover (which
files) -> pool (worker processes run d2lgrade.pipeline.grading.grade) -> gradebook (SQLite, one writer, bound to
its class) -> late penalties, similarity (pairs of similar submissions) -> exports (CSV, Gradescope,
Canvas, Moodle, Blackboard), class_report (HTML) and review (written answers). `run.run_batch` ties
them together.
"""
