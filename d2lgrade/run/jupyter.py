"""The kernel engine: full fidelity (magics, display, IPython) via nbclient.

Its child is an ordinary ipykernel started under `inside/sandbox.py` in a fresh interpreter, through a
kernelspec of the runtime's own. What it does with the child once started is the shared sandboxed
runtime's (d2lgrade/run/sandboxed.py); this module says only how the child starts and how a cell reaches it.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from d2lgrade.load import Submission
from d2lgrade.run import sandboxed
from d2lgrade.run.agent_source import agent_source
from d2lgrade.run.executor import Executor, RuntimeOptions
from d2lgrade.run.sandboxed import STARTUP_SECONDS, CellTimedOut, RuntimeGone, SandboxedRuntime, cap_error

AGENT_SOURCE = agent_source()
KERNEL_NAME = "d2lgrade-runtime"


class _QuietTimeouts(logging.Filter):
    """After a timeout nbclient leaves its output-polling task to fail with queue.Empty; that is
    expected here and must not be printed at the student."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "_async_poll_output_msg" not in record.getMessage()


logging.getLogger("asyncio").addFilter(_QuietTimeouts())
_NBCLIENT_LOG = logging.getLogger("d2lgrade.nbclient")
_NBCLIENT_LOG.setLevel(logging.CRITICAL)


class KernelExecutor(Executor):
    name = "kernel"

    def start(self, submission: Submission, options: RuntimeOptions) -> SandboxedRuntime:
        return SandboxedRuntime(submission, options, KernelLauncher())


class CappedClient(NotebookClient):
    """nbclient, keeping only the first `output_cap` bytes of what the student prints.

    Everything that reaches the grader from the kernel's IOPub channel is untrusted: stream text and
    rich outputs past the cap are dropped (counted, not stored), an error's name, value and
    traceback are cut to a few KiB each (an exception message can be 100 MB too), and comm
    (widget) messages are ignored, since nbclient would otherwise keep their state in memory."""

    output_cap = 1 * 2**20
    output_seen = 0
    output_dropped = False

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg["msg_type"] == "error":
            cap_error(content)
        size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in (content.get("data") or {}).values())
        self.output_seen += size
        if self.output_seen > self.output_cap and msg["msg_type"] != "error":
            self.output_dropped = True
            return None
        return super().output(outs, msg, display_id, cell_index)

    def handle_comm_msg(self, outs, msg, cell_index):
        return None


class KernelLauncher:
    """Starts an ipykernel under the sandbox launcher, one fresh interpreter per start."""

    def start(self, runtime: SandboxedRuntime) -> "KernelConnection":
        # nbclient stores each executed cell back at its index: one slot, reused for every cell.
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
        client = CappedClient(nb, timeout=runtime.limits.cell_seconds, allow_errors=True,
                              interrupt_on_timeout=False, startup_timeout=STARTUP_SECONDS,
                              shutdown_kernel="immediate", kernel_name=KERNEL_NAME,
                              resources={"metadata": {"path": str(runtime.scratch)}})
        client.output_cap = runtime.limits.output_bytes
        client.log = _NBCLIENT_LOG
        # Unix sockets instead of TCP: nothing listens on the network, and they work from a
        # kernel in a private network namespace.
        client.km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=self._kernelspec(runtime),
                                       transport="ipc", ip=str(runtime.private / "ipc"))
        log = open(runtime.private / "kernel.log", "ab")
        connection = KernelConnection(client, log, runtime.agent_setup())
        try:
            client.start_new_kernel(env=runtime.environment(), stdout=log, stderr=log)
            client.start_new_kernel_client()
            process = getattr(getattr(client.km, "provisioner", None), "process", None)
            connection.pid = getattr(process, "pid", None)
        except BaseException:
            connection.kill()        # the runtime never holds a kernel that did not start: nothing else stops it
            raise
        return connection

    def started(self, sandbox: dict) -> None:
        pass

    @staticmethod
    def _kernelspec(runtime: SandboxedRuntime) -> KernelSpecManager:
        config = runtime.sandbox_config()
        spec_dir = runtime.private / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, str(sandboxed.SANDBOX), json.dumps(config), "--",
                sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec_dir / "kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": "d2l-grade student runtime", "language": "python"}))
        return KernelSpecManager(kernel_dirs=[str(runtime.private / "kernels")])


class KernelConnection:
    """A started kernel, through nbclient; nbclient's exceptions become the runtime's own."""

    def __init__(self, client: CappedClient, log, setup: dict):
        self.client, self._log, self._setup = client, log, setup
        self.pid: int | None = None

    @property
    def output_dropped(self) -> bool:
        return self.client.output_dropped

    def handshake(self) -> str:
        """Load the agent into the kernel as a module of its own and set it up."""
        source = ("import sys as _s, types as _t\n_m = _t.ModuleType('_d2lgrade_agent')\n"
                  f"exec(compile({AGENT_SOURCE!r}, '<d2lgrade agent>', 'exec'), _m.__dict__)\n"
                  f"_s.modules['_d2lgrade_agent'] = _m\n_m.setup({self._setup!r})\ndel _s, _t, _m\n")
        try:
            error = self.run(source, STARTUP_SECONDS)
        except CellTimedOut:
            return f"ran past the {STARTUP_SECONDS:g} s limit"
        except RuntimeGone:
            return "the runtime exited (it may have run out of memory or called os._exit)"
        return "" if error is None else f"{error.get('ename')}: {error.get('evalue')}".strip(": ")

    def run(self, source: str, timeout: int) -> dict | None:
        cell = nbformat.v4.new_code_cell(source)
        self.client.timeout = timeout
        try:
            self.client.execute_cell(cell, 0, store_history=False)
        except CellTimeoutError:
            raise CellTimedOut(f"no reply within {timeout:g} s") from None
        except DeadKernelError:
            raise RuntimeGone("the kernel died") from None
        for out in cell.outputs:
            if out.get("output_type") == "error":
                return {"ename": out.get("ename"), "evalue": out.get("evalue"), "traceback": out.get("traceback", [])}
        return None

    def interrupt(self) -> None:
        try:
            run_sync(self.client.km.interrupt_kernel)()
        except Exception:
            pass

    def kill(self) -> None:
        if self.client.km is not None:
            if self.pid:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.client._cleanup_kernel()
            except Exception:
                pass
        self._log.close()
