"""Checks for 8.6 Residual networks (ResNet) and ResNeXt.

Blocks and networks are built inside the student runtime: shapes, layer lists, parameter counts and FLOPs
come from the shared architecture probes (on the `meta` device, in evaluation mode: batch norm cannot
train on a batch of one), zeroed-convolution outputs and operator order from graders/probes/section_8_6.py.
Every figure they are compared with is measured on the reference (reference/section_8_6.py) the same way.
Residual blocks (the section's, ResNet's, the bottleneck and ResNeXt) are recomputed by the grader from their
own layers' weights (graders/residual.py): equal outputs, whatever the style, or the block is named.

ResNeXt: in the book's `ResNeXtBlock(num_channels, groups, bot_mul, ...)` the argument `groups` is the WIDTH
of one group (channels per group), and the 3×3 convolution has `bot_channels // groups` groups; messages
say "groups of width g" or "n groups" to keep the two apart.

The reference's measurements and constants come through d2lgrade.values.expected: a student kit holds only the
recorded figures.
"""
import contextlib

import torch

from d2lgrade.core.checks import StudentError, Verdict, check, fail
from d2lgrade.values.expected import computed
from d2lgrade.values.expected import reference as reference_of
from graders import residual
from graders.architecture import describe_reference, describe_student, magnitude
from graders.probes import section_8_6 as probes

ref = reference_of("8.6")

IMAGE = (1, 1, 224, 224)            # the paper's resolution, measured on meta (no arithmetic)
BOOK_INPUT = (2, 1, 96, 96)         # the book's layer_summary input, with a batch of two
BLOCK_INPUT = (2, 1, 64, 64)        # where each residual block is recomputed by the grader (real arithmetic)
BATCH_OF_ONE = "Expected more than 1 value per channel when training"


# -- plumbing ------------------------------------------------------------------------------------------------
def _stage_shapes(module, name: str, input_shape: tuple) -> list:
    """(Course folder only, through `computed`.) The shape after each stage of the reference's `name().net`."""
    reply = probes.stage_shapes(vars(module), name, {}, list(input_shape))
    return [shape[1:] for _, shape in reply["stages"]]


def _output(name: str, *args, input_shape, **kwargs) -> list:
    """The output shape of the reference's `name(*args, **kwargs)` on `input_shape`."""
    return describe_reference(ref, name, *args, input_shape=input_shape, **kwargs)["output"]


def _explain(call: str, reply: dict) -> str:
    """One sentence for an error the probe caught while building or running `call`, naming the student's line."""
    where = f" at `{reply['line']}`" + (f" (in {reply['function']})" if reply.get("function") else "") \
        if reply.get("line") else ""
    message = reply.get("message", "")
    if "out_features" in message or "nn.Linear(" in reply.get("line", "") and "missing" in message:
        return (f"`{call}` fails{where}: {reply['error']}: {message}. nn.Linear needs both in_features and "
                "out_features; with the number of classes alone write nn.LazyLinear(num_classes), as the book does, "
                "which infers in_features from the first batch.")
    if "in_channels" in message or "kernel_size" in message and "missing" in message:
        return (f"`{call}` fails{where}: {reply['error']}: {message}. nn.Conv2d needs in_channels, out_channels "
                "and kernel_size; the book's nn.LazyConv2d(out_channels, kernel_size=...) infers in_channels.")
    if BATCH_OF_ONE in message:
        return (f"`{call}` fails{where} with batch norm in training mode on one value per channel (a batch of "
                "one image with 1×1 maps): the grader probes with two images in evaluation mode; check the "
                "layers that run there.")
    return f"`{call}` raised {reply['error']}{where}: {message}."


def _block(p, name, args, X, kwargs=None, **options):
    reply = p.run(probes.block_report, name, list(args), dict(kwargs or {}), X, timeout=60, **options)
    call = f"{name}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in (kwargs or {}).items()])})"
    if "error" in reply:
        raise StudentError(_explain(call, reply))
    return call, reply


def _describe(p, name, *args, input_shape=IMAGE, **kwargs):
    try:
        return describe_student(p, name, *args, input_shape=input_shape, **kwargs)
    except StudentError as exc:
        call = f"{name}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in kwargs.items()])})"
        raise StudentError(exc.message.replace("the probe describe", f"`{call}`"), exc.detail) from None


def _channels(description, kind, names=()) -> int:
    """Output channels (or features) summed over the `kind` layers, those whose name holds one of `names` only."""
    return sum(row[2].get("out_channels", row[2].get("num_features", 0)) for row in description["layers"]
               if row[1] == kind and (not names or any(n in row[0] for n in names)))


def _conv_biases(description) -> tuple[int, int]:
    """(bias values, output channels) over the distinct convolutions that ran: a convolution called twice has
    one bias."""
    convs = {row[0]: row[2] for row in description["layers"] if row[1] == "Conv2d"}
    return (sum(h["out_channels"] for h in convs.values() if h.get("bias")),
            sum(h["out_channels"] for h in convs.values()))


def _expect_params(got, expected, what):
    """The reference's count, whichever convolutions carry a bias: judged per convolution (a bias before batch
    norm is redundant, 8.5/1, not wrong; a stem with a bias and bottlenecks without is fine), and with or
    without batch norm on the 1×1 projections (the book has none, the paper and torchvision do)."""
    ref_biases, _ = _conv_biases(expected)
    got_biases, got_channels = _conv_biases(got)
    projections = _channels(expected, "Conv2d", ("conv3", "conv4", "shortcut"))
    bn_change = _channels(got, "BatchNorm2d") - _channels(expected, "BatchNorm2d")
    if bn_change not in (0, projections, -projections):
        bn_change = 0
    without = expected["params"] + 2 * bn_change - ref_biases
    if got["params"] == without + got_biases:
        return "with" if got_biases == got_channels else "without" if not got_biases else "with some"
    side = "more" if got["params"] > without + got_biases else "fewer"
    fail(f"{what} has {got['params']:,} parameters, {side} than the reference's with the biases its convolutions "
         "have: compare its layers' widths and numbers with the paper's, stage by stage.",
         reveal=f"The reference has {expected['params'] - ref_biases:,} besides its convolution biases, and {what} "
                f"would need {without + got_biases:,} with the biases its convolutions have.")


def _kernel_convs(description, size):
    return [row for row in description["layers"] if row[1] == "Conv2d" and list(row[2]["kernel_size"]) == [size, size]]


def _expect_shape(call, output, shape):
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != tuple(shape):
        fail(f"{call} returns {getattr(output, 'shape', type(output).__name__)} for an input of shape "
             f"{tuple(shape)}; the block keeps the shape when it has no projection.")


# -- 8.6/2: the book's Residual and ResNet-18, then the paper's table ----------------------------------------
@check("8.6/2", name="residual", points=1, title="The section's Residual block", uses=("Residual",),
       expected="Residual(3) keeps the shape of (4, 3, 6, 6); Residual(6, use_1x1conv=True, strides=2) gives the "
                "reference's shape; with its convolutions zeroed, Residual(3) returns ReLU(X)")
def residual_block(p):
    shape = (4, 3, 6, 6)
    same = _output("Residual", 3, input_shape=shape)
    projected = _output("Residual", 6, use_1x1conv=True, strides=2, input_shape=shape)
    X = torch.randn(*shape, generator=p.rng)
    call, reply = _block(p, "Residual", [3], X, zeroed=True)
    if reply["shape"] != same:
        fail(f"{call} returns shape {tuple(reply['shape'])} for X of shape (4, 3, 6, 6); expected {tuple(same)}.")
    zeroed = reply["zeroed"]
    if not torch.allclose(zeroed, torch.relu(X), atol=1e-5):
        hint = " without the final ReLU" if torch.allclose(zeroed, X, atol=1e-5) else ""
        fail(f"with every convolution zeroed, {call} should return ReLU(X) (the shortcut adds X, then the block "
             f"applies ReLU){hint}; it returns something else" + (": the ReLU after the addition is missing." if hint
                                                                  else ": does the block add its input?"))
    call, reply = _block(p, "Residual", [6], X, {"use_1x1conv": True, "strides": 2})
    if reply["shape"] != projected:
        fail(f"{call} returns shape {tuple(reply['shape'])}; expected {tuple(projected)} (stride 2 on both paths, "
             "6 channels from the 1×1 convolution).")
    residual.verify(p, "Residual", "Residual(3)", 3, input_shape=shape)
    residual.verify(p, "Residual", "Residual(6, use_1x1conv=True, strides=2)", 6, use_1x1conv=True, strides=2,
                    input_shape=shape)
    return ("identity and 1×1-projection blocks have the book's shapes and compute ReLU(F(X) + X), recomputed by "
            "the grader from their own layers")


@check("8.6/2", name="book", points=2, title="The section's ResNet-18", uses=("ResNet18",), needs=("8.6/2:residual",),
       expected="ResNet18() on (2, 1, 96, 96): the shapes the book's layer_summary prints, stage by stage")
def book_resnet18(p):
    book_stages = computed(ref, "ResNet18 stage shapes", _stage_shapes, "ResNet18", BOOK_INPUT)
    reply = p.run(probes.stage_shapes, "ResNet18", {}, list(BOOK_INPUT), timeout=60)
    if "error" in reply:
        raise StudentError(_explain("ResNet18()", reply))
    shapes = [shape[1:] for _, shape in reply["stages"]]
    if shapes != book_stages:
        chain = " → ".join("×".join(map(str, s)) for s in shapes)
        fail(f"`ResNet18().net` on (2, 1, 96, 96) gives {chain}; the book's gives "
             f"{' → '.join('×'.join(map(str, s)) for s in book_stages)}.")
    note = ""
    if "batch_of_one" in reply:
        note = (f"; note: on a batch of ONE image in training mode (what layer_summary does) it fails "
                f"({reply['batch_of_one']['message'][:80]}), as batch norm must, so summarise with two images")
    return "the book's stage shapes on 96×96 images" + note


def _arch(value):
    return [list(map(int, row)) for row in value] if isinstance(value, (list, tuple)) and \
        all(isinstance(row, (list, tuple)) and len(row) == 2 for row in value) else value


def _first_difference(got, expected) -> str:
    """Where a (blocks, channels) table first differs and in which direction, never the right entry."""
    if not isinstance(got, list) or not all(isinstance(row, list) and len(row) == 2 for row in got):
        return "it should be four (residual blocks, channels) pairs, one per stage"
    if len(got) != len(expected):
        return f"it has {len(got)} stages, {'more' if len(got) > len(expected) else 'fewer'} than the table's"
    for stage, (row, want) in enumerate(zip(got, expected), start=1):
        for what, have, right in (("residual blocks", row[0], want[0]), ("channels", row[1], want[1])):
            if have != right:
                return f"stage {stage} has {'too many' if have > right else 'too few'} {what}"
    return "the entries are right but not (blocks, channels) pairs"


@check("8.6/2", name="table", points=1, title="ResNet-18 and ResNet-34 from the paper's table",
       uses=("RESNET18_ARCH", "RESNET34_ARCH"),
       expected=f"{ref.shown('RESNET18_ARCH')} and {ref.shown('RESNET34_ARCH')}", reveals=True)
def architecture_table(p):
    for name, expected in (("RESNET18_ARCH", ref.RESNET18_ARCH), ("RESNET34_ARCH", ref.RESNET34_ARCH)):
        got = _arch(p.value(name))
        if got != _arch(expected):
            fail(f"`{name}` differs from the paper's table: {_first_difference(got, _arch(expected))}.",
                 reveal=f"`{name}` is {got}; the paper's table gives {tuple(map(tuple, expected))} as "
                        "(residual blocks, channels) per stage.")
    return "both rows of the table"


@contextlib.contextmanager
def _naming(arch, name):
    """A verdict about a call on an answer table (the student's code raised on `resnet(((3, 64), ...))`) names
    the table instead of printing it: the table is another check's answer."""
    try:
        yield
    except Verdict as verdict:
        for text in {repr(tuple(map(tuple, arch))), repr(arch), repr([list(row) for row in arch])}:
            verdict.message = verdict.message.replace(text, name)
        raise


def _resnet_check(p, arch, block, depth):
    with _naming(arch, f"RESNET{depth}_ARCH"):
        return _resnet_measured(p, arch, block, depth)


def _resnet_measured(p, arch, block, depth):
    call = f"resnet({depth}, block={block!r})".replace(str(depth), f"RESNET{depth}_ARCH")
    expected = describe_reference(ref, "resnet", arch, block=block, input_shape=IMAGE)
    three_classes = _output("resnet", arch, block=block, num_classes=3, input_shape=IMAGE)
    got = _describe(p, "resnet", arch, block=block, input_shape=IMAGE)
    if got["output"] != expected["output"]:
        fail(f"`{call}` returns shape {got['output']} for one 224×224 image; expected {expected['output']}.")
    for size in (3, 1):
        have, want = len(_kernel_convs(got, size)), len(_kernel_convs(expected, size))
        if have != want:
            per = "two per basic block" if block == "basic" else "one per bottleneck block"
            fail(f"`{call}` runs {have} {size}×{size} convolutions, {'more' if have > want else 'fewer'} than "
                 f"ResNet-{depth}: " + (f"{per}, and each stage runs its row's number of blocks." if size == 3 else
                    "the shortcut projections" + (" and each bottleneck's two 1×1 convolutions." if block != "basic"
                                                  else ", one per stage after the first.")),
                 reveal=f"ResNet-{depth} has {want}" + (f" ({sum(n for n, _ in arch)} blocks)." if size == 3 else "."))
    bias = _expect_params(got, expected, f"`{call}`")
    have, want = got["flops"]["conv"], expected["flops"]["conv"]
    if abs(have - want) > 0.02 * want:
        fail(f"`{call}`'s convolutions cost {magnitude(have)}FLOPs on one 224×224 image, {'more' if have > want else 'less'} "
             "than the reference's with the same layers (a multiply-add = 2 FLOPs): a stride sits in the wrong "
             "place (the stem and max pooling downsample by 4, the first stage keeps that resolution, and each "
             "later stage halves it in its first block).",
             reveal=f"The reference's cost {magnitude(want)}FLOPs.")
    other = _describe(p, "resnet", arch, block=block, num_classes=3, input_shape=IMAGE)
    if other["output"] != three_classes:
        fail(f"`resnet(..., num_classes=3)` returns shape {other['output']}; expected {three_classes}: the last layer "
             "must have num_classes outputs.")
    blocks = residual.verify(p, "resnet", call, arch, block=block, input_shape=BLOCK_INPUT)
    # Not the count itself: ResNet-18's is 8.7/2's answer.
    return (f"the reference's parameter count ({bias} convolution biases) and the paper's layers; output (1, 10); "
            f"{blocks} residual blocks recomputed by the grader from their own layers")


@check("8.6/2", name="resnet18", points=2, title="resnet(RESNET18_ARCH): blocks, shape, parameters", uses=("resnet",),
       needs=("8.6/2:residual",),
       expected="the reference's layers and parameter count (with or without convolution biases) at 224×224")
def resnet18(p):
    return _resnet_check(p, ref.RESNET18_ARCH, "basic", 18)


@check("8.6/2", name="resnet34", points=1, title="resnet(RESNET34_ARCH)", uses=("resnet",), needs=("8.6/2:residual",),
       expected="the reference's layers and parameter count (with or without convolution biases)")
def resnet34(p):
    return _resnet_check(p, ref.RESNET34_ARCH, "basic", 34)


@check("8.6/2", name="resnet50", points=1, title="ResNet-50 with bottleneck blocks", uses=("resnet",),
       needs=("8.6/3:shapes", "8.6/3", "8.6/3:shortcut"),
       expected=f"resnet({ref.shown('RESNET50_ARCH')}, block='bottleneck'): the reference's layers and parameter count",
       reveals=True)
def resnet50(p):
    return _resnet_check(p, ref.RESNET50_ARCH, "bottleneck", 50)


# -- 8.6/3: the bottleneck block and the book's ResNeXt block --------------------------------------------------
BOTTLENECKS = ((64, 16, 1), (64, 16, 2), (32, 16, 1), (24, 8, 2))      # (in_channels, mid_channels, stride)


@check("8.6/3", name="shapes", points=1, title="Bottleneck output shapes", uses=("Bottleneck",),
       expected="Bottleneck(c_in, m, s) maps (N, c_in, H, W) to (N, 4m, ⌈H/s⌉, ⌈W/s⌉)")
def bottleneck_shapes(p):
    wanted = [_output("Bottleneck", c_in, mid, stride=stride, input_shape=(2, c_in, 9, 9))
              for c_in, mid, stride in BOTTLENECKS]
    for (c_in, mid, stride), want in zip(BOTTLENECKS, wanted):
        got = _describe(p, "Bottleneck", c_in, mid, stride=stride, input_shape=(2, c_in, 9, 9))
        if got["output"] != want:
            fail(f"`Bottleneck({c_in}, {mid}, stride={stride})` returns {got['output']} for (2, {c_in}, 9, 9); "
                 f"expected {want}: 4 × mid_channels out, the stride on the spatial size.")
    return "4 × mid_channels out, strides 1 and 2"


@check("8.6/3", points=2, title="Bottleneck layers and parameters", uses=("Bottleneck",),
       expected="1×1 to m → 3×3 (m) → 1×1 to 4m with batch norm; a 1×1 projection only when the shape changes; "
                "the reference's parameter count, fewer than a basic block at width 4m")
def bottleneck_layers(p):
    wanted = [(describe_reference(ref, "Bottleneck", c_in, mid, stride=stride, input_shape=(2, c_in, 9, 9)),
               describe_reference(ref, "Residual", 4 * mid, input_shape=(2, 4 * mid, 9, 9))) for c_in, mid, stride in BOTTLENECKS]
    for (c_in, mid, stride), (expected, basic) in zip(BOTTLENECKS, wanted):
        call = f"Bottleneck({c_in}, {mid}, stride={stride})"
        got = _describe(p, "Bottleneck", c_in, mid, stride=stride, input_shape=(2, c_in, 9, 9))
        threes = _kernel_convs(got, 3)
        if len(threes) != 1 or threes[0][2]["out_channels"] != mid:
            fail(f"`{call}` has {len(threes)} 3×3 convolution(s) with {[r[2]['out_channels'] for r in threes]} "
                 f"channels; a bottleneck has one, at the reduced width {mid}.")
        ones, want_ones = len(_kernel_convs(got, 1)), len(_kernel_convs(expected, 1))
        if ones != want_ones:
            shortcut = "a projection on the shortcut, since the shape changes" if want_ones == 3 else \
                "no projection: input and output shapes agree, so the shortcut is the identity"
            fail(f"`{call}` has {ones} 1×1 convolutions; it needs {want_ones}: reduce, expand, and {shortcut}.")
        bias = _expect_params(got, expected, f"`{call}`")
        if c_in == 4 * mid and not got["params"] < basic["params"]:
            fail(f"`{call}` has {got['params']:,} parameters, not fewer than a basic block at width {4 * mid} "
                 f"({basic['params']:,}).")
    return f"the bottleneck's layers and the reference's parameter counts ({bias} convolution biases)"


@check("8.6/3", name="shortcut", points=1, title="The identity shortcut carries the input and its gradient",
       uses=("Bottleneck",), expected="with every convolution zeroed, Bottleneck(4m, m) returns ReLU(X)")
def bottleneck_shortcut(p):
    X = torch.randn(2, 32, 5, 5, generator=p.rng)
    call, reply = _block(p, "Bottleneck", [32, 8], X, zeroed=True)
    _expect_shape(call, reply["zeroed"], X.shape)
    if not torch.allclose(reply["zeroed"], torch.relu(X), atol=1e-5):
        fail(f"with every convolution zeroed, {call} should return ReLU(X): the identity shortcut adds X "
             "unchanged (so the gradient reaches the input even when the branch gives none).")
    residual.verify(p, "Bottleneck", call, 32, 8, input_shape=tuple(X.shape))
    return ("with the branch silenced the block returns ReLU(X), and with its own weights ReLU(F(X) + X) as the "
            "grader recomputes it: the input and its gradient pass through")


RESNEXT_CASES = ((32, 16, 1, False, 1, (2, 32, 8, 8)), (64, 8, 0.5, True, 2, (2, 32, 8, 8)))


@check("8.6/3", name="resnext", points=2, title="The section's ResNeXt block (groups = width of a group)",
       uses=("ResNeXtBlock",),
       expected="ResNeXtBlock(32, 16, 1) keeps (2, 32, 8, 8) with 32 // 16 = 2 groups of width 16; "
                "ResNeXtBlock(64, 8, 0.5, True, 2) gives (2, 64, 4, 4) with 4 groups of width 8")
def resnext_block(p):
    cases = [(channels, width, bot_mul, shape, (channels, width, bot_mul) + ((projection, stride) if projection else ()))
             for channels, width, bot_mul, projection, stride, shape in RESNEXT_CASES]
    wanted = [describe_reference(ref, "ResNeXtBlock", *args, input_shape=shape) for *_, shape, args in cases]
    for (channels, width, bot_mul, shape, args), expected in zip(cases, wanted):
        call = f"ResNeXtBlock({', '.join(map(repr, args))})"
        got = _describe(p, "ResNeXtBlock", *args, input_shape=shape)
        if got["output"] != expected["output"]:
            fail(f"`{call}` returns {got['output']} for {list(shape)}; expected {expected['output']}.")
        bottleneck = int(round(channels * bot_mul))
        grouped = [row for row in _kernel_convs(got, 3)]
        n_groups = bottleneck // width
        if len(grouped) != 1 or grouped[0][2].get("groups") != n_groups:
            have = [row[2].get("groups") for row in grouped]
            hint = ""
            if have == [width]:
                hint = (f": it passes `groups` as the NUMBER of groups; in the book's block `groups` is the width "
                        f"of one group, so groups={bottleneck}//{width}")
            fail(f"`{call}`'s 3×3 convolution has groups={have[0] if len(have) == 1 else have}; {bottleneck} bottleneck "
                 f"channels in groups of width {width} make {n_groups} groups{hint}.")
        _expect_params(got, expected, f"`{call}`")
        residual.verify(p, "ResNeXtBlock", call, *args, input_shape=shape)
    return ("grouped 3×3 convolution with bot_channels // groups groups (groups = width of one group); shapes and "
            "parameters; ReLU(F(X) + X) recomputed by the grader from the block's own layers")


# -- 8.6/4: the pre-activation block ---------------------------------------------------------------------------
@check("8.6/4", name="shapes", points=1, title="Pre-activation block shapes", uses=("PreActResidual",),
       expected="PreActResidual(c) keeps (N, c, H, W); PreActResidual(c2, True, 2) gives the reference's shape")
def preact_shapes(p):
    shape, cases = (2, 4, 7, 7), ([4], [6, True, 2])
    wanted = [_output("PreActResidual", *args, input_shape=shape) for args in cases]
    X = torch.randn(*shape, generator=p.rng)
    for args, want in zip(cases, wanted):
        call, reply = _block(p, "PreActResidual", args, X)
        if reply["shape"] != want:
            fail(f"{call} returns {reply['shape']} for (2, 4, 7, 7); expected {want}.")
    return "identity and projection blocks keep the book's shapes"


@check("8.6/4", points=2, title="BN → ReLU → conv, and nothing after the addition", uses=("PreActResidual",),
       expected="each 3×3 convolution is preceded by batch norm and ReLU; the block ends with the addition, so "
                "with its convolutions zeroed PreActResidual(c) returns X itself")
def preact_order(p):
    X = torch.randn(2, 4, 7, 7, generator=p.rng)
    call, reply = _block(p, "PreActResidual", [4], X, zeroed=True, trace=True)
    roles = reply["roles"]
    _expect_shape(call, reply["zeroed"], X.shape)
    if roles and roles[-1] == "relu" or torch.allclose(reply["zeroed"], torch.relu(X), atol=1e-5):
        fail(f"{call} applies ReLU after the addition; a pre-activation block returns branch + X untouched, "
             "so that the identity path is clean from block to block.")
    if not torch.allclose(reply["zeroed"], X, atol=1e-5):
        fail(f"with every convolution zeroed, {call} should return X itself (the identity shortcut, nothing "
             "after the addition); it returns something else.")
    convs = [i for i, role in enumerate(roles) if role == "conv3x3"]
    if len(convs) != 2:
        fail(f"{call} runs {len(convs)} 3×3 convolution(s); the block has two.")
    for k, i in enumerate(convs):
        before = roles[max(0, i - 2):i]
        if before != ["bn", "relu"]:
            got = " → ".join(before) if before else "nothing"
            fail(f"in {call}, 3×3 convolution {k + 1} is preceded by {got}; pre-activation puts batch norm then "
                 "ReLU before each convolution (BN → ReLU → conv), where the original block has them after.")
    return "BN → ReLU → conv twice, then the addition with nothing after it"
