"""Reference for 7.2 Convolutions for images: the book's code and a correct answer to every exercise.

Percent-format cells (`# %% 7.2/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`.
"""
# %%
import torch
from torch import nn
from torch.nn import functional as F


# %% The book's code: cross-correlation and a convolutional layer
def corr2d(X, K):
    """Compute 2D cross-correlation."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(kernel_size))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return corr2d(x, self.weight) + self.bias


# %% The book's code: edge detection, and learning the 1x2 kernel back from (X, Y)
def edge_example():
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    K = torch.tensor([[1.0, -1.0]])
    return X, corr2d(X, K)


def learn_kernel(X, Y, epochs=10, lr=3e-2):
    torch.manual_seed(0)
    conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
    X, Y = X.reshape((1, 1) + X.shape), Y.reshape((1, 1) + Y.shape)
    for _ in range(epochs):
        loss = ((conv2d(X) - Y) ** 2).sum()
        conv2d.zero_grad()
        loss.backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
    return conv2d.weight.data.reshape((1, 2))


# %% 7.2/1
def diagonal_image(n):
    """An n x n image that is 1 on the main diagonal and 0 elsewhere: two diagonal edges."""
    return torch.eye(n)


kernel_t_detects = "horizontal"   # K.T = [[1], [-1]] takes differences down a column

# %% [markdown] 7.2/1
# 1. On `torch.eye(n)` the kernel `[[1, -1]]` answers only beside the diagonal: +1 where the pixel on the
#    diagonal is followed by a 0 to its right, -1 where a 0 is followed by the diagonal pixel. The line has
#    an edge on each side, hence two adjacent diagonal bands; flat regions give 0.
# 2. The identity is symmetric, so `X.T` is `X` and the output does not change. For any image,
#    `corr2d(X.T, K)` equals `corr2d(X, K.T).T`: transposing the image is transposing the kernel.
# 3. `K.T = [[1], [-1]]` subtracts a pixel from the one below it, so it detects horizontal edges (`K`
#    detects vertical ones). On the diagonal it gives the two bands again, offset by rows instead of
#    columns, and the output is (n - 1) x n instead of n x (n - 1).

# %% 7.2/2.1
def edge_kernel(v):
    """The directional derivative along v = (v1, v2): v1 * d/dx + v2 * d/dy with forward differences."""
    v1, v2 = float(v[0]), float(v[1])
    return torch.tensor([[-(v1 + v2), v1], [v2, 0.0]])


# %% 7.2/2.2
def second_derivative_kernel():
    """f(x - 1) - 2 f(x) + f(x + 1): exact for quadratics, so x**2 gives 2."""
    return torch.tensor([[1.0, -2.0, 1.0]])


min_size_second_derivative = 3

# %% [markdown] 7.2/2.2
# The second difference `[1, -2, 1]` vanishes on constant and linear regions and responds where the
# intensity bends: thin lines and ridges, isolated spots and corners. Across a step edge it changes sign
# (a zero crossing on the edge). In 2-D the sum of both axes is the Laplacian
# `[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`.

# %% 7.2/2.3
def blur_kernel(size, sigma):
    """A normalised Gaussian: nonnegative, sums to 1, symmetric."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    K = g[:, None] * g[None, :]
    return (K / K.sum()).float()

# %% [markdown] 7.2/2.3
# A blur replaces each pixel by a weighted average of its neighbourhood. Averaging independent noise
# shrinks its variance, so blurring denoises; it also removes frequencies that would alias when the image
# is downsampled, and it exposes coarse structure (scale space) or hides detail (privacy).

# %% 7.2/2.4
# d + 1 samples determine a polynomial of degree d, whose d-th derivative is the estimate (a one-sided
# difference); a centred stencil needs 2*ceil(d/2) + 1 taps, which is d + 1 only for even d.
min_kernel_size_derivative = "d + 1"

# %% [markdown] 7.2/3
# In PyTorch the loop's element-wise assignments into `Y` are recorded by autograd, so `Conv2D` has
# gradients: with a scalar loss such as `out.sum()` backward works and the layer trains (it passes
# `torch.autograd.gradcheck`). Calling `out.backward()` on the non-scalar output raises "grad can be
# implicitly created only for scalar outputs" (give a scalar or an explicit `gradient=`), and feeding the
# 4-D batch of shape (1, 1, 6, 8) fails in `corr2d` with "too many values to unpack", because `corr2d`
# handles 2-D tensors only. The question comes from the MXNet edition, where assigning into an array
# under autograd raises an error of its own.

# %% 7.2/4
def kernel_matrix(K, X_shape):
    """W (n_out x n_in): row i*ow + j holds K at rows i..i+kh-1 and columns j..j+kw-1 of the input."""
    h, w = X_shape
    kh, kw = K.shape
    oh, ow = h - kh + 1, w - kw + 1
    W = K.new_zeros((oh * ow, h * w))
    for i in range(oh):
        for j in range(ow):
            W[i * ow + j].view(h, w)[i:i + kh, j:j + kw] = K
    return W


def corr2d_matmul(X, K):
    """Cross-correlation as one matrix-vector product with the kernel matrix."""
    oh, ow = X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1
    return (kernel_matrix(K.to(X.dtype), tuple(X.shape)) @ X.reshape(-1)).reshape(oh, ow)
