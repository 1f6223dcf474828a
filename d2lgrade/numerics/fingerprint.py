"""The numerics fingerprint: `python -m d2lgrade.numerics --fingerprint` trains two small networks on the
pinned path in a pinned child and compares their digest with the one committed in FINGERPRINT
(d2lgrade/numerics/__init__.py); a machine that differs cannot reproduce the course's training verdicts."""
from __future__ import annotations

import argparse
import hashlib
import json

from d2lgrade.numerics import pinned
from d2lgrade.numerics import FINGERPRINT, cpu_name, describe_path


# -- the fingerprint -----------------------------------------------------------------------------------------
def fingerprint_run() -> str:
    """Runs in a pinned child (d2lgrade/numerics/pinned.py): two small networks trained by the training probe that every
    training check uses, on the offline stand-in's first images, and the digest of everything they end with.
    One is a LeNet with batch norm under SGD with momentum (convolutions, pooling, batch statistics, the
    recalibration of running averages), the other a dense network under Adam (matrix products, sqrt, division)."""
    import torch
    from torch import nn

    from d2lgrade.core import data
    from graders.probes import section_7_6 as training

    images = data.load_images("fashion_mnist", "train", None, limit=512)
    order = torch.randint(0, len(images), (60, 32), generator=torch.Generator().manual_seed(21))
    digest = hashlib.sha256(images.X.numpy().tobytes())

    class DenseAdam(nn.Sequential):
        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    def bn_lenet():
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(),
                             nn.Linear(400, 84), nn.BatchNorm1d(84), nn.ReLU(), nn.Linear(84, 10))

    def dense():
        return DenseAdam(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))

    runs = [(bn_lenet, {"init": "xavier", "optimizer": "sgd", "lr": 0.1, "threads": 1}),
            (dense, {"optimizer": "own", "threads": 1})]
    for factory, recipe in runs:
        torch.manual_seed(0)
        model = training.make_model({"net": factory}, "net", {}, images.X)
        reply = training.train_model(model, images.X, images.y, order, images.X[:256], recipe)
        for value in [*model.state_dict().values(), reply["final"], reply["losses"]]:
            digest.update(value.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def fingerprint() -> dict:
    """The fingerprint of this machine's pinned path, computed afresh in a pinned child (never cached)."""
    digest = pinned.call("d2lgrade.numerics.fingerprint:fingerprint_run", cached=False)
    return {"digest": digest, "expected": FINGERPRINT, "same": digest == FINGERPRINT, "cpu": cpu_name(),
            "path": describe_path()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m d2lgrade.numerics",
                                     description="Check that this machine computes training checks bit for bit "
                                                 "as the course's grading machines do.")
    parser.add_argument("--fingerprint", action="store_true", required=True,
                        help="train a fixed small network on the pinned path and compare its digest")
    parser.parse_args(argv)
    result = fingerprint()
    print(json.dumps(result))
    return 0 if result["same"] else 1
