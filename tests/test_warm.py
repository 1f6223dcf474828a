"""The warm engine (d2lgrade/run/warm.py): the same verdicts as the kernel engine, a sandboxed child
per submission, nothing carried from one submission to the next, and a parent that comes back.

The hostile battery (test_hostile.py) and every section's tests run with both engines too; here the
two are compared check by check on a mixed set of submissions.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from d2lgrade.core import results as R
from d2lgrade.pipeline.grading import grade
from d2lgrade.load import Cell, Submission
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.run.engines import default_executor, get_executor
from d2lgrade.run.limits import Limits
from d2lgrade.core.sections import find_section
from d2lgrade.testing import HANGING, needs_sandbox

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "hostile"
SECTION = find_section("7.3")
FAST = Limits(call_seconds=3, cell_seconds=6, total_seconds=120)

WRONG = '''# %%
import torch
from torch.nn import functional as F

# %% 7.3/1
output_shape = ("floor((n_h - k_h)/s_h) + 1", "floor((n_w - k_w)/s_w) + 1")
example_shape = (3, 2)

# %% 7.3/3
mirror_mode = "replicate"


def mirror_pad(X, p):
    if X.dim() == 2:
        return F.pad(X[None, None], (p, p, p, p), mode="replicate")[0, 0]
    return F.pad(X, (p, p, p, p), mode="replicate")


# %% 7.3/4
stride_speedup = "s_h + s_w"

# %% 7.3/6
def upsample_stride_half(X, K):
    return F.conv_transpose2d(X, K, stride=2)[..., :-1, :-1]
'''


def book_style_notebook(path: Path) -> Path:
    """What a student writes in Jupyter: d2l first, magics, display, a plot, a shell escape."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%matplotlib inline\nimport torch\nfrom torch import nn\nfrom d2l import torch as d2l"),
        nbformat.v4.new_code_cell("!pip install nothing-at-all"),
        nbformat.v4.new_code_cell("%time X = torch.arange(16.).reshape(4, 4)\nX.sum()"),
        nbformat.v4.new_code_cell("from IPython.display import display\ndisplay(X)\n"
                                  "d2l.plot(torch.arange(4.), [torch.arange(4.) ** 2], 'x', 'y')"),
        nbformat.v4.new_markdown_cell("## 7.3/4"),
        nbformat.v4.new_code_cell("stride_speedup = 's_w*s_h'"),
        nbformat.v4.new_markdown_cell("## 7.3/3"),
        nbformat.v4.new_code_cell("mirror_mode = 'reflect'\nundefined_name_here"),
    ]
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def submissions(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("mixed")
    (folder / "wrong.py").write_text(WRONG)
    return {"right": SECTION.reference_path, "wrong": folder / "wrong.py", "hanging": HOSTILE / "stuck.py",
            "crashing": HOSTILE / "exits.py", "hostile": HOSTILE / "cheats.py",
            "notebook": book_style_notebook(folder / "book.ipynb")}


@pytest.fixture(scope="module")
def both(submissions) -> dict[str, dict[str, dict]]:
    """Every submission graded by both engines: {engine: {name: JSON report}}."""
    # Short limits only where they must fire: a first call in a fresh kernel on a loaded machine can
    # take seconds (imports), and the comparison is about the engines, not about the machine's load.
    limits = lambda name: HANGING if name == "hanging" else Limits()     # noqa: E731
    return {engine: {name: grade(SECTION, path, options=RuntimeOptions(limits=limits(name)), executor=engine).to_json()
                     for name, path in submissions.items()} for engine in ("kernel", "warm")}


@pytest.mark.parametrize("name", ["right", "wrong", "hanging", "crashing", "hostile", "notebook"])
def test_both_engines_give_the_same_report(both, name):
    kernel, warm = both["kernel"][name], both["warm"][name]
    assert [c["id"] for c in warm["checks"]] == [c["id"] for c in kernel["checks"]]
    for ours, theirs in zip(warm["checks"], kernel["checks"]):
        ours, theirs = ({k: v for k, v in c.items() if k != "seconds"} for c in (ours, theirs))   # the clock's own
        assert ours == theirs, (name, ours, theirs)
    assert warm["notes"] == kernel["notes"]
    assert warm["score"] == kernel["score"]


def test_the_mixed_set_gets_the_verdicts_it_deserves(both):
    warm = both["warm"]
    assert warm["right"]["score"] == 9 and warm["wrong"]["score"] == 0
    assert warm["hanging"]["score"] == 1 and warm["crashing"]["score"] == 4 and warm["hostile"]["score"] == 0
    notebook = {c["id"]: c for c in warm["notebook"]["checks"]}
    assert notebook["7.3/4"]["status"] == R.PASSED
    assert any("!pip" in n or "shell" in n for n in warm["notebook"]["notes"]), warm["notebook"]["notes"]
    # Only the cell with the undefined name failed: magics, display and the d2l plot ran.
    cell_notes = [n for n in warm["notebook"]["notes"] if n.startswith("Cell ") and " raised " in n]
    assert len(cell_notes) == 1 and "NameError" in cell_notes[0], cell_notes


# -- the child -------------------------------------------------------------------------------------
FACTS = '''
import os, socket
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
threads = len(os.listdir("/proc/self/task"))
def attempt(action):
    try:
        action()
        return "allowed"
    except Exception as exc:
        return type(exc).__name__
read_reference = attempt(lambda: open(@@REFERENCE@@).read())
list_project = attempt(lambda: os.listdir(@@ROOT@@))
write_home = attempt(lambda: open(os.path.expanduser("~/../../escaped-warm"), "w").write("x"))
connect = attempt(lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
cwd = os.getcwd()
'''


def facts_of(runtime, *names):
    reply = runtime.request({"op": "get", "names": list(names)}, 30)
    from d2lgrade.run import wire
    return {n: wire.unwrap(reply[n]["value"]) for n in names}


def start(source: str, executor: str = "warm"):
    cell = Cell(index=1, kind="code", source=source)
    return get_executor(executor).start(Submission(Path("<warm test>"), [cell]), RuntimeOptions())


@needs_sandbox(lambda layers: layers.get("pidns") and layers.get("landlock"),
               "needs PID namespaces and Landlock on this machine")
def test_the_child_is_isolated_like_a_kernel():
    source = FACTS.replace("@@REFERENCE@@", repr(str(SECTION.reference_path))).replace("@@ROOT@@", repr(str(ROOT)))
    with start(source) as runtime:
        assert [run.status for run in runtime.cell_runs] == ["ok"], runtime.cell_runs
        facts = facts_of(runtime, "pids", "threads", "read_reference", "list_project", "write_home",
                         "connect", "cwd")
    assert max(facts["pids"]) <= 3, facts                   # its own PID namespace: init, and itself
    assert facts["threads"] == 1
    assert facts["read_reference"] != "allowed" and facts["list_project"] != "allowed"
    assert facts["write_home"] != "allowed" and facts["connect"] != "allowed"
    assert facts["cwd"].endswith("/work")


MUTATE = '''
import builtins, sys, torch
from d2l import torch as d2l
torch.allclose = lambda *a, **k: True
torch.set_default_dtype(torch.float64)
torch.manual_seed(1234)
d2l.leaked = "from the previous submission"
builtins.leaked = 1
sys.modules["json"] = None
open("leftover.txt", "w").write("x")
stride_speedup = "s_h*s_w"
'''
CHECK = '''
import builtins, os, sys, torch
from d2l import torch as d2l
allclose_is_real = torch.allclose(torch.zeros(1), torch.ones(1)) is False
default_dtype = str(torch.get_default_dtype())
first_draw = torch.rand(1).item()
leaked = [hasattr(d2l, "leaked"), hasattr(builtins, "leaked"), sys.modules.get("json") is None,
          os.path.exists("leftover.txt"), "stride_speedup" in globals()]
'''


def test_nothing_leaks_from_one_submission_to_the_next():
    with start(MUTATE) as first:
        assert [run.status for run in first.cell_runs] == ["ok"], first.cell_runs
    with start(CHECK) as second:
        facts = facts_of(second, "allclose_is_real", "default_dtype", "first_draw", "leaked")
    with start(CHECK, "kernel") as fresh_kernel:
        expected_draw = facts_of(fresh_kernel, "first_draw")["first_draw"]
    assert facts["allclose_is_real"] and facts["default_dtype"] == "torch.float32"
    assert facts["leaked"] == [False] * 5
    assert facts["first_draw"] == expected_draw            # the same seed as a fresh kernel


def test_a_parent_that_crashed_is_replaced():
    engine = get_executor("warm")
    with start("x = 1"):
        pass
    before = engine.parent.starts
    os.kill(engine.parent.pid, signal.SIGKILL)
    with start("x = 2") as runtime:
        assert facts_of(runtime, "x") == {"x": 2}
    assert engine.parent.starts == before + 1
    task_count = len(os.listdir(f"/proc/{engine.parent.pid}/task"))
    assert task_count == 1                                  # still single-threaded: safe to fork


def test_one_shared_engine_grades_from_several_threads(submissions):
    assert get_executor("warm") is get_executor("warm")
    names = ["right", "wrong", "right"]
    got: dict[int, float] = {}

    def work(i):
        got[i] = grade(SECTION, submissions[names[i]], options=RuntimeOptions(limits=FAST), executor="warm").score

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert got == {0: 9, 1: 0, 2: 9}


def test_the_environment_variable_picks_the_engine(monkeypatch):
    monkeypatch.setenv("D2LGRADE_EXECUTOR", "kernel")
    assert default_executor() == "kernel"
    monkeypatch.setenv("D2LGRADE_EXECUTOR", "warm")
    assert default_executor() == "warm"
    monkeypatch.setenv("D2LGRADE_EXECUTOR", "jupyter")
    with pytest.raises(ValueError, match="D2LGRADE_EXECUTOR"):
        default_executor()


# -- --watch ---------------------------------------------------------------------------------------
def _lines_until(process, word, seconds):
    deadline, seen = time.monotonic() + seconds, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if word in line:
            return seen
    raise AssertionError(f"no {word!r} within {seconds} s: {''.join(seen)[-2000:]}")


def test_watch_regrades_on_save_and_stops_on_ctrl_c(tmp_path):
    work = tmp_path / "work.py"
    work.write_text('# %% 7.3/4\nstride_speedup = "s_h + s_w"\n')
    process = subprocess.Popen([sys.executable, "grade.py", "7.3/4", str(work), "--watch", "--executor", "warm",
                                "--json", "--html", str(tmp_path / "r.html")], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        first = "".join(_lines_until(process, "graded in", 120))
        time.sleep(0.05)
        work.write_text('# %% 7.3/4\nstride_speedup = "s_h * s_w"\n')
        second = "".join(_lines_until(process, "graded in", 60))
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    score = lambda text: json.loads(text[:text.rindex("}") + 1])["score"]    # noqa: E731
    assert score(first) == 0 and score(second) == 1
    assert "stopped watching" in process.stdout.read()


def test_the_child_has_the_pinned_numerics_of_a_kernel():
    """torch reads the code path and thread count at import, in the parent: the child must still
    compute like a freshly started kernel (d2lgrade/numerics/), hash strings alike too."""
    from d2lgrade import numerics
    source = ("import torch\ncapability = torch.backends.cpu.get_cpu_capability()\n"
              "threads = torch.get_num_threads()\nstring_hash = hash('d2l')")
    with start(source) as runtime:
        facts = facts_of(runtime, "capability", "threads", "string_hash")
    pinned = numerics.pinned_environment()
    fresh = subprocess.run([sys.executable, "-c", "print(hash('d2l'))"], env={**os.environ, "PYTHONHASHSEED": "0"},
                           capture_output=True, text=True).stdout
    assert facts["threads"] == 1 and facts["string_hash"] == int(fresh)
    if pinned.get("ATEN_CPU_CAPABILITY") == "avx2":
        assert facts["capability"] == "AVX2"


def test_dataloader_workers_run_in_the_child():
    """A child must not keep what the parent cached from its own environment (the temp folder,
    where multiprocessing puts the sockets DataLoader workers hand tensors over)."""
    source = ("import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n"
              "batches = [b[0].tolist() for b in DataLoader(TensorDataset(torch.arange(6.)), batch_size=3, "
              "num_workers=2, timeout=20)]")
    with start(source) as runtime:
        assert [run.status for run in runtime.cell_runs] == ["ok"], runtime.cell_runs
        assert facts_of(runtime, "batches") == {"batches": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]}
