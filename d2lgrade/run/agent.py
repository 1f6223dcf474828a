"""The grader's side of the student runtime: code that runs INSIDE the untrusted process.

It is sent to the runtime as source text and executed there, so it must import nothing from
d2lgrade. It answers requests written to a scratch file by the grader: look up a name, call a
function on the grader's inputs, or run a grader-written probe. Whatever it writes back is
treated as untrusted data by the grader (student code can patch anything in this process),
which is why the values are reduced to plain containers and tensors here, and validated again
on the other side.
"""
import os
import random
import sys
import traceback
import types

import torch

_CONFIG = {"device": "cpu", "seed": 0}
_PROBE_MODULES = {}
PLAIN = (int, float, bool, str, complex, type(None))


def setup(config):
    """Make runs reproducible and GPU numerics strict before any student code runs."""
    _CONFIG.update(config)
    os.environ.setdefault("MPLBACKEND", "Agg")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    reseed(_CONFIG["seed"])


def reseed(seed):
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy
        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass


def to_device(value):
    if type(value) is torch.Tensor:
        return value.to(_CONFIG["device"])
    if isinstance(value, list):
        return [to_device(v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_device(v) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v) for k, v in value.items()}
    return value


def plain(value, depth=0):
    """Reduce a result to what the grader accepts; describe anything else instead of sending it."""
    kind = type(value)
    if depth > 20:
        return {"__unsupported__": "a structure nested more than 20 levels deep"}
    if kind is torch.Tensor or kind is torch.nn.Parameter:
        return {"__tensor__": value.detach().to("cpu").clone(), "device": str(value.device),
                "requires_grad": bool(value.requires_grad)}
    if kind in PLAIN:
        return value
    if kind in (list, tuple, torch.Size):
        return {"__seq__": "list" if kind is list else "tuple", "items": [plain(v, depth + 1) for v in value]}
    if kind is dict:
        return {"__dict__": [[plain(k, depth + 1), plain(v, depth + 1)] for k, v in value.items()]}
    try:
        import numpy
        if isinstance(value, numpy.ndarray) and type(value) is numpy.ndarray:
            return {"__numpy__": torch.from_numpy(value.copy()), "dtype": str(value.dtype)}
        if isinstance(value, numpy.generic) and type(value).__module__ == "numpy":
            return {"__numpy_scalar__": value.item(), "dtype": str(value.dtype)}
    except ImportError:
        pass
    name = kind.__module__ + "." + kind.__qualname__ if hasattr(kind, "__qualname__") else str(kind)
    return {"__unsupported__": name}


def student_traceback(exc):
    """Frames of the student's own code, then the error line: library internals say little."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if not is_library(f.filename)]
    lines = []
    for f in own[-6:]:
        where = f.filename
        if "ipykernel_" in where or where.startswith("<"):
            where = cell_name(where)
        lines.append(f'  {where}, line {f.lineno}, in {f.name}\n    {f.line or ""}'.rstrip())
    lines.append("".join(traceback.format_exception_only(type(exc), exc)).strip())
    return "\n".join(lines)


def is_library(filename):
    return "site-packages" in filename or "/lib/python" in filename or filename == "<d2lgrade agent>"


def raised_by_student(exc):
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return not is_library(tb.tb_frame.f_code.co_filename)


def cell_name(filename):
    try:
        ip = get_ipython()  # noqa: F821 - defined inside IPython kernels
        number = ip.compile._filename_map.get(filename)
        if number is not None:
            return "[execution %s]" % number
    except Exception:
        pass
    return "student code"


class OpRecorder:
    """Records the ATen operators a call runs, so the grader can see when an exercise that asks
    for an implementation hands the work to the library operator itself (best effort: it sees
    every tensor operation, however the function was imported or aliased)."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        ops = self.ops = set()

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                name = func.overloadpacket.__name__
                if name == "convolution" and len(args) > 6 and args[6]:
                    name = "convolution_transposed"
                ops.add(name)
                return func(*args, **(kwargs or {}))

        self.mode = Mode()


class CallTimeout(BaseException):
    """Raised by SIGALRM inside a student call that runs past its limit."""


def _on_alarm(signum, frame):
    raise CallTimeout()


def outcome_of(fn, args, kwargs, seed, trace=False, seconds=None):
    """One call, timed by an alarm in this process. A student that swallows the alarm still
    meets the grader's own deadline for the whole request, which kills or restarts the kernel."""
    import signal
    import threading
    reseed(seed)
    recorder = OpRecorder() if trace else None
    timed = bool(seconds) and threading.current_thread() is threading.main_thread()
    if timed:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        if recorder:
            with recorder.mode:
                value = fn(*to_device(args), **to_device(kwargs))
        else:
            value = fn(*to_device(args), **to_device(kwargs))
    except NotImplementedError as exc:
        if raised_by_student(exc):   # the starter's placeholder, not a library's "not supported"
            return {"ok": False, "error": "NotImplementedError", "message": str(exc), "not_implemented": True}
        return {"ok": False, "error": "NotImplementedError", "message": first_line(exc),
                "traceback": student_traceback(exc)}
    except CallTimeout:
        return {"ok": False, "timeout": True, "error": "Timeout", "message": "ran past the %g s limit" % seconds}
    except MemoryError:
        return {"ok": False, "error": "MemoryError", "message": "ran out of memory"}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from student code are verdicts too
        return {"ok": False, "error": type(exc).__name__, "message": first_line(exc),
                "traceback": student_traceback(exc)}
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    ops = sorted(recorder.ops) if recorder else []
    if isinstance(value, types.GeneratorType):
        return {"ok": True, "value": {"__unsupported__": "generator"}, "ops": ops}
    return {"ok": True, "value": plain(value), "ops": ops}


def first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def serve(ns, request_path, response_path):
    request = torch.load(request_path, weights_only=True)
    op = request["op"]
    if op == "get":
        names = request["names"]
        response = {name: ({"ok": True, "value": plain(ns[name])} if name in ns else {"ok": False, "missing": True})
                    for name in names}
    elif op == "call":
        fn = ns.get(request["name"])
        if fn is None:
            response = {"ok": False, "missing": True}
        elif not callable(fn):
            response = {"ok": False, "error": "TypeError", "message": "%s is a %s, not a function" % (
                request["name"], type(fn).__name__)}
        else:
            results = []
            for a, k in request["calls"]:   # the grader stops at the first failure, so do we
                results.append(outcome_of(fn, a, k, request["seed"], request.get("trace", False),
                                          request.get("call_seconds")))
                if not results[-1]["ok"]:
                    break
            response = {"ok": True, "results": results}
    elif op == "probe":
        module = _PROBE_MODULES.get(request["module"])
        if module is None:
            module = types.ModuleType("d2lgrade_probe_" + request["module"])
            exec(compile(request["source"], "<probe %s>" % request["module"], "exec"), module.__dict__)
            _PROBE_MODULES[request["module"]] = module
        fn = getattr(module, request["func"])
        response = outcome_of(lambda *a, **k: fn(ns, *a, **k), request["args"], request["kwargs"], request["seed"],
                              seconds=request.get("call_seconds"))
    else:
        response = {"ok": False, "error": "ValueError", "message": "unknown request " + repr(op)}
    torch.save(response, response_path)
