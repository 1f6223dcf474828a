"""Inside the warm engine: the notebook shell that runs a submission's cells in the forked child.

Plain code (standard library, IPython, torch), loaded by forkserver.py as a plain module. `prepare`
runs once in the parent: it imports what every submission imports and builds an IPython
InteractiveShell that has never run a line, so each child starts with a pristine copy of it.
`serve` runs in the child, after the sandbox: it answers the grader's cells one by one, reporting
errors the way ipykernel does (so both engines see the same cell outcomes) and counting, not
keeping, what the student prints.
"""
import io
import os
import signal
import sys
import tempfile
import time
import types

import frames

ERROR_CHARS = 8 * 2**10        # kept of an error's value and of its traceback (as the kernel engine)
_STATE = {"shell": None, "agent": None}


def prepare(agent_source):
    """In the parent, once: the imports a book-style notebook starts with, and a fresh shell."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import torch  # noqa: F401
    try:
        from d2l import torch as d2l  # noqa: F401
    except Exception:          # the student's own `import d2l` then fails in the child, as in a kernel
        pass
    try:
        import matplotlib_inline.backend_inline  # noqa: F401  (what `%matplotlib inline` loads)
    except ImportError:
        pass
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class CellShell(InteractiveShell):
        """Records the error of the running cell where ipykernel would publish it."""
        cell_error = None

        def _showtraceback(self, etype, evalue, stb):
            self.cell_error = (_text(getattr(etype, "__name__", etype)), _text(evalue), [_text(s) for s in stb])

        def enable_gui(self, gui=None):
            # `%matplotlib inline` asks for no event loop (as in ipykernel); a GUI loop needs a display.
            if gui not in (None, "inline"):
                raise RuntimeError(f"the {gui} GUI event loop cannot run in the grader; use %matplotlib inline")

    config = Config()
    config.HistoryManager.enabled = False        # no SQLite file, no history-saving thread
    config.InteractiveShell.colors = "NoColor"
    config.InteractiveShell.autocall = 0
    config.InteractiveShell.xmode = "Context"
    _STATE["shell"] = CellShell.instance(config=config)
    agent = types.ModuleType("_d2lgrade_agent")
    exec(compile(agent_source, "<d2lgrade agent>", "exec"), agent.__dict__)
    sys.modules["_d2lgrade_agent"] = agent
    _STATE["agent"] = agent


def _text(value, limit=ERROR_CHARS):
    try:
        text = str(value)
    except BaseException:           # a student's __str__ may raise anything
        text = "<unprintable>"
    return text if len(text) <= limit else text[:limit] + " [...]"


class CountingStream(io.TextIOBase):
    """sys.stdout / sys.stderr of the child: counts what is printed and drops it (the kernel engine
    keeps nothing of it either; the count becomes the report's "output was dropped" note)."""

    def __init__(self, name, fd):
        self.name, self._fd, self.chars = name, fd, 0

    def write(self, text):
        self.chars += len(text)
        return len(text)

    def writable(self):
        return True

    def fileno(self):
        return self._fd            # /dev/null underneath: C code and subprocesses print nowhere

    @property
    def encoding(self):
        return "utf-8"


def serve(fd, setup):
    """In the child, after the sandbox: set the runtime up, then run cells until the grader leaves."""
    sock = frames.socket.socket(fileno=fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # as ipykernel: interrupts count only inside a cell
    sys.path[0] = os.getcwd()                          # as `python -m ipykernel_launcher` in that folder
    sys.argv = ["d2lgrade-runtime"]
    # Caches the parent filled from its own environment: the child's TMPDIR is its scratch folder
    # (multiprocessing, and so DataLoader workers, put their sockets there).
    tempfile.tempdir = None
    out, err = CountingStream("<stdout>", 1), CountingStream("<stderr>", 2)
    sys.stdout, sys.stderr = out, err
    shell = _STATE["shell"]
    hello = {"id": 0, "status": "ok"}
    try:
        _STATE["agent"].setup(setup)
    except BaseException as exc:
        hello = {"id": 0, "status": "error", "ename": type(exc).__name__, "evalue": _text(exc), "traceback": []}
    frames.send(sock, hello)
    while True:
        try:
            message, _ = frames.receive(sock)
        except (EOFError, OSError, frames.FrameError):
            os._exit(0)
        started = time.perf_counter()
        reply = run_cell(shell, str(message.get("source", "")))
        reply.update(id=message.get("id"), output=out.chars + err.chars, peak_kb=peak_memory_kb(),
                     seconds=round(time.perf_counter() - started, 6))
        frames.send(sock, reply)


def peak_memory_kb():
    """This process's peak resident memory (VmHWM; pages shared with the parent included)."""
    try:
        with open("/proc/self/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
    except (OSError, ValueError):
        return 0


def run_cell(shell, source):
    shell.cell_error = None
    shell.exit_now = False
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        shell.run_cell(source, store_history=False, silent=False)
    except BaseException as exc:        # an interrupt that landed outside the cell's own code
        shell.cell_error = (type(exc).__name__, _text(exc), [])
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    error = shell.cell_error
    if error is None:
        return {"status": "ok"}
    ename, evalue, stb = error
    kept, size = [], 0
    for line in reversed(stb):                   # the end of a traceback says the most
        if size + len(line) > ERROR_CHARS:
            break
        kept.append(line)
        size += len(line)
    return {"status": "error", "ename": ename, "evalue": evalue, "traceback": kept[::-1]}
