# Hostile submission for tests/test_hostile.py: code that hangs (case 1).
# Each exercise of 7.3 gets a different way of never finishing; 7.3/4 is right and must still earn
# its point, and the grader must finish well inside its limits.
# %%
import time

import torch
from torch.nn import functional as F

# %% 7.3/1
# An endless loop at import that also swallows the interrupt the grader sends: only a restart of
# the runtime ends it. The answers below it never run.
while True:
    try:
        time.sleep(0.05)
    except BaseException:
        pass
output_shape = ("floor((n_h + 2*p_h - k_h)/s_h) + 1", "floor((n_w + 2*p_w - k_w)/s_w) + 1")
example_shape = (2, 2)

# %% 7.3/3
mirror_mode = "reflect"


def mirror_pad(X, p):
    if X.dim() == 2:
        while True:          # an endless loop inside the graded function
            pass
    time.sleep(10**6)        # the batched case sleeps instead: the grader's alarm ends it too


# %% 7.3/4
stride_speedup = "s_h*s_w"

# %% 7.3/6
def upsample_stride_half(X, K):
    return upsample_stride_half(X, K)     # endless recursion: RecursionError, not a hang
