"""The runtime logic both sandboxed engines hold (d2lgrade/run/sandboxed.py's SandboxedRuntime), driven through a
launcher of the test's own that starts no process: deaths, timeouts, a wedged child, errors and start-up failures
give the same statuses and messages whatever the engine, and a fresh child gets the good cells back in order."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from d2lgrade.load import Cell, Submission
from d2lgrade.run import jupyter, warm
from d2lgrade.run.executor import DIED, TIMEOUT, RuntimeOptions
from d2lgrade.run.sandboxed import CellTimedOut, RuntimeGone, SandboxedRuntime, cap_error

ROOT = Path(__file__).resolve().parents[1]


class InProcessChild:
    """Runs cells with exec in a namespace of its own. `# die` ends it, `# hang` outlives the wall limit and
    `# wedge` does so and leaves it deaf to the probe that follows an interrupt."""

    def __init__(self, handshake_error: str = ""):
        self.pid = None
        self.output_dropped = False
        self.namespace: dict = {}
        self.ran: list[str] = []
        self.interrupted = self.killed = self.wedged = False
        self._handshake_error = handshake_error

    def handshake(self) -> str:
        return self._handshake_error

    def run(self, source: str, timeout: int) -> dict | None:
        if self.wedged or source.startswith("# hang"):
            raise CellTimedOut(f"no reply within {timeout} s")
        if source.startswith("# wedge"):
            self.wedged = True
            raise CellTimedOut(f"no reply within {timeout} s")
        if source.startswith("# die"):
            raise RuntimeGone("the child exited")
        self.ran.append(source)
        try:
            exec(source, self.namespace)
        except Exception as exc:
            return {"ename": type(exc).__name__, "evalue": str(exc),
                    "traceback": ["\x1b[0;31mTraceback\x1b[0m", f"{type(exc).__name__}: {exc}"]}
        return None

    def interrupt(self) -> None:
        self.interrupted = True

    def kill(self) -> None:
        self.killed = True


class InProcessLauncher:
    def __init__(self, handshake_error: str = ""):
        self.children: list[InProcessChild] = []
        self.statuses: list[dict] = []
        self._handshake_error = handshake_error

    def start(self, runtime: SandboxedRuntime) -> InProcessChild:
        self.children.append(InProcessChild(self._handshake_error))
        return self.children[-1]

    def started(self, sandbox: dict) -> None:
        self.statuses.append(sandbox)


def started(*sources: str) -> tuple[SandboxedRuntime, InProcessLauncher]:
    launcher = InProcessLauncher()
    cells = [Cell(index=i, kind="code", source=s) for i, s in enumerate(sources, 1)]
    return SandboxedRuntime(Submission(Path("<cells>"), cells), RuntimeOptions(), launcher), launcher


def test_a_dead_child_is_replaced_and_gets_the_good_cells_back_in_order():
    runtime, launcher = started("a = 1", "# die\nb = 2", "c = a + 1")
    try:
        assert [r.status for r in runtime.cell_runs] == ["ok", DIED, "ok"]
        assert runtime.cell_runs[1].error == "the runtime exited (it may have run out of memory or called os._exit)"
        first, second = launcher.children
        assert first.killed and not second.killed
        assert second.ran == ["a = 1", "c = a + 1"] and second.namespace["c"] == 2    # replayed, then the next cell
        assert len(launcher.statuses) == 2                # the engine heard of each start
    finally:
        runtime.close()
    assert second.killed and not runtime.scratch.exists() and not runtime.private.exists()


def test_a_timeout_interrupts_and_keeps_a_child_that_answers_the_probe():
    runtime, launcher = started("a = 1", "# hang", "b = a")
    try:
        assert [r.status for r in runtime.cell_runs] == ["ok", TIMEOUT, "ok"]
        assert runtime.cell_runs[1].error == "ran past the 60 s limit"         # the CPU limit, not the wall backstop
        [child] = launcher.children
        assert child.interrupted and child.ran == ["a = 1", "pass", "b = a"]
    finally:
        runtime.close()


def test_a_wedged_child_is_replaced_and_the_timed_out_cell_is_never_replayed():
    runtime, launcher = started("a = 1", "# wedge", "b = a")
    try:
        assert [r.status for r in runtime.cell_runs] == ["ok", TIMEOUT, "ok"]
        first, second = launcher.children
        assert first.interrupted and first.killed
        assert second.ran == ["a = 1", "b = a"]
    finally:
        runtime.close()


def test_an_error_is_one_line_with_a_plain_traceback_and_its_cell_still_counts():
    runtime, launcher = started("a = 1\nundefined_name", "# die")
    try:
        run = runtime.cell_runs[0]
        assert (run.status, run.error) == ("error", "NameError: name 'undefined_name' is not defined")
        assert "\x1b" not in run.traceback and "Traceback" in run.traceback
        assert launcher.children[1].ran == ["a = 1\nundefined_name"]        # ran partly: its definitions count
    finally:
        runtime.close()


def test_a_child_that_cannot_start_is_killed_and_named():
    launcher = InProcessLauncher(handshake_error="ImportError: no torch")
    with pytest.raises(RuntimeError, match="^the student runtime could not start: ImportError: no torch$"):
        SandboxedRuntime(Submission(Path("<cells>"), []), RuntimeOptions(), launcher)
    assert launcher.children[0].killed


def test_an_untrusted_error_is_cut_to_the_cap_keeping_the_end_of_the_traceback():
    content = {"ename": "E" * 10_000, "evalue": "v", "traceback": ["first"] + ["x" * 1000] * 20 + ["last line"]}
    cap_error(content, cap=2048)
    assert content["ename"] == "E" * 2048 + " [...]" and content["evalue"] == "v"
    assert content["traceback"][-1] == "last line" and sum(map(len, content["traceback"])) <= 2048 + 5


def test_the_shared_runtime_starts_no_process_and_no_engine_inherits_it():
    tree = ast.parse((ROOT / "d2lgrade" / "run" / "sandboxed.py").read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"subprocess", "multiprocessing", "nbclient", "jupyter_client", "socket"}, imported
    assert SandboxedRuntime.__subclasses__() == []
    assert hasattr(jupyter.KernelLauncher, "start") and hasattr(warm.WarmLauncher, "start")


def test_emptying_the_scratch_folder_from_two_threads_at_once_never_fails(tmp_path):
    """The disk watchdog and the thread that saw the runtime die both empty the folder, while a dying runtime may
    still be writing; neither may raise (CI once saw IsADirectoryError on .tmp, gone and back between a look and
    the removal)."""
    import threading
    runtime, _ = started("a = 1")
    try:
        work = runtime.scratch / "work"
        work.mkdir(exist_ok=True)
        stop, errors = threading.Event(), []

        def writer():
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    (work / f"d{n % 7}").mkdir(exist_ok=True)
                    (work / f"d{n % 7}" / "f").write_bytes(b"x")
                    (work / f"f{n % 5}").write_bytes(b"x")
                except OSError:
                    pass              # the folder was emptied under it: the runtime's problem, not the grader's

        def emptier():
            try:
                for _ in range(300):
                    runtime._empty_scratch()
            except Exception as exc:   # noqa: BLE001 - the failure under test
                errors.append(exc)

        threads = [threading.Thread(target=writer)] + [threading.Thread(target=emptier) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads[1:]:
            t.join()
        stop.set()
        threads[0].join()
        assert errors == []
        runtime._empty_scratch()
        assert sorted(p.name for p in work.iterdir()) == [".tmp"]
    finally:
        runtime.close()
    assert not runtime.scratch.exists()


def test_emptying_removes_a_link_to_a_folder_but_not_the_folder_it_names(tmp_path):
    runtime, _ = started("a = 1")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    try:
        work = runtime.scratch / "work"
        work.mkdir(exist_ok=True)
        (work / "link").symlink_to(outside, target_is_directory=True)
        (work / "nested" / "deeper").mkdir(parents=True)
        runtime._empty_scratch()
        assert sorted(p.name for p in work.iterdir()) == [".tmp"]
        assert (outside / "keep").read_text() == "x"
    finally:
        runtime.close()
