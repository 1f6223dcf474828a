# Ada's work on 7.2 (demo class): right answers, written her own way.
# %%
import torch
from torch import nn
from torch.nn import functional as F

# %% 7.2/1
def corr2d(X, K):
    kh, kw = K.shape
    rows, cols = X.shape[0] - kh + 1, X.shape[1] - kw + 1
    out = torch.empty(rows, cols)
    for r in range(rows):
        for c in range(cols):
            out[r, c] = torch.sum(X[r:r + kh, c:c + kw] * K)
    return out


def diagonal_image(n):
    # lower triangle of ones: a single edge along the diagonal
    return torch.tril(torch.ones(n, n))


kernel_t_detects = "horizontal"

# %% [markdown] 7.2/1
# The kernel [[1, -1]] fires only where the brightness changes from one column to the next, which on my
# triangle happens right next to the diagonal. Transposing the image turns the vertical edges into
# horizontal ones; the transposed kernel compares rows, so it responds to horizontal edges.

# %% 7.2/2.2
def second_derivative_kernel():
    return torch.tensor([[1.0], [-2.0], [1.0]])


min_size_second_derivative = 3

# %% [markdown] 7.2/2.2
# Thin bright lines, blobs and corners: wherever the intensity curves rather than changing linearly.

# %% 7.2/2.4
min_kernel_size_derivative = "d+1"
