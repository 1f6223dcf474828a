"""Training verdicts do not depend on the CPU: the runtime and the reference runs take one pinned code path.

The machine's own choice is emulated with ATEN_CPU_CAPABILITY (and MKL_CBWR, ONEDNN_MAX_CPU_ISA, thread
counts) in the grader's environment: whatever they say, a short LeNet training in the student runtime, and a
reference run in the pinned child, give bit-identical results, and the same bits in both. Across machines the
committed fingerprint is the check: every CI run, on an Intel Xeon or an AMD EPYC, compares this machine's
digest with the one in d2lgrade/numerics/. docs/NUMERICS.md has the spread measured without the pin."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from d2lgrade import numerics
from d2lgrade.numerics import pinned
from d2lgrade.load import Cell, Submission
from d2lgrade.run import wire
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.run.engines import get_executor

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
_onednn = torch.backends.mkldnn.enabled or torch._C._get_nnpack_enabled()
"""
ROOT = Path(__file__).resolve().parents[1]


def train_as_the_runtime_does() -> str:
    """TRAIN in a pinned child: the path reference runs take. Its digest must equal the runtime's."""
    namespace = {}
    exec(TRAIN, namespace)
    return namespace["_digest"]

pytestmark = pytest.mark.skipif(not numerics.cpu_has_avx2(), reason="the pinned AVX2 path needs an x86-64 CPU with AVX2")


def _train_in_runtime() -> dict:
    setup = Cell(index=1, kind="code", source="", role="setup")
    with get_executor("kernel").start(Submission(Path("<numerics>"), [setup]), RuntimeOptions()) as runtime:
        run = runtime.run_source(TRAIN)
        assert run.status == "ok", (run.error, run.traceback)
        names = ["_digest", "_capability", "_threads", "_onednn"]
        reply = runtime.request({"op": "get", "names": names}, 30)
    return {name: wire.unwrap(reply[name]["value"]) for name in names}


AMBIENT = [{"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AUTO", "OMP_NUM_THREADS": "2"},
           {"ATEN_CPU_CAPABILITY": "avx2"},
           {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_CBWR": "AVX512,STRICT"}]


def test_runtime_training_is_bit_identical_whatever_the_machine_would_pick(monkeypatch, tmp_path):
    seen = []
    for ambient in AMBIENT:
        for name, value in ambient.items():
            monkeypatch.setenv(name, value)
        seen.append(_train_in_runtime())
    assert {s["_capability"] for s in seen} == {"AVX2"}
    assert {s["_threads"] for s in seen} == {1}
    assert {s["_onednn"] for s in seen} == {False}
    assert len({s["_digest"] for s in seen}) == 1, seen
    # ... and the reference runs' child computes the same bits: thresholds and students share one path.
    monkeypatch.setattr(pinned, "CACHE", tmp_path)
    assert pinned.call("tests.test_numerics:train_as_the_runtime_does", cached=False) == seen[0]["_digest"]


def test_the_fingerprint_matches_the_committed_one_whatever_the_environment():
    """Fails on a machine whose pinned path computes other bits than the machine that committed the digest."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AVX512", "OMP_NUM_THREADS": "2",
           "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}
    done = subprocess.run([sys.executable, "-m", "d2lgrade.numerics", "--fingerprint"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == {"digest", "expected", "same", "cpu", "path"}
    assert result["same"] and done.returncode == 0, (
        f"this machine ({result['cpu']}) computes the pinned path differently: digest {result['digest']}, "
        f"committed {result['expected']}; see docs/NUMERICS.md before changing the committed value")


def test_a_different_digest_exits_one(monkeypatch, capsys):
    from d2lgrade.numerics import fingerprint as module
    monkeypatch.setattr(module, "fingerprint", lambda: {"digest": "x", "expected": "y", "same": False,
                                                       "cpu": "c", "path": "p"})
    assert module.main(["--fingerprint"]) == 1
    assert json.loads(capsys.readouterr().out)["same"] is False


def capability_and_sum(n: int):
    """Runs in the pinned child: which code path it took, and a float32 reduction whose bits depend on it."""
    g = torch.Generator().manual_seed(n)
    x = torch.rand(100_003, generator=g)
    a, b = torch.rand(97, 301, generator=g), torch.rand(301, 53, generator=g)
    return [torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(), x.sum(), (x.exp() * x).sum(), a @ b]


def test_reference_runs_take_the_pinned_path_whatever_the_ambient_setting(monkeypatch, tmp_path):
    monkeypatch.setattr(pinned, "CACHE", tmp_path)
    monkeypatch.setattr(pinned, "_MEMORY", {})
    results = []
    for capability in ("default", "avx512"):
        monkeypatch.setenv("ATEN_CPU_CAPABILITY", capability)
        monkeypatch.setenv("MKL_CBWR", "AVX512" if capability == "avx512" else "AUTO")
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


def computed_and_counted(log: str, n: int):
    """A pinned target that leaves a line in `log` each time it is really computed."""
    import time
    with open(log, "a") as file:
        file.write("computed\n")
    time.sleep(1)
    return torch.arange(n)


def test_workers_that_start_the_same_reference_run_at_once_compute_it_once(monkeypatch, tmp_path):
    import threading
    monkeypatch.setattr(pinned, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(pinned, "_MEMORY", {})
    log, got = tmp_path / "log.txt", []
    workers = [threading.Thread(target=lambda: got.append(pinned._computed_or_cached(
        pinned.cache_key("tests.test_numerics:computed_and_counted", (str(log), 5), ()),
        "tests.test_numerics:computed_and_counted", (str(log), 5), 60))) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert log.read_text() == "computed\n" and len(got) == 3 and all(torch.equal(g, torch.arange(5)) for g in got)


@pytest.mark.long
def test_no_setting_in_the_graders_environment_changes_a_training_verdict():
    """7.6's training checks graded in two graders whose environments ask the math libraries for other code
    paths and thread counts: every check gives the same status, points and message (its figures included). Two
    checks cover both ways the grader evaluates a trained network (tests/ambient_grading.py)."""
    def start(ambient):
        env = {**os.environ, **ambient, "PYTHONPATH": str(ROOT)}
        return subprocess.Popen([sys.executable, "-m", "tests.ambient_grading", str(ROOT / "reference/section_7_6.py")],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(process):
        out, err = process.communicate(timeout=900)
        assert process.returncode == 0, err[-3000:]
        return json.loads(out.strip().splitlines()[-1])

    # The two settings that ask for other code paths than the pinned one (AMBIENT[1] asks for the pinned AVX2 path
    # itself; the runtime's training under all three is compared bit for bit above). Started together: the
    # reference runs are computed once, the other grading waits for them (d2lgrade/numerics/pinned.py's lock).
    verdicts = [result(process) for process in [start(ambient) for ambient in (AMBIENT[0], AMBIENT[2])]]
    assert [v["id"] for v in verdicts[0]] == ["7.6/1:training", "7.6/2"]
    assert all(v["status"] == "passed" for v in verdicts[0]), verdicts[0]
    assert verdicts[1] == verdicts[0], verdicts
