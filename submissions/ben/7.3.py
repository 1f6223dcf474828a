# Ben's work on 7.3 (demo class): wrong formula and the wrong padding.
# %%
import torch
from torch.nn import functional as F

# %% 7.3/1
output_shape = "(n_h + p_h - k_h)/s_h + 1"
example_shape = (2, 3)

# %% 7.3/3
mirror_mode = "reflect"


def mirror_pad(X, p):
    if X.dim() == 2:
        return F.pad(X[None, None], (p, p, p, p), mode="replicate")[0, 0]
    return F.pad(X, (p, p, p, p), mode="replicate")


# %% 7.3/4
stride_speedup = "s_h + s_w"

# %% [markdown] 7.3/4
# Fewer outputs to compute.

# %% 7.3/6
def upsample_stride_half(X, K):
    return F.conv_transpose2d(X, K, stride=2)
