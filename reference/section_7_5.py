"""Reference for 7.5 Pooling: the book's code and a correct answer to every exercise.

Percent-format cells (`# %% 7.5/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`. max(a, b) = b + relu(a - b) and the pooling shape
and cost formulas are also proved by machine in reference/proofs.py.
"""
# %%
import torch
from torch import nn
from torch.nn import functional as F


# %% The book's code
def pool2d(X, pool_size, mode='max'):
    """Max or average pooling of a 2-D tensor with stride 1 (the section's from-scratch version)."""
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == 'max':
                Y[i, j] = X[i: i + p_h, j: j + p_w].max()
            elif mode == 'avg':
                Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
    return Y


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# %% 7.5/1
def avg_pool_via_conv(X, pool_size, stride=None):
    """A depthwise convolution (groups = channels) with the constant kernel 1/(p_h·p_w)."""
    k_h, k_w = _pair(pool_size)
    stride = (k_h, k_w) if stride is None else _pair(stride)
    channels = X.shape[1]
    kernel = X.new_full((channels, 1, k_h, k_w), 1.0 / (k_h * k_w))
    return F.conv2d(X, kernel, stride=stride, groups=channels)


# %% 7.5/2
max_nonlinear_counterexample = ([1, 0], [0, 1])   # max(x + y) = 1, max(x) + max(y) = 2

# %% [markdown] 7.5/2
# A convolution is linear: conv(x + y) = conv(x) + conv(y) for every kernel. Max pooling is not: for the
# window x = (1, 0), y = (0, 1) we get max(x + y) = max(1, 1) = 1 but max(x) + max(y) = 2. A linear map
# that agreed with max pooling would have to satisfy both, so no kernel computes max pooling.

# %% 7.5/3.1
max_via_relu = "b + relu(a - b)"


# %% 7.5/3.2
class MaxPoolViaReLU(nn.Module):
    """Max pooling from a fixed one-hot convolution and a tree of max(a, b) = b + relu(a - b)."""

    def __init__(self, pool_size=2):
        super().__init__()
        self.k = _pair(pool_size)
        k_h, k_w = self.k
        # One output channel per position of the window: picks that pixel (a 1-channel convolution,
        # applied to every input channel separately).
        self.register_buffer("pick", torch.eye(k_h * k_w).reshape(k_h * k_w, 1, k_h, k_w))

    def forward(self, X):
        n, c, h, w = X.shape
        pixels = F.conv2d(X.reshape(n * c, 1, h, w), self.pick.to(X.dtype), stride=self.k)
        values = list(pixels.unbind(1))                     # k_h·k_w maps of shape (n·c, h_o, w_o)
        while len(values) > 1:                              # one ReLU layer per level of the tree
            pairs = [b + F.relu(a - b) for a, b in zip(values[0::2], values[1::2])]
            values = pairs + values[len(pairs) * 2:]
        return values[0].reshape(n, c, *values[0].shape[-2:])


# %% 7.5/3.3
relu_levels_2x2 = 2
relu_levels_3x3 = 4

# %% [markdown] 7.5/3.3
# Pairwise maxima form a binary tree. A 2 × 2 window: the convolution picks the 4 pixels (4 channels);
# level 1 takes 2 differences through ReLU (2 channels) giving two maxima, level 2 one more: 2 ReLU
# layers. A 3 × 3 window: 9 picks, then 4, 2, 1, 1 maxima: ⌈log2 9⌉ = 4 levels (a cleverer construction
# manages with 3). One hidden ReLU layer cannot compute the maximum of more than two numbers.

# %% 7.5/4
pool_cost = "c*p_h*p_w*(floor((h + p_h)/s_h) + 1)*(floor((w + p_w)/s_w) + 1)"

# %% Grader-side expected values (not part of the answer): the other accepted form of 7.5/4 and the mistake
# the grader names that is too close to the answer to be written in the grader, and the other layer count
# 7.5/3.3 accepts. They live here so that a student kit, which holds the formulas' values at sample points
# and never their text, does not hold them either.
_accepted_forms = {
    "pool_cost, p_h*p_w - 1 comparisons": "c*(p_h*p_w - 1)*(floor((h + p_h)/s_h) + 1)*(floor((w + p_w)/s_w) + 1)",
}
_mistakes = {
    "pooling outputs": "c*(floor((h + p_h)/s_h) + 1)*(floor((w + p_w)/s_w) + 1)",
    "ceiling, no window work": "c*ceiling((h + 2*p_h - p_h)/s_h)*ceiling((w + 2*p_w - p_w)/s_w)",
    "ceiling": "c*p_h*p_w*ceiling((h + p_h)/s_h)*ceiling((w + p_w)/s_w)",
}
_relu_levels_3x3_clever = 3   # a known construction cleverer than the pairwise tree


# %% [markdown] 7.5/5
# Max pooling keeps the strongest response in each window and discards the rest: it reports whether a
# feature occurred anywhere in the window, and its gradient reaches only the winning input. Average
# pooling blends every value (a low-pass filter): a strong isolated response is diluted by its
# neighbours, and the gradient is spread evenly over the window.


# %% 7.5/6
def min_pool(X, pool_size):
    """min(x) = -max(-x)."""
    return -F.max_pool2d(-X, pool_size)

# %% [markdown] 7.5/6
# No separate layer is needed: min(x) = −max(−x), so negating the input, max-pooling and negating the
# result gives minimum pooling with the same window and stride.

# %% [markdown] 7.5/7
# A softmax-weighted average needs exponentials and a normalisation in every window, which costs more
# than a max or a mean; it brings a temperature to tune and can be numerically delicate. And it only
# interpolates between average pooling (high temperature) and max pooling (low temperature), which
# already work well.
