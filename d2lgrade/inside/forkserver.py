"""The warm engine's parent: import torch, d2l, matplotlib and IPython once, then fork one sandboxed
child per submission.

Run by d2lgrade/run/warm.py as `python forkserver.py FD SANDBOX`, where FD is its end of a socket
pair with the grader and SANDBOX the kernel engine's launcher (sandbox.py, whose `enter` it reuses), and with the pinned numerics environment (d2lgrade/numerics/), which torch reads once,
at import. Like sandbox.py it imports the files beside it as plain modules, never the package: the
project folder is hidden from the children. The grader's first message is the runtime agent's source
(d2lgrade/run/agent_source.py), which the shell runs once before the first fork.

Each request carries the socket the child will answer the grader on. The child leaves this loop at
once and never comes back to it: it applies the same isolation as the kernel engine's launcher
(sandbox.enter: rlimits, cgroup, user/network/PID/mount namespaces, Landlock; a PID namespace forks
twice more), then runs the student's cells (shell.serve). The parent runs no student code, starts no
thread and never initialises CUDA, so a fork is always safe and every child starts from the same state.
"""
import os
import select
import signal
import sys
import traceback

sys.path[:0] = [os.path.dirname(os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else __file__)),
                os.path.dirname(os.path.abspath(__file__))]
import sandbox  # noqa: E402  (the launcher the kernel engine uses: its folder comes first)
import frames  # noqa: E402
import shell  # noqa: E402

del sys.path[:2]


def threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def cuda_initialized():
    torch = sys.modules.get("torch")
    try:
        return bool(torch and torch.cuda.is_initialized())
    except Exception:
        return False


def reap():
    """Collect children that have ended (the grader kills them; their zombies are ours)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return


def fork_child(request, child_fd, control):
    pid = os.fork()
    if pid:
        os.close(child_fd)
        return pid
    code = 1
    try:
        control.close()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):                # nothing the child prints reaches the grader's terminal
            os.dup2(null, fd)
        os.close(null)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        sandbox.enter(request["config"], [sys.executable], close_in_keepers=[child_fd])
        shell.serve(child_fd, request["setup"])
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def main(control_fd):
    grader = os.getppid()
    control = frames.socket.socket(fileno=control_fd)
    first, _ = frames.receive(control)
    shell.prepare(first["agent"])
    frames.send(control, {"ready": True, "pid": os.getpid(), "threads": threads(), "cuda": cuda_initialized()})
    while True:
        reap()
        readable, _, _ = select.select([control], [], [], 0.5)
        if os.getppid() != grader:
            return                              # the grader was killed without closing its end
        if not readable:
            continue
        try:
            request, fds = frames.receive(control, max_fds=1)
        except (EOFError, OSError, frames.FrameError):
            return                              # the grader has gone: so do we
        if request.get("op") == "exit":
            return
        if request.get("op") == "fork" and len(fds) == 1:
            frames.send(control, {"pid": fork_child(request, fds[0], control), "threads": threads()})
        else:
            for fd in fds:
                os.close(fd)
            frames.send(control, {"error": "unknown request"})


if __name__ == "__main__":
    main(int(sys.argv[1]))
