"""Checks for 8.3 Network in Network (NiN).

No training: every check builds the student's network in the runtime on PyTorch's `meta` device
(graders/probes/architecture.py: shapes, layers, parameters and FLOPs without arithmetic) and compares
what comes back with the same measurement of the reference's network, made here. No figure is typed in:
the reference's model is the yardstick. Its descriptions come through d2lgrade.values.expected (graders/architecture.py):
a student kit holds only the recorded figures.
"""
from __future__ import annotations

from d2lgrade.core.checks import check, fail
from d2lgrade.values.expected import reference as reference_of
from graders.architecture import (as_count, call_text, describe_reference, describe_student, expect_count, infer_unit,
                                  magnitude, read_flops, unit_note, without_biases)

ref = reference_of("8.3")

IMAGE = (1, 1, 224, 224)          # the book's input: one grey 224×224 image
FAMILY_DEPTHS = (12, 16, 20)
GLOBAL_AVERAGE_LAYERS = {"AdaptiveAvgPool2d", "AvgPool2d"}   # a 1×1 output of one of these is global average pooling


# -- plumbing -------------------------------------------------------------------------------------------
def _measure(p, name: str, *args, **kwargs) -> dict:
    return describe_student(p, name, *args, input_shape=IMAGE, **kwargs)


def _reference(name: str, *args, **kwargs) -> dict:
    return describe_reference(ref, name, *args, input_shape=IMAGE, **kwargs)


def _convolutions(desc: dict) -> list[tuple[str, dict]]:
    return [(qualified, _explicit_padding(hyper)) for qualified, kind, hyper, _ in desc["layers"] if kind == "Conv2d"]


def _explicit_padding(hyper: dict) -> dict:
    """padding="same" / "valid" as the numbers they stand for (stride 1, odd windows), so that they compare."""
    padding, kernel = hyper.get("padding"), hyper.get("kernel_size")
    if isinstance(padding, str) and isinstance(kernel, list):
        hyper = dict(hyper, padding=[k // 2 if padding == "same" else 0 for k in kernel])
    return hyper


def _conv_text(hyper: dict) -> str:
    k, s, pad = (hyper.get(key) for key in ("kernel_size", "stride", "padding"))
    square = lambda v: v[0] if isinstance(v, list) and len(set(v)) == 1 else v
    return f"{hyper.get('out_channels')} channels, {square(k)}×{square(k)} window, stride {square(s)}, padding {square(pad)}"


def _parameter_hints(desc: dict) -> dict[str, float]:
    """Counts a known slip gives: the same layers without their biases."""
    biases = sum(h["out_channels"] if kind == "Conv2d" else h["out_features"]
                 for _, kind, h, _ in desc["layers"] if kind in ("Conv2d", "Linear") and h.get("bias"))
    return {"the count without the biases": desc["params"] - biases} if biases else {}


def expect_same_network(got: dict, expected: dict, call: str) -> str:
    """`got` runs the reference's convolutions (channels, windows, strides, paddings, in order), returns
    its output shape and has its parameter count; fails at the first difference, naming it."""
    if got["output"] != expected["output"]:
        fail(f"`{call}` returns shape {got['output']} for a 1×224×224 image; expected {expected['output']}.")
    mine, theirs = _convolutions(got), _convolutions(expected)
    for k, ((where, h), (_, want)) in enumerate(zip(mine, theirs)):
        keys = ("out_channels", "kernel_size", "stride", "padding")
        if any(h.get(key) != want.get(key) for key in keys):
            fail(f"in `{call}` the convolution #{k + 1} to run ({where}) has {_conv_text(h)}; the reference's has "
                 f"{_conv_text(want)}.")
    if len(mine) != len(theirs):
        fail(f"`{call}` runs {len(mine)} convolutions; expected {len(theirs)} (four NiN blocks of "
             f"{len(theirs) // 4} each).")
    expect_count(got["params"], expected["params"], f"the parameter count of `{call}`", rel=0,
                 hints=_parameter_hints(expected))
    # Not the count itself: the book NiN's is 8.3/4's answer.
    return f"{len(mine)} convolutions as in the reference, output {got['output']}, the reference's parameter count"


def _runs_global_pooling(desc: dict) -> bool:
    return any(kind in GLOBAL_AVERAGE_LAYERS and isinstance(shape, list) and shape[-2:] == [1, 1]
               for _, kind, _, shape in desc["layers"])


def _compare_configurations(p, configurations) -> str:
    messages = []
    wanted = [_reference("nin", **kwargs) for kwargs in configurations]
    for kwargs, expected in zip(configurations, wanted):
        got = _measure(p, "nin", **kwargs)
        messages.append(expect_same_network(got, expected, call_text("nin", (), kwargs)))
    return "; ".join(messages)


# -- 8.3/1-3 ----------------------------------------------------------------------------------------------
@check("8.3/1", name="book", points=1, title="nin() is the book's NiN", uses=("nin",),
       expected="the book's twelve convolutions, global average pooling, output (1, 10) and the reference's "
                "parameter count")
def book_nin(p):
    expected = _reference("NiN")
    got = _measure(p, "nin")
    return expect_same_network(got, expected, "nin()")


@check("8.3/1", points=2, title="One, two or three 1×1 convolutions per block", uses=("nin",),
       expected="nin(n_1x1=k) runs 4·(1 + k) convolutions, as the reference does, with its parameter count")
def n_1x1(p):
    return _compare_configurations(p, [{"n_1x1": 1}, {"n_1x1": 3}])


@check("8.3/2", points=2, title="3×3 instead of 1×1 convolutions", uses=("nin",),
       expected="nin(kernel_1x1=3) keeps every block's output shape (padding 1) and has the reference's parameters")
def kernel_1x1(p):
    return _compare_configurations(p, [{"n_1x1": 1, "kernel_1x1": 3}, {"kernel_1x1": 3}])


@check("8.3/3", points=2, title="A fully connected head instead of global average pooling", uses=("nin",),
       expected="nin(head=\"fc\"): no global average pooling; a dense layer on the flattened last block")
def dense_head(p):
    call = 'nin(head="fc")'
    expected = _reference("nin", head="fc")
    got = _measure(p, "nin", head="fc")
    if _runs_global_pooling(got):
        fail(f"`{call}` still runs a global average pooling layer: the dense layer replaces it.")
    if not any(kind == "Linear" for _, kind, _, _ in got["layers"]) and not got["flops"].get("linear"):
        fail(f"`{call}` runs no fully connected layer (nn.Linear / nn.LazyLinear) on the flattened feature map.")
    return expect_same_network(got, expected, call)


# -- 8.3/4 ----------------------------------------------------------------------------------------------
@check("8.3/4", name="params", points=1, title="NiN's parameter count", uses=("nin_params",),
       expected="the parameters of the book's NiN for 1×224×224 images and 10 classes, within 1 %")
def parameter_count(p):
    expected, imagenet = _reference("NiN"), _reference("NiN", num_classes=1000)
    value = p.value("nin_params")
    p.answer = f"{magnitude(as_count(value, '`nin_params`'))} parameters"
    expect_count(value, expected["params"], "`nin_params`", rel=0.01,
                 hints={"the count for 1000 classes": imagenet["params"]},
                 exact=(expected["params"], without_biases(expected)))
    return f"{as_count(value, 'nin_params'):,.0f} parameters (the reference counts {expected['params']:,})"


@check("8.3/4", name="flops", points=1, title="NiN's compute per image", uses=("nin_flops",),
       expected="the FLOPs (or MACs, with \"unit\") of one forward pass of a 1×224×224 image, within 5 %")
def compute(p):
    expected = sum(_reference("NiN")["flops"].values())
    answer = p.value("nin_flops")
    if not isinstance(answer, dict):
        fail(f"`nin_flops` should be a dict like {{\"total\": ..., \"unit\": \"FLOPs\"}}, not a {type(answer).__name__}.")
    inferred = infer_unit(answer, {"total": expected}, 0.05) if "unit" not in answer else None
    flops = read_flops(answer, "total", "`nin_flops`", inferred)
    p.answer = f"{magnitude(flops)} FLOPs"
    unit = str(answer.get("unit", inferred)).strip()
    other = "MACs" if unit.lower() == "flops" else "FLOPs"
    expect_count(flops, expected, "`nin_flops` in FLOPs", rel=0.05,
                 hints={f"the count in {other} labelled as {unit}": expected * (0.5 if other == "MACs" else 2)})
    return f"{magnitude(flops)} FLOPs per image (the reference measures {magnitude(expected)}){unit_note(answer, inferred)}"


# -- 8.3/6 ----------------------------------------------------------------------------------------------
def _weight_layers(desc: dict) -> int:
    return sum(1 for _, kind, _, _ in desc["layers"] if kind in ("Conv2d", "Linear"))


def _dense_parameters(desc: dict) -> int:
    return sum(h["in_features"] * h["out_features"] + (h["out_features"] if h.get("bias") else 0)
               for _, kind, h, _ in desc["layers"] if kind == "Linear")


@check("8.3/6", points=2, title="NiN-12, NiN-16, NiN-20", uses=("nin_family",),
       expected=f"nin_family(d) for d in {FAMILY_DEPTHS}: d weight layers, output (1, 10), NiN blocks with 1×1 "
                "convolutions, global average pooling, no large dense head")
def family(p):
    counts = []
    for depth in FAMILY_DEPTHS:
        call = f"nin_family({depth})"
        got = _measure(p, "nin_family", depth)
        if got["output"] != [1, 10]:
            fail(f"`{call}` returns shape {got['output']} for a 1×224×224 image; expected [1, 10].")
        layers = _weight_layers(got)
        if layers != depth:
            fail(f"`{call}` runs {layers} weight layers (convolutions and dense layers); the depth {depth} asks "
                 f"for {depth}.")
        if not any(kind == "Conv2d" and h.get("kernel_size") == [1, 1] for _, kind, h, _ in got["layers"]):
            fail(f"`{call}` has no 1×1 convolution: NiN blocks follow each convolution with 1×1 convolutions.")
        dense = _dense_parameters(got)
        if dense > got["params"] / 2:
            fail(f"in `{call}` the dense layers hold {magnitude(dense)} of the {magnitude(got['params'])} parameters: "
                 "that is VGG's head, not NiN's (global average pooling, no large dense layer).")
        counts.append(got["params"])
    if len(set(counts)) < len(counts):
        fail(f"`nin_family` returns networks of equal size ({magnitude(counts[0])} parameters) for different "
             "depths: the depth must change the network.")
    return ", ".join(f"NiN-{d}: {magnitude(n)} parameters" for d, n in zip(FAMILY_DEPTHS, counts))
