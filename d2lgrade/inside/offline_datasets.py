"""Datasets served offline inside the student runtime: `install_data_patch` (which the agent's `setup`
calls) makes torchvision's FashionMNIST and MNIST, and so `d2l.FashionMNIST(...)`, read local images.

Fashion-MNIST / MNIST come from a folder in torchvision's layout (DIR/FashionMNIST/raw/train-images-idx3-ubyte,
... or DIR/MNIST/raw/...), read with torchvision's own IDX readers, never the network; otherwise (or when
that folder lacks the dataset) from a stand-in: scikit-learn's 8×8 handwritten digits (bundled with the
package), scaled to a 20×20 digit in a 28×28 frame like MNIST's, moved by up to 4 pixels, quantised to
8 bits, and split once and for all into 1297 training and 500 held-out digits.

Held-out data never reaches the runtime. The grader gives the runtime only the TRAINING files of --data-dir
(d2lgrade/core/data.py stages them in a folder of their own), and what the runtime serves as `train=False` is
the last VALIDATION images of the training split, so it is disjoint from anything the grader evaluates
on (`served_images`). The grader's evaluation images are a keyed draw from the held-out split that only
the grader can make (d2lgrade/core/data.py, `held_out`).
Plain code (torch and stdlib; torchvision and scikit-learn imported lazily), like agent.py.

It travels into the runtime after agent.py, as one source text (agent_source.py); d2lgrade/core/data.py
gives the grader the same training images through the same functions.
"""
import functools
import os
import sys

import torch

DATASETS = {"fashion_mnist": "FashionMNIST", "mnist": "MNIST"}    # torchvision's class = its folder
DATASET_TITLES = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST"}
STANDIN_HELD_OUT = 500       # of scikit-learn's 1797 digits; the other 1297 are the training split
STANDIN_SHIFT = 4          # pixels a digit moves, at most, along each axis (its border is 4 wide)
STANDIN_SEED = 706           # fixes the split forever: the same images in every run, on every machine
STANDIN_TITLE = "scikit-learn's 8×8 handwritten digits, scaled to 28×28 and shifted"
# The runtime's validation split: the last images of the training split (the real datasets keep 50,000 of
# their 60,000 training images for train=True, the stand-in 1097 of its 1297).
VALIDATION = {True: 200, False: 10_000}          # keyed by "is the stand-in"
RAW_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# Where the grader stages the stand-in's training split in the runtime's data folder (torch.save of uint8
# images and int64 labels): scikit-learn's own files are hidden from the runtime (d2lgrade/core/data.py).
STANDIN_FILE = ("d2lgrade-standin", "train.pt")

_DATA = {"data_dir": None, "announced": set(), "originals": {}}


@functools.lru_cache(maxsize=16)
def dataset_images(name, split, data_dir=None):
    """(uint8 images (N, 28, 28), int64 labels (N,), where they come from in words, is the stand-in) for
    the `split` ("train" or "test") of `name` ("fashion_mnist" or "mnist")."""
    if name not in DATASETS:
        raise ValueError("unknown dataset %r; use one of %s" % (name, ", ".join(sorted(DATASETS))))
    if split not in ("train", "test"):
        raise ValueError("unknown split %r; use 'train' or 'test'" % (split,))
    if data_dir:
        local, reason = _read_local_dataset(name, split, str(data_dir))
        if local is not None:
            return local[0], local[1], "%s from %s" % (DATASET_TITLES[name], data_dir), False
    else:
        reason = "no --data-dir was given"
    data, targets = _standin_images(split, _staged_standin(data_dir))
    return data, targets, "%s, an offline stand-in for %s (%s)" % (STANDIN_TITLE, DATASET_TITLES[name], reason), True


def served_images(name, train, data_dir=None):
    """What the runtime serves as torchvision's `train=True` / `train=False`: the training split cut in two
    (the last VALIDATION images are the validation split), never the held-out split."""
    data, targets, source, standin = dataset_images(name, "train", data_dir)
    cut = len(data) - min(VALIDATION[standin], len(data) // 2)
    part = slice(0, cut) if train else slice(cut, None)
    return data[part], targets[part], source, standin


def _read_local_dataset(name, split, data_dir):
    """((data, targets), "") from `data_dir` in torchvision's layout, or (None, why not). Never downloads.

    Reads the two IDX files of the split with torchvision's own readers: torchvision's class would also
    insist on the other split's files, which the runtime is not given."""
    folder = DATASETS[name]
    images_file, labels_file = RAW_FILES[split]
    roots = [data_dir]
    if os.path.basename(os.path.normpath(data_dir)) == folder:     # the dataset's own folder was given
        roots.append(os.path.dirname(os.path.normpath(data_dir)))
    try:
        from torchvision.datasets.mnist import read_image_file, read_label_file
    except ImportError:
        return None, "torchvision is not installed, so %s cannot be read from %s" % (DATASET_TITLES[name], data_dir)
    for root in roots:
        raw = os.path.join(root, folder, "raw")
        try:
            data = read_image_file(os.path.join(raw, images_file))
            targets = read_label_file(os.path.join(raw, labels_file))
        except (RuntimeError, OSError, ValueError, AssertionError):
            continue
        if isinstance(data, torch.Tensor) and data.dim() == 3 and tuple(data.shape[1:]) == (28, 28) \
                and data.dtype == torch.uint8 and len(targets) == len(data):
            return (data, torch.as_tensor(targets, dtype=torch.int64)), ""
    return None, "%s was not found under %s; torchvision reads %s/%s/raw/%s and its labels" % (
        DATASET_TITLES[name], data_dir, data_dir, folder, images_file)


@functools.lru_cache(maxsize=2)
def standin_digits():
    """All of scikit-learn's digits as MNIST-like uint8 images (a 20×20 digit centred in a 28×28 frame),
    their labels, and the fixed order whose first STANDIN_HELD_OUT are the held-out split. Where the grader
    names a file (`_DATA["standin_file"]`: a path, or a function that gives one, in its cache), they are kept
    there: importing scikit-learn and building them takes about two seconds of every grading that trains."""
    kept = _DATA.get("standin_file")
    kept = kept() if callable(kept) else kept
    if kept and os.path.isfile(kept):
        try:
            saved = torch.load(kept, weights_only=True)
            return saved["data"], saved["targets"], saved["shifts"], saved["order"]
        except Exception:                   # a torn or foreign file: built again below
            pass
    built = _build_standin_digits()
    if kept:
        partial = "%s.%d.tmp" % (kept, os.getpid())
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        torch.save(dict(zip(("data", "targets", "shifts", "order"), built)), partial)
        os.replace(partial, kept)
    return built


def _build_standin_digits():
    from torch.nn import functional as F
    try:
        from sklearn.datasets import load_digits      # bundled with scikit-learn: no download
    except ImportError as exc:
        raise RuntimeError("no local copy of the dataset was given, and the offline stand-in needs "
                           "scikit-learn, which cannot be imported here (%s)" % exc) from None
    digits = load_digits()
    data = F.pad(_bilinear_8_to_20(torch.as_tensor(digits.images, dtype=torch.int64)), (4, 4, 4, 4))
    targets = torch.as_tensor(digits.target, dtype=torch.int64)
    generator = torch.Generator().manual_seed(STANDIN_SEED)
    shifts = torch.randint(-STANDIN_SHIFT, STANDIN_SHIFT + 1, (len(data), 2), generator=generator)
    order = torch.randperm(len(data), generator=generator)
    return data, targets, shifts, order


def _bilinear_8_to_20(images):
    """8×8 digits of 0..16 → 20×20 uint8 images of 0..255, as F.interpolate(mode="bilinear",
    align_corners=False) would scale them, but in integers: the float version rounds ties (x.5) by whichever
    way the last bit of its sums fell, which differs between CPU code paths, and so did the data.

    Each output pixel d reads source position 0.4·d − 0.3 (clamped at 0); in tenths, 4·d − 3, so every weight
    is a whole number of tenths and a pixel is S/1600 of 16·(the brightest value), S an integer."""
    tenths = (4 * torch.arange(20) - 3).clamp(min=0)
    low, frac = tenths // 10, tenths % 10
    high = (low + 1).clamp(max=7)
    rows = images[:, low] * (10 - frac)[:, None] + images[:, high] * frac[:, None]           # (N, 20, 8), ×10
    sums = rows[:, :, low] * (10 - frac) + rows[:, :, high] * frac                          # (N, 20, 20), ×100
    return ((sums * 255 * 2 + 1600) // 3200).clamp(0, 255).to(torch.uint8)                 # round half up


def shift_digits(data, shifts):
    """Each digit moved by its (dy, dx) inside its empty border (never wrapped around the frame)."""
    return torch.stack([torch.roll(image, (int(dy), int(dx)), (0, 1)) for image, (dy, dx) in zip(data, shifts)])


def _staged_standin(data_dir):
    """The stand-in's training split as the grader staged it in `data_dir`, or None where it did not."""
    path = os.path.join(str(data_dir), *STANDIN_FILE) if data_dir else None
    return path if path and os.path.isfile(path) else None


@functools.lru_cache(maxsize=4)
def _standin_images(split, staged=None):
    """The stand-in's `split`. Centred 8×8 digits are too easy: a linear model scores 93%, as much as a
    LeNet. Moving each digit by up to STANDIN_SHIFT pixels makes the stand-in test what convolution and
    pooling are for: a linear model drops to ~40%, a modern LeNet stays ~83%.

    `staged`: the file the grader staged (the runtime's case): it holds the training split only."""
    if staged:
        if split != "train":
            raise RuntimeError("only the stand-in's training split is available here")
        saved = torch.load(staged, weights_only=True)
        return saved["images"], saved["labels"]
    data, targets, shifts, order = standin_digits()
    data = shift_digits(data, shifts)
    chosen = order[STANDIN_HELD_OUT:] if split == "train" else order[:STANDIN_HELD_OUT]
    return data[chosen].contiguous(), targets[chosen].contiguous()


def install_data_patch(data_dir=None):
    """Make torchvision's FashionMNIST and MNIST serve `data_dir` or the stand-in, never download.

    `d2l.FashionMNIST(batch_size, resize)` builds `torchvision.datasets.FashionMNIST(root, train, transform,
    download=True)`, so it gets the local images with its usual transforms. Costs nothing until
    `torchvision.datasets` is imported: the classes are replaced right after that first import."""
    _DATA["data_dir"] = str(data_dir) if data_dir else None
    module = sys.modules.get("torchvision.datasets")
    if module is not None and hasattr(module, "MNIST"):
        _patch_datasets(module)
    elif not any(isinstance(f, _PatchDatasetsOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchDatasetsOnImport())


class _PatchDatasetsOnImport:
    """A meta-path finder that lets `torchvision.datasets` import normally, then patches it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torchvision.datasets":
            return None
        from importlib.machinery import PathFinder
        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch_datasets(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
        spec.loader.exec_module = exec_and_patch       # this spec's own loader instance only
        return spec


def _patch_datasets(module):
    mnist_module = sys.modules.get("torchvision.datasets.mnist")
    for name, class_name in DATASETS.items():
        current = getattr(module, class_name, None)
        if current is None or getattr(current, "_d2lgrade_local", False):
            continue
        _DATA["originals"][name] = current
        local = _local_dataset_class(name, current)
        setattr(module, class_name, local)
        if mnist_module is not None and getattr(mnist_module, class_name, None) is current:
            setattr(mnist_module, class_name, local)


def _local_dataset_class(name, original):
    """A subclass of torchvision's class that serves local tensors (same __getitem__, transforms, PIL)."""
    vision_dataset = next(c for c in original.__mro__ if c.__name__ == "VisionDataset")

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        data, targets, source, standin = served_images(name, bool(train), _DATA["data_dir"])
        vision_dataset.__init__(self, root if root is not None else ".", transform=transform,
                                target_transform=target_transform)   # skips MNIST's own loading
        self.train = train
        self.data, self.targets = data, targets
        self.source = source
        if standin:
            self.classes = [str(i) for i in range(10)]
            if name not in _DATA["announced"]:
                _DATA["announced"].add(name)
                print("d2l-grade: %s is not available offline here; serving %s."
                      % (DATASET_TITLES[name], STANDIN_TITLE), file=sys.stderr)

    def download(self):
        return None              # never: the data is local or the stand-in

    local = type(original.__name__, (original,), {"__init__": __init__, "download": download,
                                                  "_d2lgrade_local": True, "__module__": original.__module__,
                                                  "__doc__": original.__doc__})
    local.__qualname__ = original.__qualname__
    return local
