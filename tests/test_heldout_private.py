"""Held-out data the runtime can neither read nor rebuild, and training verdicts that rest only on what the
grader computed itself.

1. scikit-learn's bundled data sets (the stand-in digits, 8.7's diabetes data) are invisible inside a graded
   runtime, whichever engine runs it: Landlock leaves them out of its allow-list (the folders around them are
   split entry by entry), and the mount namespace covers them. The runtime still serves its training split,
   which the grader staged as a file in the runtime's read-only data folder.
2. A trained network is judged on the grader's own rebuild of it: functional ReLU, pooling and reshapes
   between layers are rebuilt too, and a forward pass the grader cannot reproduce is left for an instructor
   (`manual`), never judged on the outputs the runtime reported.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from d2lgrade.core import data
from d2lgrade.inside import isolation, landlock_rules
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.testing import VariantRunner, needs_sandbox

ROOT = Path(__file__).resolve().parents[1]


def landlock(layers: dict) -> bool:
    return bool(layers.get("landlock"))


def mounts(layers: dict) -> bool:
    return all(layers.get(k) for k in ("userns", "mountns"))


PROBE = textwrap.dedent("""
    import json, os
    found = {}
    def attempt(name, action):
        try:
            found[name] = ["worked", repr(action())[:80]]
        except BaseException as exc:
            found[name] = ["denied", type(exc).__name__]
    from sklearn.datasets import load_digits, load_diabetes
    attempt("load_digits", lambda: load_digits().images.shape)
    attempt("load_diabetes", lambda: load_diabetes(return_X_y=True)[0].shape)
    for _path in PATHS:
        attempt(_path, lambda: open(_path, "rb").read(16))
    import torchvision
    attempt("served train", lambda: len(torchvision.datasets.FashionMNIST(".", train=True, download=True)))
    attempt("served validation", lambda: len(torchvision.datasets.MNIST(".", train=False)))
    attempt("served pixels", lambda: int(torchvision.datasets.FashionMNIST(".", train=True).data.sum()))
    RESULT = json.dumps(found)
""")


def _bundled_files() -> list[str]:
    files = [str(p) for folder in data.private_sources() for p in sorted(Path(folder).glob("*.csv*"))]
    assert any("digits" in f for f in files) and any("diabetes" in f for f in files), files
    return files


def _probe_runtime(executor: str) -> dict:
    runner = VariantRunner("7.6", RuntimeOptions(), executor=executor)
    try:
        run = runner.runtime.run_source(f"PATHS = {_bundled_files()!r}\n" + PROBE)
        assert run.status == "ok", (run.error, run.traceback)
        reply = runner.runtime.request({"op": "get", "names": ["RESULT"]}, 30)
        return json.loads(reply["RESULT"]["value"])
    finally:
        runner.close()


@needs_sandbox(lambda layers: landlock(layers) or mounts(layers),
               "neither Landlock nor a mount namespace is available here: "
               "nothing keeps the runtime from scikit-learn's files (the report's isolation notes say so)")
@pytest.mark.parametrize("executor", ["warm", "kernel"])
def test_the_stand_in_sources_are_invisible_but_the_training_split_is_served(executor):
    found = _probe_runtime(executor)
    for name, outcome in found.items():
        if not name.startswith("served"):
            assert outcome[0] == "denied", (name, outcome)       # neither through scikit-learn nor by path
    train = data.load_images("fashion_mnist", "train")
    assert found["served train"] == ["worked", "1097"] and found["served validation"] == ["worked", "200"]
    assert found["served pixels"] == ["worked", repr(int((train.X[:1097] * 255).round().sum()))]


def _sandboxed(tmp_path: Path, code: str, layers_off: list[str]) -> dict:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    config = {"cwd": str(work), "deny": data.private_sources(), "layers_off": layers_off,
              "status_file": str(tmp_path / isolation.STATUS_FILE)}
    sandbox = ROOT / "d2lgrade" / "inside" / "sandbox.py"
    done = subprocess.run([sys.executable, str(sandbox), json.dumps(config), "--", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


READ_FILES = textwrap.dedent("""
    import json, os, sys
    out = {}
    for path in sys.argv[1:]:
        try:
            open(path, "rb").read(8)
            out[path] = "read"
        except OSError as exc:
            out[path] = type(exc).__name__
    import sklearn.datasets
    out["imports"] = "ok"
    print(json.dumps(out))
""")


@needs_sandbox(landlock, "Landlock is not available on this kernel")
def test_landlock_alone_cuts_the_bundled_data_out_of_site_packages(tmp_path):
    """Without the mount namespace, the allow-list itself leaves the files out; the rest of site-packages
    (scikit-learn's code) still loads."""
    files = _bundled_files()
    found = _sandboxed(tmp_path, f"import sys\nsys.argv[1:] = {files!r}\n" + READ_FILES,
                       ["mounts", "namespaces"])
    assert found.pop("imports") == "ok"
    assert found == {f: "PermissionError" for f in files}, found


@needs_sandbox(mounts, "no mount namespace here")
def test_mounts_alone_cover_the_bundled_data(tmp_path):
    files = _bundled_files()
    found = _sandboxed(tmp_path, f"import sys\nsys.argv[1:] = {files!r}\n" + READ_FILES, ["landlock"])
    assert found.pop("imports") == "ok"
    assert found == {f: "FileNotFoundError" for f in files}, found


def test_carving_keeps_everything_but_the_hidden_path(tmp_path):
    """landlock_rules.carve on a made-up tree: siblings keep their rights, the hidden folder gets none, the
    folders on the way keep only the right to list names."""
    for folder in ("lib/pkg/datasets/data", "lib/pkg/datasets/code", "lib/other"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "lib/pkg/__init__.py").write_text("")
    rights = landlock_rules.READ_EXEC
    rules = dict(landlock_rules.carve([(str(tmp_path / "lib"), rights), ("/usr", rights)],
                                 [str(tmp_path / "lib/pkg/datasets/data")]))
    assert rules["/usr"] == rights
    for kept in ("lib/other", "lib/pkg/__init__.py", "lib/pkg/datasets/code"):
        assert rules[str(tmp_path / kept)] == rights, kept
    for passed in ("lib", "lib/pkg", "lib/pkg/datasets"):
        assert rules[str(tmp_path / passed)] == landlock_rules.READ_DIR, passed
    assert str(tmp_path / "lib/pkg/datasets/data") not in rules


def test_the_runtime_data_folder_holds_the_training_split_only():
    staged = Path(data.runtime_data_dir(None))
    saved = __import__("torch").load(staged.joinpath(*data.STANDIN_FILE), weights_only=True)
    train = data.load_images("mnist", "train")
    assert saved["images"].dtype == __import__("torch").uint8 and len(saved["labels"]) == len(train) == 1297
    assert (saved["images"].float() / 255).equal(train.X[:, 0])


# -- 2. judged only on the grader's own rebuild --------------------------------------------------------------
FUNCTIONAL = """
class Small(nn.Module):   # ReLU, pooling and the flattening written functionally in forward
    def __init__(self):
        super().__init__()
        self.conv, self.out = nn.Conv2d(1, 4, 5, padding=2), nn.Linear(4 * 14 * 14, 10)
    def forward(self, X):
        return self.out(torch.flatten(F.max_pool2d(F.relu(self.conv(X)), 2), 1))
def mnist_model():
    return Small()
"""
RESIDUAL = FUNCTIONAL.replace("torch.flatten(F.max_pool2d(F.relu(self.conv(X)), 2), 1)",
                              "F.max_pool2d(X + F.relu(self.conv(X)), 2).flatten(1)")


@pytest.fixture
def runner(runners):
    return runners("7.6")


def test_a_network_with_functional_layers_is_judged_on_the_grader_s_rebuild(runner):
    result = runner.grade("from torch.nn import functional as F\n" + FUNCTIONAL, "7.6/3")[0]
    assert result.status in ("passed", "failed"), (result.status, result.message)
    assert "rebuilt and evaluated by the grader" in result.answer, result.answer
    assert "Conv2d → relu → max_pool2d → Linear" in result.answer, result.answer


def test_a_network_the_grader_cannot_rebuild_is_left_for_an_instructor(runner):
    """An addition between layers (a residual connection) is nothing the grader rebuilds: whatever the runtime
    reports, the check gives no points and waits for an instructor, naming why."""
    result = runner.grade("from torch.nn import functional as F\n" + RESIDUAL, "7.6/3")[0]
    assert result.status == "manual" and result.points == 0, (result.status, result.message)
    assert "could not rebuild the trained `mnist_model()`" in result.message
    assert "computes add between its layers" in result.message, result.message
