"""What the grader reads back from a sandboxed runtime: the launcher's status file and the notes it
becomes in the report, the runtime's processes (by user namespace), its cgroups' OOM kills, and the
clean-up of those cgroups when the runtime closes.

Grader side only: nothing here runs in the launcher or the runtime.
"""
from __future__ import annotations

import json
import os
import signal


def notes_for(status: dict) -> list[str]:
    """One sentence per isolation layer that is missing, for the report."""
    notes = []
    if not status.get("landlock"):
        why = status.get("landlock_error") or "kernel too old or Landlock disabled"
        # The covers hold only for a runtime that cannot unmount them (no capability left).
        if status.get("hidden") and status.get("read_only") and status.get("capabilities") == "none":
            notes.append(f"Isolation: Landlock is not available here ({why}); the runtime's mount namespace "
                         "still hides the project, /tmp, /run and the grader's home and makes every other "
                         "folder read-only, but the runtime can read other files the grader can.")
        else:
            notes.append(f"Isolation: Landlock is not available here ({why}), so the student runtime can "
                         "read and write every file the grader can, reference solutions included.")
    elif status.get("exposed"):
        notes.append("Isolation: " + ", ".join(status["exposed"]) + " lies inside a folder the student runtime "
                     "must read (the Python installation or a system folder), so the runtime can read it; "
                     "move it elsewhere to hide it.")
    if not status.get("userns"):
        notes.append("Isolation: user namespaces are not available here ("
                     f"{status.get('userns_error') or 'disabled'}), so the student runtime has the network "
                     "(unless Landlock blocks TCP) and processes it detaches may outlive it.")
    else:
        if not status.get("netns"):
            notes.append("Isolation: no private network namespace, so the student runtime has the network.")
        if not status.get("pidns"):
            notes.append("Isolation: no private PID namespace, so processes the runtime detaches may outlive it.")
    if not status.get("ipcns"):
        notes.append(f"Isolation: no private IPC namespace ({status.get('ipcns_error') or 'not supported'}), so "
                     "SysV shared memory and message queues the runtime creates are shared with other runtimes "
                     "and may outlive it.")
    if not status.get("private_shm"):
        notes.append("Isolation: no private /dev/shm (it needs a mount namespace), so files the runtime writes "
                     "there are shared with other runtimes and may outlive it.")
    if status.get("capabilities") != "none":
        notes.append("Isolation: the student runtime kept some capabilities "
                     f"({status.get('capabilities_error') or 'not dropped'}); with root's, it could undo the "
                     "mount namespace's covers.")
    if status.get("disk_tmpfs") is False:
        notes.append("Isolation: no size-limited tmpfs could be mounted over the runtime's working directory "
                     f"({status.get('disk_error') or 'no private mount namespace'}), so the grader watches its "
                     "size and file count instead and stops the runtime past the cap.")
    if status.get("memory_cgroup") is False:
        notes.append(f"Isolation: no memory cgroup could be made ({status.get('memory_cgroup_error') or 'disabled'}), "
                     "so the memory limit binds each process of the runtime alone, not all of them together.")
    if not status.get("processes"):
        notes.append("Isolation: no process limit could be applied (RLIMIT_NPROC needs a user namespace and "
                     "does not bind root; no writable cgroup has the pids controller), so only the time "
                     "limits stop a fork bomb.")
    return notes


def read_status(path) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def user_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/user")
    except OSError:
        return None


def processes_in(namespace: str) -> list[int]:
    """Live processes whose user namespace is `namespace` (the runtime's, when it has its own).

    Zombies are left out: they hold no memory and run nothing, and the launcher's zombie waits for
    jupyter_client's next poll to be reaped (up to a second), which is no reason to wait here."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if entry.isdigit() and user_namespace(int(entry)) == namespace and not _zombie(int(entry)):
            found.append(int(entry))
    return found


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True                                   # gone already



def oom_kills(group: str) -> int:
    """Processes of the cgroup the kernel's OOM killer stopped so far (v2 memory.events, v1
    memory.oom_control); 0 where neither says."""
    for file in ("memory.events", "memory.oom_control"):
        try:
            with open(os.path.join(group, file)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


def cgroup_processes(group: str) -> list[int]:
    try:
        with open(os.path.join(group, "cgroup.procs")) as f:
            return [int(line) for line in f.read().split()]
    except (OSError, ValueError):
        return []


def cgroups_of(status: dict) -> list[str]:
    """The cgroup folders a runtime's status names (pids and memory: one folder in cgroup v2)."""
    return [g for g in dict.fromkeys(status.get(k) for k in ("cgroup", "memory_cgroup")) if g]


def remove_cgroup(group: str, seconds: float = 5.0) -> bool:
    """Kill what is left in a runtime's cgroup and remove it (grader side, on close)."""
    import time
    deadline = time.monotonic() + seconds
    while True:
        for pid in cgroup_processes(group):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.rmdir(group)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
