# Ben's work on 7.2 (demo class): runs, but several answers are wrong.
# %%
import torch

# %% 7.2/1
def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def diagonal_image(n):
    return torch.ones(n, n)          # no edge at all


kernel_t_detects = "vertical"

# %% 7.2/2.2
def second_derivative_kernel():
    return torch.tensor([[1.0, -2.0, 1.0]]) / 2     # scaled by half

min_size_second_derivative = 2

# %% 7.2/2.4
min_kernel_size_derivative = "d"

# %% [markdown] 7.2/3
# It cannot compute gradients because of the loops.
