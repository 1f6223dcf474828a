# Hostile submission for tests/test_hostile.py: memory, processes and disk (cases 2 and 3).
# 7.3/1 and 7.3/4 are right and must keep their points; the grader and the machine must be fine.
# %%
import os
import time

import torch
from torch.nn import functional as F

# %% 7.3/1
output_shape = ("floor((n_h + 2*p_h - k_h)/s_h) + 1", "floor((n_w + 2*p_w - k_w)/s_w) + 1")
example_shape = (2, 2)
hoard = bytearray(50 * 10**9)       # 50 GB at import: MemoryError, this cell's answers stand

# %% 7.3/3
mirror_mode = "reflect"


def mirror_pad(X, p):
    if X.dim() == 2:
        return torch.ones(50 * 10**9 // 4)        # 50 GB in one tensor
    # A fork bomb: children leave the process group and sleep, so only the runtime's process
    # limit stops it and only its PID namespace takes them all down.
    while True:
        if os.fork() == 0:
            try:
                os.setsid()
                time.sleep(600)
            finally:
                os._exit(0)


# %% 7.3/4
stride_speedup = "s_h*s_w"

# %% 7.3/6
def upsample_stride_half(X, K):
    with open("big.bin", "wb") as f:                 # past the file-size limit
        for _ in range(64):
            f.write(b"\0" * 2**20)
    return X
