# Ada's work on 7.4 (demo class).
# %%
import torch
from torch.nn import functional as F

# %% 7.4/1.1
def compose_kernels(K1, K2):
    # full convolution of the two kernels: correlate a zero-padded K1 with the flipped K2
    a2, b2 = K2.shape
    padded = F.pad(K1[None, None], (b2 - 1, b2 - 1, a2 - 1, a2 - 1))
    return F.conv2d(padded, K2.flip(0, 1)[None, None])[0, 0]

# %% [markdown] 7.4/1.1
# Each output of the second layer is a weighted sum of first-layer outputs, each itself a weighted sum of
# inputs; regrouping the double sum gives one sum over the input with a combined kernel.

# %% 7.4/1.2
composed_size = "k1 + k2 - 1"

# %% 7.4/1.3
def is_separable(K):
    return bool(torch.linalg.matrix_rank(K.double(), rtol=1e-5) <= 1)


def separate(K):
    U, S, Vh = torch.linalg.svd(K.double())
    return (U[:, 0] * S[0].sqrt()).to(K.dtype), (Vh[0] * S[0].sqrt()).to(K.dtype)


gaussian_separable = True
