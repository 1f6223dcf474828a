# Hostile submission for tests/test_hostile.py: SysV IPC and /dev/shm (case 19).
# MODE "plant": four 1 GiB shared-memory segments, a small one and a message queue that hold the
# answer, and a file in /dev/shm; the answer is read back from the segment, so 7.3/4 passes exactly
# when IPC works inside the runtime. None of it may be left on the host afterwards.
# MODE "steal": what a later runtime does: read a planted answer by its key. The test plants it on
# the host itself, so 7.3/4 passes exactly when the runtime can reach the host's IPC objects.
# %%
import ctypes
import os

MODE = "@@MODE@@"
KEY = @@KEY@@
ANSWER = b"s_h*s_w"
IPC_CREAT, SHM_RDONLY, IPC_NOWAIT = 0o1000, 0o10000, 0o4000

libc = ctypes.CDLL(None, use_errno=True)
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmat.restype = ctypes.c_void_p
libc.msgsnd.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.msgrcv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long, ctypes.c_int]


class Message(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("text", ctypes.c_char * 64)]


def plant():
    for i in range(1, 5):
        assert libc.shmget(KEY + i, 2**30, IPC_CREAT | 0o666) >= 0, os.strerror(ctypes.get_errno())
    segment = libc.shmget(KEY, 4096, IPC_CREAT | 0o666)
    ctypes.memmove(libc.shmat(segment, None, 0), ANSWER, len(ANSWER))
    queue = libc.msgget(KEY, IPC_CREAT | 0o666)
    message = Message(1, ANSWER)
    assert libc.msgsnd(queue, ctypes.byref(message), 64, 0) == 0, os.strerror(ctypes.get_errno())
    with open(f"/dev/shm/d2lgrade-plant-{KEY}", "wb") as f:
        f.write(ANSWER)


def steal():
    segment = libc.shmget(KEY, 0, 0)
    if segment >= 0:
        address = libc.shmat(segment, None, SHM_RDONLY)
        if address not in (None, ctypes.c_void_p(-1).value):
            return ctypes.string_at(address, len(ANSWER)).decode()
    queue = libc.msgget(KEY, 0)
    message = Message()
    if queue >= 0 and libc.msgrcv(queue, ctypes.byref(message), 64, 0, IPC_NOWAIT | 0o20000) >= 0:
        return message.text.decode()
    try:
        with open(f"/dev/shm/d2lgrade-plant-{KEY}") as f:
            return f.read()
    except OSError:
        return "s_h+s_w"


if MODE == "plant":
    plant()

# %% 7.3/4
stride_speedup = steal()
