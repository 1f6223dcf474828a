"""`python grade.py` as a student and the course CI use it."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATUSES = {"passed", "failed", "error", "timeout", "memory", "not_attempted", "manual"}


def grade(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "grade.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args, words", [
    (["9.9"], "there is no section '9.9'"),
    (["7.3", "nowhere/work.ipynb"], "does not exist"),
    (["7.3/9"], "has no exercise 7.3/9"),
    ([], "say which section"),
    (["7.3", "--max-processes", "0"], "max_processes must be positive"),
])
def test_user_errors_are_one_sentence(args, words):
    done = grade(*args)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and words in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_json_contract_on_the_starter(tmp_path):
    done = grade("7.3", "--json", "--html", str(tmp_path / "r.html"), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert {"section", "submission", "score", "max_score", "checks"} <= set(doc)
    assert doc["section"] == "7.3" and doc["score"] == 0 and doc["max_score"] > 0
    for c in doc["checks"]:
        assert {"id", "points", "max_points", "status", "message"} <= set(c)
        assert c["status"] in STATUSES
    assert {c["status"] for c in doc["checks"]} == {"not_attempted"}
    html = (tmp_path / "r.html").read_text()
    assert "7.3/3" in html and "not attempted" in html


def test_one_exercise_of_a_module(tmp_path):
    work = tmp_path / "work.py"
    work.write_text("import torch\nfrom torch.nn import functional as F\n"
                    "def mirror_pad(X, p):\n    return F.pad(X[None, None], (p,) * 4, mode='reflect')[0, 0]\n")
    done = grade("7.3/3", str(work), "--html", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("7.3/3 ") and "passed" in line for line in lines)
    assert any(line.startswith("7.3/3:batched") and "ERROR" in line for line in lines)  # 4-D not handled
    assert not any(line.startswith("7.3/1") for line in lines)
    assert f"full feedback: {tmp_path / 'r.html'}" in done.stdout


def test_every_limit_is_an_option():
    from d2lgrade.cli import options_from, parse_args
    options = options_from(parse_args(["7.3", "--device", "cpu", "--call-timeout", "2", "--cell-timeout", "3",
                                       "--total-timeout", "40", "--memory-gb", "2", "--max-processes", "16",
                                       "--file-mb", "1.5", "--output-mb", "0.5", "--disk-mb", "32",
                                       "--disk-files", "500"]))
    assert options.limits.to_dict() == {"call_seconds": 2, "cell_seconds": 3, "total_seconds": 40,
                                        "memory_bytes": 2 * 2**30, "max_processes": 16,
                                        "file_bytes": int(1.5 * 2**20), "output_bytes": 2**19,
                                       "disk_bytes": 32 * 2**20, "disk_files": 500}


def test_auto_picks_the_kernel_for_one_grading_and_warm_for_watch(monkeypatch):
    """A one-off grading does not pay for a warm parent it will not reuse; --watch regrades, so it keeps one."""
    from d2lgrade.run import engines, warm
    monkeypatch.delenv(engines.ENVIRONMENT_VARIABLE, raising=False)
    assert engines.default_executor(one_off=True) == "kernel"
    assert engines.default_executor() == ("kernel" if warm.available() else "warm")
    monkeypatch.setenv(engines.ENVIRONMENT_VARIABLE, "warm")
    assert engines.default_executor(one_off=True) == "warm"          # the variable still decides
