"""Operating-system isolation of the student runtime: namespaces, mounts, capabilities, rlimits.

Standard library only. `sandbox.py` loads this file as a plain module (it sits next to it) in the
process that becomes the kernel, before anything of the package could be imported there, together
with its siblings `landlock_rules.py` (Landlock) and `cgroup_limits.py` (cgroups); the grader imports
it as `d2lgrade.inside.isolation` for the names it shares with the launcher, and reads the launcher's
status back with `sandbox_status.py`.

What each piece does (all of it is applied by the kernel's own launcher, so it covers the whole
process tree of the runtime and cannot be undone from Python):

- user namespace (CLONE_NEWUSER, the grader's uid/gid mapped to themselves): makes the others
  possible without privileges, and gives the runtime its own RLIMIT_NPROC count that starts at
  zero, so the process limit is safe to apply (outside one, RLIMIT_NPROC counts every process of
  the user). The kernel never applies RLIMIT_NPROC to uid 0, namespace or not, so for a grader
  running as root the limit is a cgroup's pids.max instead (v1 pids, or v2 with pids delegated);
- network namespace (CLONE_NEWNET): no interface but a loopback that is down, so no connection
  leaves the runtime, not even to the grader's own localhost; the kernel talks to the grader over
  Unix sockets (IPC transport), which need no network;
- PID namespace (CLONE_NEWPID): the runtime's first process is its init; when it dies the kernel
  kills every process of the namespace, including those that left the process group with
  setsid(), so closing a runtime leaves nothing behind;
- IPC namespace (CLONE_NEWIPC): SysV shared memory, semaphores and message queues and POSIX
  message queues of the runtime are its own and are freed with its last process; no runtime sees
  another's, and nothing of them stays on the host;
- mount namespace (CLONE_NEWNS): the runtime's own /proc (it sees only its own processes), its
  own /dev/shm (a tmpfs far smaller than the memory limit: see shm_bytes), and empty read-only
  tmpfs folders over /tmp, /var/tmp, /run (where other programs' Unix sockets live: Landlock
  ABI <= 7 cannot stop connecting to those), the grader's home, the project, the grader's and
  the submission's folders; the runtime's own folders, the interpreter and the connection file
  are bound back in place;
- cgroups: pids, the process limit where RLIMIT_NPROC cannot be used (root); memory, the memory
  limit for all the runtime's processes together (RLIMIT_AS binds one process at a time);
- Landlock (syscalls 444-446 after PR_SET_NO_NEW_PRIVS): the kernel may read and execute only
  what an interpreter needs (the Python installation, /usr, /lib*, world-readable /etc, /proc,
  /sys, a few device files), write only its working directory, the exchange directory and its
  IPC sockets; no TCP; no signals or ptrace to processes outside the sandbox; no abstract Unix
  sockets outside it. The project (reference solutions, graders, other submissions) and the
  submission's own folder are simply not in the allow-list;
- capabilities: the bounding, inheritable and ambient sets are emptied, the securebits make uid 0
  an ordinary user for exec (locked), and the effective, permitted and inheritable sets are emptied
  last: the warm engine's child never execs, so an empty bounding set alone would leave it every
  capability of its user namespace (it could unmount the covers over the project). The runtime has
  no capability even as uid 0 (it cannot raise its hard rlimits back, mount, or override file
  permissions);
- rlimits: address space (CPU) or data segment (CUDA) per process, so one allocation too big fails
  with MemoryError rather than a kill; file size, core dumps, processes (RLIMIT_NPROC, for a grader
  that is not root).

Every step degrades on its own: what could not be applied is recorded in the status the launcher
writes, and the grader turns it into a note in the report.
"""
from __future__ import annotations

import ctypes
import os
import resource
import stat

WORK = "work"                 # the student's working directory, inside the runtime's scratch dir
STATUS_FILE = "sandbox.json"  # written by the launcher into the grader-private dir

# --- syscalls -----------------------------------------------------------------------------------
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
PR_SET_SECUREBITS = 28
# NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE, each locked, and KEEP_CAPS locked off: uid 0 gains
# no capability from an exec, and nothing the runtime does can switch that back.
SECURE_ALL = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = \
    0x00020000, 0x08000000, 0x10000000, 0x20000000, 0x40000000

class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def fail(what: str):
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


def prctl(option: int, arg: int = 0) -> None:
    if libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        fail(f"prctl({option})")


# --- paths -----------------------------------------------------------------------------------------
def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


# --- namespaces -----------------------------------------------------------------------------------
def unshare(flags: int) -> None:
    if libc.unshare(ctypes.c_int(flags)) != 0:
        fail("unshare")


def enter_user_namespace() -> None:
    """A new user namespace with this process's uid and gid mapped to themselves."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(CLONE_NEWUSER)
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
    except FileNotFoundError:
        pass
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")


def forbid_nested_user_namespaces() -> None:
    """No user namespaces inside the runtime's (a common way into kernel bugs); needs the
    namespace's own root, so it is done before capabilities are dropped."""
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")


# --- mounts (inside the runtime's own mount namespace) -------------------------------------------
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2
# Folders hidden behind an empty read-only tmpfs: where Unix sockets of other programs live
# (X11, ssh-agent, D-Bus, docker.sock, databases) and other runtimes' scratch folders.
HIDDEN_SYSTEM_FOLDERS = ("/tmp", "/var/tmp", "/run", "/var/run", "/dev/mqueue")


def mount(source, target, fstype, flags, data=None) -> None:
    enc = lambda v: None if v is None else os.fsencode(v)   # noqa: E731
    if libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        fail(f"mount {target}")


def umount(target: str) -> None:
    if libc.umount2(os.fsencode(target), ctypes.c_int(MNT_DETACH)) != 0:
        fail(f"umount {target}")


def _same_file(path: str, fd: int) -> bool:
    try:
        a, b = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


_ATIME_AND_SECURITY_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": 1 << 10,
                             "nodiratime": 1 << 11, "relatime": 1 << 21, "strictatime": 1 << 24}


def _mounts() -> list[tuple[str, list[str]]]:
    """(mount point, per-mount options) of this mount namespace, from /proc/self/mountinfo."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ")
            point = fields[4].encode().decode("unicode_escape")   # \040 is a space, and so on
            found.append((point, fields[5].split(",")))
    return found


def _private_entries(path: str, depth: int = 0) -> list[str]:
    """Entries under `path` that not every user may read (the inverse of _world_readable)."""
    found = []
    try:
        names = os.listdir(path)
    except OSError:
        return found
    for name in names:
        entry = os.path.join(path, name)
        try:
            st = os.lstat(entry)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        if not st.st_mode & stat.S_IROTH or (stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH):
            found.append(entry)
        elif stat.S_ISDIR(st.st_mode) and depth < 3:
            found.extend(_private_entries(entry, depth + 1))
    return found


def mask_private_files(folder: str = "/etc") -> list[str]:
    """Cover what only root may read under `folder` (/etc/shadow, private keys): an empty tmpfs
    over such folders, /dev/null over such files. Returns the errors."""
    errors = []
    for entry in _private_entries(folder):
        try:
            if os.path.isdir(entry):
                mount("tmpfs", entry, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "mode=0700,size=4k")
            else:
                mount("/dev/null", entry, None, MS_BIND)
        except OSError as exc:
            errors.append(f"{entry}: {exc.strerror}")
    return errors


def read_only_except(writable: list[str]) -> list[str]:
    """Remount every mount of the namespace read-only, except the `writable` folders (each made a
    mount of its own first). Without this, a runtime running as uid 0 with no Landlock could still
    write every root-owned file (its owner's permission bits need no capability): the grader's
    own site-packages, /etc, sysfs. Keeps each mount's locked flags, which may not be cleared."""
    errors = []
    writable = [os.path.abspath(p) for p in writable if p and os.path.isdir(p)]
    for path in writable:
        mount(path, path, None, MS_BIND | MS_REC)
    for point, options in _mounts():
        if "ro" in options or any(inside(point, w) for w in writable) or inside(point, "/proc") \
                or inside(point, "/dev/shm"):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= _ATIME_AND_SECURITY_FLAGS.get(option, 0)
        try:
            mount(None, point, None, flags)
        except OSError as exc:
            errors.append(f"{point}: {exc.strerror}")
    return errors


def mount_scratch(folder: str, size_bytes: int, files: int) -> None:
    """A size- and inode-limited tmpfs over the runtime's working directory (in its private mount
    namespace): what the student writes there takes neither the grader's disk nor its inodes, and
    stops with ENOSPC at the cap. The grader never reads this folder, only the exchange beside it."""
    mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV,
          f"mode=0755,size={int(size_bytes)},nr_inodes={int(files) + 16}")
    os.makedirs(os.path.join(folder, ".tmp"), exist_ok=True)


def hide_folders(hide: list[str], keep: list[str], writable: list[str], shm_bytes: int | None) -> dict:
    """In a private mount namespace: cover each folder of `hide` with an empty read-only tmpfs,
    bind the `keep` paths beneath them back in place, make everything but `writable` read-only,
    and give the runtime its own /proc (its PID namespace only) and /dev/shm. Returns what was
    done and what failed; a folder whose keep paths cannot be restored is uncovered again, so the
    kernel can always start."""
    done = {"hidden": [], "mount_errors": []}
    keep = list(keep) + list(writable)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep_fds = {}
    for path in sorted({os.path.abspath(p) for p in keep if p}, key=len):
        try:
            keep_fds[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            pass
    try:
        covered: list[str] = []
        for folder in sorted({os.path.realpath(p) for p in hide if p}, key=len):
            # A folder inside a covered one is already gone, unless a kept path brings it back (scikit-learn's
            # data inside an interpreter that lives in the grader's home): then it is covered again.
            if folder == "/" or not os.path.isdir(folder) or any(inside(folder, c) for c in covered) and \
                    not any(inside(folder, k) for k in keep_fds):
                continue
            lost = {k: fd for k, fd in keep_fds.items() if inside(k, folder) or inside(os.path.realpath(k), folder)}
            try:
                mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
            except OSError as exc:
                done["mount_errors"].append(f"{folder}: {exc.strerror}")
                continue
            try:
                for path, fd in sorted(lost.items(), key=lambda kv: len(kv[0])):
                    if _same_file(path, fd):
                        continue                              # already back with a parent
                    if stat.S_ISDIR(os.fstat(fd).st_mode):
                        os.makedirs(path, exist_ok=True)
                    else:
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        open(path, "a").close()
                    mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
                mount(None, folder, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
            except OSError as exc:
                umount(folder)
                done["mount_errors"].append(f"{folder}: {exc.strerror or exc}")
                continue
            covered.append(folder)
        done["hidden"] = covered
    finally:
        for fd in keep_fds.values():
            os.close(fd)
    done["mount_errors"] += mask_private_files("/etc")
    try:
        errors = read_only_except(writable)
        done["mount_errors"] += errors
        done["read_only"] = not errors
    except OSError as exc:
        done["mount_errors"].append(f"read-only remount: {exc.strerror or exc}")
    try:
        options = f"mode=1777,size={int(shm_bytes)},nr_inodes=4096" if shm_bytes else "mode=1777"
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, options)
        done["private_shm"] = True
    except OSError as exc:
        done["mount_errors"].append(f"/dev/shm: {exc.strerror}")
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        done["private_proc"] = True
    except OSError as exc:
        done["mount_errors"].append(f"/proc: {exc.strerror}")
    return done


# --- capabilities and limits ---------------------------------------------------------------------
def drop_capabilities() -> None:
    """Empty the ambient, inheritable and bounding sets: after the next exec, no capability is
    left, whatever the uid (root included)."""
    try:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass
    header = _CapHeader(0x20080522, 0)                     # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) == 0:
        for item in data:
            item.inheritable = 0
        libc.capset(ctypes.byref(header), data)
    try:
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
    except (OSError, ValueError):
        last = 40
    for cap in range(last + 1):
        try:
            prctl(PR_CAPBSET_DROP, cap)
        except OSError:
            pass


def capabilities_now() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of this thread, as 64-bit masks."""
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        fail("capget")
    join = lambda field: getattr(data[0], field) | getattr(data[1], field) << 32   # noqa: E731
    return join("effective"), join("permitted"), join("inheritable")


def end_capabilities() -> None:
    """The last step before student code: securebits locked (where this process may set them), then
    empty effective, permitted and inheritable sets. Raises OSError unless all three are empty."""
    try:
        prctl(PR_SET_SECUREBITS, SECURE_ALL)
    except OSError:
        pass              # needs CAP_SETPCAP: a grader that is not root has nothing to lose anyway
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        fail("capset")
    if any(capabilities_now()):
        raise OSError(1, "capabilities are still set after capset")


def shm_bytes(memory_bytes: int | None) -> int:
    """Size of the runtime's private /dev/shm: an eighth of its memory limit (64 MiB to 1 GiB).
    What a runtime keeps there is memory too, and outlives the process that wrote it."""
    if not memory_bytes:
        return 256 * 2**20
    return int(max(64 * 2**20, min(int(memory_bytes) // 8, 2**30)))


def set_limit(which: int, value: int | None) -> None:
    if value is None:
        return
    soft, hard = resource.getrlimit(which)
    value = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
    resource.setrlimit(which, (value, value))


def apply_rlimits(config: dict) -> None:
    set_limit(resource.RLIMIT_FSIZE, config.get("file_bytes"))
    set_limit(resource.RLIMIT_CORE, 0)
    memory = config.get("memory_bytes")
    if memory:
        # CUDA reserves huge virtual ranges, so address space is only limited on CPU runs.
        which = resource.RLIMIT_DATA if str(config.get("device", "cpu")).startswith("cuda") else resource.RLIMIT_AS
        set_limit(which, memory)


def exit_like(wait_status: int) -> None:
    """Leave with the exit code a shell would report for a child that ended with wait_status."""
    if os.WIFSIGNALED(wait_status):
        os._exit(128 + os.WTERMSIG(wait_status))
    os._exit(os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else 1)


def ignore(signum, frame):  # a handler that does nothing (unlike SIG_IGN, not inherited by exec)
    pass
