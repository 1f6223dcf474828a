"""Offline image datasets for the training checks. Nothing here ever touches the network.

1. Fashion-MNIST / MNIST are read from a local folder in torchvision's layout when one is given
   (`--data-dir DIR` holding `DIR/FashionMNIST/raw/train-images-idx3-ubyte`, ... or `DIR/MNIST/raw/...`);
2. otherwise (or when that folder lacks the dataset) a real offline stand-in is used: scikit-learn's
   8×8 handwritten digits (`sklearn.datasets.load_digits`, bundled with the package), scaled to a
   20×20 digit in a 28×28 frame like MNIST's and moved by up to 4 pixels, quantised to 8 bits like the
   originals, and split deterministically into 1297 training and 500 held-out digits.

Three views of a dataset, and who may see each:
- `load_images(name, "train")`: the training split; the grader sends some of it to training probes.
- `load_images(name, "validation")`: what the runtime serves as torchvision's `train=False` (the last
  images of the training split, see agent.served_images); never used for a verdict.
- `held_out(name, data_dir, limit)`: the grader's evaluation images, a draw from the held-out split keyed
  by a secret the runtime never sees (`held_out_key`). From real data it is a keyed subset of the test
  files, which the runtime cannot read at all (`runtime_data_dir` stages only the training files for it).
  The stand-in's digits come with scikit-learn, whose data files the runtime cannot read (its sandbox hides
  `private_sources()`; it gets the training split as a file staged by `runtime_data_dir`). Each held-out
  digit is still drawn twice, each time at a keyed position and with a keyed ±2/255 change of its stroke
  pixels, so a copy of the digits obtained elsewhere holds no exact image. The same key gives the same
  images on every machine, so a verdict is repeatable.

The loading code lives in the runtime agent (d2lgrade/inside/offline_datasets.py) because the
runtime's `setup` must serve the training data to `d2l.FashionMNIST(...)` too, and it cannot import
this package.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import torch

from d2lgrade.core.course import CACHE, held_out_key
from d2lgrade.inside.offline_datasets import DATASET_TITLES as TITLES
from d2lgrade.inside.offline_datasets import DATASETS as CLASS_NAMES
from d2lgrade.inside.offline_datasets import (RAW_FILES, STANDIN_FILE, STANDIN_HELD_OUT, STANDIN_SEED, STANDIN_SHIFT,
                                           STANDIN_TITLE)
from d2lgrade.inside import offline_datasets
from d2lgrade.inside.offline_datasets import _standin_images, dataset_images, served_images, shift_digits, standin_digits

__all__ = ["CLASS_NAMES", "TITLES", "STANDIN_HELD_OUT", "STANDIN_SEED", "STANDIN_TITLE", "Images", "load_images",
           "held_out", "held_out_key", "runtime_data_dir", "private_sources", "describe_source"]

ROOT = Path(__file__).resolve().parents[2]
STROKE_JITTER = 2                          # the stand-in's held-out strokes move by up to this many 1/255 steps
# Each of the stand-in's 500 held-out digits is drawn at this many keyed positions: 1000 images make the
# accuracy of a network less dependent on which key drew them (docs/NUMERICS.md, "Held-out images").
STANDIN_DRAWS = 2


def _standin_file() -> str:
    """Where the grader keeps the stand-in's digits, named by what builds them: the code, scikit-learn's and
    torch's versions (the digits are scikit-learn's bundled data)."""
    from d2lgrade.core.version import installed_version
    digest = hashlib.sha256(Path(offline_datasets.__file__).read_bytes())
    digest.update(f"\0{installed_version('scikit-learn')}\0{torch.__version__}".encode())
    return str(CACHE / "data" / f"standin-{digest.hexdigest()[:24]}.pt")


# Named when the digits are first needed (most gradings never train), not at every import of this module.
offline_datasets._DATA["standin_file"] = _standin_file


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


def _images(data, targets, source, standin, name, split, limit) -> Images:
    if limit is not None:
        data, targets = data[:limit], targets[:limit]
    return Images(data.unsqueeze(1).to(torch.float32).div(255), targets.clone(), source, standin, name, split)


def load_images(name: str, split: str, data_dir: str | None = None, limit: int | None = None) -> Images:
    """The "train" split of `name` ("fashion_mnist" or "mnist"), or the runtime's "validation" split, as
    float images in [0, 1] (the values of torchvision's `ToTensor()`); the first `limit` when given."""
    where = str(data_dir) if data_dir else None
    if split == "train":
        return _images(*dataset_images(name, "train", where), name, split, limit)
    if split == "validation":
        return _images(*served_images(name, False, where), name, split, limit)
    raise ValueError("unknown split %r; use 'train' or 'validation' (held-out images come from held_out())"
                     % (split,))


def training_and_held_out(name: str, data_dir: str | None, train_limit: int, eval_limit: int) -> tuple[Images, Images]:
    """What a training check needs: the training images it sends to the runtime, and the keyed held-out images
    whose labels stay in the grader."""
    return load_images(name, "train", data_dir, limit=train_limit), held_out(name, data_dir, limit=eval_limit)


def _keyed_generator(key: bytes, name: str) -> torch.Generator:
    seed = int.from_bytes(hashlib.sha256(key + b"\0held-out\0" + name.encode()).digest()[:8], "little")
    return torch.Generator().manual_seed(seed)


def held_out(name: str, data_dir: str | None = None, limit: int | None = None, key: bytes | None = None) -> Images:
    """The grader's evaluation images of `name`: a keyed draw from the held-out split (see the module's
    docstring). Deterministic for a key; another key draws other images."""
    generator = _keyed_generator(held_out_key() if key is None else key, name)
    data, targets, source, standin = dataset_images(name, "test", str(data_dir) if data_dir else None)
    if standin:
        base, labels, _, order = standin_digits()
        picked = order[:STANDIN_HELD_OUT].repeat(STANDIN_DRAWS)
        shifts = torch.randint(-STANDIN_SHIFT, STANDIN_SHIFT + 1, (len(picked), 2), generator=generator)
        data = shift_digits(base[picked], shifts)
        jitter = torch.randint(-STROKE_JITTER, STROKE_JITTER + 1, data.shape, generator=generator)
        data = torch.where(data > 0, (data.to(torch.int64) + jitter).clamp(1, 255), 0).to(torch.uint8)
        targets = labels[picked]
    order = torch.randperm(len(data), generator=generator)
    source += "; a keyed draw the student runtime cannot reproduce"
    return _images(data[order], targets[order], source, standin, name, "held_out", limit)


def private_sources() -> list[str]:
    """The installed files the runtime must not read: scikit-learn's bundled data sets (the stand-in's
    digits, 8.7's diabetes data, and the rest of that folder), found without importing scikit-learn."""
    import importlib.util
    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):
        return []
    found = []
    for root in (spec.submodule_search_locations or []) if spec else []:
        for folder in ("data", "images"):
            path = Path(root) / "datasets" / folder
            if path.is_dir():
                found.append(str(path.resolve()))
    return sorted(found)


def runtime_data_dir(data_dir: str | None) -> str | None:
    """A folder holding only the TRAINING files of `data_dir` (hard links, else copies), in torchvision's
    layout, and the stand-in's training split (STANDIN_FILE): what the runtime may read instead of
    `data_dir` and of scikit-learn's files, so the held-out images stay out of its reach. None where
    there is nothing to stage (no `data_dir`, and no scikit-learn to build the stand-in from)."""
    source = Path(data_dir).resolve() if data_dir else None
    digest = hashlib.sha256(str(source).encode()).hexdigest()[:16] if source else "standin"
    staged = Path(tempfile.gettempdir()) / f"d2lgrade-data-{os.getuid()}" / digest
    standin = _stage_standin(staged)
    if source is None:
        return str(staged) if standin else None
    roots = [source, source.parent]           # DIR, or DIR/FashionMNIST given itself
    for folder in CLASS_NAMES.values():
        raw = next((r / folder / "raw" for r in roots if (r / folder / "raw" / RAW_FILES["train"][0]).is_file()), None)
        if raw is None:
            continue
        target = staged / folder / "raw"
        target.mkdir(parents=True, exist_ok=True)
        for file in RAW_FILES["train"]:
            _link_or_copy(raw / file, target / file)
    staged.mkdir(parents=True, exist_ok=True)
    os.chmod(staged.parent, 0o700)
    return str(staged)


def _stage_standin(staged: Path) -> bool:
    """Write the stand-in's training split into `staged` (once); False where scikit-learn is missing."""
    target = staged.joinpath(*STANDIN_FILE)
    if target.is_file():
        return True
    try:
        images, labels = _standin_images("train")
    except RuntimeError:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(staged.parent, 0o700)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"images": images.clone(), "labels": labels.clone()}, partial)
    partial.replace(target)
    return True


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists() and target.stat().st_size == source.stat().st_size and \
            target.stat().st_mtime >= source.stat().st_mtime:
        return
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        os.link(source, partial)
    except OSError:                                  # another file system: copy
        shutil.copyfile(source, partial)
    partial.replace(target)


def describe_source(name: str, data_dir: str | None = None) -> str:
    """What `load_images(name, ...)` reads with this data_dir, in words."""
    return dataset_images(name, "train", str(data_dir) if data_dir else None)[2]
