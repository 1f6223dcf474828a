"""7.2, wrong: a checkerboard, a convolution instead of corr2d, "both", the derivative along -v, a Laplacian,
2 taps, a blur half a pixel off, "d" taps, rows of the kernel matrix in column-major order."""
# %%
import torch
from torch.nn import functional as F


# %% 7.2/1
def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K.flip(0, 1)).sum()
    return Y


def diagonal_image(n):
    i = torch.arange(n)
    return ((i[:, None] + i[None, :]) % 2).float()


kernel_t_detects = "both"


# %% 7.2/2.1
def edge_kernel(v):
    return torch.tensor([[v[0] + v[1], -v[0]], [-v[1], 0.0]])


# %% 7.2/2.2
def second_derivative_kernel():
    return torch.tensor([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]])


min_size_second_derivative = 2


# %% 7.2/2.3
def blur_kernel(size, sigma):   # centred half a pixel off
    g = torch.exp(-(torch.arange(size) - size / 2) ** 2 / (2 * sigma ** 2))
    return torch.outer(g, g) / g.sum() ** 2


# %% 7.2/2.4
min_kernel_size_derivative = "d"


# %% 7.2/4
def kernel_matrix(K, X_shape):      # rows in column-major order of the output
    h, w = X_shape
    kh, kw = K.shape
    oh, ow = h - kh + 1, w - kw + 1
    W = K.new_zeros((oh * ow, h * w))
    for i in range(oh):
        for j in range(ow):
            W[j * oh + i].view(h, w)[i:i + kh, j:j + kw] = K
    return W


def corr2d_matmul(X, K):
    oh, ow = X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1
    return (kernel_matrix(K, X.shape) @ X.reshape(-1)).reshape(oh, ow)
