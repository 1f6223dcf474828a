"""Landlock for the student runtime: which files it may read, execute and write, and the syscalls
that make those rules hold for the launcher's whole process tree.

Standard library only, like isolation.py beside it: `sandbox.py` loads both as plain modules in the
process that becomes the kernel; the grader and the tests import `d2lgrade.inside.landlock_rules`.
"""
from __future__ import annotations

import ctypes
import os
import stat
import sys

if __package__:     # imported by the grader as part of the package
    from .isolation import PR_SET_NO_NEW_PRIVS, fail, inside, libc, prctl
else:               # loaded by path in the launcher, which put this folder on sys.path
    from isolation import PR_SET_NO_NEW_PRIVS, fail, inside, libc, prctl

SYS_landlock_create_ruleset, SYS_landlock_add_rule, SYS_landlock_restrict_self = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

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


# --- Landlock -------------------------------------------------------------------------------------
def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel; 0 where Landlock is missing or disabled."""
    abi = libc.syscall(SYS_landlock_create_ruleset, None, ctypes.c_size_t(0),
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
    ruleset = libc.syscall(SYS_landlock_create_ruleset, ctypes.byref(attr), ctypes.c_size_t(size),
                            ctypes.c_uint32(0))
    if ruleset < 0:
        fail("landlock_create_ruleset")
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
                if libc.syscall(SYS_landlock_add_rule, ctypes.c_int(ruleset), ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                                 ctypes.byref(beneath), ctypes.c_uint32(0)) != 0:
                    skipped.append(path)
            finally:
                os.close(fd)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        if libc.syscall(SYS_landlock_restrict_self, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            fail("landlock_restrict_self")
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
        if entry and os.path.isabs(entry) and not inside(entry, here):
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
        if any(inside(real, d) for d in deny) and not any(inside(real, p) for p in prefixes):
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
    exposed = [d for d in deny if any(inside(d, r) for r in readable)]
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
        inner = [h for h in hidden if h != real and inside(h, real)]
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
        below = [h for h in hidden if inside(h, real)]
        if below and os.path.isdir(real):
            parts.extend(_entries_but(real, rights, below))
        else:
            parts.append((entry, rights))
    return parts
