# Hostile submission for tests/test_hostile.py: code that exits or interrupts itself (case 5).
# Each graded function leaves a different way; 7.3/4 is right and must still earn its point after
# the runtime died and was restarted.
# %%
import os
import sys

import torch
from torch.nn import functional as F

# %% 7.3/1
output_shape = ("floor((n_h + 2*p_h - k_h)/s_h) + 1", "floor((n_w + 2*p_w - k_w)/s_w) + 1")
example_shape = (2, 2)
sys.exit(0)              # at import: IPython turns it into an error of this cell; the answers stand

# %% 7.3/3
mirror_mode = "reflect"


def mirror_pad(X, p):
    if X.dim() == 2:
        raise KeyboardInterrupt
    os._exit(0)          # the batched case kills the runtime outright


# %% 7.3/4
stride_speedup = "s_h*s_w"
raise SystemExit(3)      # also at import

# %% 7.3/6
def upsample_stride_half(X, K):
    sys.exit(0)
