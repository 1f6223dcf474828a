# Dana's work on 7.3 (demo class): right, except a transposed convolution that never finishes.
# %%
import torch
from torch.nn import functional as F

# %% 7.3/1
output_shape = "floor((n_h - k_h + 2*p_h + s_h) / s_h)"
example_shape = (2, 2)

# %% [markdown] 7.3/2
# Keeping one sample in two halves the sampling rate; without a low-pass filter first, high frequencies alias.

# %% 7.3/3
mirror_mode = "symmetric"


def mirror_pad(X, p):
    # flip the border strips and stick them on (the border value is repeated)
    top, bottom = X[..., :p, :].flip(-2), X[..., -p:, :].flip(-2)
    X = torch.cat([top, X, bottom], dim=-2)
    left, right = X[..., :, :p].flip(-1), X[..., :, -p:].flip(-1)
    return torch.cat([left, X, right], dim=-1)


# %% 7.3/4
stride_speedup = "s_w*s_h"

# %% 7.3/6
def upsample_stride_half(X, K):
    steps = 0
    while steps >= 0:            # meant to stop at the right size; it never does
        steps += 1
    return X
