"""Operating-system isolation of the student runtime: namespaces, Landlock, capabilities, rlimits.

Standard library only. `sandbox.py` loads this file as a plain module (it sits next to it) in the
process that becomes the kernel, before anything of the package could be imported there; the
grader imports it as `d2lgrade.run.isolation` for the names and the status it reports.

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
import json
import os
import resource
import signal
import stat
import sys

WORK = "work"                 # the student's working directory, inside the runtime's scratch dir
STATUS_FILE = "sandbox.json"  # written by the launcher into the grader-private dir

# --- syscalls -----------------------------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

SYS_landlock_create_ruleset, SYS_landlock_add_rule, SYS_landlock_restrict_self = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
PR_SET_SECUREBITS = 28
# NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE, each locked, and KEEP_CAPS locked off: uid 0 gains
# no capability from an exec, and nothing the runtime does can switch that back.
SECURE_ALL = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = \
    0x00020000, 0x08000000, 0x10000000, 0x20000000, 0x40000000

# Landlock filesystem rights, with the ABI that introduced them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15           # ABI 2, 3, 5
FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
FS_ALL = (1 << 16) - 1                                             # ABI 5 and later
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1                     # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1          # ABI 6
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV   # what a rule on a file may grant

READ = READ_FILE | READ_DIR
READ_EXEC = READ | EXECUTE
DEVICE = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV
WORK_RW = (READ | WRITE_FILE | TRUNCATE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK
           | MAKE_FIFO | MAKE_SYM | REFER)            # no EXECUTE: nothing the student writes is run
EXCHANGE_RW = READ | WRITE_FILE | TRUNCATE | REMOVE_FILE | MAKE_REG   # no links, FIFOs or sockets
SHM_RW = READ | WRITE_FILE | TRUNCATE | REMOVE_FILE | MAKE_REG

# Read-only system locations an interpreter (and CUDA) needs. /etc is added entry by entry,
# world-readable entries only (no /etc/shadow, no private keys), see _world_readable.
SYSTEM_READ_EXEC = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")
SYSTEM_READ = ("/proc", "/sys")
DEVICE_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
GPU_DEVICE_PREFIXES = ("nvidia", "dri", "kfd")     # NVIDIA, DRM render nodes, AMD ROCm


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _fail(what: str):
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


def prctl(option: int, arg: int = 0) -> None:
    if _libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        _fail(f"prctl({option})")


# --- Landlock -------------------------------------------------------------------------------------
def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel; 0 where Landlock is missing or disabled."""
    abi = _libc.syscall(SYS_landlock_create_ruleset, None, ctypes.c_size_t(0),
                        ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(0, int(abi))


def landlock_restrict(rules: list[tuple[str, int]], abi: int) -> list[str]:
    """Allow only `rules` ((path, rights) pairs) from now on, for this process and its children.

    Returns the paths that could not be added (missing ones are skipped silently by the caller)."""
    fs = FS_BY_ABI.get(abi, FS_ALL)
    attr = _RulesetAttr(handled_access_fs=fs,
                        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
                        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = _libc.syscall(SYS_landlock_create_ruleset, ctypes.byref(attr), ctypes.c_size_t(size),
                            ctypes.c_uint32(0))
    if ruleset < 0:
        _fail("landlock_create_ruleset")
    skipped = []
    try:
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                skipped.append(path)
                continue
            try:
                allowed = rights & fs
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    allowed &= FILE_RIGHTS
                if not allowed:
                    continue
                beneath = _PathBeneathAttr(allowed_access=allowed, parent_fd=fd)
                if _libc.syscall(SYS_landlock_add_rule, ctypes.c_int(ruleset), ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                                 ctypes.byref(beneath), ctypes.c_uint32(0)) != 0:
                    skipped.append(path)
            finally:
                os.close(fd)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        if _libc.syscall(SYS_landlock_restrict_self, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            _fail("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return skipped


def _world_readable(path: str, depth: int = 0) -> list[str]:
    """The parts of `path` that every user of the machine may read: the whole tree where that is
    true, else its readable entries one level down (so /etc gives /etc/passwd but not /etc/shadow,
    and /etc/ssl/certs but not /etc/ssl/private)."""
    try:
        st = os.stat(path)
        link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return []
    if not st.st_mode & stat.S_IROTH:
        return []
    if link or not stat.S_ISDIR(st.st_mode):      # a link is allowed as what it points to; not walked
        return [path]
    if not st.st_mode & stat.S_IXOTH:
        return []
    if depth >= 3:
        return []
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return []
    parts, whole = [], True
    for name in names:
        sub = _world_readable(os.path.join(path, name), depth + 1)
        if sub != [os.path.join(path, name)]:
            whole = False
        parts.extend(sub)
    return [path] if whole else parts


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def interpreter_paths() -> list[str]:
    """Where this interpreter loads code from (the kernel runs the same interpreter)."""
    import site
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    try:
        paths.update(site.getsitepackages())
    except AttributeError:
        pass
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if user_site:
        paths.add(user_site)
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path[1:]:                       # [0] is this launcher's own folder: not the kernel's
        if entry and os.path.isabs(entry) and not _inside(entry, here):
            paths.add(entry)
    for var in ("LD_LIBRARY_PATH",):
        paths.update(p for p in os.environ.get(var, "").split(":") if os.path.isabs(p))
    for var in ("CUDA_HOME", "CUDA_PATH", "ROCM_PATH"):
        if os.path.isabs(os.environ.get(var, "")):
            paths.add(os.environ[var])
    return sorted(p for p in paths if p and os.path.exists(p))


def plan_rules(config: dict, command: list[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """The Landlock allow-list for the kernel, and the denied folders it would still expose."""
    deny = [os.path.realpath(p) for p in config.get("deny", []) if p]
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    rules: list[tuple[str, int]] = []
    for path in interpreter_paths():
        real = os.path.realpath(path)
        # A path entry inside a hidden folder (an editable install of the project) is left out;
        # the interpreter's own folders are kept even there (a venv in the project), or nothing runs.
        if any(_inside(real, d) for d in deny) and not any(_inside(real, p) for p in prefixes):
            continue
        rules.append((path, READ_EXEC))
    rules += [(p, READ_EXEC) for p in SYSTEM_READ_EXEC]
    rules += [(p, READ) for p in SYSTEM_READ]
    rules += [(p, READ) for p in _world_readable("/etc")]
    rules += [(p, READ) for p in config.get("read", []) if p]
    rules.append(("/dev", READ_DIR))
    rules += [(p, DEVICE) for p in DEVICE_FILES]
    rules.append(("/dev/shm", SHM_RW))
    try:
        for name in os.listdir("/dev"):
            if name.startswith(GPU_DEVICE_PREFIXES):
                rules.append((os.path.join("/dev", name), DEVICE | READ_DIR))
    except OSError:
        pass
    if config.get("cwd"):
        rules.append((config["cwd"], WORK_RW))
    if config.get("exchange"):
        rules.append((config["exchange"], EXCHANGE_RW))
    if config.get("ipc_dir"):
        rules.append((config["ipc_dir"], MAKE_SOCK))
    if "-f" in command[:-1]:                                  # the kernel's connection file
        rules.append((command[command.index("-f") + 1], READ_FILE))
    rules = carve(rules, deny)
    readable = [os.path.realpath(p) for p, rights in rules if rights & READ_FILE and os.path.isdir(p)]
    exposed = [d for d in deny if any(_inside(d, r) for r in readable)]
    return rules, exposed


def carve(rules: list[tuple[str, int]], hidden: list[str]) -> list[tuple[str, int]]:
    """`rules` without the `hidden` paths that lie strictly inside one of their folders.

    Landlock only adds rights, and a folder's rights reach everything below it, so a hole cannot be
    cut into an allowed folder: such a folder is replaced by rules for each of its entries except the
    hidden one (descending along the path to it), and keeps only the right to list its own names
    (an interpreter's import system lists site-packages). The hidden path's names stay listable;
    its contents are unreadable."""
    hidden = [os.path.realpath(h) for h in hidden if h]
    carved: list[tuple[str, int]] = []
    for path, rights in rules:
        real = os.path.realpath(path)
        inner = [h for h in hidden if h != real and _inside(h, real)]
        if not inner or not os.path.isdir(real) or not rights & READ_FILE:
            carved.append((path, rights))
            continue
        carved.extend(_entries_but(real, rights, inner))
    return list(dict.fromkeys(carved))        # nested allowed folders (prefix, lib, site-packages) split alike


def _entries_but(folder: str, rights: int, hidden: list[str]) -> list[tuple[str, int]]:
    parts = [(folder, rights & READ_DIR)]
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return parts
    for name in names:
        entry = os.path.join(folder, name)
        real = os.path.realpath(entry)
        if real in hidden:
            continue
        below = [h for h in hidden if _inside(h, real)]
        if below and os.path.isdir(real):
            parts.extend(_entries_but(real, rights, below))
        else:
            parts.append((entry, rights))
    return parts


# --- namespaces -----------------------------------------------------------------------------------
def unshare(flags: int) -> None:
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        _fail("unshare")


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
    if _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        _fail(f"mount {target}")


def umount(target: str) -> None:
    if _libc.umount2(os.fsencode(target), ctypes.c_int(MNT_DETACH)) != 0:
        _fail(f"umount {target}")


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
        if "ro" in options or any(_inside(point, w) for w in writable) or _inside(point, "/proc") \
                or _inside(point, "/dev/shm"):
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
            if folder == "/" or not os.path.isdir(folder) or any(_inside(folder, c) for c in covered) and \
                    not any(_inside(folder, k) for k in keep_fds):
                continue
            lost = {k: fd for k, fd in keep_fds.items() if _inside(k, folder) or _inside(os.path.realpath(k), folder)}
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


# --- cgroups ------------------------------------------------------------------------------------
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
    if _libc.capget(ctypes.byref(header), data) == 0:
        for item in data:
            item.inheritable = 0
        _libc.capset(ctypes.byref(header), data)
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
    if _libc.capget(ctypes.byref(header), data) != 0:
        _fail("capget")
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
    if _libc.capset(ctypes.byref(header), data) != 0:
        _fail("capset")
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


# --- what the grader reads back -------------------------------------------------------------------
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


def exit_like(wait_status: int) -> None:
    """Leave with the exit code a shell would report for a child that ended with wait_status."""
    if os.WIFSIGNALED(wait_status):
        os._exit(128 + os.WTERMSIG(wait_status))
    os._exit(os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else 1)


def ignore(signum, frame):  # a handler that does nothing (unlike SIG_IGN, not inherited by exec)
    pass


__all__ = ["WORK", "STATUS_FILE", "landlock_abi", "landlock_restrict", "plan_rules", "enter_user_namespace",
           "unshare", "drop_capabilities", "apply_rlimits", "notes_for", "read_status", "signal"]
