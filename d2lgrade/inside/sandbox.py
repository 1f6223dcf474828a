"""Launch a command inside the student runtime's limits and isolation, then exec it.

Run as `python sandbox.py '<json config>' -- command...`. It uses only the standard library (and
`isolation.py`, `landlock_rules.py` and `cgroup_limits.py` beside it, loaded as plain modules)
because it runs before, and outside, the package, as the first step of the kernel's argv. What is
applied here lasts for the whole process tree of the runtime: operating-system limits, not
Python-level tricks the student code could undo.

The processes, where user and PID namespaces are available:

    grader ── P (this launcher: the process jupyter_client started and watches; joins the
               │    runtime's cgroups, creates the user, IPC, network, PID and mount namespaces)
               └─ C (init of the runtime's PID namespace: mounts its private /proc and /dev/shm and
                   │ the empty folders over /tmp, /run, the project...; reaps orphans; its death
                   │ ends every process of the namespace)
                   └─ K (the kernel: process limit, Landlock, no capabilities, then exec of ipykernel)

P and C run no student code. P relays K's exit to jupyter_client and kills C when the grader
disappears; C has PR_SET_PDEATHSIG, so killing P (or its process group) ends the namespace.
Without namespaces this process applies what it can and becomes the kernel itself (one process,
as before). What was and was not applied goes to `status_file` (JSON) for the grader's report.

Config keys: the Limits fields (memory_bytes, file_bytes, max_processes, ...), device, cwd (the
student's working directory), exchange (request/response folder), ipc_dir (where the kernel binds
its sockets), read (extra read-only folders, e.g. datasets), deny (folders that must stay hidden:
the project, the grader's and the submission's folders: covered with an empty tmpfs, left out of
Landlock's allow-list, and reported when that allow-list would still expose them), status_file, and layers_off (for tests: any of "namespaces", "mounts", "cgroup", "landlock").
"""
import json
import os
import signal
import sys
import time

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__))]
import isolation  # noqa: E402  (this folder, not the package: the kernel must not need it)
import cgroup_limits  # noqa: E402
import landlock_rules  # noqa: E402

del sys.path[0]


def log(message):
    print(f"d2lgrade sandbox: {message}", file=sys.stderr, flush=True)


def enter_namespaces(config, status):
    """User namespace first (it grants what the others need), then IPC, network, PID and mounts."""
    if "namespaces" in config.get("layers_off", []):
        status["userns_error"] = status["ipcns_error"] = "turned off"
        return
    try:
        isolation.enter_user_namespace()
        status["userns"] = True
    except OSError as exc:
        status["userns_error"] = exc.strerror or str(exc)
    # Also tried without a user namespace: a grader running as root may create it anyway.
    try:
        isolation.unshare(isolation.CLONE_NEWIPC)
        status["ipcns"] = True
    except OSError as exc:
        status["ipcns_error"] = exc.strerror or str(exc)
    if not status["userns"]:
        return
    for key, flag in (("netns", isolation.CLONE_NEWNET), ("pidns", isolation.CLONE_NEWPID),
                      ("mountns", isolation.CLONE_NEWNS)):
        try:
            isolation.unshare(flag)
            status[key] = True
        except OSError as exc:
            status[key + "_error"] = exc.strerror or str(exc)


def join_cgroups(config, status):
    """Before the namespaces, while this process is still the grader's uid in the grader's namespace.
    pids: needed for root, whom RLIMIT_NPROC does not bind (see isolation). memory: all the
    runtime's processes together (RLIMIT_AS, applied before, still stops one huge allocation with
    a MemoryError, which costs less than a kill). In cgroup v2 both are one folder."""
    name = f"d2lgrade-{os.getpid()}-{os.urandom(4).hex()}"
    off = "cgroup" in config.get("layers_off", [])
    if config.get("max_processes") and not off:
        try:
            status["cgroup"] = cgroup_limits.limit_processes_with_cgroup(name, config["max_processes"])
            status["processes"] = config["max_processes"]
        except OSError as exc:
            status["cgroup_error"] = exc.strerror or str(exc)
    if config.get("memory_bytes"):
        status["memory_cgroup"] = False
        try:
            if off:
                raise OSError(1, "turned off")
            status["memory_cgroup"] = cgroup_limits.limit_memory_with_cgroup(name, config["memory_bytes"])
        except OSError as exc:
            status["memory_cgroup_error"] = exc.strerror or str(exc)


def hide_and_keep(config, command, status):
    """C, in the runtime's mount namespace: empty folders over /tmp, /run, the project, the
    grader's home...; the runtime's own folders and the interpreter bound back in place."""
    import pwd
    import tempfile
    hide = list(isolation.HIDDEN_SYSTEM_FOLDERS) + [tempfile.gettempdir()]
    try:  # the grader's home (HOME is already the student's working directory here)
        hide.append(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        pass
    hide += config.get("deny", [])
    writable = [config.get(k) for k in ("cwd", "exchange", "ipc_dir")]
    keep = landlock_rules.interpreter_paths() + config.get("read", []) + list(landlock_rules.SYSTEM_READ_EXEC)
    if "-f" in command[:-1]:
        keep.append(command[command.index("-f") + 1])
    if os.path.isabs(command[0]):
        keep.append(os.path.dirname(command[0]))
    if config.get("status_file"):
        keep.append(os.path.dirname(config["status_file"]))
    if config.get("disk_bytes") and config.get("cwd"):
        try:
            isolation.mount_scratch(config["cwd"], config["disk_bytes"], config.get("disk_files") or 10_000)
            status["disk_tmpfs"] = True
        except OSError as exc:
            status["disk_error"] = exc.strerror or str(exc)
    try:
        status.update(isolation.hide_folders(hide, keep, writable, isolation.shm_bytes(config.get("memory_bytes"))))
    except OSError as exc:
        status["mount_errors"] = [str(exc)]


def supervise(child):
    """P: wait for C, relay its exit; if the grader dies, take the runtime down with it."""
    grader = os.getppid()
    signal.signal(signal.SIGINT, isolation.ignore)      # interrupts are for the kernel (same group)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    while True:
        pid, wait_status = os.waitpid(child, os.WNOHANG)
        if pid:
            isolation.exit_like(wait_status)
        if os.getppid() != grader:
            os.kill(child, signal.SIGKILL)
            os._exit(1)
        signal.sigtimedwait({signal.SIGCHLD}, 1.0)


def init(kernel):
    """C, PID 1 of the runtime: reap everything; leave when the kernel does (which kills the rest)."""
    while True:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == kernel:
            isolation.exit_like(wait_status)


def confine(config, command, status, status_fd):
    """K: the limits that must come last, then Landlock (the caller execs the kernel next)."""
    if status.get("userns"):
        # Counted per user namespace, from zero: the runtime's own processes and threads only.
        # (The kernel exempts uid 0 from it: for root, the cgroup above is what limits.)
        if config.get("max_processes"):
            try:
                isolation.set_limit(isolation.resource.RLIMIT_NPROC, config["max_processes"])
                if os.getuid() != 0:
                    status["processes"] = config["max_processes"]
            except (OSError, ValueError) as exc:
                status["nproc_error"] = str(exc)
        try:
            isolation.forbid_nested_user_namespaces()
            status["nested_userns"] = False
        except OSError as exc:
            status["nested_userns_error"] = exc.strerror or str(exc)
    try:
        isolation.drop_capabilities()
    except OSError as exc:
        status["capabilities_error"] = str(exc)
    abi = 0 if "landlock" in config.get("layers_off", []) else landlock_rules.landlock_abi()
    if abi:
        rules, exposed = landlock_rules.plan_rules(config, command)
        try:
            status["landlock_skipped"] = [p for p in landlock_rules.landlock_restrict(rules, abi)
                                          if os.path.exists(p)]
            status["landlock"] = abi
            status["exposed"] = [d for d in exposed if not any(
                isolation.inside(d, h) for h in status.get("hidden", []))]
        except OSError as exc:
            status["landlock_error"] = exc.strerror or str(exc)
    else:
        status["landlock_error"] = "not supported by this kernel, or disabled"
    try:  # set-uid programs (sudo, su) gain nothing (Landlock sets this too; without it, still wanted)
        isolation.prctl(isolation.PR_SET_NO_NEW_PRIVS, 1)
    except OSError:
        pass
    if config.get("cwd"):
        os.chdir(config["cwd"])
    if status.get("pidns"):
        # ipykernel would watch for its parent becoming PID 1 (which C is); P watches the grader.
        os.environ.pop("JPY_PARENT_PID", None)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # Last, after everything that needed a capability: the warm engine's child runs student code
    # next without an exec, so emptying the bounding set alone would leave it every capability.
    try:
        isolation.end_capabilities()
        status["capabilities"] = "none"
    except OSError as exc:
        status["capabilities_error"] = exc.strerror or str(exc)
    status["seconds"] = round(time.monotonic() - status.pop("_started"), 3)
    if status_fd is not None:
        os.write(status_fd, json.dumps(status).encode())
        os.close(status_fd)
    for key in ("landlock_error", "userns_error", "ipcns_error", "netns_error", "pidns_error", "capabilities_error"):
        if key in status:
            log(f"{key}: {status[key]}")


def main(argv):
    config = json.loads(argv[1])
    command = argv[argv.index("--") + 1:]
    enter(config, command)
    os.execvp(command[0], command)


def enter(config, command, close_in_keepers=()):
    """Apply every layer; returns in K, the process that runs the student's code (the launcher
    execs the kernel there, the warm engine's child runs cells there). P and C never return.
    `close_in_keepers`: descriptors that only K may hold (the warm engine's socket), so that
    the grader sees it close as soon as K is gone."""
    status = {"landlock": 0, "userns": False, "ipcns": False, "netns": False, "pidns": False,
              "_started": time.monotonic()}
    # Opened now: after Landlock, the grader-private folder is no longer writable.
    status_fd = None
    if config.get("status_file"):
        status_fd = os.open(config["status_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    # Own session and process group, so the grader can signal the whole tree.
    # jupyter_client already starts kernels that way, and then setsid() says EPERM.
    if os.getpgrp() != os.getpid():
        os.setsid()
    # Writing past RLIMIT_FSIZE should fail the write, not kill the kernel with SIGXFSZ.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    isolation.apply_rlimits(config)
    join_cgroups(config, status)
    if config.get("disk_bytes"):
        status["disk_tmpfs"] = False          # until the mount namespace gets its tmpfs
    enter_namespaces(config, status)
    if status["pidns"]:
        isolation.prctl(isolation.PR_SET_DUMPABLE, 0)     # the kernel may not ptrace P or C
        child = os.fork()
        if child:
            for fd in ([status_fd] if status_fd is not None else []) + list(close_in_keepers):
                os.close(fd)
            supervise(child)
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        isolation.prctl(isolation.PR_SET_DUMPABLE, 0)
        if status.get("mountns") and "mounts" not in config.get("layers_off", []):
            hide_and_keep(config, command, status)
        kernel = os.fork()
        if kernel:
            for fd in ([status_fd] if status_fd is not None else []) + list(close_in_keepers):
                os.close(fd)
            init(kernel)
    confine(config, command, status, status_fd)
    return status


if __name__ == "__main__":
    main(sys.argv)
