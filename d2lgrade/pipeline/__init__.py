"""Grading one submission: load it, run it, probe it, compare, score (grading.grade)."""
