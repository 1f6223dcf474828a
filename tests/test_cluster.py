"""The batch on a Dask cluster (issue 13), with `distributed.LocalCluster` on this machine: the same
gradebook rows as a local batch, a worker killed mid-batch loses and duplicates nothing, a worker
running other code is refused, and --device cuda without a GPU worker is refused before anything runs."""
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from d2lgrade.batch import cluster as C  # noqa: E402
from d2lgrade.batch.gradebook import GRADED, Gradebook  # noqa: E402
from d2lgrade.batch.run import BatchConfig, run_batch  # noqa: E402
from d2lgrade.core.errors import UserError  # noqa: E402
from d2lgrade.run.executor import RuntimeOptions  # noqa: E402
from d2lgrade.run.limits import Limits  # noqa: E402
from d2lgrade.core.sections import ROOT  # noqa: E402

OPTIONS = RuntimeOptions(limits=Limits(call_seconds=3, cell_seconds=20, total_seconds=120))
CLASS = {
    "right": (ROOT / "reference" / "section_7_3.py").read_text(),
    "wrong": '# %% 7.3/1\noutput_shape = "(n_h - k_h)/s_h + 1"\nexample_shape = (2, 3)\n'
             '# %% 7.3/4\nstride_speedup = "s_h + s_w"\n',
    "crashes": '# %% 7.3/4\nstride_speedup = "s_h*s_w"\n# %% 7.3/3\ndef mirror_pad(X, p):\n    return X[99]\n',
    # Slow enough that the test can kill the worker grading it.
    "slow": '# %% 7.3/4\nimport time\ntime.sleep(6)\nstride_speedup = "s_w*s_h"\n',
}


def make_class(root: Path, students=CLASS) -> Path:
    for student, text in students.items():
        (root / student).mkdir(parents=True)
        (root / student / "7.3.py").write_text(text)
    return root


def config(tmp: Path, root: Path, **kw) -> BatchConfig:
    return BatchConfig(root=root, sections=["7.3"], workers=2, gradebook=tmp / "gradebook.sqlite", out=tmp / "reports",
                       options_factory=lambda: OPTIONS, quiet=True, **kw)


def rows(gradebook: Path) -> list[tuple]:
    with Gradebook(gradebook) as book:
        return sorted((r["student"], r["check_id"], r["points"], r["status"], r["message"]) for r in book.results())


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


def test_the_cluster_gives_the_rows_of_a_local_batch(tmp_path, scheduler):
    students = {k: v for k, v in CLASS.items() if k != "slow"}
    root = make_class(tmp_path / "submissions", students)
    local = run_batch(config(tmp_path / "local", root))
    remote = run_batch(config(tmp_path / "remote", root, dask=scheduler))
    assert (remote["graded"], remote["errors"]) == (local["graded"], local["errors"]) == (3, 0)
    assert rows(tmp_path / "remote" / "gradebook.sqlite") == rows(tmp_path / "local" / "gradebook.sqlite")
    with Gradebook(tmp_path / "remote" / "gradebook.sqlite") as book:
        paths = {r.student: r.path for r in book.submissions()}
    assert paths["right"] == str(root / "right" / "7.3.py")       # the command's path, not a worker's copy
    again = run_batch(config(tmp_path / "remote", root, dask=scheduler))
    assert (again["graded"], again["skipped"]) == (0, 3)


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(tmp_path, scheduler):
    root = make_class(tmp_path / "submissions")
    killed = []

    def kill_a_busy_worker():
        with distributed.Client(scheduler, timeout=20) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                busy = [addr for addr, keys in client.processing().items()
                        if any("slow" in str(k) for k in keys)]
                if busy:
                    time.sleep(1.5)                  # well inside the 6 s the submission takes
                    pid = client.run(os.getpid, workers=busy)[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                time.sleep(0.1)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    summary = run_batch(config(tmp_path, root, dask=scheduler))
    killer.join()
    assert killed, "no worker was grading the slow submission"
    assert (summary["graded"], summary["errors"]) == (4, 0)
    got = rows(tmp_path / "gradebook.sqlite")
    assert len(got) == len(set((s, c) for s, c, *_ in got))                 # no check twice
    assert {s for s, *_ in got} == set(CLASS)
    with Gradebook(tmp_path / "gradebook.sqlite") as book:
        assert sorted(r.student for r in book.submissions() if r.status == GRADED) == sorted(CLASS)


def test_workers_running_other_code_are_refused(tmp_path, scheduler, monkeypatch):
    root = make_class(tmp_path / "submissions", {"right": CLASS["right"]})
    monkeypatch.setattr(C, "package_version", lambda: "a-newer-version")    # the command's side only
    with pytest.raises(UserError, match="grade with other code than this command"):
        run_batch(config(tmp_path, root, dask=scheduler))


def test_device_cuda_without_a_gpu_worker_is_refused_before_grading(tmp_path, scheduler):
    root = tmp_path / "submissions"
    (root / "ada").mkdir(parents=True)
    (root / "ada" / "7.6.py").write_text((ROOT / "reference" / "section_7_6.py").read_text())
    done = subprocess.run([sys.executable, "grade.py", "--batch", str(root), "--dask", scheduler, "--device", "cuda",
                           "--gradebook", str(tmp_path / "gb.sqlite"), "--out", str(tmp_path / "reports"), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "--device cuda needs a worker with a GPU" in done.stderr and "--resources GPU=1" in done.stderr
    assert "Traceback" not in done.stderr
