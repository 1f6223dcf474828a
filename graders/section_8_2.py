"""Checks for 8.2 Networks using blocks (VGG).

Every figure is measured, never typed: the student's models are described inside the runtime and the
reference's in this process by the same probe (graders/probes/architecture.py: leaf layers, parameters,
FLOPs from FlopCounterMode on the meta device), so VGG at 224×224 costs milliseconds. A model that cannot
be built gets a message naming the student's failing line (graders/book_code.py). The reference's figures
and constants come through d2lgrade.values.expected: a student kit holds only the recorded descriptions.
"""
from __future__ import annotations

from d2lgrade.core.checks import check, fail, partial
from d2lgrade.values.expected import reference as reference_of
from graders import book_code
from graders.architecture import as_count, describe_reference, expect_count, magnitude, without_biases
from graders.execution import flops_unverified
from graders.layer_counts import expect_flop_split, nearest_first, parameter_split

ref = reference_of("8.2")

BOOK_INPUT = (1, 1, 224, 224)
COUNT_TOLERANCE, FLOP_TOLERANCE = 0.01, 0.03
SMALL_SIZES = (56, 84)
SMALL_COST = 0.1          # 8.2/4: VGGSmall may cost at most this fraction of VGG-11's compute at 224×224
SHAPE_KEEPING = {"ReLU", "LeakyReLU", "GELU", "SiLU", "ELU", "Tanh", "Sigmoid", "Dropout", "Dropout2d", "Identity"}
DOWNSAMPLING = {"MaxPool2d", "AvgPool2d", "LPPool2d", "FractionalMaxPool2d"}


def _describe(p, call: str, name: str, *args, input_shape=BOOK_INPUT, **kwargs) -> dict:
    return book_code.describe(p, call, name, *args, input_shape=input_shape, **kwargs)


def _vgg11():
    return describe_reference(ref, "VGG", ref.VGG11_ARCH)


def _blocks(description: dict) -> list[str]:
    """The shapes layer_summary prints, as 'C×H×W': the output of each top-level entry of `net`, leaving out
    activations and dropout (they repeat the shape before them)."""
    seen: dict[str, list] = {}
    for qualified, kind, _, shape in description["layers"]:
        parts = qualified.split(".")
        if len(parts) >= 2 and parts[0] == "net" and not (len(parts) == 2 and kind in SHAPE_KEEPING):
            seen[parts[1]] = shape
    return ["×".join(str(s) for s in shape[1:]) if isinstance(shape, list) else str(shape) for shape in seen.values()]


def _counted(description: dict) -> str:
    counts = description["counts"]
    return f"{counts.get('Conv2d', 0)} convolutions and {counts.get('Linear', 0)} dense layers"


# -- 8.2/1 ---------------------------------------------------------------------------------------------------
@check("8.2/1.1", points=2, title="Parameters of AlexNet and VGG-11", uses=("param_counts",),
       expected="the parameter counts of the book's AlexNet and VGG-11 for 1×224×224 images and 10 classes, within 1 %")
def parameter_counts(p):
    answer = p.value("param_counts")
    if not isinstance(answer, dict) or not {"alexnet", "vgg11"} <= set(answer):
        fail('`param_counts` should be a dict with the keys "alexnet" and "vgg11".')
    p.answer = repr(answer)
    alexnet, vgg11 = describe_reference(ref, "AlexNet"), _vgg11()
    imagenet = {"alexnet": describe_reference(ref, "AlexNet", input_shape=(1, 3, 224, 224), num_classes=1000),
                "vgg11": describe_reference(ref, "VGG", ref.VGG11_ARCH, input_shape=(1, 3, 224, 224), num_classes=1000)}
    for key, model, other in (("alexnet", alexnet, vgg11), ("vgg11", vgg11, alexnet)):
        parts, what = parameter_split(model), f'param_counts["{key}"]'
        got = as_count(answer[key], what)
        expect_count(got, model["params"], what, COUNT_TOLERANCE, hints=nearest_first({
            "only the convolutional layers' parameters": parts["conv"],
            "only the dense layers' parameters": parts["fc"],
            "the count for 3-channel images and 1000 classes (ImageNet), not 1 channel and 10": imagenet[key]["params"],
            "the other network's count (are the two swapped?)": other["params"]}, got),
            exact=(model["params"], without_biases(model)))
    return (f"AlexNet {alexnet['params']:,} and VGG-11 {vgg11['params']:,} parameters: VGG-11 has "
            f"{vgg11['params'] / alexnet['params']:.1f}× as many")


@check("8.2/1.2", points=2, title="VGG-11: FLOPs of the convolutions and of the dense layers", uses=("vgg_flop_split",),
       expected="FLOPs (or MACs, said so) of VGG-11's convolutions and dense layers for one 1×224×224 image, within 3 %")
def vgg_flops(p):
    answer = p.value("vgg_flop_split")
    if not isinstance(answer, dict) or not {"conv", "fc"} <= set(answer):
        fail('`vgg_flop_split` should be a dict with the keys "conv", "fc" and "unit".')
    p.answer = repr(answer)
    flops = _vgg11()["flops"]
    expected = {"conv": flops["conv"], "fc": flops["linear"]}
    note = expect_flop_split(answer, expected, "vgg_flop_split", FLOP_TOLERANCE)
    return (f"convolutions {magnitude(expected['conv'])}FLOPs, dense layers {magnitude(expected['fc'])}FLOPs: "
            f"the convolutions do {expected['conv'] / (expected['conv'] + expected['fc']):.1%} of the work{note}")


# -- 8.2/2 ---------------------------------------------------------------------------------------------------
@check("8.2/2", points=2, title="The section's VGG builds VGG-11 as in the book", uses=("VGG", "vgg_block"),
       needs=("8.2/2:block",),
       expected="VGG(arch=VGG-11's) on 1×1×224×224: the reference's layer_summary shapes block by block, its "
                "numbers of convolutions and dense layers and its parameter count")
def book_vgg(p):
    arch, want = ref.VGG11_ARCH, _vgg11()
    call = f"VGG(arch={arch})"
    got = _describe(p, call, "VGG", arch)
    summary, expected = _blocks(got), _blocks(want)
    p.answer = f"{_counted(got)}; layer_summary shapes {' → '.join(summary) or '(no `net` attribute)'}"
    if not summary:
        fail(f"`{call}` keeps no layers in `self.net`: the book's layer_summary walks `self.net`, so put the "
             "blocks and the dense layers in one nn.Sequential called `net`.")
    if summary != expected:
        fail(f"`{call}` gives the layer_summary shapes {' → '.join(summary)}; the book's VGG-11 gives "
             f"{' → '.join(expected)}.")
    for kind in ("Conv2d", "Linear"):
        if got["counts"].get(kind, 0) != want["counts"][kind]:
            fail(f"`{call}` has {_counted(got)}; VGG-11 has {_counted(want)}.")
    if got["params"] != want["params"]:
        # The count is 8.2/1.1's answer: hints say only which way it is off.
        fail(f"`{call}` has {got['params']:,} parameters, {'more' if got['params'] > want['params'] else 'fewer'} "
             "than the book's VGG-11 with the same layers: compare each layer's widths (and biases) with the book's.",
             reveal=f"The book's VGG-11 has {want['params']:,}.")
    return partial(1, f"VGG-11 as in the book: {_counted(got)}", reveal=f"{got['params']:,} parameters.")


@check("8.2/2", name="block", points=1, title="vgg_block(num_convs, out_channels)", uses=("vgg_block",),
       expected="vgg_block(3, 8) on 2×3×16×16: three 3×3 convolutions with padding 1, each followed by a ReLU, then "
                "2×2 max pooling with stride 2: output 2×8×8×8")
def book_block(p):
    got = _describe(p, "vgg_block(3, 8)", "vgg_block", 3, 8, input_shape=(2, 3, 16, 16))
    want = describe_reference(ref, "vgg_block", 3, 8, input_shape=(2, 3, 16, 16))
    kinds = [kind for _, kind, _, _ in got["layers"]]
    p.answer = f"layers {', '.join(kinds)}; output {got['output']}"
    if kinds != [kind for _, kind, _, _ in want["layers"]]:
        fail(f"`vgg_block(3, 8)` runs {', '.join(kinds)}; the book's block runs three (Conv2d, ReLU) pairs, then "
             "MaxPool2d.")
    if got["output"] != want["output"]:
        fail(f"`vgg_block(3, 8)` maps 2×3×16×16 to {got['output']}; expected {want['output']} (3×3 convolutions "
             "with padding 1 keep the size, pooling halves it).")
    return "three (Conv2d, ReLU) pairs and max pooling; 2×3×16×16 → 2×8×8×8"


# -- 8.2/3 ---------------------------------------------------------------------------------------------------
def _as_arch(value):
    try:
        return tuple((int(n), int(c)) for n, c in value)
    except (TypeError, ValueError):
        return None


def _first_difference(arch, expected) -> str:
    """Where a (convolutions, channels) table first differs and in which direction, never the right entry."""
    if len(arch) != len(expected):
        return f"it has {len(arch)} blocks, {'more' if len(arch) > len(expected) else 'fewer'} than the table's"
    for block, (row, want) in enumerate(zip(arch, expected), start=1):
        for what, have, right in (("convolutions", row[0], want[0]), ("channels", row[1], want[1])):
            if have != right:
                return f"block {block} has {'too many' if have > right else 'too few'} {what}"
    return "its entries differ"


@check("8.2/3", name="arch", points=1, title="VGG-16 and VGG-19 from the paper's table", uses=("VGG16_ARCH", "VGG19_ARCH"),
       expected=f"VGG16_ARCH = {ref.shown('VGG16_ARCH')}; VGG19_ARCH = {ref.shown('VGG19_ARCH')}", reveals=True)
def deep_archs(p):
    shown = []
    for name, expected in (("VGG16_ARCH", ref.VGG16_ARCH), ("VGG19_ARCH", ref.VGG19_ARCH)):
        value = p.value(name)
        arch = _as_arch(value)
        shown.append(f"{name} = {value!r}")
        p.answer = "; ".join(shown)
        if arch is None:
            fail(f"`{name}` should be a tuple of (num_convs, out_channels) pairs, one per block; it is {value!r}.")
        if arch != expected:
            convs = sum(n for n, _ in arch)
            wrong = [i + 1 for i, (a, b) in enumerate(zip(arch, expected)) if a != b]
            where = f"block {wrong[0]} is {arch[wrong[0] - 1]}, expected {expected[wrong[0] - 1]}" if wrong else \
                f"it has {len(arch)} blocks, the paper's has {len(expected)}"
            fail(f"`{name}` differs from the paper's table: {_first_difference(arch, expected)}.",
                 reveal=f"`{name}` has {convs} convolutions in all ({where}); {name[:6]} has "
                        f"{sum(n for n, _ in expected)} convolutions and 3 dense layers.")
    return "both match the paper's table"


@check("8.2/3", points=2, title="vgg(arch) builds VGG-16 and VGG-19", uses=("vgg",), needs=("8.2/2:block",),
       expected="vgg(VGG-16's arch) and vgg(VGG-19's arch): 13 and 16 convolutions + 3 dense layers, output (1, 10) "
                "on 1×1×224×224 and (1, 5) with num_classes=5, the book's VGG parameter counts", reveals=True)
def deep_models(p):
    shown, vgg16 = [], ref.VGG16_ARCH
    wanted = {label: describe_reference(ref, "vgg", arch) for label, arch in (("VGG-16", vgg16), ("VGG-19", ref.VGG19_ARCH))}
    five_classes = describe_reference(ref, "vgg", vgg16, num_classes=5)["output"]
    for label, arch in (("VGG-16", vgg16), ("VGG-19", ref.VGG19_ARCH)):
        call = f"vgg({label}'s arch)"
        got, want = _describe(p, call, "vgg", arch), wanted[label]
        shown.append(f"{label}: {_counted(got)}, {got['params']:,} parameters, output {got['output']}")
        p.answer = "\n".join(shown)
        for kind in ("Conv2d", "Linear"):
            if got["counts"].get(kind, 0) != want["counts"][kind]:
                what = "convolutions" if kind == "Conv2d" else "dense layers"
                fail(f"`{call}` has {_counted(got)}: {'more' if got['counts'].get(kind, 0) > want['counts'][kind] else 'fewer'} "
                     f"{what} than {label}; does it build every block of the arch it is given, and the three dense layers?",
                     reveal=f"{label} has {_counted(want)}.")
        if got["output"] != want["output"]:
            fail(f"`{call}` maps 1×1×224×224 to {got['output']}; expected {want['output']}.")
        if got["params"] != want["params"]:
            fail(f"`{call}` has {got['params']:,} parameters, {'more' if got['params'] > want['params'] else 'fewer'} "
                 f"than the book's VGG with {label}'s arch: compare each block's and dense layer's widths with the book's.",
                 reveal=f"The book's VGG with {label}'s arch has {want['params']:,}.")
    five = _describe(p, "vgg(VGG-16's arch, num_classes=5)", "vgg", vgg16, num_classes=5)
    if five["output"] != five_classes:
        fail(f"`vgg(VGG-16's arch, num_classes=5)` returns shape {five['output']}; expected {five_classes}: pass "
             "num_classes on to the last dense layer.")
    return "; ".join(shown)


# -- 8.2/4 ---------------------------------------------------------------------------------------------------
def _convs_before_each_downsampling(description: dict) -> list[int]:
    """For each downsampling step in forward order (pooling, or a convolution with stride > 1), how many
    convolutions ran since the previous one (a strided convolution counts itself)."""
    runs, convs = [], 0
    for _, kind, hyper, _ in description["layers"]:
        if kind == "Conv2d":
            convs += 1
            if max(hyper.get("stride") or [1]) > 1:
                runs.append(convs)
                convs = 0
        elif kind in DOWNSAMPLING:
            runs.append(convs)
            convs = 0
    return runs


@check("8.2/4", name="shape", points=1, title="VGGSmall takes 56×56 and 84×84 images", uses=("VGGSmall",),
       needs=("8.2/2:block",),
       expected="VGGSmall(s) maps 2×1×s×s to (2, 10) for s = 56 and s = 84")
def small_shapes(p):
    shown = []
    wanted = {size: describe_reference(ref, "VGGSmall", size, input_shape=(2, 1, size, size))["output"] for size in SMALL_SIZES}
    for size in SMALL_SIZES:
        got = _describe(p, f"VGGSmall({size})", "VGGSmall", size, input_shape=(2, 1, size, size))
        shown.append(f"VGGSmall({size}): {got['output']}")
        p.answer = "; ".join(shown)
        if got["output"] != wanted[size]:
            fail(f"`VGGSmall({size})` maps 2×1×{size}×{size} to {got['output']}; expected {wanted[size]}.")
    return "; ".join(shown)


@check("8.2/4", points=2, title="More nonlinearity before downsampling, at a fraction of the cost",
       uses=("VGGSmall",), needs=("8.2/2:block",),
       expected=f"at least two downsampling steps, each after two or more convolutions; under {SMALL_COST:.0%} of "
                "VGG-11's FLOPs at 224×224")
def small_design(p):
    budget = SMALL_COST * sum(_vgg11()["flops"].values())
    shown = []
    for size in SMALL_SIZES:
        got = _describe(p, f"VGGSmall({size})", "VGGSmall", size, input_shape=(1, 1, size, size))
        runs, cost = _convs_before_each_downsampling(got), sum(got["flops"].values())
        shown.append(f"VGGSmall({size}): convolutions before each downsampling {runs}, {magnitude(cost)}FLOPs")
        p.answer = "\n".join(shown)
        short = next((step for step, n in enumerate(runs, start=1) if n < 2), None)
        if len(runs) < 2 or short is not None:
            where = f"downsampling step {short} follows only {runs[short - 1]}" if short else f"it downsamples {len(runs)} time(s)"
            fail(f"`VGGSmall({size})` runs {runs or 'no'} convolution(s) before its downsampling steps ({where}): "
                 "every step, and at least two of them, should follow two or more convolutions (each with its "
                 "nonlinearity), as in the VGG paper.")
        flops_unverified(p, got, f"VGGSmall({size})")
        if cost > budget:
            # VGG-11's FLOPs are 8.2/1.2's answer: the hint names the budget, not the figure.
            fail(f"`VGGSmall({size})` costs {magnitude(cost)}FLOPs per image, more than {SMALL_COST:.0%} of VGG-11's "
                 "at 224×224: does it resize its input to 224?",
                 reveal=f"VGG-11 costs {magnitude(budget / SMALL_COST)}FLOPs.")
    return "\n".join(shown)
