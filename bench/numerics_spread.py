"""How far 7.6/2's held-out accuracy moves with the CPU code path and the batch order (docs/NUMERICS.md).

    python bench/numerics_spread.py [--seeds 76 1 2]

Each setting runs in a child process started with the variables that decide the CPU code path, as a
machine of that kind would run it: unpinned with ATEN_CPU_CAPABILITY=avx512|avx2|default (and as many
threads as the machine has), and pinned (d2lgrade/numerics/) whatever the ambient capability says.
It prints held-out accuracy per network, per setting and order seed, then one line of JSON.
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


def child(seeds: list[int]) -> None:
    import torch
    from torch import nn  # noqa: F401  (the variants' sources use it)
    from d2l import torch as d2l  # noqa: F401
    from d2lgrade.core import data
    from graders import section_7_6 as g
    from graders.probes import section_7_6 as probes
    from reference import section_7_6 as ref
    sys.path.insert(0, str(ROOT / "tests"))
    from test_section_7_6 import RIGHT_IMPROVED

    def variant(source):
        ns = {"torch": torch, "nn": nn, "d2l": d2l}
        exec(source, ns)
        return ns["ImprovedLeNet"]

    nets = {"reference ImprovedLeNet": (ref.ImprovedLeNet, g.OWN_RECIPE),
            "modern LeNet (book recipe)": (ref.ModernLeNet, g.BOOK_RECIPE),
            "variant two-bn-convolutions-adam": (variant(RIGHT_IMPROVED[0]), g.OWN_RECIPE),
            "variant three-convs-momentum": (variant(RIGHT_IMPROVED[1]), g.OWN_RECIPE)}
    train = data.load_images("fashion_mnist", "train", None, limit=g.TRAIN_LIMIT)
    test = data.held_out("fashion_mnist", None, limit=g.EVAL_LIMIT)     # $D2LGRADE_HELDOUT_KEY or the course key
    out = {"capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(), "runs": {}}
    for seed in seeds:
        order = torch.randint(0, len(train), (g.STEPS, g.BATCH), generator=torch.Generator().manual_seed(seed))
        for name, (factory, recipe) in nets.items():
            torch.manual_seed(0)
            model = probes.make_model({"n": factory}, "n", {}, train.X)
            reply = probes.train_model(model, train.X, train.y, order, test.X, dict(recipe, threads=0))
            out["runs"][f"{name} @ order {seed}"] = round(g._evaluate(reply["final"], test.y)[1] * 100, 1)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[76])
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        return child(args.seeds)
    from d2lgrade import numerics
    settings = {f"unpinned {cap}": {"ATEN_CPU_CAPABILITY": cap} for cap in ("avx512", "avx2", "default")}
    settings.update({f"pinned, ambient {cap}": {"ATEN_CPU_CAPABILITY": cap, **numerics.pinned_environment()}
                     for cap in ("avx512", "default")})
    table = {}
    for label, extra in settings.items():
        env = {**os.environ, **extra, "PYTHONPATH": str(ROOT)}
        if "unpinned" in label:
            for var in ("MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env.pop(var, None)
        done = subprocess.run([sys.executable, __file__, "--child", "--seeds", *map(str, args.seeds)], env=env,
                              capture_output=True, text=True, check=True)
        table[label] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{label:<24} ({table[label]['capability']}, {table[label]['threads']} threads)")
        for run, accuracy in table[label]["runs"].items():
            print(f"    {run:<48} {accuracy:5.1f} %")
    print(json.dumps(table))


if __name__ == "__main__":
    main()
