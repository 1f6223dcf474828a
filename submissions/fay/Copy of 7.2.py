# 7.2 (demo class): downloaded from the LMS as "Copy of 7.2.py"; Ada's answers with the names changed.
# %%
import torch
from torch import nn
from torch.nn import functional as F

# %% 7.2/1
def corr2d(X, K):
    a, b = K.shape
    h, w = X.shape[0] - a + 1, X.shape[1] - b + 1
    Y = torch.empty(h, w)
    for i in range(h):
        for j in range(w):        # slide the kernel over the image
            Y[i, j] = torch.sum(X[i:i + a, j:j + b] * K)
    return Y


def diagonal_image(size):
    return torch.tril(torch.ones(size, size))


kernel_t_detects = "horizontal"

# %% [markdown] 7.2/1
# Transposing the image swaps vertical and horizontal edges, so the transposed kernel finds horizontal ones.

# %% 7.2/2.2
def second_derivative_kernel():
    return torch.tensor([[1.0], [-2.0], [1.0]])


min_size_second_derivative = 3

# %% 7.2/2.4
min_kernel_size_derivative = "d+1"
