"""The Jupyter-kernel engine: full fidelity (magics, display, IPython) via nbclient.

The kernel is an ordinary ipykernel started under `sandbox.py` (limits, own process group) in a
scratch directory. Student cells run one by one with a timeout each; a cell that hangs is
interrupted, and if the kernel does not come back it is restarted and the good cells replayed,
so one bad cell costs one exercise, not the submission.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import site
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.utils import run_sync
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from d2lgrade.load import Submission
from d2lgrade import data, numerics
from d2lgrade.run import isolation, sandbox_status, wire
from d2lgrade.run.agent_source import agent_source
from d2lgrade.run.executor import BROKEN, DIED, TIMEOUT, CellRun, Executor, Runtime, RuntimeOptions

AGENT_SOURCE = agent_source()
SANDBOX = Path(__file__).with_name("sandbox.py")
KERNEL_NAME = "d2lgrade-runtime"


class _QuietTimeouts(logging.Filter):
    """After a timeout nbclient leaves its output-polling task to fail with queue.Empty; that is
    expected here and must not be printed at the student."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "_async_poll_output_msg" not in record.getMessage()


logging.getLogger("asyncio").addFilter(_QuietTimeouts())
_NBCLIENT_LOG = logging.getLogger("d2lgrade.nbclient")
_NBCLIENT_LOG.setLevel(logging.CRITICAL)
STARTUP_SECONDS = 60


class KernelExecutor(Executor):
    name = "kernel"

    def start(self, submission: Submission, options: RuntimeOptions) -> "KernelRuntime":
        return KernelRuntime(submission, options)


class CappedClient(NotebookClient):
    """nbclient, keeping only the first `output_cap` bytes of what the student prints.

    Everything that reaches the grader from the kernel's IOPub channel is untrusted: stream text and
    rich outputs past the cap are dropped (counted, not stored), an error's name, value and
    traceback are cut to a few KiB each (an exception message can be 100 MB too), and comm
    (widget) messages are ignored, since nbclient would otherwise keep their state in memory."""

    output_cap = 1 * 2**20
    output_seen = 0
    output_dropped = False
    error_cap = 8 * 2**10          # characters kept of an error's value and of its traceback

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg["msg_type"] == "error":
            self._cap_error(content, self.error_cap)
        size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in (content.get("data") or {}).values())
        self.output_seen += size
        if self.output_seen > self.output_cap and msg["msg_type"] != "error":
            self.output_dropped = True
            return None
        return super().output(outs, msg, display_id, cell_index)

    def handle_comm_msg(self, outs, msg, cell_index):
        return None

    @staticmethod
    def _cap_error(content: dict, cap: int) -> None:
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

class KernelRuntime(Runtime):
    def __init__(self, submission: Submission, options: RuntimeOptions):
        self.submission = submission
        self.options = options
        self.limits = options.limits
        self.notes: list[str] = []
        # The runtime reads only the training files of --data-dir, staged in a folder of their own: the
        # held-out files the grader evaluates on stay out of its reach (d2lgrade/data.py).
        self._data_dir = data.runtime_data_dir(options.data_dir)
        self.private = Path(tempfile.mkdtemp(prefix="d2lgrade-grader-"))   # kernelspec; not the student's
        self.scratch = Path(tempfile.mkdtemp(prefix="d2lgrade-run-"))        # the student's working dir
        self.exchange = self.scratch / ".d2lgrade"
        self.exchange.mkdir()
        self.deadline = time.monotonic() + self.limits.total_seconds
        self.client: CappedClient | None = None
        self._requests = 0
        self._bad_cells: set[int] = set()     # timed out or killed the kernel: never replayed
        self._good_sources: list[str] = []    # run again, in order, after a restart
        self._kernel_pid: int | None = None
        self.disk_exceeded = False
        self._stop_watch = threading.Event()
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
        if self.client and self.client.output_dropped:
            self.notes.append(f"Output beyond {self.limits.output_bytes // 2**10} KiB was dropped.")

    # -- kernel life cycle -------------------------------------------------------------------
    def _kernelspec(self) -> KernelSpecManager:
        config = self._sandbox_config()
        spec_dir = self.private / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, str(SANDBOX), json.dumps(config), "--",
                sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec_dir / "kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": "d2l-grade student runtime", "language": "python"}))
        return KernelSpecManager(kernel_dirs=[str(self.private / "kernels")])

    def _sandbox_config(self) -> dict:
        """What sandbox.py applies around the runtime (see its docstring for the keys)."""
        # The student's working directory is a folder of its own inside the scratch dir, beside the
        # request/response folder: Landlock lets the kernel empty either, but remove neither.
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

    def _environment(self) -> dict:
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

    def _boot(self) -> None:
        # nbclient stores each executed cell back at its index: one slot, reused for every cell.
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
        client = CappedClient(nb, timeout=self.limits.cell_seconds, allow_errors=True,
                              interrupt_on_timeout=False, startup_timeout=STARTUP_SECONDS,
                              shutdown_kernel="immediate", kernel_name=KERNEL_NAME,
                              resources={"metadata": {"path": str(self.scratch)}})
        client.output_cap = self.limits.output_bytes
        client.log = _NBCLIENT_LOG
        # Unix sockets instead of TCP: nothing listens on the network, and they work from a
        # kernel in a private network namespace.
        client.km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=self._kernelspec(),
                                       transport="ipc", ip=str(self.private / "ipc"))
        self._log = open(self.private / "kernel.log", "ab")
        client.start_new_kernel(env=self._environment(), stdout=self._log, stderr=self._log)
        client.start_new_kernel_client()
        self.client = client
        process = getattr(getattr(client.km, "provisioner", None), "process", None)
        self._kernel_pid = getattr(process, "pid", None)
        config = {"device": self.options.device, "seed": self.options.seed, "data_dir": self._data_dir}
        setup = ("import sys as _s, types as _t\n_m = _t.ModuleType('_d2lgrade_agent')\n"
                 f"exec(compile({AGENT_SOURCE!r}, '<d2lgrade agent>', 'exec'), _m.__dict__)\n"
                 f"_s.modules['_d2lgrade_agent'] = _m\n_m.setup({config!r})\ndel _s, _t, _m\n")
        status, error, _ = self._execute(setup, STARTUP_SECONDS)
        if status != "ok":
            raise RuntimeError(f"the student runtime could not start: {error}")
        self._read_sandbox_status()

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
        if not getattr(self, "_memory_group", None):
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
            self._execute(source, self._remaining(self.limits.cell_seconds))

    def _kill(self) -> None:
        client, self.client = self.client, None
        if client is None or client.km is None:
            return
        pid = getattr(getattr(client.km, "provisioner", None), "process", None)
        pid = getattr(pid, "pid", None)
        namespace = sandbox_status.user_namespace(pid) if pid else None
        if namespace == sandbox_status.user_namespace(os.getpid()):
            namespace = None                         # no private namespace: nothing to tell apart
        if pid:
            try:  # the whole process group: whatever the student spawned goes too
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            client._cleanup_kernel()
        except Exception:
            pass
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
        for folder in (self.scratch / isolation.WORK, self.exchange):
            for entry in list(folder.iterdir()) if folder.is_dir() else []:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        (self.scratch / isolation.WORK / ".tmp").mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self._stop_watch.set()
        self._kill()
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
        shutil.rmtree(self.private, ignore_errors=True)

    # -- running code ------------------------------------------------------------------------
    def _remaining(self, wanted: float) -> float:
        return max(0.5, min(wanted, self.deadline - time.monotonic()))

    def _execute(self, source: str, timeout: float) -> tuple[str, str, str]:
        """Run source; returns (status, one-line error, traceback text)."""
        if self.client is None:
            return DIED, "the runtime is not running", ""
        if time.monotonic() > self.deadline:
            return TIMEOUT, f"the overall limit of {self.limits.total_seconds:g} s was used up", ""
        cell = nbformat.v4.new_code_cell(source)
        self.client.timeout = max(1, int(round(timeout)))
        try:
            self.client.execute_cell(cell, 0, store_history=False)
        except CellTimeoutError:
            self._recover_from_timeout()
            return TIMEOUT, f"ran past the {timeout:g} s limit", ""
        except DeadKernelError:
            if self._over_memory():
                self._restart_after_death()
                return DIED, f"went past the memory limit ({self._memory_limit()}) and was stopped", ""
            if self.disk_exceeded:
                self.disk_exceeded = False
                self._empty_scratch()
                self._restart_after_death()
                return DIED, (f"wrote more than {self.limits.disk_bytes / 2**20:g} MiB or "
                              f"{self.limits.disk_files} files (the disk limit) and was stopped"), ""
            self._restart_after_death()
            return DIED, "the runtime exited (it may have run out of memory or called os._exit)", ""
        for out in cell.outputs:
            if out.get("output_type") == "error":
                tb = "\n".join(out.get("traceback", []))
                return "error", f"{out.get('ename')}: {out.get('evalue')}".strip(": "), _strip_ansi(tb)
        return "ok", "", ""

    def _recover_from_timeout(self) -> None:
        """Interrupt; if the kernel does not answer a trivial cell soon after, restart it."""
        try:
            run_sync(self.client.km.interrupt_kernel)()
        except Exception:
            pass
        probe = nbformat.v4.new_code_cell("pass")
        self.client.timeout = 5
        try:
            self.client.execute_cell(probe, 0, store_history=False)
        except (CellTimeoutError, DeadKernelError, Exception):
            self._restart()

    def _restart_after_death(self) -> None:
        self._restart()

    def _run_student_cell(self, cell) -> CellRun:
        status, error, tb = self._execute(cell.source, self._remaining(self.limits.cell_seconds))
        self._over_memory()          # a process the cell started was stopped: a note says so
        if status == "ok":
            self._good_sources.append(cell.source)
        elif status in (TIMEOUT, DIED):
            self._bad_cells.add(cell.index)
        elif status == "error":
            self._good_sources.append(cell.source)   # ran partly; its definitions before the error count
        return CellRun(cell=cell, status=status, error=error, traceback=tb)

    def run_source(self, source: str) -> CellRun:
        from d2lgrade.load import Cell
        cell = Cell(index=0, kind="code", source=source)
        return self._run_student_cell(cell)

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


def _strip_ansi(text: str) -> str:
    import re
    return re.sub(r"\x1b\[[0-9;]*m", "", text)

