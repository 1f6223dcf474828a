# Hostile submission for tests/test_hostile.py: capabilities (case 20). The runtime reads its own
# capability sets and tries what root's capabilities allow: unmounting the covers over the project
# and /tmp, mounting, raising a hard limit. The test reads the names below from the runtime.
# %%
import ctypes
import resource

libc = ctypes.CDLL(None, use_errno=True)
with open("/proc/self/status") as f:
    caps = {line.split(":")[0]: int(line.split(":")[1], 16) for line in f if line.startswith("Cap")}
attempts = {}
for target in ("@@PROJECT@@", "/tmp"):
    attempts["umount " + target] = libc.umount2(target.encode(), 2) == 0
attempts["mount"] = libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None) == 0
try:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    attempts["raise a hard limit"] = True
except (ValueError, OSError):
    attempts["raise a hard limit"] = False
