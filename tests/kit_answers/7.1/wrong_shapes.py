"""7.1, wrong: channels last, one value short, only the valid part of the full convolution."""
# %%
import torch


# %% 7.1/1
def one_by_one_as_linear(X, W):
    return X.permute(0, 2, 3, 1) @ W.T


# %% 7.1/2.2
def conv1d(x, w):
    k = len(w)
    y = torch.zeros(len(x) - k, dtype=x.dtype)
    for i in range(len(x) - k):
        y[i] = (x[i:i + k] * w).sum()
    return y


# %% 7.1/6
def conv1d_full(f, g):
    if len(f) < len(g):
        f, g = g, f
    return torch.stack([(f[i:i + len(g)] * g.flip(0)).sum() for i in range(len(f) - len(g) + 1)])
