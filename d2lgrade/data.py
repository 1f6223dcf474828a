"""Offline image datasets for the training checks. Nothing here ever touches the network.

1. Fashion-MNIST / MNIST are read from a local folder in torchvision's layout when one is given
   (`--data-dir DIR` holding `DIR/FashionMNIST/raw/train-images-idx3-ubyte`, ... or `DIR/MNIST/raw/...`),
   through `torchvision.datasets.<Class>(DIR, download=False)`;
2. otherwise (or when that folder lacks the dataset) a real offline stand-in is used: scikit-learn's
   8×8 handwritten digits (`sklearn.datasets.load_digits`, bundled with the package), scaled to a
   20×20 digit in a 28×28 frame like MNIST's and moved by up to 4 pixels, quantised to 8 bits like the originals, and split
   deterministically into 1297 training and 500 held-out images.

`load_images(name, split, data_dir, limit)` is what the grader uses. `Images.source` says in words
which data was used; checks show it in their messages.

The loading code itself lives in the runtime agent (d2lgrade/run/agent.py, "offline datasets"), because
it must also run INSIDE the student runtime, which cannot import this package: there the agent's
`setup` makes `torchvision.datasets.FashionMNIST` / `MNIST` (and so `d2l.FashionMNIST(batch_size, resize)`)
serve the same images from the same `--data-dir` or stand-in, and never download.
"""
from __future__ import annotations

import torch

from d2lgrade.run.agent import DATASET_TITLES as TITLES
from d2lgrade.run.agent import DATASETS as CLASS_NAMES
from d2lgrade.run.agent import STANDIN_HELD_OUT, STANDIN_SEED, STANDIN_TITLE, dataset_images

__all__ = ["CLASS_NAMES", "TITLES", "STANDIN_HELD_OUT", "STANDIN_SEED", "STANDIN_TITLE", "Images", "load_images",
           "describe_source"]


class Images:
    """Images X (N, 1, 28, 28) float32 in [0, 1] and labels y (N,) int64; `X, y = images` unpacks."""

    def __init__(self, X, y, source, standin, name, split):
        self.X, self.y = X, y
        self.source = source          # which data this is, in words (shown in reports)
        self.standin = standin        # True when the scikit-learn digits stand in for the real data
        self.name, self.split = name, split

    def __iter__(self):
        yield self.X
        yield self.y

    def __len__(self):
        return len(self.y)

    def __repr__(self):
        return "Images(%s %s: %d images; %s)" % (self.name, self.split, len(self), self.source)


def load_images(name: str, split: str, data_dir: str | None = None, limit: int | None = None) -> Images:
    """The `split` ("train" or "test") of `name` ("fashion_mnist" or "mnist") as float images in [0, 1].

    Reads `data_dir` (torchvision's layout) when it holds the dataset, else the offline stand-in; the
    first `limit` images when a limit is given. Values equal torchvision's `ToTensor()` of the images."""
    data, targets, source, standin = dataset_images(name, split, str(data_dir) if data_dir else None)
    if limit is not None:
        data, targets = data[:limit], targets[:limit]
    X = data.unsqueeze(1).to(torch.float32).div(255)
    return Images(X, targets.clone(), source, standin, name, split)


def describe_source(name: str, data_dir: str | None = None) -> str:
    """What `load_images(name, ...)` reads with this data_dir, in words."""
    return dataset_images(name, "test", str(data_dir) if data_dir else None)[2]
