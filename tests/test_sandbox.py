"""The launcher of the student runtime (d2lgrade/inside/sandbox.py) on its own, without a kernel.

Each test runs a small Python program through `sandbox.py '<config>' -- python -c ...`, the way the
kernel is started, and checks one layer of isolation from the inside: what the program could do
(as JSON on its stdout) and what is left on the machine afterwards. Layers are tested one at a
time where they overlap (`layers_off`), so a hole in one is not hidden by another. Checks that need
a kernel feature this machine lacks are skipped, with the reason; the report notes for those cases
are tested with made-up statuses. See tests/test_hostile.py for the threat model.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from d2lgrade.inside import isolation, landlock_rules
from d2lgrade.run import sandbox_status
from d2lgrade.testing import needs_sandbox, sandbox_layers

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = ROOT / "d2lgrade" / "inside" / "sandbox.py"

PRELUDE = textwrap.dedent("""
    import json, os, sys
    results = {}
    def attempt(name, action):
        try:
            value = action()
            results[name] = ["worked", repr(value)[:200]]
        except BaseException as exc:
            results[name] = ["denied", type(exc).__name__, str(exc)[:200]]
    def read(path):
        with open(path, "rb") as f:
            return f.read(64)
    def write(path, text="x"):
        with open(path, "w") as f:
            return f.write(text)
""")


def landlock_abi(layers: dict) -> int:
    return layers.get("landlock") or 0


def userns(layers: dict) -> bool:
    return all(layers.get(k) for k in ("userns", "netns", "pidns", "mountns"))


needs_landlock = needs_sandbox(landlock_abi, "Landlock is not available on this kernel")
needs_userns = needs_sandbox(userns, "unprivileged user namespaces are not available here")


class Sandbox:
    """A runtime-like layout under tmp_path: scratch/work (cwd), scratch/.d2lgrade, private/."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.work = tmp_path / "scratch" / "work"
        self.exchange = tmp_path / "scratch" / ".d2lgrade"
        self.private = tmp_path / "private"
        self.project = tmp_path / "project"            # stands for the course repository
        self.submission = tmp_path / "submissions" / "bob"
        for folder in (self.work, self.exchange, self.private, self.project / "reference", self.submission):
            folder.mkdir(parents=True, exist_ok=True)
        (self.project / "reference" / "section_7_3.py").write_text("stride_speedup = 's_h*s_w'\n")
        (self.submission / "7.3.py").write_text("# bob's own work\n")
        self.status: dict = {}

    def config(self, **extra) -> dict:
        return {"cwd": str(self.work), "exchange": str(self.exchange), "ipc_dir": str(self.private),
                "deny": [str(self.project), str(self.submission), str(ROOT)],
                "status_file": str(self.private / isolation.STATUS_FILE), "max_processes": 64,
                "memory_bytes": 8 * 2**30, "file_bytes": 2**20, **extra}

    def run(self, code: str, *, timeout: float = 60, args: tuple = (), **extra) -> tuple[subprocess.CompletedProcess, dict]:
        command = [sys.executable, str(SANDBOX), json.dumps(self.config(**extra)), "--",
                   sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, start_new_session=True)
        finally:
            self.status = sandbox_status.read_status(self.private / isolation.STATUS_FILE)
            for group in sandbox_status.cgroups_of(self.status):     # what SandboxedRuntime._kill does
                assert sandbox_status.remove_cgroup(group)
        return done, self.status

    def results(self, code: str, **kw) -> dict:
        done, _ = self.run(textwrap.dedent(code) + "\nprint(json.dumps(results))", **kw)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def box(tmp_path):
    return Sandbox(tmp_path)


def denied(result) -> bool:
    return result[0] == "denied" and result[1] in ("PermissionError", "FileNotFoundError", "OSError")


def test_status_names_every_layer(box):
    done, status = box.run("print('hello')")
    assert done.returncode == 0 and done.stdout.strip() == "hello", done.stderr
    assert status["capabilities"] == "none"
    layers = sandbox_layers()
    if landlock_abi(layers):
        assert status["landlock"] == landlock_abi(layers) and status["exposed"] == []
    if userns(layers):
        assert status["userns"] and status["netns"] and status["pidns"] and status["mountns"]
        assert status["read_only"] and status["private_proc"] and status["mount_errors"] == []
    assert sandbox_status.notes_for(status) == [] or not (landlock_abi(layers) and userns(layers)), \
        sandbox_status.notes_for(status)


@needs_landlock
def test_landlock_alone_keeps_the_runtime_in_its_folders(box):
    other = box.tmp / "outside.txt"
    connection = box.tmp / "runtime" / "kernel-1.json"
    connection.parent.mkdir()
    connection.write_text("{}")
    (connection.parent / "kernel-2.json").write_text('{"key": "another student\'s kernel"}')
    results = box.results(f"""
        attempt("reference", lambda: read({str(box.project / 'reference' / 'section_7_3.py')!r}))
        attempt("own submission", lambda: read({str(box.submission / '7.3.py')!r}))
        attempt("list project", lambda: os.listdir({str(box.project)!r}))
        attempt("repository", lambda: read({str(ROOT / 'reference' / 'section_7_3.py')!r}))
        attempt("shadow", lambda: read("/etc/shadow"))
        attempt("passwd", lambda: read("/etc/passwd"))
        attempt("write outside", lambda: write({str(other)!r}))
        attempt("write home", lambda: write(os.path.expanduser("~root/.d2lgrade-test")))
        attempt("write cwd", lambda: write("mine.txt"))
        attempt("write exchange", lambda: write("../.d2lgrade/response-1.pt"))
        attempt("fifo in exchange", lambda: os.mkfifo("../.d2lgrade/response-2.pt"))
        attempt("link in exchange", lambda: os.symlink("/etc/passwd", "../.d2lgrade/response-3.pt"))
        attempt("remove exchange", lambda: os.rmdir("../.d2lgrade"))
        attempt("remove cwd", lambda: os.rmdir(os.getcwd()))
        attempt("connection file", lambda: read(sys.argv[2]))
        attempt("other connection file", lambda: read(sys.argv[2].replace("kernel-1", "kernel-2")))
        attempt("execute own file", lambda: (write("run.sh", "#!/bin/sh\\necho hi\\n"), os.chmod("run.sh", 0o755),
                                             __import__("subprocess").run(["./run.sh"]).returncode))
        attempt("raw disks", lambda: [read("/dev/" + d) for d in os.listdir("/dev")
                                      if d.startswith(("sd", "vd", "nvme", "xvd", "mmcblk"))] or 1 / 0)
        attempt("dev null", lambda: write("/dev/null"))
        attempt("torch", lambda: __import__("torch").ones(2).sum().item())
    """, args=("-f", str(connection)), layers_off=["mounts"])
    for name in ("reference", "own submission", "list project", "repository", "shadow", "write outside",
                 "write home", "fifo in exchange", "link in exchange", "remove exchange", "remove cwd",
                 "other connection file", "execute own file"):
        assert denied(results[name]), (name, results[name])
    if results["raw disks"][1] != "ZeroDivisionError":           # this machine has a disk device
        assert denied(results["raw disks"]), results["raw disks"]
    for name in ("passwd", "write cwd", "write exchange", "connection file", "dev null"):
        assert results[name][0] == "worked", (name, results[name])
    assert results["torch"] == ["worked", "2.0"]
    assert not other.exists() and (box.exchange).is_dir() and box.work.is_dir()


@needs_userns
def test_mounts_alone_hide_the_project_and_freeze_the_rest(box):
    results = box.results(f"""
        attempt("reference", lambda: read({str(box.project / 'reference' / 'section_7_3.py')!r}))
        attempt("repository", lambda: read({str(ROOT / 'reference' / 'section_7_3.py')!r}))
        attempt("tmp", lambda: sorted(os.listdir("/tmp")))
        attempt("processes", lambda: sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
        attempt("shadow", lambda: read("/etc/shadow"))
        attempt("write etc", lambda: write("/etc/d2lgrade-test"))
        attempt("write site-packages", lambda: write(os.path.dirname(os.__file__) + "/d2lgrade-test"))
        attempt("write cwd", lambda: write("mine.txt"))
        attempt("write exchange", lambda: write("../.d2lgrade/response-1.pt"))
        attempt("write shm", lambda: write("/dev/shm/torch_1"))
    """, layers_off=["landlock"])
    for name in ("reference", "repository", "write etc", "write site-packages"):
        assert denied(results[name]), (name, results[name])
    assert results["shadow"] == ["worked", "b''"]                  # /dev/null over root-only files
    assert results["processes"] == ["worked", "[1, 2]"]            # init (C) and this program (K)
    if box.tmp.parts[1] == "tmp":                                  # only the runtime's own folders are left
        # ... and the interpreter's, where the virtual environment itself lives under /tmp (this process's
        # sys.path also holds the repository, which the sandbox hides even when a clone lives under /tmp)
        kept = {Path(p).parts[2] for p in [str(box.tmp), sys.prefix, os.path.dirname(sys.executable),
                                           *(q for q in landlock_rules.interpreter_paths() if not Path(q).is_relative_to(ROOT))]
                if len(Path(p).parts) > 2 and Path(p).parts[1] == "tmp"}
        assert results["tmp"] == ["worked", repr(sorted(kept))]
    for name in ("write cwd", "write exchange", "write shm"):
        assert results[name][0] == "worked", (name, results[name])
    assert not Path("/etc/d2lgrade-test").exists() and not (Path("/dev/shm") / "torch_1").exists()


def test_no_capabilities_and_limits_that_stay(box):
    results = box.results("""
        import resource
        status = open("/proc/self/status").read()
        attempt("caps", lambda: [l.split()[1] for l in status.splitlines() if l.startswith(("CapEff", "CapPrm", "CapBnd"))])
        attempt("no new privs", lambda: [l.split()[1] for l in status.splitlines() if l.startswith("NoNewPrivs")])
        attempt("address space", lambda: resource.getrlimit(resource.RLIMIT_AS))
        attempt("raise it", lambda: resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2))
        attempt("file size", lambda: resource.getrlimit(resource.RLIMIT_FSIZE))
        attempt("big file", lambda: write("big.bin", "x" * 2**21))
    """)
    assert results["caps"] == ["worked", repr(["0000000000000000"] * 3)]
    assert results["no new privs"] == ["worked", "['1']"]
    assert results["address space"] == ["worked", repr((8 * 2**30, 8 * 2**30))]
    assert results["raise it"][:2] == ["denied", "ValueError"]      # not permitted without a capability
    assert results["file size"] == ["worked", repr((2**20, 2**20))]
    assert results["big file"][:2] == ["denied", "OSError"] and "File too large" in results["big file"][2]
    assert (box.work / "big.bin").stat().st_size == 2**20


@needs_userns
def test_no_network_not_even_the_graders_localhost(box):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    port = server.getsockname()[1]
    try:
        # Landlock off: the network namespace alone must stop it (Landlock stops TCP too).
        results = box.results(f"""
            import socket
            attempt("localhost", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
            attempt("internet", lambda: socket.create_connection(("1.1.1.1", 80), timeout=2))
            attempt("dns", lambda: socket.getaddrinfo("example.com", 80))
            attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("1.1.1.1", 53)))
            attempt("interfaces", lambda: sorted(n for _, n in socket.if_nameindex()))
        """, layers_off=["landlock"])
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()
    for name in ("localhost", "internet", "dns", "udp"):
        assert results[name][0] == "denied", (name, results[name])
    assert results["interfaces"] == ["worked", "['lo']"]


@needs_landlock
def test_landlock_alone_stops_tcp_signals_and_ptrace(box):
    abi = landlock_abi(sandbox_layers())
    victim = subprocess.Popen(["sleep", "60"])
    try:
        results = box.results(f"""
            import signal, socket
            attempt("tcp", lambda: socket.create_connection(("127.0.0.1", 9), timeout=2))
            attempt("signal", lambda: os.kill({victim.pid}, signal.SIGKILL) if {abi} >= 6 else 1 / 0)
            attempt("environ", lambda: read("/proc/{victim.pid}/environ"))
            attempt("memory", lambda: read("/proc/{victim.pid}/mem"))
        """, layers_off=["namespaces"])
        assert victim.poll() is None
    finally:
        victim.kill()
    # ptrace-like access since Landlock ABI 1, TCP since ABI 4, signals since ABI 6.
    for name, since in (("environ", 1), ("memory", 1), ("tcp", 4), ("signal", 6)):
        if abi >= since:
            assert results[name][:2] == ["denied", "PermissionError"], (name, results[name])


@needs_userns
def test_a_fork_bomb_is_stopped_and_leaves_nothing(box):
    """The classic bomb: every process forks forever. The process limit stops it, the time limit
    ends the program, and killing the launcher's process group (as SandboxedRuntime._kill does) ends
    the PID namespace and with it every process, including those that called setsid()."""
    launcher = subprocess.Popen(
        [sys.executable, str(SANDBOX), json.dumps(box.config()), "--", sys.executable, "-c", textwrap.dedent("""
            import os, time
            print("started", flush=True)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    if os.fork() == 0:
                        os.setsid()
                except OSError:
                    time.sleep(0.01)
            time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert launcher.stdout.readline().strip() == "started"
        time.sleep(3)
        namespace = sandbox_status.user_namespace(launcher.pid)
        status = sandbox_status.read_status(box.private / isolation.STATUS_FILE)
        assert status.get("processes") == 64, status                 # a limit was applied
        inside = sandbox_status.processes_in(namespace)
        threads = sum(len(os.listdir(f"/proc/{pid}/task")) for pid in inside if os.path.isdir(f"/proc/{pid}"))
        assert 3 < len(inside) and threads <= 64, (len(inside), threads)
        # The machine is still usable: this process can still start others.
        assert subprocess.run(["true"]).returncode == 0
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    deadline = time.monotonic() + 5
    while sandbox_status.processes_in(namespace) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_status.processes_in(namespace) == []
    for group in sandbox_status.cgroups_of(status):
        assert sandbox_status.remove_cgroup(group) and not os.path.exists(group)


@needs_userns
def test_the_runtime_goes_when_the_grader_goes(box, tmp_path):
    """If the grader is killed outright, the launcher notices and takes the runtime down."""
    grader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import subprocess, sys, time
        subprocess.Popen({[sys.executable, str(SANDBOX), json.dumps(box.config()), "--",
                          sys.executable, "-c", "import time; time.sleep(600)"]!r})
        time.sleep(600)
    """)])
    try:
        deadline = time.monotonic() + 10
        while not (status := sandbox_status.read_status(box.private / isolation.STATUS_FILE)) and time.monotonic() < deadline:
            time.sleep(0.05)
        children = [int(p) for p in Path(f"/proc/{grader.pid}/task/{grader.pid}/children").read_text().split()]
        namespace = sandbox_status.user_namespace(children[0])
        assert namespace and sandbox_status.processes_in(namespace)
    finally:
        grader.kill()
        grader.wait()
    deadline = time.monotonic() + 5
    while sandbox_status.processes_in(namespace) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_status.processes_in(namespace) == []
    for group in sandbox_status.cgroups_of(status):
        assert sandbox_status.remove_cgroup(group)


def test_degraded_layers_become_notes():
    full = {"landlock": 7, "userns": True, "ipcns": True, "netns": True, "pidns": True, "processes": 64,
            "capabilities": "none", "private_shm": True, "exposed": []}
    assert sandbox_status.notes_for(full) == []
    no_landlock = sandbox_status.notes_for({**full, "landlock": 0, "landlock_error": "ENOSYS"})
    assert len(no_landlock) == 1 and "reference solutions" in no_landlock[0] and "ENOSYS" in no_landlock[0]
    no_userns = sandbox_status.notes_for({**full, "userns": False, "netns": False, "pidns": False, "processes": None})
    assert any("network" in n for n in no_userns) and any("fork bomb" in n for n in no_userns)
    no_tmpfs = sandbox_status.notes_for({**full, "disk_tmpfs": False, "disk_error": "EPERM"})
    assert len(no_tmpfs) == 1 and "watches its size" in no_tmpfs[0] and "EPERM" in no_tmpfs[0]
    assert sandbox_status.notes_for({**full, "disk_tmpfs": True}) == []
    exposed = sandbox_status.notes_for({**full, "exposed": ["/usr/src/course"]})
    assert exposed and "/usr/src/course" in exposed[0]
    # Without Landlock the covers hold only for a runtime with no capability left to unmount them.
    covered = {**full, "landlock": 0, "hidden": ["/work"], "read_only": True}
    assert "still hides the project" in sandbox_status.notes_for(covered)[0]
    kept = sandbox_status.notes_for({**covered, "capabilities": None, "capabilities_error": "capset: EPERM"})
    assert "reference solutions included" in kept[0] and "capset: EPERM" in kept[1], kept
    assert "shared with other runtimes" in sandbox_status.notes_for({**full, "ipcns": False, "ipcns_error": "EPERM"})[0]
    per_process = sandbox_status.notes_for({**full, "memory_cgroup": False, "memory_cgroup_error": "EROFS"})
    assert len(per_process) == 1 and "each process of the runtime alone" in per_process[0]
    assert sandbox_status.notes_for({**full, "memory_cgroup": "/sys/fs/cgroup/x"}) == []


@needs_sandbox(lambda layers: layers.get("mountns"), "no private mount namespace here")
def test_working_directory_is_a_capped_tmpfs(box):
    """All the files of the working directory together: disk_bytes and disk_files, then ENOSPC; none
    of it on the grader's disk."""
    results = box.results("""
        def fill():
            with open("fill.bin", "wb") as f:
                for _ in range(64):
                    f.write(b"1" * 2**19)
        def many():
            os.makedirs("many", exist_ok=True)
            for i in range(1000):
                open(f"many/{i}", "w").close()
        attempt("fill", fill)
        attempt("many", many)
        attempt("tmp dir", lambda: os.path.isdir(".tmp"))
        attempt("exchange", lambda: write("../.d2lgrade/response-1.pt"))
    """, disk_bytes=4 * 2**20, disk_files=100, file_bytes=64 * 2**20)
    assert box.status.get("disk_tmpfs") is True, box.status
    for name in ("fill", "many"):
        assert results[name][:2] == ["denied", "OSError"] and "No space left" in results[name][2], results[name]
    assert results["tmp dir"] == ["worked", "True"]
    assert results["exchange"][0] == "worked"                     # the grader's side still sees it
    assert (box.exchange / "response-1.pt").exists()
    assert sorted(os.listdir(box.work)) == []                       # nothing reached the real folder


def test_everything_off_still_runs(box):
    """Where no layer is available, the launcher still applies its rlimits and runs the program."""
    done, status = box.run("import resource; print(resource.getrlimit(resource.RLIMIT_FSIZE)[0])",
                           layers_off=["namespaces", "cgroup", "landlock", "mounts"])
    assert done.returncode == 0 and done.stdout.strip() == str(2**20), done.stderr
    assert not status["userns"] and not status["landlock"]
    notes = sandbox_status.notes_for(status)
    for words in ("Landlock is not available", "user namespaces", "IPC namespace", "/dev/shm", "memory cgroup",
                  "process limit"):
        assert sum(words in n for n in notes) == 1, (words, notes)
    assert len(notes) == 6, notes
