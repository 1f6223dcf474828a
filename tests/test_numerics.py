"""Training verdicts do not depend on the CPU: the runtime and the reference runs take one pinned code path.

The machine's own choice is emulated with ATEN_CPU_CAPABILITY in the grader's environment (what a machine
with or without AVX-512 would run by default): whatever it says, a short LeNet training in the student
runtime, and a reference run in the pinned child, give bit-identical results. docs/NUMERICS.md has the
spread measured without the pin (bench/numerics_spread.py)."""
from pathlib import Path

import pytest
import torch

from d2lgrade import numerics, pinned
from d2lgrade.load import Cell, Submission
from d2lgrade.run import wire
from d2lgrade.run.executor import RuntimeOptions, get_executor

TRAIN = """
import hashlib, torch
from torch import nn
from torch.nn import functional as F
torch.manual_seed(0)
X, y = torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,))
net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.Sigmoid(),
                    nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 84), nn.ReLU(), nn.Linear(84, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
for step in range(40):
    i = torch.randint(0, 256, (32,))
    loss = F.cross_entropy(net(X[i]), y[i]); opt.zero_grad(); loss.backward(); opt.step()
_digest = hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in net.parameters())).hexdigest()
_capability = torch.backends.cpu.get_cpu_capability()
_threads = torch.get_num_threads()
"""

pytestmark = pytest.mark.skipif(not numerics.cpu_has_avx2(), reason="the pinned AVX2 path needs an x86-64 CPU with AVX2")


def _train_in_runtime() -> dict:
    setup = Cell(index=1, kind="code", source="", role="setup")
    with get_executor("kernel").start(Submission(Path("<numerics>"), [setup]), RuntimeOptions()) as runtime:
        run = runtime.run_source(TRAIN)
        assert run.status == "ok", (run.error, run.traceback)
        reply = runtime.request({"op": "get", "names": ["_digest", "_capability", "_threads"]}, 30)
    return {name: wire.unwrap(reply[name]["value"]) for name in ("_digest", "_capability", "_threads")}


def test_runtime_training_is_bit_identical_whatever_the_machine_would_pick(monkeypatch):
    seen = {}
    for capability in ("default", "avx2", "avx512"):
        monkeypatch.setenv("ATEN_CPU_CAPABILITY", capability)
        seen[capability] = _train_in_runtime()
    assert {s["_capability"] for s in seen.values()} == {"AVX2"}
    assert {s["_threads"] for s in seen.values()} == {1}
    assert len({s["_digest"] for s in seen.values()}) == 1, seen


def capability_and_sum(n: int):
    """Runs in the pinned child: which code path it took, and a float32 reduction whose bits depend on it."""
    g = torch.Generator().manual_seed(n)
    x = torch.rand(100_003, generator=g)
    return [torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(), x.sum(), (x.exp() * x).sum()]


def test_reference_runs_take_the_pinned_path_whatever_the_ambient_setting(monkeypatch, tmp_path):
    monkeypatch.setattr(pinned, "CACHE", tmp_path)
    monkeypatch.setattr(pinned, "_MEMORY", {})
    results = []
    for capability in ("default", "avx512"):
        monkeypatch.setenv("ATEN_CPU_CAPABILITY", capability)
        results.append(pinned.call("tests.test_numerics:capability_and_sum", 7))
        for cached in tmp_path.glob("*.pt"):       # compute again: the cache must not hide a difference
            cached.unlink()
        pinned._MEMORY.clear()
    (cap_a, threads_a, *sums_a), (cap_b, threads_b, *sums_b) = results
    assert cap_a == cap_b == "AVX2" and threads_a == threads_b == 1
    assert all(torch.equal(a, b) for a, b in zip(sums_a, sums_b))


def test_reference_runs_are_cached_by_what_decides_them(monkeypatch, tmp_path):
    monkeypatch.setattr(pinned, "CACHE", tmp_path)
    monkeypatch.setattr(pinned, "_MEMORY", {})
    first = pinned.call("tests.test_numerics:capability_and_sum", 3)
    assert len(list(tmp_path.glob("*.pt"))) == 1
    assert torch.equal(pinned.call("tests.test_numerics:capability_and_sum", 3)[2], first[2])
    pinned.call("tests.test_numerics:capability_and_sum", 4)
    assert len(list(tmp_path.glob("*.pt"))) == 2
