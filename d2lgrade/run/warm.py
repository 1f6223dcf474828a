"""The warm engine: each submission runs in a child forked from a parent that has already imported
torch, d2l, matplotlib and IPython, so a submission no longer pays for an interpreter and its imports.

grader ── parent (inside/forkserver.py: imports once, pinned numerics, one thread, never runs student code)
  │          └─ child per submission: the same sandbox as the kernel engine (sandbox.enter), then
  └──────────── IPython cells (inside/shell.py), answering the grader on a socket of its own

The runtime is the shared sandboxed runtime (d2lgrade/run/sandboxed.py: scratch folders, disk watchdog, the
agent's requests, per-cell timeouts, the replay of good cells after a restart); this module says only how
a child starts (WarmLauncher) and how a cell reaches it (ChildConnection). A restart forks a fresh child
from the parent. The parent is shared by every runtime of the process (thread-safe),
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

from d2lgrade import inside, numerics
from d2lgrade.inside import frames, isolation
from d2lgrade.load import Submission
from d2lgrade.run import sandboxed
from d2lgrade.run.agent_source import agent_source
from d2lgrade.run.executor import Executor, RuntimeOptions
from d2lgrade.run.sandboxed import STARTUP_SECONDS, CellTimedOut, RuntimeGone, SandboxedRuntime, cap_error

FORKSERVER = inside.FOLDER / "forkserver.py"
AGENT_SOURCE = agent_source()
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
                            or self._sandbox != sandboxed.SANDBOX:
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
        self._sandbox = sandboxed.SANDBOX         # the launcher whose layers the children apply
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
    """The grader's end of one forked child: cells go out as frames on its socket, replies come back
    numbered, and a reply that does not come in time or a child that is gone raise the runtime's own
    CellTimedOut and RuntimeGone."""

    def __init__(self, pid: int, sock: socket.socket, output_cap: int):
        self.pid, self.sock = pid, sock
        self.output_cap, self.output_dropped = output_cap, False
        self._sent = 0

    def handshake(self) -> str:
        """The child's first reply says whether its agent is set up (the fork request carried the setup)."""
        try:
            hello = self._reply(0, STARTUP_SECONDS)
        except (CellTimedOut, RuntimeGone) as exc:
            return str(exc)
        if hello.get("status") != "ok":
            return f"{hello.get('ename')}: {hello.get('evalue')}"
        return ""

    def run(self, source: str, timeout: int) -> dict | None:
        self._sent += 1
        try:
            frames.send(self.sock, {"id": self._sent, "source": source})
        except OSError:
            raise RuntimeGone("the runtime is gone") from None
        reply = self._reply(self._sent, timeout)
        try:
            TIMINGS.add(child_seconds=float(reply.get("seconds") or 0), child_peak_kb=int(reply.get("peak_kb") or 0))
        except (TypeError, ValueError):
            pass
        if int(reply.get("output") or 0) > self.output_cap:
            self.output_dropped = True
        if reply.get("status") != "error":
            return None
        error = {"ename": str(reply.get("ename", "")), "evalue": str(reply.get("evalue", "")),
                 "traceback": [str(line) for line in reply.get("traceback") or []]}
        cap_error(error)
        return error

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
                raise CellTimedOut(f"no reply within {timeout:g} s")
            try:
                readable, _, _ = select.select([self.sock], [], [], min(POLL_SECONDS, left))
            except (OSError, ValueError):
                raise RuntimeGone("the runtime is gone") from None
            if not readable:
                if _gone(self.pid):
                    raise RuntimeGone("the runtime exited")
                continue
            try:
                self.sock.settimeout(max(1.0, left))
                reply, _ = frames.receive(self.sock)
            except (EOFError, OSError, frames.FrameError):
                raise RuntimeGone("the runtime exited or sent something unreadable") from None
            if reply.get("id") == wanted:
                return reply


def _gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for the parent to reap it counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


class WarmLauncher:
    """Forks each child from the shared parent, which has imported everything already."""

    def __init__(self, parent: WarmParent):
        self._parent = parent
        self._started = 0.0

    def start(self, runtime: SandboxedRuntime) -> ChildConnection:
        (runtime.scratch / isolation.WORK / ".ipython").mkdir(parents=True, exist_ok=True)
        request = {"config": runtime.sandbox_config(), "env": runtime.environment(), "setup": runtime.agent_setup()}
        self._started = time.monotonic()
        pid, sock = self._parent.fork(request)
        return ChildConnection(pid, sock, runtime.limits.output_bytes)

    def started(self, sandbox: dict) -> None:
        TIMINGS.add(forks=1, fork_seconds=time.monotonic() - self._started)
        if not (sandbox.get("landlock") or sandbox.get("read_only")) or sandbox.get("capabilities") != "none":
            # This child could write files the parent imports later (with a capability left, it could
            # remount them writable): do not fork from it again.
            self._parent.retire()


class WarmExecutor(Executor):
    name = "warm"

    def __init__(self):
        self.parent = WarmParent()

    def start(self, submission: Submission, options: RuntimeOptions) -> SandboxedRuntime:
        return SandboxedRuntime(submission, options, WarmLauncher(self.parent))


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
