"""Checks for 7.1 From fully connected layers to convolutions."""
import numpy
import torch
from torch.nn import functional as F

from d2lgrade.core.checks import check, fail
from d2lgrade.compare.implementation_rules import CONVOLUTION
from d2lgrade.compare.inputs import randint, shape_text, tensor
from d2lgrade.compare.tensors import as_tensor, expect_close, expect_diagnosed, same_values

# -- 7.1/1 ------------------------------------------------------------------------------------------
@check("7.1/1", points=2, title="A linear layer applied at every pixel", uses=("one_by_one_as_linear",),
       expected="the same as the 1 × 1 convolution F.conv2d(X, W[:, :, None, None]), computed without a convolution")
def one_by_one(p):
    calls, labels, expected, wrongs = [], [], [], []
    for i in range(10):
        n = randint(p.rng, 1, 3)
        c_i = randint(p.rng, 2, 4)
        c_o = c_i if i < 4 else randint(p.rng, 1, 5)      # square weights first: they expose W vs W.T
        h, w = randint(p.rng, 2, 5), randint(p.rng, 2, 5)
        dtype = torch.float64 if i % 3 == 2 else torch.float32
        X, W = tensor(p.rng, n, c_i, h, w, dtype=dtype), tensor(p.rng, c_o, c_i, dtype=dtype)
        calls.append(((X, W), {}))
        labels.append(f"one_by_one_as_linear(X of shape {shape_text(X)}, W of shape {shape_text(W)})")
        expected.append(F.conv2d(X, W[:, :, None, None]))
        wrongs.append([
            (F.conv2d(X, W.T[:, :, None, None]) if c_o == c_i else None,
             "it applies W transposed; nn.Linear's weight has shape (c_o, c_i) and maps a pixel's channel "
             "vector v to W @ v."),
            ((X.reshape(n, h * w, c_i) @ W.T).reshape(n, c_o, h, w),
             "it mixes up pixels and channels: reshaping (N, c_i, h, w) to (N, h*w, c_i) without moving "
             "the channel axis last (permute) scrambles the values."),
            (X.permute(0, 2, 3, 1) @ W.T,
             "it returns channels last, (N, h, w, c_o); move the channel axis back to position 1."),
        ])
    # Two round trips: the square cases are compared before a non-square one can raise (a call that
    # raises ends the batch), so W used the wrong way round is named rather than reported as a crash.
    for part in (slice(0, 4), slice(4, None)):
        got = p.map("one_by_one_as_linear", calls[part], labels=labels[part], implement=CONVOLUTION)
        for g, e, label, known in zip(got, expected[part], labels[part], wrongs[part]):
            expect_diagnosed(g, e, label, known)
    return "equals a 1 × 1 convolution on 10 random batches"


# -- 7.1/2.2 ----------------------------------------------------------------------------------------
def _length_hint(n: int, k: int):
    def hint(got):
        if not isinstance(got, torch.Tensor) or got.dim() != 1:
            return "return a 1-D tensor."
        length = got.shape[0]
        if length == n - k + 1:
            return None
        if length == n + k - 1:
            return "that is the length of the full convolution; keep only the positions where the whole kernel fits."
        if length == n:
            return "that is a padded ('same') output; keep only the positions where the whole kernel fits."
        if length == n - k:
            return "one value short: the kernel fits at n - k + 1 positions (check your loop's range)."
        return None
    return hint


@check("7.1/2.2", points=2, title="Valid one-dimensional cross-correlation", uses=("conv1d",),
       expected="F.conv1d(x[None, None], w[None, None])[0, 0]: y[i] = sum_a w[a] x[i + a], n - k + 1 values")
def conv1d(p):
    calls, labels, expected, wrongs, hints = [], [], [], [], []
    for i in range(12):
        n = randint(p.rng, 2, 14) if i else 6
        k = n if i == 3 else 1 if i == 4 else randint(p.rng, 2, n)
        x = tensor(p.rng, n, dtype=torch.float64 if i % 2 else torch.float32)
        w = tensor(p.rng, k, dtype=x.dtype)
        calls.append(((x, w), {}))
        labels.append(f"conv1d(x of length {n}, w of length {k})")
        expected.append(F.conv1d(x[None, None], w[None, None])[0, 0])
        flipped = F.conv1d(x[None, None], w.flip(0)[None, None])[0, 0]
        wrongs.append([(flipped if k > 1 else None,
                        "it reverses the kernel: that is the textbook convolution y[i] = sum_m x[m] w[i - m]; "
                        "the layer (like F.conv1d) computes the cross-correlation y[i] = sum_a w[a] x[i + a].")])
        hints.append(_length_hint(n, k))
    got = p.map("conv1d", calls, labels=labels, implement=CONVOLUTION)
    for g, e, label, known, hint in zip(got, expected, labels, wrongs, hints):
        expect_diagnosed(as_tensor(g), e, label, known, hint)
    return "matches F.conv1d on 12 random vectors and kernels"


# -- 7.1/6 ------------------------------------------------------------------------------------------
def _pairs(rng, count):
    pairs = []
    for i in range(count):
        n, m = randint(rng, 1, 9), randint(rng, 1, 9)
        if i == 0:
            n, m = 2, 5          # a short first argument: catches loops written for len(f) >= len(g)
        elif i == 1:
            n, m = 5, 2
        pairs.append((tensor(rng, n, dtype=torch.float64), tensor(rng, m, dtype=torch.float64)))
    return pairs


def _full_length_hint(n: int, m: int):
    def hint(got):
        if not isinstance(got, torch.Tensor) or got.dim() != 1:
            return "return a 1-D tensor."
        if got.shape[0] == abs(n - m) + 1:
            return "that is only the valid part; the full convolution has len(f) + len(g) - 1 values."
        if got.shape[0] in (n, m) and n != m:
            return "the full convolution has len(f) + len(g) - 1 values, whichever argument is longer."
        return None
    return hint


def _numpy_convolve(f, g):
    return torch.from_numpy(numpy.convolve(f.numpy(), g.numpy()))


@check("7.1/6", points=2, title="Full discrete convolution", uses=("conv1d_full",),
       expected="numpy.convolve(f, g): (f * g)[n] = sum_m f[m] g[n - m], length len(f) + len(g) - 1")
def full_convolution(p):
    pairs = _pairs(p.rng, 12)
    labels = [f"conv1d_full(f of length {len(f)}, g of length {len(g)})" for f, g in pairs]
    got = p.map("conv1d_full", [((f, g), {}) for f, g in pairs], labels=labels, implement=CONVOLUTION)
    for (f, g), value, label in zip(pairs, got, labels):
        correlation = _numpy_convolve(f, g.flip(0))
        expect_diagnosed(as_tensor(value), _numpy_convolve(f, g), label,
                         [(correlation if len(g) > 1 else None,
                           "g is not reversed: that is the full cross-correlation; convolution pairs f[m] with g[n - m].")],
                         _full_length_hint(len(f), len(g)))
    return "matches numpy.convolve on 12 random pairs"


@check("7.1/6", name="commutative", points=1, title="f ∗ g equals g ∗ f", uses=("conv1d_full",),
       expected="conv1d_full(f, g) == conv1d_full(g, f), both equal to the full convolution")
def commutative(p):
    pairs = _pairs(p.rng, 8)
    calls = [((f, g), {}) for f, g in pairs] + [((g, f), {}) for f, g in pairs]
    labels = [f"conv1d_full(f of length {len(a)}, g of length {len(b)})" for (a, b), _ in calls]
    got = [as_tensor(v) for v in p.map("conv1d_full", calls, labels=labels, implement=CONVOLUTION)]
    half = len(pairs)
    for (f, g), fg, gf in zip(pairs, got[:half], got[half:]):
        what = f"with f of length {len(f)} and g of length {len(g)}, conv1d_full(f, g)"
        if not same_values(fg, gf):
            fail(f"{what} differs from conv1d_full(g, f) (shapes {_shape(fg)} and {_shape(gf)}): "
                 "your function is not commutative, but the convolution it should compute is.")
        expect_close(fg, _numpy_convolve(f, g), what)
    return "conv1d_full(f, g) equals conv1d_full(g, f) on 8 random pairs of different lengths"


def _shape(value):
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
