# 7.3/6 built the right way (zeros between inputs, then a convolution) but returned in float32
# when the input is float64 (case 11).
# expect: failed: has dtype torch.float32, expected torch.float64
import torch
from torch.nn import functional as F


def upsample_stride_half(X, K):
    n, c, h, w = X.shape
    k_h, k_w = K.shape[-2:]
    spread = X.new_zeros((n, c, 2 * h - 1, 2 * w - 1))
    spread[:, :, ::2, ::2] = X
    Y = F.conv2d(spread, K.flip(-1, -2).transpose(0, 1), padding=(k_h - 1, k_w - 1))
    return Y.to(torch.float32)
