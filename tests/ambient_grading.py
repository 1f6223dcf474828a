"""Run by tests/test_numerics.py in a fresh process whose environment sets the math libraries' variables:
grades the reference of 7.6 on its training checks and prints each check's verdict as JSON."""
import json
import sys

from d2lgrade.testing import VariantRunner

TRAINING_CHECKS = ("7.6/1:training", "7.6/2", "7.6/3")


def main(source_path: str) -> None:
    runner = VariantRunner("7.6")
    try:
        source = open(source_path).read()
        results = [r for selector in ("7.6/1", "7.6/2", "7.6/3")
                   for r in runner.grade(source, selector, only=TRAINING_CHECKS)]
    finally:
        runner.close()
    print(json.dumps([{"id": r.id, "status": r.status, "points": r.points, "message": r.message} for r in results]))


if __name__ == "__main__":
    main(sys.argv[1])
