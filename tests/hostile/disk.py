# Hostile submission for tests/test_hostile.py: filling the grading machine's disk (case 16).
# 7.3/1, 7.3/3 and 7.3/4 are right and must keep their points; the disk must not fill up.
# %%
import os

import torch
from torch.nn import functional as F

# %% 7.3/1
output_shape = ("floor((n_h + 2*p_h - k_h)/s_h) + 1", "floor((n_w + 2*p_w - k_w)/s_w) + 1")
example_shape = (2, 2)

# %% 7.3/3
mirror_mode = "reflect"


def mirror_pad(X, p):
    if X.dim() == 2:
        return F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0]
    return F.pad(X, (p, p, p, p), mode="reflect")


# 8 MiB files (each within the file-size limit), one after another until something stops it.
block = b"\1" * 2**20
i = 0
while True:
    with open(f"fill-{i}.bin", "wb") as f:
        for _ in range(8):
            f.write(block)
    i += 1

# %% 7.3/4
stride_speedup = "s_h*s_w"

# %% 7.3/6
def upsample_stride_half(X, K):
    os.makedirs("many", exist_ok=True)
    for i in range(300_000):                 # files by the hundred thousand
        open(f"many/{i}", "w").close()
    return X
