"""Offline datasets: the stand-in loads with no network, a local torchvision-layout folder wins when given,
the runtime agent's setup makes torchvision (so d2l.FashionMNIST) serve local data instead of downloading,
and the grader's held-out images are a keyed draw that nothing the runtime can reach holds."""
import json
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from d2lgrade.core import data
from d2lgrade.core.data import load_images

ROOT = Path(__file__).resolve().parents[1]


def _refuse(*args, **kwargs):
    raise OSError("the network is disabled in this test")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Anything that tries to connect or resolve a name fails loudly."""
    for name in ("create_connection", "getaddrinfo", "gethostbyname"):
        monkeypatch.setattr(socket, name, _refuse)
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)


def write_idx(path: Path, array: torch.Tensor) -> None:
    """The raw IDX format torchvision reads: magic (0, 0, type 0x08 = ubyte, ndim), big-endian sizes, bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.dim()) + b"".join(struct.pack(">I", n) for n in array.shape)
    path.write_bytes(header + array.to(torch.uint8).contiguous().numpy().tobytes())


def fake_dataset(root: Path, folder: str = "FashionMNIST", n_train: int = 12, n_test: int = 5):
    """A tiny dataset in torchvision's layout: root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte."""
    g = torch.Generator().manual_seed(1)
    made = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = torch.arange(n, dtype=torch.uint8) % 10
        write_idx(root / folder / "raw" / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / folder / "raw" / f"{prefix}-labels-idx1-ubyte", labels)
        made[prefix] = (images, labels)
    return made


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_standin_loads_offline_with_the_right_shapes(name):
    train, test = load_images(name, "train"), data.held_out(name)
    assert train.standin and test.standin
    assert "stand-in" in train.source and "no --data-dir" in train.source
    assert tuple(train.X.shape) == (1297, 1, 28, 28) and tuple(test.X.shape) == (1000, 1, 28, 28)  # 500 digits, twice
    assert train.X.dtype == torch.float32 and train.y.dtype == torch.int64
    assert 0.0 <= float(train.X.min()) and float(train.X.max()) <= 1.0 and float(train.X.max()) > 0.9
    assert set(train.y.tolist()) == set(range(10)) and set(test.y.tolist()) == set(range(10))
    # 8-bit values like ToTensor() of real images
    assert torch.equal(train.X, (train.X * 255).round() / 255)
    # Each digit fills at most 20×20 pixels (never wrapped around the frame), at varying places.
    rows, cols = (train.X[:, 0] > 0).any(2), (train.X[:, 0] > 0).any(1)
    for filled in (rows, cols):
        index = torch.arange(28).expand_as(filled)
        span = index.masked_fill(~filled, -1).amax(1) - index.masked_fill(~filled, 28).amin(1) + 1
        assert int(span.max()) <= 20
    centre = (rows.float() * torch.arange(28)).sum(1) / rows.sum(1)
    assert float(centre.std()) > 1.5
    X, y = train                                     # unpacks like a pair
    assert X is train.X and y is train.y


def test_standin_split_is_deterministic_and_disjoint():
    a, b = load_images("mnist", "train"), load_images("mnist", "train")
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y)
    test = data.held_out("mnist")
    train_rows = {bytes(row) for row in (a.X * 255).to(torch.uint8).flatten(1).numpy()}
    test_rows = [bytes(row) for row in (test.X * 255).to(torch.uint8).flatten(1).numpy()]
    shared = sum(row in train_rows for row in test_rows)
    assert shared < 5, f"{shared} held-out images also appear in the training split"   # digits has a few duplicates


def test_limit_takes_the_first_images():
    full, few = load_images("fashion_mnist", "train"), load_images("fashion_mnist", "train", limit=7)
    assert len(few) == 7 and torch.equal(few.X, full.X[:7]) and torch.equal(few.y, full.y[:7])
    full, few = data.held_out("fashion_mnist"), data.held_out("fashion_mnist", limit=7)
    assert len(few) == 7 and torch.equal(few.X, full.X[:7]) and torch.equal(few.y, full.y[:7])


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_images("cifar10", "train")
    with pytest.raises(ValueError, match="held_out"):
        load_images("mnist", "test")           # the held-out images only come keyed


def _rows(images) -> set[bytes]:
    return {bytes(row) for row in (images * 255).round().to(torch.uint8).flatten(1).numpy()}


def test_held_out_images_are_a_keyed_draw_the_runtime_cannot_rebuild():
    """Same key, same images (a verdict is repeatable); another key, other images; and none of them is
    in any table the runtime can build: its served splits, or scikit-learn's digits at every position."""
    from d2lgrade.inside import offline_datasets as agent

    first, again = data.held_out("mnist", key=b"course A"), data.held_out("mnist", key=b"course A")
    other = data.held_out("mnist", key=b"course B")
    assert torch.equal(first.X, again.X) and torch.equal(first.y, again.y)
    assert not torch.equal(first.X, other.X)
    assert sorted(first.y.tolist()) == sorted(other.y.tolist())          # the same digits, drawn otherwise
    base, _, _, _ = agent.standin_digits()
    reachable = _rows(load_images("mnist", "train").X) | _rows(load_images("mnist", "validation").X)
    for dy in range(-agent.STANDIN_SHIFT, agent.STANDIN_SHIFT + 1):
        for dx in range(-agent.STANDIN_SHIFT, agent.STANDIN_SHIFT + 1):
            reachable |= _rows(torch.roll(base, (dy, dx), (1, 2)).float().div(255))
    assert len(reachable) > 100_000
    assert not (_rows(first.X) | _rows(other.X)) & reachable
    # the validation split the runtime serves is the end of the training split, not held-out data
    train, validation = load_images("mnist", "train"), load_images("mnist", "validation")
    assert torch.equal(validation.X, train.X[-len(validation):]) and len(validation) == 200


def test_the_key_lives_in_a_private_file_made_once(tmp_path, monkeypatch):
    from d2lgrade.core import course
    monkeypatch.delenv(course.KEY_ENV, raising=False)
    monkeypatch.setattr(course, "KEY_FILE", tmp_path / "course" / "held-out.key")
    key = course.held_out_key()
    assert len(key) == 64 and course.held_out_key() == key
    assert (tmp_path / "course" / "held-out.key").stat().st_mode & 0o077 == 0


def test_local_torchvision_layout_is_preferred(tmp_path):
    made = fake_dataset(tmp_path)
    train = load_images("fashion_mnist", "train", data_dir=str(tmp_path))
    test = data.held_out("fashion_mnist", data_dir=str(tmp_path))
    assert not train.standin and str(tmp_path) in train.source and "Fashion-MNIST" in train.source
    assert tuple(train.X.shape) == (12, 1, 28, 28) and len(test) == 5
    assert torch.equal(train.X[:, 0], made["train"][0].float() / 255)      # exactly ToTensor()'s values
    assert torch.equal(train.y, made["train"][1].long())
    # the held-out images are the test files' images, in a keyed order, with their own labels
    images, labels = made["t10k"]
    pairs = {(bytes(i.flatten().tolist()), int(l)) for i, l in zip(images, labels)}
    assert pairs == {(bytes((x * 255).round().to(torch.uint8).flatten().tolist()), int(l)) for x, l in zip(*test)}
    # the dataset's own folder is accepted too
    assert not load_images("fashion_mnist", "train", data_dir=str(tmp_path / "FashionMNIST")).standin


def test_the_runtime_is_given_only_the_training_files(tmp_path):
    fake_dataset(tmp_path / "local")
    fake_dataset(tmp_path / "local", folder="MNIST")
    staged = Path(data.runtime_data_dir(str(tmp_path / "local")))
    files = sorted(str(f.relative_to(staged)) for f in staged.rglob("*") if f.is_file())
    assert files == sorted(["/".join(data.STANDIN_FILE)] + [f"{d}/raw/{n}" for d in ("FashionMNIST", "MNIST")
                                                     for n in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")])
    assert not str(staged).startswith(str(tmp_path))
    # without --data-dir the runtime still gets the stand-in's training split, never scikit-learn's files
    alone = Path(data.runtime_data_dir(None))
    assert sorted(str(f.relative_to(alone)) for f in alone.rglob("*") if f.is_file()) == ["/".join(data.STANDIN_FILE)]


def test_a_folder_without_the_dataset_falls_back_and_says_why(tmp_path):
    fake_dataset(tmp_path)                               # FashionMNIST only: MNIST is missing
    mnist = load_images("mnist", "train", data_dir=str(tmp_path))
    assert mnist.standin and len(mnist) == 1297
    assert "MNIST was not found under" in mnist.source and str(tmp_path) in mnist.source
    assert "stand-in" in data.describe_source("mnist", str(tmp_path))


AGENT_TEST = r"""
import json, socket, sys, types
def refuse(*a, **k):
    raise OSError("the network is disabled in this test")
socket.create_connection = socket.getaddrinfo = socket.socket.connect = refuse
# what run/sandboxed.py runs in the student runtime before any student cell
agent = types.ModuleType("_d2lgrade_agent")
exec(compile(AGENT_SOURCE, "<d2lgrade agent>", "exec"), agent.__dict__)
sys.modules["_d2lgrade_agent"] = agent
agent.setup({"device": "cpu", "seed": 0, "data_dir": None})
lazy = "torchvision.datasets" not in sys.modules and "sklearn" not in sys.modules
import torchvision
fashion = torchvision.datasets.FashionMNIST("../data", train=False, download=True)
image, label = fashion[0]
out = {"lazy": lazy, "class": torchvision.datasets.FashionMNIST.__name__, "val": len(fashion),
       "train": len(torchvision.datasets.FashionMNIST("../data", train=True, download=True)),
       "image": type(image).__name__, "size": list(image.size), "label": type(label).__name__,
       "same_class": torchvision.datasets.mnist.MNIST is torchvision.datasets.MNIST}
agent.setup({"device": "cpu", "seed": 0, "data_dir": LOCAL})      # the grader's --data-dir
local = torchvision.datasets.FashionMNIST("/nonexistent", train=True, download=True)
out.update(local_train=len(local), local_labels=[int(local[i][1]) for i in range(4)],
           mnist_local=len(torchvision.datasets.MNIST("x", train=True)))
print("RESULT" + json.dumps(out))
"""


def test_agent_setup_patches_torchvision_without_a_download(tmp_path):
    """The agent's setup (which the kernel runs first) makes torchvision serve the stand-in or --data-dir."""
    fake_dataset(tmp_path / "local")
    from d2lgrade.run.agent_source import agent_source
    agent_source = agent_source()
    code = f"AGENT_SOURCE = {agent_source!r}\nLOCAL = {str(tmp_path / 'local')!r}\n" + AGENT_TEST
    (tmp_path / "work").mkdir()
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "work", capture_output=True, text=True, timeout=180,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.split("RESULT", 1)[1])
    assert result["lazy"], "the setup imported torchvision or scikit-learn; it should wait for the student's import"
    assert result["class"] == "FashionMNIST" and result["same_class"]
    assert result["train"] == 1097 and result["val"] == 200         # the stand-in's training split, cut in two
    assert result["image"] == "Image" and result["size"] == [28, 28] and result["label"] == "int"  # MNIST's items
    assert "serving scikit-learn" in run.stderr                                  # the student is told
    assert result["local_train"] == 6 and result["local_labels"] == [0, 1, 2, 3]   # 12 training images, half kept
    assert result["mnist_local"] == 1097                                         # MNIST absent there: stand-in
    assert not (tmp_path / "data").exists() and not list(tmp_path.glob("**/*.gz"))   # nothing was downloaded


def test_the_kernel_serves_data_dir_to_d2l_fashion_mnist(tmp_path):
    """End to end: --data-dir reaches the sandboxed kernel, and the book's `d2l.FashionMNIST` reads it."""
    from d2lgrade.run.executor import RuntimeOptions
    from d2lgrade.testing import VariantRunner

    fake_dataset(tmp_path / "local")
    runner = VariantRunner("7.6", RuntimeOptions(data_dir=str(tmp_path / "local")))
    try:
        run = runner.runtime.run_source("""
data = d2l.FashionMNIST(batch_size=4, resize=(32, 32))
X, y = next(iter(data.get_dataloader(False)))
assert (len(data.train), len(data.val)) == (6, 6), (len(data.train), len(data.val))   # the training files, cut in two
assert tuple(X.shape) == (4, 1, 32, 32) and y.tolist() == [6, 7, 8, 9], (X.shape, y)   # training images 6-9
import torchvision
assert len(torchvision.datasets.MNIST(root=".", train=False, download=True)) == 200   # stand-in
import os, sys
served = sys.modules["_d2lgrade_agent"]._DATA["data_dir"]
assert not [f for _, _, fs in os.walk(served) for f in fs if f.startswith("t10k")], served   # no held-out file
""")
        assert run.status == "ok", (run.error, run.traceback)
    finally:
        runner.close()
    assert not list(tmp_path.glob("**/*.gz"))


def test_the_standin_digits_are_kept_for_the_next_grading_and_a_torn_file_is_built_again(monkeypatch, tmp_path):
    from d2lgrade.inside import offline_datasets
    kept = tmp_path / "data" / "standin.pt"
    monkeypatch.setitem(offline_datasets._DATA, "standin_file", str(kept))
    built = offline_datasets._build_standin_digits()
    for step in ("build", "read", "torn"):
        if step == "read":                   # read from the file: building again would fail here
            monkeypatch.setattr(offline_datasets, "_build_standin_digits", lambda: 1 / 0)
        if step == "torn":
            monkeypatch.undo()
            monkeypatch.setitem(offline_datasets._DATA, "standin_file", str(kept))
            kept.write_bytes(kept.read_bytes()[:100])
        offline_datasets.standin_digits.cache_clear()
        got = offline_datasets.standin_digits()
        assert kept.is_file() and all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(got, built)), step
    offline_datasets.standin_digits.cache_clear()
