"""Run by tests/test_numerics.py in a fresh process whose environment sets the math libraries' variables:
grades the reference of 7.6 on two of its training checks and prints each check's verdict as JSON.

7.6/1:training judges the trained weights in the grader's own LeNet, 7.6/2 a network the grader rebuilds: the
two ways the grader's own process (with the ambient settings) computes a training verdict. 7.6/3 runs the same
code as 7.6/2 (graders/section_7_6.py's `_accuracy_check`) on MNIST, so it would add a third training run per
process and no path of its own."""
import json
import sys

from d2lgrade.testing import VariantRunner

TRAINING_CHECKS = ("7.6/1:training", "7.6/2")


def main(source_path: str) -> None:
    runner = VariantRunner("7.6")
    try:
        source = open(source_path).read()
        results = [r for selector in ("7.6/1", "7.6/2")
                   for r in runner.grade(source, selector, only=TRAINING_CHECKS)]
    finally:
        runner.close()
    print(json.dumps([{"id": r.id, "status": r.status, "points": r.points, "message": r.message} for r in results]))


if __name__ == "__main__":
    main(sys.argv[1])
