"""7.1, wrong: W applied transposed, the kernel reversed, and a full convolution written for len(f) >= len(g)."""
# %%
import torch
from torch.nn import functional as F


# %% 7.1/1
def one_by_one_as_linear(X, W):
    return torch.einsum('co,nchw->nohw', W, X)


# %% 7.1/2.2
def conv1d(x, w):
    k = len(w)
    return torch.stack([(x[i:i + k] * w.flip(0)).sum() for i in range(len(x) - k + 1)])


# %% 7.1/6
def conv1d_full(f, g):            # assumes len(f) >= len(g): drops the tail when f is shorter
    out = f.new_zeros(len(f) + len(g) - 1)
    for n in range(len(f)):
        for m in range(len(g)):
            if n - m >= 0:
                out[n] += g[m] * f[n - m]
    return out
