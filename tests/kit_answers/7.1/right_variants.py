"""7.1, right, written differently from the reference."""
# %%
import torch
from torch.nn import functional as F


# %% 7.1/1
def one_by_one_as_linear(X, W):
    return F.linear(X.permute(0, 2, 3, 1), W).permute(0, 3, 1, 2)


# %% 7.1/2.2
def conv1d(x, w):
    return x.unfold(0, len(w), 1) @ w


# %% 7.1/6
def conv1d_full(f, g):            # coefficients of the product of two polynomials: sum over i + j = k
    products = (f[:, None] * g[None, :]).flip(0)        # anti-diagonals become diagonals
    return torch.stack([products.diagonal(offset=o).sum() for o in range(1 - len(f), len(g))])
