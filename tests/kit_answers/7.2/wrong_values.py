"""7.2, wrong: a vertical edge, a library corr2d, "vertical", a kernel that fires on edges along v,
[-1, 2, -1], an unnormalised blur, "2d + 1" (not a formula), a rolled flat kernel, a decoy product."""
# %%
import torch
from torch.nn import functional as F


# %% 7.2/1
def corr2d(X, K):
    return F.conv2d(X[None, None], K[None, None])[0, 0]


def diagonal_image(n):
    X = torch.ones(n, n)
    X[:, 2:] = 0
    return X


kernel_t_detects = "Vertical edges"


# %% 7.2/2.1
def edge_kernel(v):
    v1, v2 = float(v[0]), float(v[1])
    D = torch.tensor([[0., 0., 0.], [-0.5, 0., 0.5], [0., 0., 0.]])
    Dxx = torch.tensor([[0., 0., 0.], [1., -2., 1.], [0., 0., 0.]])
    Dxy = torch.tensor([[1., 0., -1.], [0., 0., 0.], [-1., 0., 1.]]) / 4
    return v1 * D + v2 * D.T + 2 * (v2 * v2 * Dxx + v1 * v1 * Dxx.T - 2 * v1 * v2 * Dxy)


# %% 7.2/2.2
def second_derivative_kernel():
    return torch.tensor([[-1., 2., -1.]])


min_size_second_derivative = "3"


# %% 7.2/2.3
def blur_kernel(size, sigma):
    return torch.ones(size, size)


# %% 7.2/2.4
min_kernel_size_derivative = "2d + 1"


# %% 7.2/4
def kernel_matrix(K, X_shape):      # rolls the flat kernel: its rows run on into the next input row
    h, w = X_shape
    kh, kw = K.shape
    flat = K.new_zeros(h * w)
    flat[:kh * kw] = K.reshape(-1)
    return torch.stack([torch.roll(flat, i * w + j) for i in range(h - kh + 1) for j in range(w - kw + 1)])


def corr2d_matmul(X, K):
    h, w = K.shape
    Y = X.new_zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    _ = X @ X.T
    return Y
