"""Parameter counts per layer kind, from the layer records of graders/probes/architecture.describe.

Used by 8.1 and 8.2 to tell a student which layers a wrong count left out or counted alone. (A candidate
for graders/architecture.py, which other sections own.)
"""
from __future__ import annotations


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
