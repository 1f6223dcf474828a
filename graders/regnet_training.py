"""The training run behind 8.8/1's design check: a RegNetX configuration built with the REFERENCE's code and
trained with the 7.6 recipe, in a pinned child process (d2lgrade/numerics/pinned.py calls `design_training`).

Its own module because its source is part of the cache key of those runs: editing the grader's messages
must not throw the cached reference runs away. It runs only in the course folder (graders/section_8_8.py calls
it through d2lgrade.values.expected.computed; a student kit holds the recorded accuracies).
"""
import torch

from d2lgrade.values.expected import reference
from graders.probes import section_7_6 as training

LR = 0.05


def design_training(factory: str, kwargs: dict, train_X, train_y, order, test_X) -> dict:
    """Train the reference's `factory(**kwargs)` with SGD on the given batches; runs in a pinned child.
    Batch-norm statistics are recomputed over the training images before the held-out pass, as for every
    training check (graders/probes/section_7_6.py: recalibrate_norms)."""
    torch.manual_seed(0)
    model = training.make_model(vars(reference("8.8").module), factory, kwargs, train_X)
    reply = training.train_model(model, train_X, train_y, order, test_X, {"optimizer": "sgd", "lr": LR, "threads": 1})
    return {"final": reply["final"], "steps": reply["steps"]}
