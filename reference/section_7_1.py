"""Reference for 7.1 From fully connected layers to convolutions: a correct answer to every exercise.

The section itself has no code. Percent-format cells (`# %% 7.1/N`) tie each part to its exercise, so
this file is also graded as a submission by `python grade.py --check-references`. The machine-checked
proof of commutativity (7.1/6) is in reference/proofs.py.
"""
# %%
import torch
from torch import nn
from torch.nn import functional as F


# %% 7.1/1
def one_by_one_as_linear(X, W):
    """Apply the linear map W (c_o, c_i) to the channel vector of every pixel of X (N, c_i, h, w)."""
    return torch.einsum("oc,nchw->nohw", W, X)

# %% [markdown] 7.1/1
# With Δ = 0 the window is a single pixel: the output at (i, j) is W times the channel vector at (i, j),
# with the same W at every position. That is a fully connected layer (an MLP if such layers are stacked
# with nonlinearities) applied to each pixel independently, mixing channels only — a 1 × 1
# convolution, the building block of Network in Network.

# %% [markdown] 7.1/2.1
# A spoken word, a note or a click means the same thing whenever it happens in a recording, so the
# detector for it should not depend on the time (translation invariance); and the evidence for it lies
# in a short stretch of neighbouring samples (locality).


# %% 7.1/2.2
def conv1d(x, w):
    """Valid 1-D cross-correlation: y[i] = sum_a w[a] * x[i + a] for i = 0 .. n - k."""
    n, k = x.shape[0], w.shape[0]
    windows = torch.stack([x[a:a + n - k + 1] for a in range(k)])   # (k, n - k + 1)
    return w @ windows

# %% [markdown] 7.1/2.2
# y[i] = Σ_{a=0}^{k-1} w[a] · x[i + a] for i = 0, …, n − k: the same kernel w slides along the sequence
# (the book's Δ-window form with a 1-D index; reversing w gives the textbook convolution
# y[n] = Σ_m x[m] w[n − m]).

# %% [markdown] 7.1/2.3
# Yes: a spectrogram (the magnitude of a short-time Fourier transform) is a time × frequency image, and
# 2-D convolutions work on it. The analogy is imperfect: shifting a pattern along the frequency axis
# changes its pitch and meaning, so that axis is not translation invariant like the axes of a photo.

# %% [markdown] 7.1/3
# When the absolute position carries meaning: in aligned face images the eyes are always near the top,
# in a scanned form the field's position says what it contains, and in a board game the same pattern
# matters differently at the edge. A translation-invariant layer responds the same way everywhere and
# cannot tell those positions apart unless position information is added.

# %% [markdown] 7.1/4
# Yes: 1-D convolutions over the sequence of token embeddings act as n-gram detectors (e.g. TextCNN).
# Language is harder: sentences vary in length, dependencies reach far beyond a small window, word order
# and syntax matter, and tokens are discrete symbols rather than smooth intensities.

# %% [markdown] 7.1/5
# The window runs off the image. Without padding the output shrinks and border pixels take part in fewer
# outputs than central ones, so an object at the edge is under-represented; with zero padding the
# made-up zeros create artificial edges that the kernels respond to.


# %% 7.1/6
def conv1d_full(f, g):
    """Full discrete convolution: (f * g)[n] = sum_m f[m] g[n - m], n = 0 .. len(f) + len(g) - 2."""
    out = f.new_zeros(f.shape[0] + g.shape[0] - 1)
    for m in range(f.shape[0]):
        out[m:m + g.shape[0]] += f[m] * g
    return out

# %% [markdown] 7.1/6
# Continuous case. Substitute u = t − τ, so τ = t − u and dτ = −du. As τ runs from −∞ to +∞, u runs
# from +∞ to −∞, so the limits swap:
# (f ∗ g)(t) = ∫_{+∞}^{−∞} f(t − u) g(u) (−du) = ∫_{−∞}^{+∞} g(u) f(t − u) du = (g ∗ f)(t).
# Swapping the limits back cancels the minus sign of dτ = −du.
#
# Discrete case. (f ∗ g)[n] = Σ_m f[m] g[n − m]; with m' = n − m, m' runs over all integers when m does,
# so the sum is Σ_{m'} f[n − m'] g[m'] = (g ∗ f)[n]. (Equivalently: the full convolution of two finite
# sequences is the coefficient list of the product of their polynomials, and that product commutes.)
