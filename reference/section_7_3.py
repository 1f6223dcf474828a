"""Reference for 7.3 Padding and stride: the book's code and a correct answer to every exercise.

Percent-format cells (`# %% 7.3/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`.
"""
# %%
import torch
from torch import nn
from torch.nn import functional as F


# %% The book's code
def comp_conv2d(conv2d, X):
    """Apply a convolution to a single-channel 2-D tensor and drop the batch/channel axes."""
    X = X.reshape((1, 1) + X.shape)
    Y = conv2d(X)
    return Y.reshape(Y.shape[2:])


# %% 7.3/1
# h_o = floor((8 + 0 - 3)/3) + 1 = 2 and w_o = floor((8 + 2 - 5)/4) + 1 = 2 (stride 4 on the width).
output_shape = ("floor((n_h + 2*p_h - k_h)/s_h) + 1", "floor((n_w + 2*p_w - k_w)/s_w) + 1")
example_shape = (2, 2)

# %% [markdown] 7.3/2
# A stride of 2 keeps every second sample: the signal is downsampled by 2, halving its sample rate.
# Frequencies above the new Nyquist limit alias unless the signal is low-pass filtered first.

# %% 7.3/3
mirror_mode = "reflect"


def mirror_pad(X, p):
    """Reflect-pad the last two axes by p (border value not repeated)."""
    if X.dim() == 2:
        return F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0]
    return F.pad(X, (p, p, p, p), mode="reflect")


# %% 7.3/4
stride_speedup = "s_h*s_w"

# %% [markdown] 7.3/4
# The cost of a convolution is proportional to the number of output positions; a stride of (s_h, s_w)
# computes only about one in s_h*s_w of them.

# %% [markdown] 7.3/5
# Neighbouring outputs of a stride-1 convolution are highly correlated; a larger stride keeps fewer,
# less redundant features, grows the receptive field of later layers faster, adds some invariance to
# small shifts, and with fewer activations downstream tends to overfit less.

# %% 7.3/6
def upsample_stride_half(X, K):
    """Transposed convolution with stride 2: zeros between inputs, pad by k-1, flipped kernel."""
    n, c, h, w = X.shape
    k_h, k_w = K.shape[-2:]
    spread = X.new_zeros((n, c, 2 * h - 1, 2 * w - 1))
    spread[:, :, ::2, ::2] = X
    weight = K.flip(-1, -2).transpose(0, 1)          # (C_out, C_in, k_h, k_w)
    return F.conv2d(spread, weight, padding=(k_h - 1, k_w - 1))

# %% Grader-side expected values (not part of the answer): the accepted "symmetric" variant of 7.3/3, and
# the unflipped-kernel mistake of 7.3/6 that the grader names. They live here so that a student kit, which
# replays recordings of them, does not hold their code.
def _symmetric_pad(X, p):
    """Mirror padding that repeats the border value."""
    def axis(n):
        idx = torch.arange(-p, n + p)
        idx = torch.where(idx < 0, -idx - 1, idx)
        return torch.where(idx >= n, 2 * n - idx - 1, idx)
    return X[..., axis(X.shape[-2])[:, None], axis(X.shape[-1])[None, :]]


def _unflipped_stride_half(X, K):
    """Zero insertion and a convolution with the kernel NOT flipped: the mistake 7.3/6 names."""
    k_h, k_w = K.shape[-2:]
    spread = X.new_zeros((*X.shape[:2], 2 * X.shape[2] - 1, 2 * X.shape[3] - 1))
    spread[:, :, ::2, ::2] = X
    return F.conv2d(spread, K.transpose(0, 1), padding=(k_h - 1, k_w - 1))


# %% [markdown] 7.3/6
# A stride of 1/2 is a transposed (fractionally strided) convolution: put zeros between the inputs
# and convolve. It upsamples, as in segmentation decoders, GAN generators and super-resolution.
