"""tools/relayer.py, the script that moved d2lgrade's modules into layered folders: it must leave nothing
naming an old place, and stay safe to run again after a merge brings code written against the old layout."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "relayer.py"


def relayer(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode())


def test_nothing_in_the_project_names_an_old_place():
    done = relayer(ROOT, "--check")
    assert done.returncode == 0, f"run `python tools/relayer.py`: it would still change\n{done.stdout}"


def test_an_old_layout_is_moved_and_every_kind_of_import_rewritten(tmp_path):
    write(tmp_path, {
        "d2lgrade/__init__.py": "", "d2lgrade/errors.py": "", "d2lgrade/checks.py": "", "d2lgrade/batch/__init__.py": "",
        "d2lgrade/batch/version.py": "", "d2lgrade/run/__init__.py": "",
        "d2lgrade/pinned.py": "from pathlib import Path\nROOT = Path(__file__).resolve().parents[1]\n",
        "d2lgrade/grading.py": "from . import errors, cli  # keep\nfrom .run import engines\n\n\ndef f():\n"
                               "    from .checks import check\n    return d2lgrade.pinned.CACHE\n",
        "d2lgrade/batch/cluster.py": "from .version import grader_version\nfrom ..grading import grade\n",
        "tests/test_x.py": 'from d2lgrade import errors, pinned\r\nimport d2lgrade.expected\r\n'
                           'monkeypatch.setattr("d2lgrade.pinned.CACHE", 1)  # d2lgrade/expected.py\r\n',
        "docs/x.md": "See `d2lgrade/batch/version.py` and d2lgrade/pinned, not d2lgrade/run/ nor d2lgrade/data/.\n",
        "pyproject.toml": 'packages = ["d2lgrade", "d2lgrade.run", "graders"]\n',
        "untouched.py": "from d2lgrade import cli\r\nx = 'd2lgrade.errorsX'\n",
    })
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "old layout")
    assert relayer(tmp_path).returncode == 0
    read = lambda name: (tmp_path / name).read_bytes().decode()   # noqa: E731
    assert not (tmp_path / "d2lgrade/grading.py").exists() and not (tmp_path / "d2lgrade/batch/version.py").exists()
    assert read("d2lgrade/pipeline/grading.py") == (
        "from ..core import errors\nfrom .. import cli  # keep\nfrom ..run import engines\n\n\ndef f():\n"
        "    from ..core.checks import check\n    return d2lgrade.numerics.pinned.CACHE\n")
    assert read("d2lgrade/numerics/pinned.py").endswith("ROOT = Path(__file__).resolve().parents[2]\n")
    assert read("d2lgrade/batch/cluster.py") == "from ..core.version import grader_version\nfrom ..pipeline.grading import grade\n"
    assert read("tests/test_x.py") == ("from d2lgrade.core import errors\r\nfrom d2lgrade.numerics import pinned\r\n"
                                       "import d2lgrade.values.expected\r\n"
                                       'monkeypatch.setattr("d2lgrade.numerics.pinned.CACHE", 1)  # d2lgrade/values/expected.py\r\n')
    assert read("docs/x.md") == ("See `d2lgrade/core/version.py` and d2lgrade/numerics/pinned, "
                                 "not d2lgrade/run/ nor d2lgrade/data/.\n")
    assert '"d2lgrade", "d2lgrade.core", "d2lgrade.values", "d2lgrade.pipeline", "d2lgrade.run"' in read("pyproject.toml")
    assert read("untouched.py") == "from d2lgrade import cli\r\nx = 'd2lgrade.errorsX'\n"

    # Again, after a merge: a file moved earlier with an old-style edit, and a new file with old names.
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "moved")
    assert relayer(tmp_path, "--check").returncode == 0
    write(tmp_path, {"d2lgrade/pipeline/dependencies.py": "from .checks import Check\nfrom . import grading\n",
                     "d2lgrade/audit/new.py": "from d2lgrade.grading import grade\nfrom ..checks import check\n"})
    git(tmp_path, "add", "-A")
    assert relayer(tmp_path, "--check").returncode == 1
    assert relayer(tmp_path).returncode == 0
    assert read("d2lgrade/pipeline/dependencies.py") == "from ..core.checks import Check\nfrom . import grading\n"
    assert read("d2lgrade/audit/new.py") == "from d2lgrade.pipeline.grading import grade\nfrom ..core.checks import check\n"
    assert relayer(tmp_path, "--check").returncode == 0
