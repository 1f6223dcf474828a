"""The sandboxed student runtime that both sandboxed engines (d2lgrade/run/jupyter.py, d2lgrade/run/warm.py) hold.

It owns everything that happens once an engine has a child to talk to: the scratch folders, the sandbox's
configuration and environment, running cells under their limits, the agent's requests, timeouts, deaths
(memory, disk, exit), restarting and replaying the good cells, the disk watchdog and the sweep that leaves
nothing of a runtime behind. It starts no process: an engine's Launcher starts the child (under
`inside/sandbox.py`) and hands back a Connection to it. So one bad cell costs one exercise, not the
submission, whatever the engine.
Tests change `SANDBOX` and `SandboxedRuntime._sandbox_config` here to change them for every engine at once.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import site
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

from d2lgrade.core import data
from d2lgrade import inside, numerics
from d2lgrade.inside import isolation
from d2lgrade.load import Cell, Submission
from d2lgrade.run import sandbox_status, wire
from d2lgrade.run.executor import BROKEN, DIED, TIMEOUT, CellRun, Runtime, RuntimeOptions
from d2lgrade.run.limits import Limits

SANDBOX = inside.FOLDER / "sandbox.py"      # the launcher every engine starts its child under
STARTUP_SECONDS = 60
ERROR_CAP = 8 * 2**10                      # characters kept of an error's value and of its traceback
PROBE_SECONDS = 5                          # how long an interrupted child has to answer a trivial cell


class CellTimedOut(Exception):
    """The child sent no reply within the wall-clock limit."""


class RuntimeGone(Exception):
    """The child exited, or its channel broke or carried something unreadable."""


class Connection(Protocol):
    """The grader's end of one started child, as an engine provides it."""
    pid: int | None
    output_dropped: bool

    def handshake(self) -> str:
        """Wait until the child's agent is set up; "" when it is, else why it could not start."""

    def run(self, source: str, timeout: int) -> dict | None:
        """Run source; None, or its error {"ename", "evalue", "traceback": [lines]}. Raises CellTimedOut
        past `timeout` s of wall time, RuntimeGone when the child is gone."""

    def interrupt(self) -> None: ...

    def kill(self) -> None:
        """Kill the child's process group and release the connection."""


class Launcher(Protocol):
    def start(self, runtime: "SandboxedRuntime") -> Connection:
        """Start a child for `runtime` (its sandbox_config(), environment() and agent_setup())."""

    def started(self, sandbox: dict) -> None:
        """What the sandbox applied to the child that just started (its status file)."""


def cap_error(content: dict, cap: int = ERROR_CAP) -> None:
    """Cut an error's name, value and traceback to `cap` characters each: the child's text is untrusted
    (an exception message can be 100 MB)."""
    for key in ("ename", "evalue"):
        if len(str(content.get(key, ""))) > cap:
            content[key] = str(content[key])[:cap] + " [...]"
    traceback = content.get("traceback")
    if isinstance(traceback, list):
        kept, size = [], 0
        for line in reversed(traceback):           # the end of a traceback says the most
            line = str(line)
            if size + len(line) > cap:
                kept.append(line[-max(0, cap - size):] if not kept else "[...]")
                break
            kept.append(line)
            size += len(line)
        content["traceback"] = kept[::-1]


class SandboxedRuntime(Runtime):
    def __init__(self, submission: Submission, options: RuntimeOptions, launcher: Launcher):
        self.submission = submission
        self.options = options
        self.limits = options.limits
        self.launcher = launcher
        self.notes: list[str] = []
        # The runtime reads only the training files of --data-dir, staged in a folder of their own: the
        # held-out files the grader evaluates on stay out of its reach (d2lgrade/core/data.py).
        self._data_dir = data.runtime_data_dir(options.data_dir)
        self.private = Path(tempfile.mkdtemp(prefix="d2lgrade-grader-"))   # kernelspec, sockets; not the student's
        self.scratch = Path(tempfile.mkdtemp(prefix="d2lgrade-run-"))        # the student's working dir
        self.exchange = self.scratch / ".d2lgrade"
        self.exchange.mkdir()
        self.deadline = time.monotonic() + self.limits.total_seconds
        self.connection: Connection | None = None
        self._requests = 0
        self._bad_cells: set[int] = set()     # timed out or killed the runtime: never replayed
        self._good_sources: list[str] = []    # run again, in order, after a restart
        self._kernel_pid: int | None = None
        self._memory_group: str | None = None
        self._oom_seen = 0
        self.disk_exceeded = False
        self._stop_watch = threading.Event()
        self._emptying = threading.Lock()
        # Where the sandbox mounts its size-limited tmpfs over the working directory, only the
        # exchange folder lands on the grader's disk; this watchdog caps that, and everything where
        # no tmpfs could be mounted.
        self._watch = threading.Thread(target=self._watch_disk, name="d2lgrade-disk", daemon=True)
        self._watch.start()
        try:
            self._boot()
            self.cell_runs = [self._run_student_cell(cell) for cell in submission.code_cells]
        except BaseException:
            self.close()
            raise
        if self.connection and self.connection.output_dropped:
            self.notes.append(f"Output beyond {self.limits.output_bytes // 2**10} KiB was dropped.")

    # -- what a launcher reads -------------------------------------------------------------------
    def _sandbox_config(self) -> dict:
        """What sandbox.py applies around the runtime (see its docstring for the keys)."""
        # The student's working directory is a folder of its own inside the scratch dir, beside the
        # request/response folder: Landlock lets the runtime empty either, but remove neither.
        work = self.scratch / isolation.WORK
        for folder in (work, work / ".tmp"):
            folder.mkdir(exist_ok=True)
        # What must stay hidden: the project (reference/, graders/, submissions/), the grader's
        # folder and the submission's own; the sandbox warns when its allow-list would expose one.
        hidden = {Path(__file__).resolve().parents[2], Path.cwd()}
        if Path(str(self.submission.path)).is_file():
            hidden.add(Path(str(self.submission.path)).resolve().parent)
        hidden = sorted(str(f) for f in hidden if str(f) != "/")
        # The stand-in's source files (public, installed with scikit-learn): a runtime that could read them
        # could look the held-out digits up. It gets its training split staged in its data folder instead.
        hidden += data.private_sources()
        config = {**self.limits.to_dict(), "device": self.options.device, "cwd": str(work),
                  "exchange": str(self.exchange), "ipc_dir": str(self.private),
                  "read": [self._data_dir] if self._data_dir else [],
                  "deny": hidden, "status_file": str(self.private / isolation.STATUS_FILE)}
        return config

    def sandbox_config(self) -> dict:
        return self._sandbox_config()

    def environment(self) -> dict:
        keep = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "VIRTUAL_ENV", "CONDA_PREFIX",
                "LD_LIBRARY_PATH", "CUDA_HOME", "CUDA_PATH")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        work = self.scratch / isolation.WORK
        env.update(HOME=str(work), TMPDIR=str(work / ".tmp"), PYTHONHASHSEED="0", MPLBACKEND="Agg",
                   MPLCONFIGDIR=str(work / ".matplotlib"), IPYTHONDIR=str(work / ".ipython"),
                   TORCH_HOME=str(work / ".torch"), XDG_CACHE_HOME=str(work / ".cache"),
                   PYTHONUSERBASE=site.getuserbase(), PYTHONDONTWRITEBYTECODE="1", JPY_SESSION_NAME="d2lgrade")
        # Threads count against the process limit: keep the math libraries' pools small whatever
        # the machine's core count (an unlimited OpenMP pool on a 128-core box would not start).
        # One thread and one code path (d2lgrade/numerics/): a verdict must not depend on the CPU.
        env.update(numerics.pinned_environment())
        return env

    def agent_setup(self) -> dict:
        """What the agent's `setup` gets: the staged training files only, never --data-dir itself."""
        return {"device": self.options.device, "data_dir": self._data_dir, "cell_seconds": self.limits.cell_seconds}

    # -- the child's life cycle ------------------------------------------------------------------
    def _boot(self) -> None:
        self.connection = self.launcher.start(self)
        self._kernel_pid = self.connection.pid
        error = self.connection.handshake()
        if error:
            raise RuntimeError(f"the student runtime could not start: {error}")
        self.launcher.started(self._read_sandbox_status())

    def _read_sandbox_status(self) -> dict:
        """What the sandbox applied: what it could not apply on this machine becomes a note in the
        report; its memory cgroup tells a runtime stopped for memory from one that died otherwise."""
        sandbox = sandbox_status.read_status(self.private / isolation.STATUS_FILE)
        self.notes.extend(n for n in sandbox_status.notes_for(sandbox) if n not in self.notes)
        self._memory_group = sandbox.get("memory_cgroup") or None
        self._oom_seen = sandbox_status.oom_kills(self._memory_group) if self._memory_group else 0
        return sandbox

    def _over_memory(self) -> bool:
        """True when the kernel's OOM killer stopped a process of the runtime since the last look
        (the runtime itself, or one it started); the report gets a note naming the limit."""
        if not self._memory_group:
            return False
        kills = sandbox_status.oom_kills(self._memory_group)
        if kills <= self._oom_seen:
            return False
        self._oom_seen = kills
        note = (f"The runtime's processes together went past its memory limit ({self._memory_limit()}); "
                "the system stopped the largest of them.")
        if note not in self.notes:
            self.notes.append(note)
        return True

    def _memory_limit(self) -> str:
        return f"{self.limits.memory_bytes / 2**30:g} GiB for all its processes"

    def _restart(self) -> None:
        self._kill()
        self._boot()
        for source in self._good_sources:
            self._execute(source, self._cell_wall_seconds(), self.limits.cell_seconds)

    def _kill(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        namespace = sandbox_status.user_namespace(connection.pid) if connection.pid else None
        if namespace == sandbox_status.user_namespace(os.getpid()):
            namespace = None                         # no private namespace: nothing to tell apart
        connection.kill()                            # the whole process group: whatever the student spawned goes too
        self._sweep(namespace)

    def _sweep(self, namespace: str | None) -> None:
        """Make sure nothing the runtime started outlives it (its cgroup, its namespaces)."""
        status = sandbox_status.read_status(self.private / isolation.STATUS_FILE)
        for group in sandbox_status.cgroups_of(status):
            # Everything the runtime started is in its cgroups, whatever namespaces it has.
            sandbox_status.remove_cgroup(group)
        if namespace:
            # The runtime's PID namespace dies with its init; wait until it has, and sweep up
            # anything of its user namespace that is left (none, where the PID namespace worked).
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                left = sandbox_status.processes_in(namespace)
                if not left:
                    break
                for other in left:
                    try:
                        os.kill(other, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                time.sleep(0.05)

    def _watch_disk(self) -> None:
        while not self._stop_watch.wait(0.05):
            size, files = disk_usage(self.scratch, self.limits.disk_files)
            if size > self.limits.disk_bytes or files > self.limits.disk_files:
                self.disk_exceeded = True
                if self._kernel_pid:
                    try:
                        os.killpg(self._kernel_pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                self._empty_scratch()

    def _empty_scratch(self) -> None:
        # The watchdog thread and the thread that saw the runtime die both empty the folder: one at a
        # time, or one's look at an entry (.tmp gone) is stale by the time it removes it (.tmp back).
        with self._emptying:
            for folder in (self.scratch / isolation.WORK, self.exchange):
                for entry in list(folder.iterdir()) if folder.is_dir() else []:
                    _remove(entry)
            (self.scratch / isolation.WORK / ".tmp").mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self._stop_watch.set()
        self._watch.join(timeout=5)      # not emptying (and re-creating .tmp) while the folder is removed
        self._kill()
        shutil.rmtree(self.scratch, ignore_errors=True)
        shutil.rmtree(self.private, ignore_errors=True)

    # -- running code ------------------------------------------------------------------------
    def _remaining(self, wanted: float) -> float:
        return max(0.5, min(wanted, self.deadline - time.monotonic()))

    def _cell_wall_seconds(self) -> float:
        """A cell's CPU time is limited inside the runtime (the agent's limit_cells); this wall-clock limit
        ends a cell that waits, sleeps or swallows that limit's exception."""
        return self._remaining(Limits.call_wall_seconds(self.limits.cell_seconds))

    def _execute(self, source: str, timeout: float, limit: float | None = None) -> tuple[str, str, str]:
        """Run source within `timeout` s of wall time; returns (status, one-line error, traceback text). `limit`:
        the limit a timeout message names (a cell's CPU time), where it is not `timeout` itself."""
        if self.connection is None:
            return DIED, "the runtime is not running", ""
        if time.monotonic() > self.deadline:
            return TIMEOUT, f"the overall limit of {self.limits.total_seconds:g} s was used up", ""
        try:
            error = self.connection.run(source, max(1, int(round(timeout))))
        except CellTimedOut:
            self._recover_from_timeout()
            return TIMEOUT, f"ran past the {limit or timeout:g} s limit", ""
        except RuntimeGone:
            return self._after_death()
        if error is None:
            return "ok", "", ""
        if error.get("ename") == "CellTimeout":
            return TIMEOUT, f"ran past the {limit or timeout:g} s limit", ""
        tb = "\n".join(error.get("traceback", []))
        return "error", f"{error.get('ename')}: {error.get('evalue')}".strip(": "), _strip_ansi(tb)

    def _after_death(self) -> tuple[str, str, str]:
        """Start a fresh child and say why the last one died."""
        if self._over_memory():
            self._restart()
            return DIED, f"went past the memory limit ({self._memory_limit()}) and was stopped", ""
        if self.disk_exceeded:
            self.disk_exceeded = False
            self._empty_scratch()
            self._restart()
            return DIED, (f"wrote more than {self.limits.disk_bytes / 2**20:g} MiB or "
                          f"{self.limits.disk_files} files (the disk limit) and was stopped"), ""
        self._restart()
        return DIED, "the runtime exited (it may have run out of memory or called os._exit)", ""

    def _recover_from_timeout(self) -> None:
        """Interrupt; if the child does not answer a trivial cell soon after, start a fresh one."""
        self.connection.interrupt()
        try:
            self.connection.run("pass", PROBE_SECONDS)
        except Exception:
            self._restart()

    def _run_student_cell(self, cell) -> CellRun:
        status, error, tb = self._execute(cell.source, self._cell_wall_seconds(), self.limits.cell_seconds)
        self._over_memory()          # a process the cell started was stopped: a note says so
        if status == "ok":
            self._good_sources.append(cell.source)
        elif status in (TIMEOUT, DIED):
            self._bad_cells.add(cell.index)
        elif status == "error":
            self._good_sources.append(cell.source)   # ran partly; its definitions before the error count
        return CellRun(cell=cell, status=status, error=error, traceback=tb)

    def run_source(self, source: str) -> CellRun:
        return self._run_student_cell(Cell(index=0, kind="code", source=source))

    def request(self, request: dict, timeout: float) -> dict:
        self._requests += 1
        req = self.exchange / f"request-{self._requests}.pt"
        resp = self.exchange / f"response-{self._requests}.pt"
        wire.write_request(request, req)
        code = f"__import__('_d2lgrade_agent').serve(globals(), {str(req)!r}, {str(resp)!r})"
        status, error, tb = self._execute(code, self._remaining(timeout))
        if status == "ok" and self._over_memory():
            # The runtime survived, but a process it started for this call was stopped for memory.
            status, error = DIED, f"went past the memory limit ({self._memory_limit()})"
        if status in (TIMEOUT, DIED):
            return {"ok": False, "status": status, "message": error}
        if status != "ok":
            return {"ok": False, "status": BROKEN, "message": f"the runtime could not answer ({error})"}
        try:
            return wire.read_response(resp)
        except wire.WireError as exc:
            return {"ok": False, "status": BROKEN, "message": str(exc)}
        finally:
            for path in (req, resp):
                path.unlink(missing_ok=True)


def disk_usage(folder: Path, max_files: int) -> tuple[int, int]:
    """Bytes and entries under folder, as the grader sees it (stops counting past max_files)."""
    size = files = 0
    stack = [str(folder)]
    while stack and files <= max_files:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    files += 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            size += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        pass
        except OSError:
            pass
    return size, files


def _remove(entry: Path) -> None:
    """Remove a file, link or folder the runtime may still be changing; what is already gone is fine."""
    try:
        entry.unlink()
    except FileNotFoundError:
        pass
    except (IsADirectoryError, PermissionError):     # Linux answers EISDIR for a folder, some systems EPERM
        shutil.rmtree(entry, ignore_errors=True)


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
