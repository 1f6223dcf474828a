"""The live engine: answers the checks' requests from a running notebook kernel's own namespace.

`d2lgrade.check("7.3/3")` in Jupyter, JupyterLab, VS Code or Colab grades the definitions the student
has live in the kernel, without saving or re-running anything. Requests go through the same agent and
the same wire format as the sandboxed engines (torch.save in, torch.load(weights_only=True) and the
type walk out), so every check, seed and message is the one `grade.py` uses.

It is a self-check, not a grade: the student's code shares this process with the grader, so nothing
here is protected from it. No cell is run, no sandbox is applied and the numerics are not pinned;
the instructor's batch grades the saved notebook in the sandbox.
"""
from __future__ import annotations

import tempfile
import types
from pathlib import Path

from d2lgrade.load import Cell, Submission
from d2lgrade.run import wire
from d2lgrade.run.agent_source import agent_source
from d2lgrade.run.executor import BROKEN, CellRun, Executor, Runtime, RuntimeOptions

_AGENT: types.ModuleType | None = None     # one per process: it caches the probe modules it has compiled

SELF_CHECK_NOTE = ("Self-check in this notebook's own kernel: your code shares the process with the checks, "
                   "so this is feedback, not a grade. The course grades your saved notebook in a sandbox.")


def agent() -> types.ModuleType:
    """The runtime agent, loaded as a private module of this process (never run through `setup`, which
    would reseed and reconfigure the student's own session)."""
    global _AGENT
    if _AGENT is None:
        module = types.ModuleType("_d2lgrade_live_agent")
        exec(compile(agent_source(), "<d2lgrade agent>", "exec"), module.__dict__)
        _AGENT = module
    return _AGENT


class LiveExecutor(Executor):
    """An engine bound to one namespace (the kernel's `user_ns`), not to a submission file."""
    name = "live"

    def __init__(self, namespace: dict):
        self.namespace = namespace

    def start(self, submission: Submission, options: RuntimeOptions) -> "LiveRuntime":
        return LiveRuntime(self.namespace, options)


class LiveRuntime(Runtime):
    def __init__(self, namespace: dict, options: RuntimeOptions):
        self.namespace = namespace
        self.options = options
        self.limits = options.limits
        self.cell_runs: list[CellRun] = []
        self.notes = [SELF_CHECK_NOTE]
        self._agent = agent()
        self._agent._CONFIG["device"] = options.device
        self._exchange = tempfile.TemporaryDirectory(prefix="d2lgrade-live-")
        self._requests = 0

    def request(self, request: dict, timeout: float) -> dict:
        # The agent's per-call alarm bounds each student call; `timeout` (the sandbox's backstop for a
        # student who swallows the alarm) has no meaning without a process boundary.
        self._requests += 1
        folder = Path(self._exchange.name)
        req, resp = folder / f"request-{self._requests}.pt", folder / f"response-{self._requests}.pt"
        try:
            wire.write_request(request, req)
            self._agent.serve(self.namespace, str(req), str(resp))
            return wire.read_response(resp)
        except wire.WireError as exc:
            return {"ok": False, "status": BROKEN, "message": str(exc)}
        except Exception as exc:    # student code replaced something the agent needs (torch.save, ...)
            return {"ok": False, "status": BROKEN, "message": f"the notebook could not answer ({type(exc).__name__}: {exc})"}
        finally:
            req.unlink(missing_ok=True)
            resp.unlink(missing_ok=True)

    def run_source(self, source: str) -> CellRun:
        cell = Cell(index=0, kind="code", source=source)
        try:
            exec(compile(source, "<variant>", "exec"), self.namespace)
        except Exception as exc:
            return CellRun(cell=cell, status="error", error=f"{type(exc).__name__}: {exc}")
        return CellRun(cell=cell, status="ok")

    def close(self) -> None:
        self._exchange.cleanup()
