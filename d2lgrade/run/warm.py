"""The warm engine: each submission runs in a child forked from a parent that has already imported
torch, d2l, matplotlib and IPython, so a submission no longer pays for an interpreter and its imports.

grader ── parent (inside/forkserver.py: imports once, pinned numerics, one thread, never runs student code)
  │          └─ child per submission: the same sandbox as the kernel engine (sandbox.enter), then
  └──────────── IPython cells (inside/shell.py), answering the grader on a socket of its own

A WarmRuntime is a KernelRuntime with another transport: the scratch folders, the disk watchdog, the
agent's requests, per-cell timeouts and the replay of good cells after a restart are the kernel
engine's own code; only starting, running a cell, interrupting and killing differ. A restart forks a
fresh child from the parent. The parent is shared by every runtime of the process (thread-safe),
started on first use, restarted when it died or when a child could have changed what it imports
(no Landlock and no read-only mounts), and stopped at interpreter exit.
"""
from __future__ import annotations

import atexit
import os
import select
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from nbclient.exceptions import CellTimeoutError, DeadKernelError

from d2lgrade import inside, numerics
from d2lgrade.inside import frames, isolation
from d2lgrade.load import Submission
from d2lgrade.run import kernel, sandbox_status
from d2lgrade.run.executor import Executor, RuntimeOptions
from d2lgrade.run.kernel import AGENT_SOURCE, STARTUP_SECONDS, KernelRuntime

FORKSERVER = inside.FOLDER / "forkserver.py"
POLL_SECONDS = 0.1          # how often a wait for a child checks that the child is still there


class WarmParent:
    """The long-lived parent process, shared by every warm runtime of this process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._ready = False
        self._home: Path | None = None
        self._sandbox: Path | None = None
        self.pid: int | None = None
        self.starts = 0

    def start(self) -> None:
        """Start the parent now without waiting for its imports (they overlap with the grader's work)."""
        if self._process is not None:          # the common case; a fork in progress may hold the lock
            return
        with self._lock:
            if self._process is None:
                self._spawn()

    def fork(self, request: dict) -> tuple[int, socket.socket]:
        """A new child for `request` ({"config", "env", "setup"}): its pid and the grader's socket to it."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._process is None or self._process.poll() is not None \
                            or self._sandbox != kernel.SANDBOX:
                        self._stop()
                        self._spawn()
                    self._wait_ready()
                    grader_end, child_end = socket.socketpair()
                    try:
                        frames.send(self._control, {"op": "fork", **request}, fds=[child_end.fileno()])
                    finally:
                        child_end.close()
                    self._control.settimeout(30)
                    reply, _ = frames.receive(self._control)
                    return int(reply["pid"]), grader_end
                except (OSError, EOFError, frames.FrameError, KeyError, ValueError) as exc:
                    self._stop()                  # crashed or wedged: the next attempt starts a fresh one
                    if attempt == 2:
                        raise RuntimeError(f"the warm engine's parent process failed ({exc}); "
                                           "grade with --executor kernel instead.") from None
        raise AssertionError("unreachable")

    def retire(self) -> None:
        """Stop the parent; the next fork starts a fresh one."""
        with self._lock:
            self._stop()

    def close(self) -> None:
        self.retire()

    def _spawn(self) -> None:
        self._sandbox = kernel.SANDBOX         # the launcher whose layers the children apply
        self._home = Path(tempfile.mkdtemp(prefix="d2lgrade-warm-"))
        grader_end, parent_end = socket.socketpair()
        log = open(self._home / "parent.log", "ab")
        try:
            self._process = subprocess.Popen(
                [sys.executable, str(FORKSERVER), str(parent_end.fileno()), str(self._sandbox)], pass_fds=[parent_end.fileno()],
                env=parent_environment(self._home), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, cwd=str(self._home))
        finally:
            parent_end.close()
            log.close()
        self._control, self._ready = grader_end, False
        self.pid = self._process.pid
        try:
            frames.send(self._control, {"agent": AGENT_SOURCE})     # the parent runs it before its first fork
        except OSError:
            pass                # the parent is already gone: waiting for its hello says so, and fork retries
        self.starts += 1

    def _wait_ready(self) -> None:
        if self._ready:
            return
        self._control.settimeout(STARTUP_SECONDS * 2)
        hello, _ = frames.receive(self._control)
        if hello.get("threads") != 1 or hello.get("cuda"):
            raise OSError(f"the parent is not safe to fork (threads {hello.get('threads')}, "
                          f"CUDA initialised: {hello.get('cuda')})")
        self._ready = True

    def _stop(self) -> None:
        process, self._process = self._process, None
        if self._control is not None:
            self._control.close()
            self._control = None
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None
        self._ready = False


def parent_environment(home: Path) -> dict:
    """What the parent starts with: what torch reads at import (one code path, one thread) must be
    set before it imports anything; each child gets the kernel engine's environment on top."""
    keep = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "VIRTUAL_ENV", "CONDA_PREFIX",
            "LD_LIBRARY_PATH", "CUDA_HOME", "CUDA_PATH")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(HOME=str(home), TMPDIR=str(home), PYTHONHASHSEED="0", MPLBACKEND="Agg",
               MPLCONFIGDIR=str(home / ".matplotlib"), IPYTHONDIR=str(home / ".ipython"),
               PYTHONUSERBASE=site.getuserbase(), PYTHONDONTWRITEBYTECODE="1")
    env.update(numerics.pinned_environment())
    return env


class Timings:
    """What the benchmark (bench/executors.py) reads: time inside children and in forks, peak memory.
    Numbers a child reports are its own say-so: fine for a benchmark, never used for a verdict."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.forks, self.fork_seconds, self.child_seconds, self.child_peak_kb = 0, 0.0, 0.0, 0

    def add(self, forks=0, fork_seconds=0.0, child_seconds=0.0, child_peak_kb=0) -> None:
        with self._lock:
            self.forks += forks
            self.fork_seconds += fork_seconds
            self.child_seconds += child_seconds
            self.child_peak_kb = max(self.child_peak_kb, child_peak_kb)


TIMINGS = Timings()


class ChildConnection:
    """The grader's end of one child: the part of nbclient's NotebookClient that KernelRuntime uses
    (`timeout`, `execute_cell`, `output_dropped`), raising nbclient's own exceptions, so the kernel
    engine's handling of timeouts and deaths applies unchanged."""

    def __init__(self, pid: int, sock: socket.socket, output_cap: int):
        self.pid, self.sock = pid, sock
        self.timeout = STARTUP_SECONDS
        self.output_cap, self.output_dropped = output_cap, False
        self._sent = 0

    def hello(self) -> dict:
        return self._reply(0, STARTUP_SECONDS)

    def execute_cell(self, cell, cell_index, store_history=False):
        self._sent += 1
        try:
            frames.send(self.sock, {"id": self._sent, "source": cell.source})
        except OSError:
            raise DeadKernelError("the runtime is gone") from None
        reply = self._reply(self._sent, self.timeout)
        try:
            TIMINGS.add(child_seconds=float(reply.get("seconds") or 0), child_peak_kb=int(reply.get("peak_kb") or 0))
        except (TypeError, ValueError):
            pass
        if int(reply.get("output") or 0) > self.output_cap:
            self.output_dropped = True
        cell.outputs = []
        if reply.get("status") == "error":
            cell.outputs = [{"output_type": "error", "ename": str(reply.get("ename", "")),
                             "evalue": str(reply.get("evalue", "")),
                             "traceback": [str(line) for line in reply.get("traceback") or []]}]
            _cap_error(cell.outputs[0])
        return cell

    def interrupt(self) -> None:
        """SIGINT to the runtime's process group, as jupyter_client interrupts a kernel: the launcher
        and the namespace's init ignore it, the cell gets a KeyboardInterrupt."""
        try:
            os.killpg(self.pid, signal.SIGINT)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.sock.close()

    def _reply(self, wanted: int, timeout: float) -> dict:
        """The reply to message `wanted`; late replies to interrupted cells are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CellTimeoutError(f"no reply within {timeout:g} s")
            try:
                readable, _, _ = select.select([self.sock], [], [], min(POLL_SECONDS, left))
            except (OSError, ValueError):
                raise DeadKernelError("the runtime is gone") from None
            if not readable:
                if _gone(self.pid):
                    raise DeadKernelError("the runtime exited")
                continue
            try:
                self.sock.settimeout(max(1.0, left))
                reply, _ = frames.receive(self.sock)
            except (EOFError, OSError, frames.FrameError):
                raise DeadKernelError("the runtime exited or sent something unreadable") from None
            if reply.get("id") == wanted:
                return reply


def _cap_error(content: dict) -> None:
    from d2lgrade.run.kernel import CappedClient
    CappedClient._cap_error(content, CappedClient.error_cap)


def _gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for the parent to reap it counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


class WarmRuntime(KernelRuntime):
    def __init__(self, submission: Submission, options: RuntimeOptions, parent: WarmParent):
        self._parent = parent
        super().__init__(submission, options)

    def _boot(self) -> None:
        work = self.scratch / isolation.WORK
        (work / ".ipython").mkdir(parents=True, exist_ok=True)
        request = {"config": self._sandbox_config(), "env": self._environment(),
                   "setup": {"device": self.options.device, "cell_seconds": self.limits.cell_seconds,
                             "data_dir": self._data_dir}}   # the staged training files only, never --data-dir itself
        started = time.monotonic()
        pid, sock = self._parent.fork(request)
        self.client = ChildConnection(pid, sock, self.limits.output_bytes)
        self._kernel_pid = pid
        try:
            hello = self.client.hello()
        except (CellTimeoutError, DeadKernelError) as exc:
            raise RuntimeError(f"the student runtime could not start: {exc}") from None
        if hello.get("status") != "ok":
            raise RuntimeError(f"the student runtime could not start: {hello.get('ename')}: {hello.get('evalue')}")
        TIMINGS.add(forks=1, fork_seconds=time.monotonic() - started)
        sandbox = self._read_sandbox_status()
        if not (sandbox.get("landlock") or sandbox.get("read_only")) or sandbox.get("capabilities") != "none":
            # This child could write files the parent imports later (with a capability left, it could
            # remount them writable): do not fork from it again.
            self._parent.retire()

    def _recover_from_timeout(self) -> None:
        """Interrupt; if the child does not answer a trivial cell soon after, fork a fresh one."""
        self.client.interrupt()
        import nbformat
        probe = nbformat.v4.new_code_cell("pass")
        self.client.timeout = 5
        try:
            self.client.execute_cell(probe, 0)
        except (CellTimeoutError, DeadKernelError):
            self._restart()

    def _kill(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        namespace = sandbox_status.user_namespace(client.pid)
        if namespace == sandbox_status.user_namespace(os.getpid()):
            namespace = None
        client.kill()
        self._sweep(namespace)


class WarmExecutor(Executor):
    name = "warm"

    def __init__(self):
        self.parent = WarmParent()

    def start(self, submission: Submission, options: RuntimeOptions) -> WarmRuntime:
        return WarmRuntime(submission, options, self.parent)


_SHARED: WarmExecutor | None = None
_SHARED_LOCK = threading.Lock()


def shared_executor() -> WarmExecutor:
    """The process-wide warm engine; its parent starts now, in the background, on the first call."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = WarmExecutor()
            atexit.register(_SHARED.parent.close)
        _SHARED.parent.start()
        return _SHARED


def available() -> str:
    """Why the warm engine cannot run here ("" when it can): it needs fork and descriptor passing."""
    if not sys.platform.startswith("linux"):
        return f"the warm engine needs Linux (this is {sys.platform})"
    if not hasattr(socket, "send_fds"):
        return "the warm engine needs socket.send_fds (Python 3.9 or later)"
    return ""
