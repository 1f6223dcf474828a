"""Checks for 7.3 Padding and stride."""
import torch
from torch.nn import functional as F

from d2lgrade.core.checks import check, fail
from d2lgrade.compare.formulas import Domain, expect_formula
from d2lgrade.compare.implementation_rules import TRANSPOSED_CONVOLUTION
from d2lgrade.compare.inputs import choice, randint, shape_text, tensor
from d2lgrade.compare.tensors import expect_close, expect_diagnosed
from d2lgrade.values.expected import reference

ref = reference("7.3")

SHAPE_DOMAINS = {"n_h": Domain("int", 1, 24), "k_h": Domain("int", 1, 7), "p_h": Domain("int", 0, 4),
                 "s_h": Domain("int", 1, 5), "n_w": Domain("int", 1, 24), "k_w": Domain("int", 1, 7),
                 "p_w": Domain("int", 0, 4), "s_w": Domain("int", 1, 5)}


def _fits(v):  # the kernel must fit in the padded input
    return v.get("k_h", 1) <= v.get("n_h", 1) + 2 * v.get("p_h", 0) and \
        v.get("k_w", 1) <= v.get("n_w", 1) + 2 * v.get("p_w", 0)


@check("7.3/1", points=2, title="Output-shape formula", uses=("output_shape",),
       expected=f"height: {ref.formula('output_shape', 0)}\nwidth:  {ref.formula('output_shape', 1)}", reveals=True)
def output_shape_formula(p):
    answer = p.value("output_shape")
    formulas = list(answer) if isinstance(answer, (list, tuple)) else [answer]
    if len(formulas) not in (1, 2) or not all(isinstance(f, str) for f in formulas):
        fail("`output_shape` should be a formula string, or a pair (height, width) of formula strings.")
    p.answer = "\n".join(formulas)
    how = expect_formula(formulas[0], ref.formula("output_shape", 0), what="the height formula", domains=SHAPE_DOMAINS,
                         constraint=_fits)
    if len(formulas) == 2:
        how = expect_formula(formulas[1], ref.formula("output_shape", 1), what="the width formula", domains=SHAPE_DOMAINS,
                             constraint=_fits)
    return f"floor((n + 2p - k)/s) + 1: {how}"


@check("7.3/1", name="example", points=1, title="Shape of the section's example", uses=("example_shape",),
       expected="the (height, width) that the 8×8 example produces")
def example_shape(p):
    answer = p.value("example_shape")
    p.answer = repr(answer)
    try:
        shape = tuple(int(v) for v in answer)
    except (TypeError, ValueError):
        fail(f"`example_shape` should be a (height, width) pair of ints, not {answer!r}.")
    if shape != tuple(ref.example_shape):
        fail(f"`example_shape` is {shape}, which is not what that convolution gives; recompute each axis "
             "with its own kernel size, padding and stride (the width uses stride 4).")


def _mirror_cases(p, batched: bool):
    mode = p.value("mirror_mode", required=False) or "reflect"
    if mode not in ("reflect", "symmetric"):
        fail(f'`mirror_mode` is {mode!r}; use "reflect" or "symmetric".')
    calls, expected, labels = [], [], []
    for _ in range(12):
        h, w = randint(p.rng, 2, 9), randint(p.rng, 2, 9)
        pad = randint(p.rng, 1, min(h, w) - 1)
        shape = (randint(p.rng, 1, 3), randint(p.rng, 1, 3), h, w) if batched else (h, w)
        X = tensor(p.rng, *shape, dtype=choice(p.rng, [torch.float32, torch.float64]))
        calls.append(((X, pad), {}))
        expected.append(ref.mirror_pad(X, pad) if mode == "reflect" else ref._symmetric_pad(X, pad))
        labels.append(f"mirror_pad(X of shape {shape_text(X)}, p={pad})")
    got = p.map("mirror_pad", calls, labels=labels)
    for ((X, pad), _), g, e, label in zip(calls, got, expected, labels):
        expect_diagnosed(g, e, label, _padding_mistakes(X, pad, mode))
    return f"matches {mode} padding on 12 random {'batches' if batched else 'matrices'}"


def _library_pad(X, pad, mode):
    batch = X.reshape(-1, 1, *X.shape[-2:])
    return F.pad(batch, (pad,) * 4, mode=mode).reshape(*X.shape[:-2], X.shape[-2] + 2 * pad, X.shape[-1] + 2 * pad)


def _padding_mistakes(X, pad, mode):
    """The other paddings, each named: a wrong answer that equals one of them is told which it is."""
    reflect_words = "the expected mode mirrors without repeating the border value ([1, 2, 3] padded by 1 is [2, 1, 2, 3, 2])"
    return [
        (_library_pad(X, pad, "replicate"), f"that is replicate padding: it repeats the border value outwards instead of "
                                            f"mirroring the values next to it; {reflect_words}."),
        (ref._symmetric_pad(X, pad) if mode == "reflect" else None,
         "that is symmetric padding, which repeats the border value ([1, 2, 3] padded by 1 is [1, 1, 2, 3, 3]); "
         "either pad without repeating it, or declare mirror_mode = \"symmetric\"."),
        (ref.mirror_pad(X, pad) if mode == "symmetric" else None,
         "that is reflect padding, which does not repeat the border value, but mirror_mode says \"symmetric\"; "
         "set mirror_mode = \"reflect\"."),
        (_library_pad(X, pad, "circular"), "that is circular padding: it wraps around to the opposite side instead of "
                                           "mirroring."),
        (F.pad(X, (pad,) * 4), "that is zero padding; mirror the values next to the border instead."),
    ]


@check("7.3/3", points=2, title="Mirror padding of a matrix", uses=("mirror_pad", "mirror_mode"),
       expected="F.pad(X, (p, p, p, p), mode='reflect') on the last two axes")
def mirror_padding(p):
    return _mirror_cases(p, batched=False)


@check("7.3/3", name="batched", points=1, title="Mirror padding of a batch (N, C, H, W)",
       uses=("mirror_pad", "mirror_mode"), expected="the same padding applied to the last two axes")
def mirror_padding_batched(p):
    return _mirror_cases(p, batched=True)


@check("7.3/4", points=1, title="Speed-up of a stride", uses=("stride_speedup",),
       expected=ref.formula("stride_speedup"), reveals=True)
def stride_speedup(p):
    p.answer = p.text("stride_speedup")
    expect_formula(p.answer, ref.formula("stride_speedup"), what="`stride_speedup`",
                   domains={"s_h": Domain("int", 1, 8), "s_w": Domain("int", 1, 8)})


@check("7.3/6", points=2, title="Stride 1/2 as zero insertion and convolution", uses=("upsample_stride_half",),
       expected="F.conv_transpose2d(X, K, stride=2), built from zero insertion and an ordinary convolution")
def stride_half(p):
    calls, expected, labels = [], [], []
    for _ in range(10):
        n, c_in, c_out = randint(p.rng, 1, 2), randint(p.rng, 1, 3), randint(p.rng, 1, 3)
        X = tensor(p.rng, n, c_in, randint(p.rng, 1, 6), randint(p.rng, 1, 6), dtype=torch.float64)
        K = tensor(p.rng, c_in, c_out, randint(p.rng, 1, 4), randint(p.rng, 1, 4), dtype=torch.float64)
        calls.append(((X, K), {}))
        expected.append(F.conv_transpose2d(X, K, stride=2))
        labels.append(f"upsample_stride_half(X of shape {shape_text(X)}, K of shape {shape_text(K)})")
    got = p.map("upsample_stride_half", calls, labels=labels,
                implement=TRANSPOSED_CONVOLUTION)
    for ((X, K), _), g, e, label in zip(calls, got, expected, labels):
        unflipped = ref._unflipped_stride_half(X, K) if K.shape[-2] * K.shape[-1] > 1 else None
        expect_diagnosed(g, e, label, [(unflipped,
                                        "the kernel is not flipped: after zero insertion, the ordinary convolution "
                                        "(a cross-correlation) needs K rotated by 180° (K.flip(-1, -2)) and its two "
                                        "channel axes swapped.")])
    return "equals a stride-2 transposed convolution on 10 random inputs"
