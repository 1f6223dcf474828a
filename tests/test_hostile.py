"""Hostile submissions (tests/hostile/): grading keeps working, loses nothing, and gives no point that
was not earned.

Threat model, in short: student code is untrusted. It runs in a runtime of its own (a kernel behind
`d2lgrade/inside/sandbox.py`: resource limits, its own process group, private user/network/PID/mount
namespaces and Landlock where the machine allows them); what comes back is data only (torch.save read
with weights_only), and every verdict is computed in the grader's process. Each case of the issue is one
test below, numbered like the issue; the layers themselves are tested one at a time in test_sandbox.py.

Every test is parametrized by executor, so a new executor (e.g. a warm fork-server) has to pass the same
battery by adding its name to EXECUTORS.
"""
from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from d2lgrade.core import results as R
from d2lgrade.compare.symbolic import SymbolicAnswerError, parse_answer
from d2lgrade.core.errors import SubmissionError
from d2lgrade.pipeline.grading import grade
from d2lgrade.load import Cell, Submission, load_submission
from d2lgrade.inside import isolation
from d2lgrade.run import wire
from d2lgrade.run.executor import RuntimeOptions
from d2lgrade.run.engines import get_executor
from d2lgrade.run.sandboxed import SandboxedRuntime
from d2lgrade.run.limits import Limits
from d2lgrade.core.sections import find_section
from d2lgrade.testing import HANGING, VariantRunner, needs_sandbox, sandbox_layers

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "hostile"
SECTION = find_section("7.3")
EXECUTORS = ["kernel", "warm"]
# Short limits keep the battery quick; the cases only need the limits to fire.
FAST = Limits(call_seconds=3, cell_seconds=6, total_seconds=120)

# Defences that need a kernel feature: where the machine lacks it, the report says so in a note (see
# test_sandbox.py) and the case that depends on it is skipped here with the reason.
needs_process_limit = needs_sandbox(lambda layers: layers.get("processes"),
                                    "no process limit here (no user namespace, no pids cgroup)")
needs_file_isolation = needs_sandbox(lambda layers: layers.get("landlock") or layers.get("mountns"),
                                     "neither Landlock nor mount namespaces are available here")
needs_disk_cap = needs_sandbox(lambda layers: layers.get("mountns"),
                               "no private mount namespace here for the runtime's size-limited tmpfs")
needs_ipc_namespace = needs_sandbox(lambda layers: layers.get("ipcns"), "no private IPC namespace here")
needs_no_network = needs_sandbox(lambda layers: layers.get("netns") or layers.get("landlock", 0) >= 4,
                                 "neither a network namespace nor Landlock TCP rules are available here")


@pytest.fixture(params=EXECUTORS)
def executor(request):
    return request.param


def graded(path: Path, executor: str, limits: Limits = FAST, selector: str | None = None) -> dict:
    report = grade(SECTION, path, selector=selector, options=RuntimeOptions(limits=limits), executor=executor)
    return {"report": report, **{c.id: c for c in report.checks}}


def verdict(result: R.CheckResult) -> tuple[str, float]:
    return result.status, result.points


# -- 1. endless loops ----------------------------------------------------------------------------
def test_1_endless_loops_time_out_and_the_rest_is_graded(executor):
    got = graded(HOSTILE / "stuck.py", executor, HANGING)
    for check in ("7.3/1", "7.3/1:example"):
        assert got[check].status == R.TIMEOUT and "ran past the 2 s limit" in got[check].message, got[check]
    for check in ("7.3/3", "7.3/3:batched"):
        assert got[check].status == R.TIMEOUT and "ran past the 1 s limit" in got[check].message, got[check]
    assert "sleeping" in got["7.3/3:batched"].message            # ended by the wall clock, not the CPU time
    assert verdict(got["7.3/4"]) == (R.PASSED, 1)
    assert got["7.3/6"].status == R.ERROR and "RecursionError" in got["7.3/6"].message
    assert got["report"].score == 1
    assert got["report"].seconds < HANGING.total_seconds


# -- 2, 3. memory, processes, disk ---------------------------------------------------------------
@needs_process_limit
def test_2_3_memory_processes_and_file_size_are_stopped_by_limits(executor):
    limits = Limits(call_seconds=10, cell_seconds=20, total_seconds=180, max_processes=48, file_bytes=8 * 2**20)
    got = graded(HOSTILE / "resources.py", executor, limits)
    assert verdict(got["7.3/1"]) == (R.PASSED, 2) and verdict(got["7.3/1:example"]) == (R.PASSED, 1)
    assert any("MemoryError" in note for note in got["report"].notes), got["report"].notes
    assert got["7.3/3"].status == R.MEMORY and "8 GiB" in got["7.3/3"].message, got["7.3/3"]
    batched = got["7.3/3:batched"]
    assert batched.status == R.ERROR and "at most 48 processes" in batched.message, batched
    assert verdict(got["7.3/4"]) == (R.PASSED, 1)
    assert got["7.3/6"].status == R.ERROR and "at most 8 MiB" in got["7.3/6"].message, got["7.3/6"]
    # The grader's machine is unharmed: it can still start processes and allocate.
    assert subprocess.run(["true"]).returncode == 0
    assert len(bytearray(64 * 2**20)) == 64 * 2**20


# -- 4, 14. fake scores, floods, hidden tracebacks, warnings ------------------------------------
def test_4_14_printed_scores_floods_and_hidden_errors_change_nothing(executor, tmp_path):
    done = subprocess.run([sys.executable, "grade.py", "7.3", str(HOSTILE / "output.py"), "--json",
                           "--html", str(tmp_path / "report.html"), "--cell-timeout", "30", "--executor", executor],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)                   # one JSON document, the grader's own
    checks = {c["id"]: c for c in report["checks"]}
    assert report["score"] == 4 and report["max_score"] == 13
    assert checks["7.3/1"]["status"] == R.FAILED
    assert checks["7.3/1:example"]["points"] == 1
    assert checks["7.3/3"]["points"] == 2             # hidden tracebacks do not matter either way
    assert checks["7.3/3:batched"]["status"] == R.ERROR and len(checks["7.3/3:batched"]["message"]) < 500
    assert checks["7.3/4"]["points"] == 1             # a warning and a hidden 1/0 after the answer
    assert checks["7.3/6"]["status"] == R.FAILED
    assert any("Output beyond 1024 KiB was dropped" in n for n in report["notes"]), report["notes"]
    assert len(done.stdout) < 100_000 and len(done.stderr) < 100_000
    assert (tmp_path / "report.html").stat().st_size < 5 * 2**20


# -- 5. exits and interrupts ---------------------------------------------------------------------
def test_5_exits_and_interrupts_are_errors_of_their_own_exercise(executor):
    got = graded(HOSTILE / "exits.py", executor)
    assert verdict(got["7.3/1"]) == (R.PASSED, 2) and verdict(got["7.3/1:example"]) == (R.PASSED, 1)
    assert got["7.3/3"].status == R.ERROR and "KeyboardInterrupt" in got["7.3/3"].message
    assert got["7.3/3:batched"].status == R.ERROR and got["7.3/3:batched"].points == 0
    assert verdict(got["7.3/4"]) == (R.PASSED, 1)       # the runtime died before; it was restarted
    assert got["7.3/6"].status == R.ERROR and "SystemExit" in got["7.3/6"].message
    assert got["report"].score == 4


# -- 6, 7. monkeypatching, __eq__, tensor subclasses, pickle payloads ----------------------------
def test_6_7_cheating_objects_earn_nothing_and_run_nothing(executor):
    marker = Path("/tmp/d2lgrade-hostile-pickle-payload-ran")
    marker.unlink(missing_ok=True)
    got = graded(HOSTILE / "cheats.py", executor)
    assert got["report"].score == 0, [(c.id, c.status, c.message) for c in got["report"].checks]
    assert got["7.3/1:example"].status == R.FAILED and "Payload" in got["7.3/1:example"].message
    batched = got["7.3/3:batched"]
    assert batched.status == R.FAILED and "Sneaky" in batched.message, batched
    assert got["7.3/4"].status == R.FAILED                # sympy patched in the runtime, not here
    assert got["7.3/6"].status in (R.FAILED, R.ERROR) and got["7.3/6"].points == 0
    assert not marker.exists()


# -- 8, 9, 13. files of others, writing outside, network, deleting the project -------------------
ANSWER_SERVER = b"def upsample_stride_half(X, K):\n    return F.conv_transpose2d(X, K, stride=2)\n"


@needs_file_isolation
@needs_no_network
def test_8_9_13_the_runtime_reaches_nothing_outside_its_folder(executor, tmp_path):
    submissions = tmp_path / "submissions"
    own = submissions / "bob" / "7.3.py"
    other = submissions / "alice" / "7.3.py"
    other.parent.mkdir(parents=True)
    other.write_text('stride_speedup = "s_h*s_w"\n')
    decoys = [other, submissions / "bob" / "notes.txt", tmp_path / "gradebook.sqlite"]
    project_decoy = ROOT / f".hostile-decoy-{os.getpid()}"
    decoys.append(project_decoy)
    outside = [tmp_path / "escaped.txt", Path.home() / f".d2lgrade-escaped-{os.getpid()}",
               Path(f"/tmp/d2lgrade-escaped-{os.getpid()}")]
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    served = []

    def serve():
        server.settimeout(60)
        try:
            conn, _ = server.accept()
            served.append(True)
            conn.sendall(ANSWER_SERVER)
            conn.close()
        except OSError:
            pass

    victim = subprocess.Popen(["sleep", "120"])
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        for decoy in decoys[1:]:
            decoy.parent.mkdir(parents=True, exist_ok=True)
            decoy.write_text("keep me\n")
        source = (HOSTILE / "escape.py").read_text()
        for key, value in {"REFERENCE": str(ROOT / "reference" / "section_7_3.py"), "OTHER": str(other),
                           "OWN": str(own)}.items():
            source = source.replace(f'"@@{key}@@"', repr(value))
        for key, value in {"DECOYS": [str(d) for d in decoys], "OUTSIDE": [str(o) for o in outside],
                           "PORT": server.getsockname()[1], "VICTIM": victim.pid}.items():
            source = source.replace(f"@@{key}@@", repr(value))
        own.write_text(source)
        got = graded(own, executor, Limits(call_seconds=10, cell_seconds=30, total_seconds=180))
        # Nothing stolen: every answer that needed another file is wrong.
        assert got["7.3/1"].status == R.FAILED and got["7.3/1:example"].status == R.FAILED
        assert got["7.3/4"].points == 0
        assert got["7.3/6"].points == 0
        # The runtime still worked after trying to wreck its surroundings.
        assert verdict(got["7.3/3"]) == (R.PASSED, 2) and verdict(got["7.3/3:batched"]) == (R.PASSED, 1)
        assert got["report"].score == 3
        for decoy in decoys:
            assert decoy.read_text() == ('stride_speedup = "s_h*s_w"\n' if decoy == other else "keep me\n"), decoy
        assert own.read_text() == source
        assert not any(path.exists() for path in outside)
        assert victim.poll() is None
        assert served == []
    finally:
        server.close()
        victim.kill()
        project_decoy.unlink(missing_ok=True)
        for path in outside:
            path.unlink(missing_ok=True)


# -- 10. files that are not gradable notebooks ---------------------------------------------------
def _big_notebook(path: Path, megabytes: int) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('stride_speedup = "s_h*s_w"')
    picture = base64.b64encode(os.urandom(megabytes * 2**20 * 3 // 4)).decode()
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": picture})]
    nb.cells = [nbformat.v4.new_markdown_cell("## 7.3/4"), cell]
    nbformat.write(nb, path)
    return path


def test_10_broken_notebooks_give_one_clear_line_and_the_batch_goes_on(executor, tmp_path):
    huge = tmp_path / "huge.ipynb"
    with open(huge, "wb") as f:                         # 200 MB, sparse: only its size is looked at
        f.truncate(200 * 2**20)
    broken = sorted(p for p in (HOSTILE / "notebooks").iterdir() if p.name != "kernelspec_not_a_dict.ipynb")
    broken += [huge, _big_notebook(tmp_path / "outputs.ipynb", 60)]
    messages = {}
    for path in broken:
        with pytest.raises(SubmissionError) as caught:
            load_submission(path)
        messages[path.name] = str(caught.value)
    for name, message in messages.items():
        assert "\n" not in message and name in message and len(message) < 300, (name, message)
    assert "clear its outputs" in messages["outputs.ipynb"] and "200 MB" in messages["huge.ipynb"]
    assert "UTF-8" in messages["latin1.ipynb"] and "UTF-8" in messages["latin1.py"]
    # The command line says it in one line on stderr, no traceback.
    done = subprocess.run([sys.executable, "grade.py", "7.3", str(HOSTILE / "notebooks" / "not_json.ipynb")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    # Then the batch goes on: a notebook with a few MB of outputs and an unknown kernel is graded.
    fine = _big_notebook(tmp_path / "fine.ipynb", 4)
    nb = nbformat.read(fine, as_version=4)
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    nbformat.write(nb, fine)
    got = graded(fine, executor, selector="7.3/4")
    assert verdict(got["7.3/4"]) == (R.PASSED, 1)
    assert any("kernel 'ir'" in note for note in got["report"].notes)
    # A kernelspec that is not even a mapping is a note too, not a crash.
    odd = load_submission(HOSTILE / "notebooks" / "kernelspec_not_a_dict.ipynb")
    assert odd.notes == ["The notebook asks for kernel 'R'; it was graded with Python 3."]


# -- 11. values of the wrong kind ----------------------------------------------------------------
VALUE_CASES = sorted((HOSTILE / "values").glob("*.py"))


def _expectation(path: Path) -> tuple[str, str]:
    line = next(l for l in path.read_text().splitlines() if l.startswith("# expect: "))
    status, _, fragment = line.removeprefix("# expect: ").partition(": ")
    return status, fragment


@pytest.fixture(scope="module", params=EXECUTORS)
def variants(request):
    runner = VariantRunner("7.3", RuntimeOptions(limits=FAST), executor=request.param)
    yield runner
    runner.close()


@pytest.mark.parametrize("path", VALUE_CASES, ids=[p.stem for p in VALUE_CASES])
def test_11_wrong_kinds_of_values_fail_with_a_clear_message(variants, path):
    status, fragment = _expectation(path)
    exercise = "7.3/6" if "upsample_stride_half" in path.read_text() else "7.3/3"
    results = variants.grade(path.read_text(), exercise)
    first = results[0]
    assert first.status == status and first.points == 0, (first.status, first.message)
    assert fragment in first.message, first.message


# -- 12. formulas that try to run code -----------------------------------------------------------
FORMULAS = [l for l in (HOSTILE / "formulas.txt").read_text().splitlines() if l and not l.startswith("#")]


def test_12_formula_strings_never_run(variants):
    marker = Path("/tmp/d2lgrade-hostile-formula-ran")
    marker.unlink(missing_ok=True)
    for formula in FORMULAS:
        with pytest.raises(SymbolicAnswerError):
            parse_answer(formula, symbols=["s_h", "s_w"])
        [result] = variants.grade(f"stride_speedup = {formula!r}", "7.3/4")
        assert result.status == R.FAILED and result.points == 0, (formula, result.message)
    assert not marker.exists()


# -- 16. filling the disk -------------------------------------------------------------------------
DISK_LIMITS = Limits(call_seconds=20, cell_seconds=20, total_seconds=180, file_bytes=8 * 2**20,
                     disk_bytes=64 * 2**20, disk_files=2000)


def graded_measuring_disk(path, executor, limits, interval):
    """graded(...), and how far the free space of the machine's temp filesystem fell meanwhile."""
    import shutil
    import tempfile
    import time
    free = lambda: shutil.disk_usage(tempfile.gettempdir()).free      # noqa: E731
    start, lowest, done = free(), [free()], threading.Event()

    def sample():
        while not done.is_set():
            lowest[0] = min(lowest[0], free())
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        got = graded(path, executor, limits)
    finally:
        done.set()
        sampler.join()
    return got, start - lowest[0]


@needs_disk_cap
def test_16_filling_the_disk_stops_at_the_cap(executor):
    limits = DISK_LIMITS
    got, peak = graded_measuring_disk(HOSTILE / "disk.py", executor, limits, 0.05)
    print(f"peak disk use of the filling submission: {peak / 2**20:.1f} MiB (cap 64 MiB)")
    # The runtime writes into its size-limited tmpfs, not the machine's disk; what the free space falls by is other
    # programs: the suite's other workers build kits and fill caches on the same filesystem (33 MiB once, with three
    # workers). Unstopped, this submission writes until its 20 s cell limit: tens of GiB.
    assert peak <= limits.disk_bytes + 256 * 2**20, peak
    assert verdict(got["7.3/1"]) == (R.PASSED, 2) and verdict(got["7.3/1:example"]) == (R.PASSED, 1)
    assert verdict(got["7.3/3"]) == (R.PASSED, 2) and verdict(got["7.3/4"]) == (R.PASSED, 1)
    notes = got["report"].notes
    assert any("(7.3/3)" in n and "No space left on device" in n and "at most 64 MiB" in n for n in notes), notes
    many = got["7.3/6"]
    assert many.status == R.ERROR and "No space left on device" in many.message \
        and "2000 files" in many.message, many
    assert not any("tmpfs" in n for n in notes), notes


def test_16_without_the_tmpfs_a_watchdog_stops_the_runtime(executor, tmp_path, monkeypatch):
    """Where no tmpfs can be mounted (no mount namespace, macOS), the grader measures the scratch
    folder and stops the runtime past the cap (best effort: it samples, so it may overshoot a little)."""
    import shutil
    from d2lgrade.run import sandboxed
    copy = tmp_path / "sandbox"
    copy.mkdir()
    for sibling in ("sandbox.py", "landlock_rules.py", "cgroup_limits.py"):    # what the launcher loads by path
        shutil.copy(sandboxed.SANDBOX.with_name(sibling), copy / sibling)
    source = sandboxed.SANDBOX.with_name("isolation.py").read_text()
    head = "def mount_scratch(folder: str, size_bytes: int, files: int) -> None:\n"
    assert head in source
    (copy / "isolation.py").write_text(source.replace(head, head + "    raise OSError(1, 'turned off')\n"))
    monkeypatch.setattr(sandboxed, "SANDBOX", copy / "sandbox.py")
    limits = DISK_LIMITS
    got, peak = graded_measuring_disk(HOSTILE / "disk.py", executor, limits, 0.02)
    print(f"peak disk use with the watchdog only: {peak / 2**20:.1f} MiB (cap 64 MiB)")
    # It samples every 50 ms and a runtime writes to the page cache at GB/s, so how far it overshoots
    # follows the machine's load (CI on a busy 2-core EPYC saw 346 MiB). Unstopped, this submission
    # writes until its 20 s cell limit: tens of GiB. The bound tells a watchdog that works from none.
    assert peak <= limits.disk_bytes + 2**30, peak
    assert verdict(got["7.3/1"]) == (R.PASSED, 2) and verdict(got["7.3/4"]) == (R.PASSED, 1)
    notes = got["report"].notes
    assert any("(7.3/3)" in n and "64 MiB or 2000 files (the disk limit)" in n for n in notes), notes
    assert got["7.3/6"].status == R.ERROR and "the disk limit" in got["7.3/6"].message, got["7.3/6"]
    assert any("watches its size and file count" in n and "turned off" in n for n in notes), notes


# -- 17. implement-it-yourself evasion: the library's routine, hidden from the runtime's trace -----
def test_17_hiding_the_library_routine_earns_nothing(executor):
    """The right values from the very routine the exercise asks for: the grader's own scan of the
    source (and the trace, judged by an allow-list) names what was found; what it cannot see through
    is left for review with 0 points, never passed."""
    # The default limits: switching the dispatch mode off costs its first calls a few seconds of imports.
    report = grade(find_section("7.1"), HOSTILE / "evasion.py", options=RuntimeOptions(), executor=executor)
    checks = {c.id: c for c in report.checks}
    assert report.score == 0, [(c.id, c.status, c.message) for c in report.checks]
    hidden = checks["7.1/1"]
    assert hidden.status == R.MANUAL and "could not verify" in hidden.message, hidden
    assert "vars()" in hidden.message and "_disable_current_modes" in hidden.message, hidden.message
    assert checks["7.1/2.2"].status == R.FAILED and "torch.conv_tbc" in checks["7.1/2.2"].message
    assert checks["7.1/6"].status == R.FAILED and "numpy.convolve" in checks["7.1/6"].message


# -- 18. the grader's held-out images --------------------------------------------------------------
@needs_file_isolation
def test_18_the_held_out_images_are_out_of_the_runtimes_reach(executor, tmp_path, monkeypatch):
    """The runtime is given only the training files of --data-dir; what it serves as train=False is the
    end of the training split; the held-out key stays in the course folder. heldout.py looks everywhere
    and shows what it found through the shape of its network's output."""
    import struct

    import torch

    from d2lgrade.core import course

    key_file = tmp_path / "course" / "held-out.key"
    key_file.parent.mkdir()
    key_file.write_text("the course's secret\n")
    monkeypatch.setattr(course, "KEY_FILE", key_file)
    monkeypatch.delenv(course.KEY_ENV, raising=False)
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(17)
    for prefix, n, marker in (("train", 64, 0), ("t10k", 20, 255)):
        images = torch.randint(0, 255, (n, 28, 28), generator=g, dtype=torch.uint8)
        images[:, 0, 0] = marker
        for kind, array in (("images-idx3", images), ("labels-idx1", torch.arange(n, dtype=torch.uint8) % 10)):
            header = struct.pack(">BBBB", 0, 0, 8, array.dim()) + b"".join(struct.pack(">I", k) for k in array.shape)
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(header + array.numpy().tobytes())
    source = (HOSTILE / "heldout.py").read_text().replace("@@DATA_DIR@@", str(tmp_path / "data"))
    submission = tmp_path / "bob" / "7.6.py"
    submission.parent.mkdir()
    submission.write_text(source.replace("@@KEY_FILE@@", str(key_file)))
    report = grade(find_section("7.6"), submission, selector="7.6/2", executor=executor,
                   options=RuntimeOptions(limits=Limits(call_seconds=30, cell_seconds=60, total_seconds=180),
                                          data_dir=str(tmp_path / "data")))
    check = next(c for c in report.checks if c.id == "7.6/2")
    assert check.points == 0 and "returns (20, 3) for a batch of 20 images" in check.message, check.message


# -- 19. SysV IPC and /dev/shm: shared between runtimes, outliving them ------------------------------
def _host_ipc_keys() -> set[int]:
    """Keys of the SysV shared-memory segments and message queues of the grader's IPC namespace."""
    keys = set()
    for table in ("shm", "msg"):
        lines = Path(f"/proc/sysvipc/{table}").read_text().splitlines()[1:]
        keys |= {int(line.split()[0]) for line in lines if line.split()}
    return keys


def _remove_host_ipc(keys) -> None:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    for key in keys:
        ident = libc.shmget(key, 0, 0)
        if ident >= 0:
            libc.shmctl(ident, 0, None)              # IPC_RMID
        ident = libc.msgget(key, 0)
        if ident >= 0:
            libc.msgctl(ident, 0, None)
        Path(f"/dev/shm/d2lgrade-plant-{key}").unlink(missing_ok=True)


@needs_ipc_namespace
def test_19_ipc_objects_are_the_runtimes_own_and_die_with_it(executor, tmp_path):
    import ctypes
    key = 0x2D100000 + (os.getpid() % 0xFFFF) * 16 + EXECUTORS.index(executor) * 8
    ours = set(range(key, key + 5))
    source = (HOSTILE / "ipc.py").read_text().replace("@@KEY@@", str(key))
    planter, thief = tmp_path / "planter" / "7.3.py", tmp_path / "thief" / "7.3.py"
    for path, mode in ((planter, "plant"), (thief, "steal")):
        path.parent.mkdir()
        path.write_text(source.replace("@@MODE@@", mode))
    try:
        # IPC works inside the runtime (the answer is read back from its own segment), and nothing of
        # it, the 4 GiB of segments included, is left on the host once it is closed.
        got = graded(planter, executor, selector="7.3/4")
        assert verdict(got["7.3/4"]) == (R.PASSED, 1), got["7.3/4"]
        assert not _host_ipc_keys() & ours
        assert not Path(f"/dev/shm/d2lgrade-plant-{key}").exists()
        # A later runtime cannot reach what is on the host: an answer planted there stays out of reach.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        segment = libc.shmget(key, 4096, 0o1000 | 0o600)
        queue = libc.msgget(key, 0o1000 | 0o600)
        assert segment >= 0 and queue >= 0
        ctypes.memmove(libc.shmat(segment, None, 0), b"s_h*s_w", 7)
        Path(f"/dev/shm/d2lgrade-plant-{key}").write_text("s_h*s_w")
        got = graded(thief, executor, selector="7.3/4")
        assert got["7.3/4"].status == R.FAILED and got["7.3/4"].points == 0, got["7.3/4"]
    finally:
        _remove_host_ipc(ours)


def test_19_the_runtimes_dev_shm_is_far_below_its_memory_limit(executor):
    values = runtime_values(executor, "import os\n_st = os.statvfs('/dev/shm')\n"
                                      "_shm = _st.f_blocks * _st.f_frsize\n", ["_shm"])
    if not sandbox_layers().get("mountns"):
        pytest.skip("no private mount namespace here for the runtime's /dev/shm")
    assert 0 < values["_shm"] <= FAST.memory_bytes // 8, values


# -- 20. capabilities: the warm child never execs ---------------------------------------------------
def runtime_values(executor: str, source: str, names: list[str], limits: Limits = FAST, notes=None) -> dict:
    """Run `source` in a fresh runtime of `executor` and read `names` back from it."""
    setup = Cell(index=1, kind="code", source="", role="setup")
    with get_executor(executor).start(Submission(Path("<hostile>"), [setup]), RuntimeOptions(limits=limits)) as runtime:
        run = runtime.run_source(source)
        assert run.status == "ok", (run.error, run.traceback)
        reply = runtime.request({"op": "get", "names": names}, 30)
        assert all(name in reply for name in names), reply
        if notes is not None:
            notes.extend(runtime.notes)
    return {name: wire.unwrap(reply[name]["value"]) for name in names}


def test_20_the_runtime_has_no_capability_even_without_landlock(executor, monkeypatch):
    """Without Landlock, only the missing capabilities keep the mount namespace's covers in place."""
    config = SandboxedRuntime._sandbox_config
    monkeypatch.setattr(SandboxedRuntime, "_sandbox_config", lambda self: {**config(self), "layers_off": ["landlock"]})
    source = (HOSTILE / "capabilities.py").read_text().replace("@@PROJECT@@", str(ROOT))
    notes = []
    values = runtime_values(executor, source, ["caps", "attempts"], notes=notes)
    assert values["caps"]["CapEff"] == values["caps"]["CapPrm"] == values["caps"]["CapInh"] == 0, values
    assert values["caps"]["CapBnd"] == 0 and values["caps"]["CapAmb"] == 0, values
    assert not any(values["attempts"].values()), values["attempts"]
    # The report says what is true of this engine: no Landlock, and the covers that still hold.
    assert any("Landlock is not available" in n and "still hides the project" in n for n in notes), notes
    assert not any("capabilities" in n for n in notes), notes


# -- 21. an answer that costs the grader more than it cost the runtime --------------------------------
def _peak_rss_since_reset() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def test_21_a_stride_0_answer_is_refused_not_copied(executor):
    """16000x16000 from one element: refused by the wire, and the grader's peak memory stays put."""
    Path("/proc/self/clear_refs").write_text("5")            # resets this process's peak resident size
    before = _peak_rss_since_reset()
    report = grade(find_section("7.2"), HOSTILE / "stride.py", options=RuntimeOptions(limits=FAST), executor=executor)
    grown = _peak_rss_since_reset() - before
    checks = {c.id: c for c in report.checks}
    assert grown < 256 * 2**20, f"the grader's peak grew by {grown / 2**20:.0f} MiB"
    stride_0 = checks["7.2/2.2"]
    assert stride_0.status == R.ERROR and stride_0.points == 0 and "overlap" in stride_0.message, stride_0.message
    assert verdict(checks["7.2/2.4"]) == (R.PASSED, 1), checks["7.2/2.4"].message


# -- 22. terminal escape sequences -------------------------------------------------------------------
CONTROL = [chr(c) for c in range(32) if chr(c) not in "\n"] + ["\x7f", "\x9b", "\u202e"]


def test_22_no_escape_sequence_reaches_the_terminal(executor, tmp_path):
    done = subprocess.run([sys.executable, "grade.py", "7.3", str(HOSTILE / "terminal.py"), "--executor", executor,
                           "--call-timeout", "10", "--html", str(tmp_path / "report.html")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-2000:]
    for stream in (done.stdout, done.stderr):
        assert not [c for c in CONTROL if c in stream], repr(stream[-3000:])
    # Shown, neutralised: the reader sees what the student tried.
    assert "Boom\\x1b[2J" in done.stdout and "\\x1b]0;pwned\\x07" in done.stdout, done.stdout
    assert "score 1/13" in done.stdout                     # 7.3/4, the one right answer


def test_22_batch_progress_lines_are_neutralised(capsys):
    from d2lgrade.batch.progress import BatchProgress
    progress = BatchProgress(total=2, skipped=0, quiet=True)
    progress.finished("bob\x1b[2J", "7.3", "failed", "error: \x1b]0;pwned\x07 [bold]x[/bold]")
    progress.retrying("eve\u202e", "7.3", "retrying \x1b[8m")
    err = capsys.readouterr().err
    assert not [c for c in CONTROL if c in err], repr(err)
    assert "bob\\x1b[2J" in err and "[bold]x[/bold]" in err and "eve\\u202e" in err, err
    bar = BatchProgress(total=2, skipped=0, quiet=False)        # rich's live bar: no markup read either
    bar.retrying("eve\x1b[2J", "7.3", "[bold]x[/bold]")
    bar.close()
    err = capsys.readouterr().err
    assert "eve\\x1b[2J 7.3: [bold]x[/bold]" in err, repr(err)


# -- 23. spreadsheet formulas in CSV exports ---------------------------------------------------------
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def test_23_no_formula_reaches_a_csv_export(executor, tmp_path):
    from d2lgrade.batch.run import BatchConfig, run_batch
    import csv
    student = "=1+1@evil"                                  # a folder name, as an LMS download may give
    root = tmp_path / "submissions"
    (root / student).mkdir(parents=True)
    (root / student / "7.3.py").write_text((HOSTILE / "spreadsheet.py").read_text())
    out, sheet = tmp_path / "reports", tmp_path / "review.csv"
    config = lambda **kw: BatchConfig(root=root, sections=["7.3"], workers=1, gradebook=out / "gradebook.sqlite",  # noqa: E731
                                      out=out, executor=executor, options_factory=lambda: RuntimeOptions(limits=FAST),
                                      quiet=True, **kw)
    summary = run_batch(config(lms_csv=True, review=sheet))
    assert summary["graded"] == 1, summary
    tables = {path.name: list(csv.reader(path.open(newline="", encoding="utf-8")))
              for path in (out / "gradebook.csv", out / "canvas.csv", sheet)}
    for name, rows in tables.items():
        live = [cell for row in rows for cell in row if cell.startswith(FORMULA_START)]
        assert not live, (name, live)
    # Shown, neutralised: the text is all there behind the apostrophe, and the scores are numbers.
    answers = {row[2]: row[3] for row in tables["review.csv"][1:]}
    assert answers["7.3/2"].startswith("\'=HYPERLINK(") and answers["7.3/5"] == "\'+1+1", answers
    assert ["\'" + student, "", "\'" + student, "\'" + student, "", "1"] in tables["canvas.csv"]
    # The instructor's points come back through the same sheet, matched to the student.
    rows = tables["review.csv"]
    header = rows[0]
    for row in rows[1:]:
        row[header.index("points")] = "1" if row[header.index("exercise")] == "7.3/2" else ""
        row[header.index("comment")] = "=see me"
    filled = tmp_path / "filled.csv"
    with filled.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    assert run_batch(config(import_review=filled))["reviews_imported"] == 1
    from d2lgrade.batch.gradebook import Gradebook
    with Gradebook(out / "gradebook.sqlite") as book:
        row = next(r for r in book.submissions() if r.student == student)
        assert row.score == 2


# -- 24. one memory limit for all the runtime's processes -------------------------------------------------
needs_memory_cgroup = needs_sandbox(lambda layers: layers.get("memory_cgroup"),
                                    "no memory cgroup here: the report says the limit is per process")


@needs_memory_cgroup
def test_24_three_processes_cannot_together_pass_the_runtimes_memory_limit(executor, tmp_path):
    """4.5 GiB for the runtime: two processes of 1 GiB fit; three of 1.75 GiB (each under the limit
    alone) do not, and the call that started them gets the memory verdict naming the limit."""
    limits = Limits(call_seconds=60, cell_seconds=60, total_seconds=240, memory_bytes=int(4.5 * 2**30))
    path = tmp_path / "7.3.py"
    path.write_text((HOSTILE / "memory.py").read_text().replace("@@CHUNK@@", str(int(1.75 * 2**30))))
    got = graded(path, executor, limits)
    assert verdict(got["7.3/1:example"]) == (R.PASSED, 1), got["7.3/1:example"]     # two processes held
    stopped = got["7.3/3"]
    assert stopped.status == R.MEMORY and "the memory limit (4.5 GiB for all its processes)" in stopped.message, stopped
    assert verdict(got["7.3/3:batched"]) == (R.PASSED, 1), got["7.3/3:batched"]     # the runtime goes on
    notes = got["report"].notes
    assert any("went past its memory limit (4.5 GiB for all its processes)" in n for n in notes), notes
    assert not any("per process" in n for n in notes), notes


def test_24_without_a_memory_cgroup_the_report_says_the_limit_is_per_process(executor, monkeypatch):
    config = SandboxedRuntime._sandbox_config
    monkeypatch.setattr(SandboxedRuntime, "_sandbox_config", lambda self: {**config(self), "layers_off": ["cgroup"]})
    notes = []
    assert runtime_values(executor, "_x = 1\n", ["_x"], notes=notes) == {"_x": 1}
    assert any("binds each process of the runtime alone" in n for n in notes), notes


# -- 25. the batch's workers have a memory limit of their own ----------------------------------------------
def test_25_an_answer_too_big_for_the_grader_costs_one_check_not_the_batch(executor, tmp_path, monkeypatch):
    from d2lgrade.batch.gradebook import GRADED, Gradebook
    from d2lgrade.batch.run import BatchConfig, run_batch
    monkeypatch.setenv("D2LGRADE_WORKER_MEMORY_MB", "768")     # what grading may add to a worker
    root = tmp_path / "submissions"
    for student, text in (("big", (HOSTILE / "grader_memory.py").read_text()),
                          ("fine", '# %% 7.2/2.4\nmin_kernel_size_derivative = "d + 1"\n')):
        (root / student).mkdir(parents=True)
        (root / student / "7.2.py").write_text(text)
    out = tmp_path / "reports"
    summary = run_batch(BatchConfig(root=root, sections=["7.2"], workers=1, gradebook=out / "gradebook.sqlite",
                                    out=out, executor=executor, quiet=True,
                                    options_factory=lambda: RuntimeOptions(limits=FAST)))
    assert (summary["graded"], summary["errors"]) == (2, 0), summary
    with Gradebook(out / "gradebook.sqlite") as book:
        rows = {r.student: r for r in book.submissions()}
        checks = {(r["student"], r["check_id"]): r for r in book.results()}
    assert {s: r.status for s, r in rows.items()} == {"big": GRADED, "fine": GRADED}
    big = checks["big", "7.2/2.2"]
    assert big["status"] == R.ERROR and re.search("memory|MemoryError", big["message"]), big
    assert checks["big", "7.2/2.4"]["status"] == checks["fine", "7.2/2.4"]["status"] == R.PASSED
