"""The grader's side of the student runtime: code that runs INSIDE the untrusted process.

It is sent to the runtime as source text and executed there, so it must import nothing from
d2lgrade. It answers requests written to a scratch file by the grader: look up a name, call a
function on the grader's inputs, or run a grader-written probe. Whatever it writes back is
treated as untrusted data by the grader (student code can patch anything in this process),
which is why the values are reduced to plain containers and tensors here, and validated again
on the other side.

Its `setup` also makes the runtime serve datasets offline (offline_datasets.py). The runtime cannot
import either file: agent_source.py sends both as one source text, executed as `_d2lgrade_agent`.
"""
import hashlib
import os
import random
import sys
import traceback
import types

import torch

if __package__:     # the grader's import; in the runtime both files are one module (agent_source.py)
    from .offline_datasets import install_data_patch

_CONFIG = {"device": "cpu", "data_dir": None}
SETUP_SEED = 0          # the seed before the first student cell; each call then reseeds with its own
_PROBE_MODULES = {}
_PROBE_FILES = set()     # the neutral filenames the grader's probe modules were compiled under
PLAIN = (int, float, bool, str, complex, type(None))


def setup(config):
    """Make runs reproducible and GPU numerics strict before any student code runs."""
    _CONFIG.update(config)
    os.environ.setdefault("MPLBACKEND", "Agg")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    pin_numerics()
    reseed(SETUP_SEED)
    install_data_patch(_CONFIG.get("data_dir"))
    limit_cells(_CONFIG.get("cell_seconds"))


class CellTimeout(BaseException):
    """Raised in a cell that used more CPU time than a cell may (a BaseException: `except Exception` can't eat it)."""


def limit_cells(seconds):
    """Limit every cell the shell runs from now on to `seconds` of CPU time, so that a cell's verdict does not
    depend on how loaded the machine is; the grader's wall-clock limit, several times longer, ends a cell that
    waits instead of computing. A request's call re-arms the timer with its own limit (outcome_of)."""
    import signal
    from IPython import get_ipython
    shell = get_ipython()
    if shell is None or not seconds:
        return

    def on_limit(signum, frame):
        raise CellTimeout("ran past the %g s limit" % seconds)

    def start(*_):
        signal.signal(signal.SIGPROF, on_limit)
        signal.setitimer(signal.ITIMER_PROF, seconds)

    def stop(*_):
        signal.setitimer(signal.ITIMER_PROF, 0)

    shell.events.register("pre_run_cell", start)
    shell.events.register("post_run_cell", stop)


def pin_numerics():
    """The in-process half of the pinned CPU path (d2lgrade/numerics/ sets the environment half).

    oneDNN picks its convolution kernels and blocking from the cache sizes and core count of the machine, and
    NNPACK (which torch takes for no-grad convolutions once oneDNN is off) from the same: both would make the
    order of a sum depend on the CPU model. Without them, convolutions are ATen's im2col and a matrix product in
    MKL, whose COMPATIBLE branch runs one code path on every x86-64 vendor. Called before any student code."""
    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)
    torch.set_num_threads(1)


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
    return ("site-packages" in filename or "/lib/python" in filename or filename == "<d2lgrade agent>"
            or filename in _PROBE_FILES)      # the grader's probe modules, run as source text


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


BOOK_PACKAGE = "d2l"


def _book_folder():
    """The folder of the book's package, found before any student code runs (code objects keep the file
    they were compiled from, whatever globals a copied function is given)."""
    try:
        from importlib.machinery import PathFinder
        spec = PathFinder.find_spec(BOOK_PACKAGE)
        return os.path.dirname(spec.origin) + os.sep if spec and spec.origin else None
    except Exception:
        return None


_BOOK_FOLDER = _book_folder()


def book_routine(code, module_name):
    """"d2l.torch.corr2d" for a function of the book's package, else None."""
    name = getattr(code, "co_qualname", code.co_name)
    filename = code.co_filename or ""
    if _BOOK_FOLDER and filename.startswith(_BOOK_FOLDER):
        module = filename[len(_BOOK_FOLDER):].rsplit(".", 1)[0].replace(os.sep, ".")
        return "%s.%s.%s" % (BOOK_PACKAGE, module, name) if module != "__init__" else "%s.%s" % (BOOK_PACKAGE, name)
    if module_name == BOOK_PACKAGE or str(module_name).startswith(BOOK_PACKAGE + "."):
        return "%s.%s" % (module_name, name)
    return None


class OpRecorder:
    """Records the ATen operators a call runs, so the grader can see when an exercise that asks
    for an implementation hands the work to the library operator itself (best effort: it sees
    every tensor operation, however the function was imported or aliased).

    It also records the book's routines (package d2l) on the Python stack when an operator runs:
    d2l.corr2d computes a cross-correlation from elementary operators, so only the stack shows that
    the book's helper, not the student's code, did the work."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        ops = self.ops = set()
        book = self.book = set()
        routines = {}           # code object -> the book routine it is, or None (frames repeat: look once)
        recorder = self
        self.marker = torch.zeros(1)
        self.marker_seen = False

        def note_book_frames():
            frame = sys._getframe(2)
            while frame is not None:
                code = frame.f_code
                if code not in routines:
                    routines[code] = book_routine(code, frame.f_globals.get("__name__"))
                if routines[code]:
                    book.add(routines[code])
                frame = frame.f_back

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if args and args[0] is recorder.marker:
                    recorder.marker_seen = True
                    return func(*args, **(kwargs or {}))
                name = func.overloadpacket.__name__
                if name == "convolution" and len(args) > 6 and args[6]:
                    name = "convolution_transposed"
                ops.add(name)
                note_book_frames()
                return func(*args, **(kwargs or {}))

        self.mode = Mode()

    def mark(self):
        """Run one operation on the marker inside the mode: the grader reads a trace without the
        marker as switched off by the student's code (the grader also scans the source)."""
        self.marker.add_(0)


class CallTimeout(BaseException):
    """Raised inside a student call that runs past its limit: SIGPROF for its CPU time, SIGALRM for its wall time."""


def _on_cpu_limit(signum, frame):
    raise CallTimeout("cpu")


def _on_wall_limit(signum, frame):
    raise CallTimeout("wall")


def outcome_of(fn, args, kwargs, seed, trace=False, seconds=None, wall_seconds=None):
    """One call, timed in this process by the CPU time it uses (`seconds`): a call's verdict must not depend on
    how loaded the machine is, and a busy machine stretches the wall clock, not the work. A call that waits
    (sleeps, blocks) uses no CPU, so `wall_seconds`, a generous wall-clock limit, ends it. A student that
    swallows either signal still meets the grader's own deadline for the request, which ends the runtime."""
    import signal
    import threading
    reseed(seed)
    recorder = OpRecorder() if trace else None
    timed = bool(seconds) and threading.current_thread() is threading.main_thread()
    if timed:
        wall_seconds = wall_seconds or seconds
        previous = signal.signal(signal.SIGPROF, _on_cpu_limit), signal.signal(signal.SIGALRM, _on_wall_limit)
        signal.setitimer(signal.ITIMER_PROF, seconds)
        signal.setitimer(signal.ITIMER_REAL, wall_seconds)
    try:
        if recorder:
            with recorder.mode:
                value = fn(*to_device(args), **to_device(kwargs))
                recorder.mark()
        else:
            value = fn(*to_device(args), **to_device(kwargs))
    except NotImplementedError as exc:
        if raised_by_student(exc):   # the starter's placeholder, not a library's "not supported"
            return {"ok": False, "error": "NotImplementedError", "message": str(exc), "not_implemented": True}
        return {"ok": False, "error": "NotImplementedError", "message": first_line(exc),
                "traceback": student_traceback(exc)}
    except CallTimeout as exc:
        message = "ran past the %g s limit" % seconds
        if exc.args and exc.args[0] == "wall":
            message += " (still unfinished after %g s of waiting, sleeping or blocking)" % wall_seconds
        return {"ok": False, "timeout": True, "error": "Timeout", "message": message}
    except MemoryError:
        return {"ok": False, "error": "MemoryError", "message": "ran out of memory"}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from student code are verdicts too
        return {"ok": False, "error": type(exc).__name__, "message": first_line(exc),
                "traceback": student_traceback(exc)}
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGPROF, previous[0])
            signal.signal(signal.SIGALRM, previous[1])
    ops = sorted(recorder.ops) if recorder else []
    book = sorted(recorder.book) if recorder else []
    traced = bool(recorder and recorder.marker_seen)
    if isinstance(value, types.GeneratorType):
        return {"ok": True, "value": {"__unsupported__": "generator"}, "ops": ops, "book": book, "traced": traced}
    return {"ok": True, "value": plain(value), "ops": ops, "book": book, "traced": traced}


def neutral_filename(source):
    """A filename like the ones IPython gives the student's own cells: code that searches the stack for the
    grader's modules finds nothing to tell a probe from a cell (the grader compares what it measures anyway)."""
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]
    return "<ipython-input-%d-%s>" % (2 + int(digest[:4], 16) % 40, digest)


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
                                          request.get("call_seconds"), request.get("wall_seconds")))
                if not results[-1]["ok"]:
                    break
            response = {"ok": True, "results": results}
    elif op == "probe":
        module = _PROBE_MODULES.get(request["module"])
        if module is None:
            module, filename = types.ModuleType("__main__"), neutral_filename(request["source"])
            _PROBE_FILES.add(filename)
            exec(compile(request["source"], filename, "exec"), module.__dict__)
            _PROBE_MODULES[request["module"]] = module
        fn = getattr(module, request["func"])
        response = outcome_of(lambda *a, **k: fn(ns, *a, **k), request["args"], request["kwargs"], request["seed"],
                              seconds=request.get("call_seconds"), wall_seconds=request.get("wall_seconds"))
    else:
        response = {"ok": False, "error": "ValueError", "message": "unknown request " + repr(op)}
    torch.save(response, response_path)
