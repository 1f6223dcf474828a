"""Reference for 7.4 Multiple input and multiple output channels: the book's code and a correct answer
to every exercise.

Percent-format cells (`# %% 7.4/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`. The cost formulas and the composed kernel size are
also checked by machine in reference/proofs.py.
"""
# %%
import torch
from torch import nn
from torch.nn import functional as F


# %% The book's code
def corr2d(X, K):
    """2-D cross-correlation (section 7.2)."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def corr2d_multi_in(X, K):
    """Cross-correlate each input channel with its kernel slice and add up the results."""
    return sum(corr2d(x, k) for x, k in zip(X, K))


def corr2d_multi_in_out(X, K):
    """One multi-input cross-correlation per output channel, stacked along a new first axis."""
    return torch.stack([corr2d_multi_in(X, k) for k in K], 0)


def corr2d_multi_in_out_1x1(X, K):
    """A 1 × 1 convolution as one matrix product over the channel axis."""
    c_i, h, w = X.shape
    c_o = K.shape[0]
    X = X.reshape((c_i, h * w))
    K = K.reshape((c_o, c_i))
    Y = torch.matmul(K, X)
    return Y.reshape((c_o, h, w))


# %% 7.4/1.1
def compose_kernels(K1, K2):
    """The full (2-D) convolution of K1 and K2: corr2d(corr2d(X, K1), K2) == corr2d(X, K)."""
    a1, b1 = K1.shape
    a2, b2 = K2.shape
    K = K1.new_zeros((a1 + a2 - 1, b1 + b2 - 1))
    for i in range(a2):
        for j in range(b2):
            K[i:i + a1, j:j + b1] += K2[i, j] * K1
    return K

# %% [markdown] 7.4/1.1
# Y[i, j] = Σ_{a,b} K2[a, b] Σ_{c,d} K1[c, d] X[i + a + c, j + b + d]. Grouping the terms by u = a + c,
# v = b + d gives Y[i, j] = Σ_{u,v} K[u, v] X[i + u, j + v] with K[u, v] = Σ_{c,d} K1[c, d] K2[u − c, v − d]:
# one cross-correlation whose kernel K is the full convolution of K1 and K2. (Convolution is associative;
# without a nonlinearity, two linear shift-invariant maps compose to one.)

# %% 7.4/1.2
composed_size = "k1 + k2 - 1"


# %% 7.4/1.3
def is_separable(K):
    """Rank one up to rounding: the second singular value is tiny compared with the first."""
    s = torch.linalg.svdvals(K.double())
    return bool(s.numel() < 2 or s[1] <= 1e-5 * s[0])


def separate(K):
    """(col, row) with col[:, None] * row[None, :] == K, from the leading singular pair."""
    U, S, Vh = torch.linalg.svd(K.double())
    scale = S[0].sqrt()
    return (U[:, 0] * scale).to(K.dtype), (Vh[0] * scale).to(K.dtype)


gaussian_separable = True

# %% [markdown] 7.4/1.3
# No. Two 1-D kernels in a row give an outer product col·rowᵀ, a matrix of rank one; a random 3 × 3
# kernel has rank 3, so it cannot be split that way. More generally, two smaller 2-D kernels compose to
# the product of their 2-D polynomials, so a kernel splits only if its polynomial factors, which a
# generic one does not. A 2-D Gaussian, however, is separable:
# exp(−(x² + y²)/2σ²) = exp(−x²/2σ²) · exp(−y²/2σ²).

# %% 7.4/2.1
_h_o = "(floor((h + 2*p_h - k_h)/s_h) + 1)"
_w_o = "(floor((w + 2*p_w - k_w)/s_w) + 1)"
forward_mults = f"c_o*{_h_o}*{_w_o}*c_i*k_h*k_w"
forward_adds = f"c_o*{_h_o}*{_w_o}*(c_i*k_h*k_w - 1)"

# %% 7.4/2.2
forward_memory = f"c_i*h*w + c_o*c_i*k_h*k_w + c_o*{_h_o}*{_w_o}"

# %% 7.4/2.3
# The gradients of the output, the weights and the input have the forward tensors' sizes.
backward_memory = forward_memory

# %% 7.4/2.4
# One pass for the gradient of the input (a transposed convolution of the output gradient) and one for
# the gradient of the weights: each takes as many multiplications as the forward pass.
backward_cost = f"2*{forward_mults}"

# %% 7.4/3
channel_factor = 4

# %% [markdown] 7.4/3
# The cost c_o·c_i·k_h·k_w·h_o·w_o is proportional to the output area. Doubling the padding turns h_o into
# floor((h + 4p_h − k_h)/s_h) + 1 (and likewise w_o), so the cost grows by that ratio of output areas,
# about (h + 4p_h)(w + 4p_w)/((h + 2p_h)(w + 2p_w)) for stride 1: not a fixed factor.

# %% [markdown] 7.4/4
# Mathematically they are the same, but the two functions add the products in a different order (one
# matrix product against a loop over channels), and floating-point addition is not associative. So they
# agree up to rounding, which is why the book compares them with a tolerance; they may happen to be
# bitwise equal on a tiny example, but that is not guaranteed.


# %% 7.4/5
def conv2d_im2col(X, K, stride=1, padding=0):
    """im2col: every window becomes a column; the layer is one (c_o, c_i·k_h·k_w) @ (…, L) product."""
    s_h, s_w = (stride, stride) if isinstance(stride, int) else stride
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding
    c_o, c_i, k_h, k_w = K.shape
    _, h, w = X.shape
    h_o, w_o = (h + 2 * p_h - k_h) // s_h + 1, (w + 2 * p_w - k_w) // s_w + 1
    columns = F.unfold(X[None], (k_h, k_w), padding=(p_h, p_w), stride=(s_h, s_w))[0]
    return (K.reshape(c_o, -1) @ columns).reshape(c_o, h_o, w_o)

# %% [markdown] 7.4/6
# Each input value loaded into registers is used by up to Δ neighbouring outputs instead of one, so the
# memory traffic per output drops (roughly (k + Δ)/Δ loads per output row instead of k) and the Δ outputs
# can be computed with vector instructions. Δ is limited by the registers/cache that must hold the strip
# and the Δ partial sums (and by the SIMD width and the output width): past that, spilling costs more than
# the reuse saves.

# %% 7.4/7.1
block_speedup = "b"

# %% [markdown] 7.4/7.1
# A dense c × c matrix times a vector takes c² multiply-adds; b diagonal blocks of size (c/b) × (c/b)
# take b·(c/b)² = c²/b. The speed-up is b (the comparison is with c², not with c³).

# %% Grader-side expected values (not part of the answer): the other accepted forms of 7.4/2's counts, the
# mistakes the grader names whose formulas are too close to an answer to be written in the grader, and each
# of them with the input's size h·w where the output's h_o·w_o belongs (a mistake named on its own). They
# live here so that a student kit, which holds their values at sample points and never their text, does
# not hold them either.
_accepted_forms = {
    "forward_memory with bias": f"{forward_memory} + c_o",
    "backward_memory, everything held": f"2*({forward_memory})",
    "backward_memory with bias": f"{backward_memory} + c_o",
    "backward_memory, everything held, with bias": f"2*({forward_memory}) + 2*c_o",
    "backward_cost with additions": f"2*({forward_mults} + {forward_adds})",
}
_mistakes = {
    "composed size without - 1": "k1 + k2",
    "additions per channel": f"c_o*{_h_o}*{_w_o}*(c_i - 1)*k_h*k_w",
    "memory without the input": f"c_o*c_i*k_h*k_w + c_o*{_h_o}*{_w_o}",
    "multiplications without floor": "c_o*((h + 2*p_h - k_h)/s_h + 1)*((w + 2*p_w - k_w)/s_w + 1)*c_i*k_h*k_w",
    "forward cost": f"{forward_mults} + {forward_adds}",
    "block speed-up against c cubed": "b*c",
    "block-diagonal cost": "c**2/b",
    "block speed-up inverted": "1/b",
}
_input_size_for_output = {
    name: formula.replace(_h_o, "h").replace(_w_o, "w")
    for name, formula in {"forward_mults": forward_mults, "forward_adds": forward_adds,
                          "forward_memory": forward_memory, "backward_memory": backward_memory,
                          "backward_cost": backward_cost, **_accepted_forms, **_mistakes}.items()
    if _h_o in formula or _w_o in formula}


# %% [markdown] 7.4/7.2
# Channels in different blocks never interact, so each output sees only a 1/b share of the inputs and
# the layer loses expressiveness. Shuffling (permuting) the channels between layers, as ShuffleNet does,
# or alternating block structures and adding an occasional dense 1 × 1 layer restores the mixing.
