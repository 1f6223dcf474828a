"""The margins of 7.6/2-3 on the keyed held-out draws (docs/NUMERICS.md, "Held-out images").

    python bench/heldout_margins.py [--keys "d2l-grade tests" course-a course-b]

Trains each network once, in a child with the pinned numerics (d2lgrade/numerics/) and the grader's
batches, and evaluates it on the held-out draw of every key (the test suite's key first): held-out
accuracy per network and key, and the thresholds the grader derives from the references for that key.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(keys: list[str]) -> None:
    import torch
    from torch import nn
    from torch.nn import functional as F
    from d2l import torch as d2l
    from d2lgrade.core import data
    from graders import section_7_6 as g
    from graders.probes import section_7_6 as probes
    from reference import section_7_6 as ref
    sys.path.insert(0, str(ROOT / "tests"))
    from test_section_7_6 import BOOK_LENET, DENSE_ONLY, RIGHT_IMPROVED, RIGHT_MNIST

    def variant(source, name):
        ns = {"torch": torch, "nn": nn, "F": F, "d2l": d2l}
        exec(source, ns)
        return ns[name]

    improved = {"reference ImprovedLeNet": (ref.ImprovedLeNet, g.OWN_RECIPE, "best"),
                "modern LeNet (book recipe)": (ref.ModernLeNet, g.BOOK_RECIPE, "modern"),
                "two-bn-convolutions-adam": (variant(RIGHT_IMPROVED[0], "ImprovedLeNet"), g.OWN_RECIPE, ""),
                "three-convs-momentum": (variant(RIGHT_IMPROVED[1], "ImprovedLeNet"), g.OWN_RECIPE, ""),
                "dense, 256 hidden": (variant(DENSE_ONLY.replace("(self, hidden)", "(self, hidden=256)"),
                                              "ImprovedLeNet"), g.OWN_RECIPE, ""),
                "sigmoid LeNet": (variant(BOOK_LENET, "ModernLeNet"), g.OWN_RECIPE, "")}
    mnist = {"reference mnist_model": (ref.mnist_model, g.OWN_RECIPE, "best"),
             "modern LeNet (book recipe)": (ref.ModernLeNet, g.BOOK_RECIPE, "modern"),
             "improved-class-functional": (variant(RIGHT_MNIST[0], "mnist_model"), g.OWN_RECIPE, ""),
             "sequential-adam": (variant(RIGHT_MNIST[1], "mnist_model"), g.OWN_RECIPE, "")}
    out = {}
    for dataset, nets in (("fashion_mnist", improved), ("mnist", mnist)):
        train = data.load_images(dataset, "train", None, limit=g.TRAIN_LIMIT)
        tests = [data.held_out(dataset, None, limit=g.EVAL_LIMIT, key=k.encode()) for k in keys]
        X = torch.cat([t.X for t in tests])
        order = g._order(len(train))
        table = {}
        for name, (factory, recipe, role) in nets.items():
            torch.manual_seed(0)
            model = probes.make_model({"n": factory}, "n", {}, train.X)
            final = probes.train_model(model, train.X, train.y, order, X, dict(recipe))["final"]
            accuracies, start = [], 0
            for t in tests:
                accuracies.append(round(g._evaluate(final[start:start + len(t)], t.y)[1] * 100, 1))
                start += len(t)
            table[name] = {"accuracy": accuracies, "role": role}
        best = next(v["accuracy"] for v in table.values() if v["role"] == "best")
        modern = next(v["accuracy"] for v in table.values() if v["role"] == "modern")
        table["full marks from"] = {"accuracy": [round(b - g.SLACK * 100, 1) for b in best], "role": ""}
        table["half marks from"] = {"accuracy": [round(min(m - g.SLACK * 100, b - g.SLACK * 100), 1)
                                                 for b, m in zip(best, modern)], "role": ""}
        out[dataset] = table
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", nargs="+", default=["d2l-grade tests", "course-a", "course-b", "course-c"])
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        return child(args.keys)
    from d2lgrade import numerics
    env = {**os.environ, **numerics.pinned_environment(), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, __file__, "--child", "--keys", *args.keys], env=env,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print("held-out accuracy (%) per key: " + " | ".join(args.keys))
    for dataset, table in result.items():
        print(dataset)
        for name, row in table.items():
            print(f"    {name:<30} " + "  ".join(f"{a:5.1f}" for a in row["accuracy"]))


if __name__ == "__main__":
    main()
