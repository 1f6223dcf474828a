"""Parameter counts per layer kind, from the layer records of graders/probes/architecture.describe.

Used by 8.1 and 8.2 to tell a student which layers a wrong count left out or counted alone. (Candidates
for graders/architecture.py, which other sections own.)
"""
from __future__ import annotations

from graders.architecture import expect_count, infer_unit, read_flops, unit_note


def parameter_split(description: dict, biases_only: bool = False) -> dict[str, int]:
    """{"conv": ..., "fc": ...}: the parameters (or only the biases) of the convolutional and dense layers."""
    split = {"conv": 0, "fc": 0}
    for _, kind, h, _ in description["layers"]:
        if kind == "Conv2d":
            k = h["kernel_size"]
            weights = h["out_channels"] * (h["in_channels"] // h["groups"]) * k[0] * k[1]
            split["conv"] += h["out_channels"] * h["bias"] + (0 if biases_only else weights)
        elif kind == "Linear":
            split["fc"] += h["out_features"] * h["bias"] + (0 if biases_only else h["out_features"] * h["in_features"])
    return split


def nearest_first(mistakes: dict[str, float], value: float) -> dict[str, float]:
    """`mistakes` ordered by how close each is to the student's `value`: expect_count names the first one
    within tolerance, and several known mistakes can land within a few percent of each other."""
    return dict(sorted(mistakes.items(), key=lambda item: abs(item[1] - value)))


def expect_flop_split(answer, expected: dict[str, float], name: str, rel: float) -> str:
    """`answer` = {"conv", "fc", "unit"} within `rel` of `expected` ({"conv", "fc"} in FLOPs), naming the
    usual mistakes: MACs and FLOPs confused, the two parts swapped. Without a "unit", the one unit in which
    both numbers match is assumed; returns the note saying so ("" when the answer named its unit)."""
    inferred = infer_unit(answer, expected, rel) if "unit" not in answer else None
    for key, other in (("conv", "fc"), ("fc", "conv")):
        got = read_flops(answer, key, f"`{name}`", inferred)
        expect_count(got, expected[key], f'{name}["{key}"] in FLOPs', rel, hints=nearest_first({
            "half the FLOPs: MACs labelled \"FLOPs\"": expected[key] / 2,
            "twice the FLOPs: FLOPs labelled \"MACs\"": expected[key] * 2,
            "the other part's figure (conv and fc swapped?)": expected[other]}, got))
    return unit_note(answer, inferred)
