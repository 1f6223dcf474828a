"""7.2, right, written differently from the reference."""
# %%
import torch
from torch.nn import functional as F


# %% 7.2/1
def corr2d(X, K):
    h, w = K.shape
    P = X.unfold(0, h, 1).unfold(1, w, 1)
    return (P * K).sum((-2, -1))


def diagonal_image(n):
    return torch.ones(n, n).tril()


kernel_t_detects = "Horizontal edges"


# %% 7.2/2.1
def edge_kernel(v):
    Sx = torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]])
    return v[0] * Sx + v[1] * Sx.T


# %% 7.2/2.2
def second_derivative_kernel():
    return torch.tensor([[-1., 16., -30., 16., -1.]]) / 12


min_size_second_derivative = 3


# %% 7.2/2.3
def blur_kernel(size, sigma):
    return torch.full((size, size), 1.0 / size**2)


# %% 7.2/2.4
min_kernel_size_derivative = "1 + d"


# %% 7.2/4
def corr2d_matmul(X, K):
    cols = F.unfold(X[None, None], K.shape)[0]          # (kh*kw, n_out): one patch per column
    return (K.reshape(1, -1) @ cols).reshape(X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1)


def kernel_matrix(K, X_shape):                          # column k is the response to the k-th unit image
    h, w = X_shape
    basis = torch.eye(h * w, dtype=K.dtype).reshape(h * w, 1, h, w)
    return (F.unfold(basis, K.shape).transpose(1, 2) @ K.reshape(-1)).T
