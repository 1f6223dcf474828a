"""probe: what a check uses to ask the student runtime for values, calls and measurements.

Replies come back as plain data; failures become verdict exceptions (not attempted, error,
timeout, memory) with a message that names the student's function and the call that failed.
"""
from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType

import torch

from d2lgrade.core.checks import Check, NotAttempted, StudentError, StudentMemory, StudentTimeout, Verdict, fail
from d2lgrade.compare.implementation_rules import Rules
from d2lgrade.compare.source_scan import scan_source
from d2lgrade.compare.trace_judge import judge_trace
from d2lgrade.load import Submission
from d2lgrade.load.syntax import belongs, compile_failed, defines, never_ran, syntax_problems
from d2lgrade.run import wire
from d2lgrade.run.executor import BROKEN, DIED, TIMEOUT, Runtime, RuntimeOptions
from d2lgrade.run.limits import Limits

NO_SPACE = re.compile(r"No space left on device|\[Errno 28\]|Disk quota exceeded")


def disk_limit(limits) -> str:
    return (f"the runtime may write at most {limits.disk_bytes / 2**20:g} MiB and {limits.disk_files} files "
            "in all; it wrote more than that")


OUT_OF_MEMORY = re.compile(r"out of memory|can't allocate memory|cannot allocate memory|MemoryError", re.I)


class Probe:
    def __init__(self, runtime: Runtime, options: RuntimeOptions, check: Check, submission: Submission | None = None):
        self.runtime = runtime
        self.options = options
        self.check = check
        self.submission = submission if submission is not None else getattr(runtime, "submission", None)
        self.device = options.device
        self.rng = torch.Generator().manual_seed(check.seed)   # the grader's own inputs: reproducible
        self.unverified: list[str] = []     # why "implemented it yourself" could not be verified
        self._calls = 0
        self._scans: dict = {}

    # -- the submitted source, read in the grader's process --------------------------------------
    def sources(self) -> list[tuple[str, str]]:
        """(label, code) of the submission's code cells in the order they ran."""
        cells = self.submission.code_cells if self.submission is not None else []
        runs = getattr(self.runtime, "cell_runs", [])
        dead = {id(p.cell) for p in syntax_problems(cells) if never_ran(p, runs)}
        return [(f"cell {c.index}" if c.index else "", c.source) for c in cells if id(c) not in dead]

    def implemented(self, names: tuple[str, ...], rules: Rules, shown: str | None = None) -> None:
        """Fail when the source reachable from `names` calls a routine that does the exercise's work;
        note (for review, no points) what the grader cannot see through."""
        key = (names, rules)
        if key not in self._scans:
            self._scans[key] = scan_source(self.sources(), names, rules)
        scan = self._scans[key]
        shown = shown or names[0]
        if scan.forbidden:
            fail(f"`{shown}` uses {scan.forbidden[0]}, which does what this exercise asks you to implement "
                 f"yourself ({rules.task}); this earns no points.")
        for finding in scan.unverifiable[:3]:
            self._unverified(f"the source of `{shown}` uses {finding}")

    def traced(self, name: str, outcome: dict, value, rules: Rules) -> None:
        """Judge one call's operator trace (recorded in the runtime) against the exercise's rules."""
        verdict = judge_trace(outcome.get("ops"), bool(outcome.get("traced")), rules,
                              returned_tensor=isinstance(value, torch.Tensor), book=outcome.get("book"))
        if verdict.book:
            fail(f"`{name}` calls the book's {verdict.book[0]}, which does what this exercise asks you to implement "
                 f"yourself ({rules.task}); this earns no points.")
        if verdict.forbidden:
            fail(f"`{name}` runs the operator {verdict.forbidden[0]}, which does what this exercise asks you to "
                 f"implement yourself ({rules.task}); this earns no points.")
        if verdict.unverifiable:
            self._unverified(f"`{name}`: {verdict.unverifiable}")

    def _unverified(self, why: str) -> None:
        if why not in self.unverified:
            self.unverified.append(why)

    # -- values --------------------------------------------------------------------------------
    def value(self, name: str, *, required: bool = True):
        reply = self._request({"op": "get", "names": [name]}, self.options.limits.call_seconds, name)
        item = reply.get(name, {}) if reply.get("ok", True) else reply
        if not item.get("ok"):
            if required:
                self._missing(name)
            return None
        value = wire.unwrap(item["value"])
        if value is None and required:
            raise NotAttempted(f"`{name}` is still None: fill it in.")
        return value

    def text(self, name: str) -> str:
        value = self.value(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            from d2lgrade.compare.tensors import describe
            raise StudentError(f"`{name}` should be a string formula, but it is {describe(value)}.")
        return value

    # -- calls ---------------------------------------------------------------------------------
    def call(self, name: str, *args, **kwargs):
        return self.map(name, [(args, kwargs)])[0]

    def map(self, name: str, calls: list[tuple[tuple, dict]], *, labels: list[str] | None = None,
            implement: Rules | None = None, forbid: dict[str, str] | None = None) -> "Results":
        """Call `name` once per (args, kwargs) in one round trip; the runtime stops at the first failure.

        The values come back in order; a failed call raises its verdict only when the check reaches
        it, so a wrong value returned before it is reported first.

        `implement`: the exercise asks for an implementation of its own; the submitted source and
        each call's operator trace are judged against these rules (see compare/implementation_rules.py).
        `forbid` maps ATen operator names to what they are (e.g. {"convolution": "F.conv2d"})."""
        if implement is not None:
            self.implemented((name,), implement)
        self._calls += 1
        request = {"op": "call", "name": name, "calls": [[list(a), dict(k)] for a, k in calls],
                   "seed": self.check.runtime_seed + self._calls, "trace": bool(forbid or implement),
                   "call_seconds": self.options.limits.call_seconds,
                   "wall_seconds": Limits.call_wall_seconds(self.options.limits.call_seconds)}
        timeout = request["wall_seconds"] * max(1, len(calls)) + 5   # backstop for the agent's own limits
        reply = self._request(request, timeout, name)
        if not reply.get("ok"):
            if reply.get("missing"):
                self._missing(name)
            raise StudentError(f"`{name}` cannot be called: {reply.get('message', 'unknown problem')}.")
        values, failure = [], None
        for i, outcome in enumerate(reply.get("results", [])):
            label = labels[i] if labels else f"{name}(...)"
            if not outcome.get("ok"):
                try:
                    self._raise_for(outcome, name, label)
                except Verdict as verdict:
                    failure = verdict
                break
            used = [what for op, what in (forbid or {}).items() if op in (outcome.get("ops") or [])]
            if used:
                fail(f"`{name}` calls {used[0]}, which is the operation this exercise asks you to "
                     "implement yourself; this earns no points.")
            value = wire.unwrap(outcome.get("value"))
            if implement is not None:
                self.traced(name, outcome, value, implement)
            values.append(value)
        return Results(values, failure, len(calls))

    def run(self, function, *args, timeout: float | None = None, **kwargs):
        """Run a grader-written probe function `function(ns, *args, **kwargs)` inside the runtime.

        `ns` is the student's namespace. The function must live in a module of plain code under
        graders/probes/ (imports at its top, nothing from d2lgrade): that module's source is what
        the runtime executes. Use it for what cannot cross the boundary, such as building the
        student's nn.Module and reporting its layers. Raise LookupError("`Name` is not defined")
        there for a missing contract name."""
        module = inspect.getmodule(function)
        self._calls += 1
        request = {"op": "probe", "module": module.__name__, "source": _source_of(module),
                   "func": function.__name__, "args": list(args), "kwargs": dict(kwargs),
                   "seed": self.check.runtime_seed + self._calls, "call_seconds": timeout or self.options.limits.call_seconds}
        request["wall_seconds"] = Limits.call_wall_seconds(request["call_seconds"])
        reply = self._request(request, request["wall_seconds"] + 5, function.__name__)
        if not reply.get("ok"):
            message = reply.get("message", "")
            if reply.get("error") in ("LookupError", "KeyError", "NameError") and "not defined" in message \
                    and message.count("`") >= 2:
                self._missing(message.split("`")[1])
            self._raise_for(reply, function.__name__, f"the probe {function.__name__}")
        return wire.unwrap(reply.get("value"))

    # -- failures ------------------------------------------------------------------------------
    def _request(self, request: dict, timeout: float, name: str) -> dict:
        reply = self.runtime.request(request, timeout)
        status = reply.get("status")
        if status == TIMEOUT:
            raise StudentTimeout(f"`{name}` did not finish: {reply.get('message')}.")
        if status == DIED:
            if "the memory limit" in str(reply.get("message", "")):
                raise StudentMemory(f"the runtime {reply['message']} while running `{name}`.")
            if "the disk limit" in str(reply.get("message", "")):
                raise StudentError(f"the runtime {reply['message']} while running `{name}`.")
            raise StudentError(f"the runtime exited while running `{name}` (out of memory, or os._exit?).")
        if status == BROKEN:
            raise StudentError(f"the runtime could not report on `{name}`: {reply.get('message')}.")
        return reply

    def _raise_for(self, outcome: dict, name: str, label: str) -> None:
        if outcome.get("timeout"):
            raise StudentTimeout(f"{label} {outcome.get('message', 'ran past its time limit')}.")
        if outcome.get("not_implemented"):
            raise NotAttempted(f"`{name}` still raises NotImplementedError.")
        error = str(outcome.get("error", "Error"))[:100]
        message = str(outcome.get("message", ""))[:300]
        limits = self.options.limits
        if error == "OutOfMemoryError" or re.search(r"CUDA out of memory", message, re.I):
            raise StudentMemory(f"{label} ran out of GPU memory.")
        if error == "MemoryError" or OUT_OF_MEMORY.search(message):
            raise StudentMemory(f"{label} ran out of memory (limit {limits.memory_bytes / 2**30:g} GiB).")
        # The runtime's other operating-system limits show up as ordinary errors: name the limit.
        why = ""
        if error == "BlockingIOError" or re.search(r"Resource temporarily unavailable|can't start new thread", message):
            why = f" (the runtime may run at most {limits.max_processes} processes and threads)"
        elif re.search(r"File too large|\[Errno 27\]", message):
            why = f" (the runtime may write files of at most {limits.file_bytes / 2**20:g} MiB)"
        elif NO_SPACE.search(message):
            why = f" ({disk_limit(limits)})"
        elif re.search(r"Network is unreachable|Name or service not known|name resolution", message):
            why = " (the runtime has no network)"
        elif error == "PermissionError":
            why = " (the runtime has no network and may only use the files in its working directory)"
        raise StudentError(f"{label} raised {error}: {message}".rstrip(": ") + why + ".",
                           detail=outcome.get("traceback", ""))

    def _missing(self, name: str) -> None:
        """An undefined name: not attempted, unless a cell of this exercise hung or crashed."""
        for run in getattr(self.runtime, "cell_runs", []):
            if run.status in ("timeout", "died") and run.cell.exercise and \
                    (run.cell.exercise == self.check.exercise or self.check.exercise.startswith(run.cell.exercise)):
                verdict = StudentTimeout if run.status == "timeout" else StudentError
                raise verdict(f"`{name}` was never defined: cell {run.cell.index} {run.error}.")
        cells = self.submission.code_cells if self.submission is not None else []
        for problem in syntax_problems(cells):
            if belongs(problem.cell, self.check.exercise) or defines(problem.cell, name):
                raise StudentError(f"{problem.sentence()}, so `{name}` was never defined.")
        for run in getattr(self.runtime, "cell_runs", []):
            # What the grader's parse cannot see (the body of a `%%time` cell) the runtime reports.
            if compile_failed(run) and (belongs(run.cell, self.check.exercise) or defines(run.cell, name)):
                raise StudentError(f"syntax error in cell {run.cell.index} ({run.error.strip()}), "
                                   f"so `{name}` was never defined.")
        raise NotAttempted(f"`{name}` is not defined.")


class Results(list):
    """The values of a batch of calls, in order. When a call failed, reaching its position (iterating,
    indexing) raises its verdict: a check that compares values in order reports a wrong value
    returned before a crash as the wrong value, and the crash otherwise."""

    def __init__(self, values: list, failure: Verdict | None, expected: int):
        super().__init__(values)
        self.failure = failure
        self.expected = expected

    def __iter__(self):
        yield from super().__iter__()
        if self.failure is not None:
            raise self.failure
        if super().__len__() < self.expected:
            raise StudentError("the runtime returned fewer results than calls.")

    def __getitem__(self, index):
        if isinstance(index, int) and self.failure is not None and index >= super().__len__():
            raise self.failure
        return super().__getitem__(index)

    def __len__(self):
        return self.expected


_SOURCES: dict[str, str] = {}


def _source_of(module: ModuleType) -> str:
    """The probe module's source, after the sources of the probe modules it names in PROBE_USES (plain
    code too): the runtime cannot import graders/, so what a probe shares comes in the same text."""
    if module.__name__ not in _SOURCES:
        shared = [Path(importlib.import_module(name).__file__).read_text() for name in getattr(module, "PROBE_USES", ())]
        _SOURCES[module.__name__] = "\n\n".join(shared + [Path(module.__file__).read_text()])
    return _SOURCES[module.__name__]
