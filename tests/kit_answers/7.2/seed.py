"""7.2, the student seed's answers (from tests/test_section_7_2.py): the transposed kernel reversed, a rotated
edge kernel, 2d + 1 taps, a kernel matrix cast to float32."""
# %%
import numpy as np
import torch
from torch.nn import functional as F


# %% 7.2/1
def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def diagonal_image(n):
    return torch.tensor([[int(i == j) for j in range(n)] for i in range(n)])


kernel_t_detects = "vertical"


# %% 7.2/2.1
def gen_K(v):
    v = torch.tensor(v, dtype=torch.float32)

    u = v / torch.norm(v)
    K = torch.tensor([[ -u[1], u[0]], [ -u[0], -u[1]]], dtype=torch.float32)
    return K

edge_kernel = gen_K


# %% 7.2/2.2
def second_derivative_kernel():
    return torch.tensor([[1, -2, 1]])


min_size_second_derivative = 3


# %% 7.2/2.3
def gaussian_kernel(size, sigma):
    kernel = np.fromfunction(
        lambda x, y: (1/(2*np.pi*sigma**2)) * np.exp(-((x-size//2)**2 + (y-size//2)**2) / (2*sigma**2)),
        (size, size)
    )
    kernel /= np.sum(kernel)
    return kernel

blur_kernel = gaussian_kernel


# %% 7.2/2.4
min_kernel_size_derivative = "2*d + 1"


# %% 7.2/4
def corr2d_matmul(pic, K):
    pad_K = F.pad(K, (0, pic.shape[1]-K.shape[1], 0, pic.shape[0]-K.shape[0])).type(torch.float32)
    l = []
    for i in range(pic.shape[0]-K.shape[0]+1):
        for j in range(pic.shape[1]-K.shape[1]+1):
            l.append(torch.roll(pad_K, (i, j), (0, 1)).reshape(1, -1))
    return (torch.cat(l, dim=0)@pic.reshape(-1, 1)).reshape(pic.shape[0]-K.shape[0]+1, pic.shape[1]-K.shape[1]+1)


def kernel_matrix(K, X_shape):      # one row per input pixel instead of per output position
    h, w = X_shape
    padded = F.pad(K, (0, w - K.shape[1], 0, h - K.shape[0]))
    return torch.stack([torch.roll(padded, (i, j), (0, 1)).reshape(-1) for i in range(h) for j in range(w)])
