"""Cgroups that bind the whole student runtime: a process limit (pids.max, where RLIMIT_NPROC cannot
be used: a grader running as root) and a memory limit for all its processes together.

Standard library only: `sandbox.py` loads it as a plain module in the launcher. Reading a runtime's
cgroups back and removing them is the grader's (sandbox_status.py).
"""
from __future__ import annotations

import os


def _cgroup_hierarchies():
    """(version, controllers, mount point) of each mounted cgroup hierarchy."""
    try:
        with open("/proc/self/mounts") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "cgroup2":
            yield 2, set(), fields[1]
        elif len(fields) >= 4 and fields[2] == "cgroup":
            yield 1, set(fields[3].split(",")), fields[1]


def _own_cgroup(version: int, controller: str) -> str | None:
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if version == 2 and hierarchy == "0" and controllers == "":
            return path
        if version == 1 and controller in controllers.split(","):
            return path
    return None


def limit_processes_with_cgroup(name: str, limit: int) -> str:
    """Move this process into a new cgroup `name` with pids.max = limit; returns its folder.

    RLIMIT_NPROC does not bind uid 0 even inside a user namespace (the kernel exempts the root
    user outright), so a grader running as root needs the pids controller instead. It needs a
    cgroup hierarchy this process may write: cgroup v1's pids, or v2 with pids enabled below the
    current group. The grader removes the folder when the runtime is closed."""
    return _join_cgroup(name, "pids", {1: [("pids.max", int(limit))], 2: [("pids.max", int(limit))]})


def limit_memory_with_cgroup(name: str, limit_bytes: int) -> str:
    """Move this process into a cgroup `name` whose memory controller caps all the runtime's
    processes together at `limit_bytes`, swap included; returns its folder.

    RLIMIT_AS binds one process at a time: three processes of a runtime could each take nearly the
    limit. The kernel's OOM killer stops a process of the group past the cap (oom_kills counts it).
    v1: memory.limit_in_bytes and memory.memsw.limit_in_bytes (the latter only where swap
    accounting is on); v2: memory.max and memory.swap.max = 0."""
    limit = int(limit_bytes)
    return _join_cgroup(name, "memory", {1: [("memory.limit_in_bytes", limit), ("memory.memsw.limit_in_bytes?", limit)],
                                         2: [("memory.max", limit), ("memory.swap.max?", 0)]})


def _join_cgroup(name: str, controller: str, files: dict[int, list[tuple[str, int]]]) -> str:
    """Create cgroup `name` where `controller` is available to this process, write `files` (a name
    ending in "?" is skipped where the kernel lacks it), and move this process into it. Where two
    controllers share a hierarchy (always in v2), a second call with the same name reuses the folder."""
    for version, options, mount in _cgroup_hierarchies():
        if version == 1 and controller not in options:
            continue
        own = _own_cgroup(version, controller)
        if own is None:
            continue
        parent = os.path.join(mount, own.lstrip("/"))
        if version == 2:
            try:
                with open(os.path.join(parent, "cgroup.subtree_control")) as f:
                    if controller not in f.read().split():
                        continue
            except OSError:
                continue
        group = os.path.join(parent, name)
        created = False
        try:
            os.mkdir(group, 0o755)
            created = True
        except FileExistsError:
            pass        # `name` is the runtime's own: made by the call for another controller
        except OSError:
            continue
        try:
            for file, value in files[version]:
                optional = file.endswith("?")
                try:
                    with open(os.path.join(group, file.rstrip("?")), "w") as f:
                        f.write(str(value))
                except FileNotFoundError:
                    if not optional:
                        raise
            with open(os.path.join(group, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            if created:
                try:
                    os.rmdir(group)
                except OSError:
                    pass
            continue
        return group
    raise OSError(95, f"no writable cgroup hierarchy with the {controller} controller")
