"""Another correct answer: a surviving mutant of an open exercise that still has the property the exercise asks for.

Some exercises accept any network with stated properties ("a simplified AlexNet for 28×28 images", "LeNet with
batch norm after the convolutions only"), so a mutant with another learning rate, padding or width can be just
as right as the reference. Such a survivor is not a hole, but the audit does not take the checks' word for it:
each open exercise declares here, once, the property the exercise states, and the audit re-measures the mutant
with its own probe (graders/probes/audit_properties.py) and tests that property. Declared per exercise, never
per mutant; a mutant the property does not clearly cover stays a hole for a person to read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from d2lgrade.pipeline.probe import _source_of
from d2lgrade.run import wire
from d2lgrade.run.limits import Limits
from graders.probes import audit_properties as probes

WEIGHTED = ("Conv2d", "Linear")
ACTIVATIONS = ("ReLU", "Sigmoid", "Tanh", "GELU", "LeakyReLU", "ELU", "SiLU", "ReLU6")
POOLS = ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d")
NORMS = ("BatchNorm1d", "BatchNorm2d")
SMALL, BOOK = (2, 1, 28, 28), (1, 1, 224, 224)


@dataclass(frozen=True)
class Accepts:
    reason: str                                  # what the exercise accepts, for the report
    networks: dict[str, tuple]                   # label -> (contract or reference name, kwargs, input shape)
    problem: Callable[[dict], str]               # summaries (and values) by label -> "" when the property holds, else what fails
    values: tuple[str, ...] = ()                 # contract names whose values the property reads
    calls: dict[str, tuple] = None               # label -> (contract name, [[args, kwargs], ...]) whose answers it reads


# -- reading a summary: the layers between one weighted layer and the next -------------------------------
def segments(summary: dict) -> list[tuple[str, list[str]]]:
    """[(weighted layer kind, kinds that ran after it up to the next weighted layer)], in call order."""
    out = []
    for kind, _ in summary["calls"]:
        if kind in WEIGHTED:
            out.append((kind, []))
        elif out:
            out[-1][1].append(kind)
    return out


def count(summary: dict, kind: str) -> int:
    return sum(1 for k, _ in summary["calls"] if k == kind)


def unbent(summary: dict, activations=ACTIVATIONS) -> bool:
    """Some weighted layer but the last reaches the next one without an activation module between."""
    return any(not set(between) & set(activations) for _, between in segments(summary)[:-1])


def problems(*conditions: tuple[bool, str]) -> str:
    return next((what for ok, what in conditions if not ok), "")


def _conv_side(summary: dict) -> int:
    shapes = [shape for kind, shape in summary["calls"] if kind == "Conv2d" and shape]
    return min(shapes[-1][-2:]) if shapes else 0


# -- the open exercises ----------------------------------------------------------------------------------
def _small_alexnet(s: dict) -> str:
    net, book = s["net"], s["book"]
    return problems((net["output"] == [2, 10], "no (N, 10) scores"), (count(net, "Conv2d") >= 2, "fewer than two convolutions"),
                    (not unbent(net, ("ReLU",)), "a weighted layer without ReLU"), (any(k in POOLS for k, _ in net["calls"]), "no pooling"),
                    (net["params"] < book["params"] and net["flops"] < book["flops"], "not cheaper than the book's AlexNet"))


def _alexnet_28(s: dict) -> str:
    net, book = s["net"], s["book"]
    return problems((net["output"] == [2, 10], "no (N, 10) scores"), (count(net, "Conv2d") >= 3, "fewer than three convolutions"),
                    (not unbent(net, ("ReLU",)), "a weighted layer without ReLU"), (count(net, "Dropout") > 0, "no dropout"),
                    (net["flops"] < 0.5 * book["flops"], "as costly as the book's AlexNet at 224×224"))


def _lenet_dropout(s: dict) -> str:
    net = s["net"]
    return problems((net["output"] == [2, 10], "no (N, 10) scores"), (not unbent(net, ("ReLU",)), "a weighted layer without ReLU"),
                    (count(net, "Dropout") > 0, "no dropout"), (count(net, "Sigmoid") == 0, "a sigmoid left"))


def _lenet_with_bn(where: tuple[str, ...]) -> Callable[[dict], str]:
    """The section's LeNet shape (two pooled convolutions, three dense layers, an activation after every weighted
    layer but the last) with batch norm directly after exactly the weighted layers of the kinds `where`."""
    def problem(s: dict) -> str:
        net, parts = s["net"], segments(s["net"])
        kinds = [kind for kind, _ in parts]
        normed = [bool(between) and between[0] in NORMS for _, between in parts[:-1]]
        return problems((net["output"] == [2, 10], "no (N, 10) scores"),
                        (kinds == ["Conv2d", "Conv2d", "Linear", "Linear", "Linear"], "not LeNet's layers"),
                        (all(set(between) & set(POOLS) for kind, between in parts[:2]), "a convolution not pooled"),
                        (not unbent(net), "a weighted layer without an activation"),
                        (all(n == (kind in where) for n, (kind, _) in zip(normed, parts)), "batch norm elsewhere"),
                        (not set(parts[-1][1]) & set(NORMS), "batch norm after the output layer"))
    return problem


def _googlenet_28(s: dict) -> str:
    net, book, book_96 = s["net"], s["book"], s["book_96"]
    return problems((net["output"] == [1, 10], "no (1, 10) scores"),
                    (count(net, "Conv2d") >= count(book, "Conv2d"), "fewer convolutions than the book's GoogLeNet"),
                    (not unbent(net, ("ReLU",)), "a convolution without ReLU"),
                    (_conv_side(net) >= _conv_side(book_96), "a last stage smaller than the book's at 96×96"),
                    (0.25 * book["params"] <= net["params"] <= 4 * book["params"], "not a GoogLeNet's size"),
                    (net["flops"] <= 2 * book_96["flops"], "costlier than twice the book's GoogLeNet at 96×96"))


def _vgg_small(s: dict) -> str:
    for size in (56, 84):
        net, parts = s[f"net{size}"], segments(s[f"net{size}"])
        runs, convs, bare = [], 0, unbent(net, ("ReLU",))
        for kind, _ in net["calls"]:
            convs += kind == "Conv2d"
            if kind in ("MaxPool2d", "AvgPool2d"):
                runs, convs = runs + [convs], 0
        problem = problems((net["output"] == [2, 10], f"no (N, 10) scores at {size}"),
                           (not bare, "a weighted layer without ReLU"),
                           (len(runs) >= 2 and min(runs) >= 2, "a downsampling after fewer than two convolutions"),
                           (net["flops"] < 0.1 * s["vgg11"]["flops"], "not a fraction of VGG-11's cost"),
                           (bool(parts), "no weighted layer"))
        if problem:
            return problem
    return ""


def _nin_family(s: dict) -> str:
    sizes = []
    for depth in (12, 16, 20):
        net, parts = s[f"nin{depth}"], segments(s[f"nin{depth}"])
        kinds = [kind for kind, _ in parts]
        problem = problems((net["output"] == [1, 10], "no (1, 10) scores"),
                           (kinds == ["Conv2d"] * depth, f"not {depth} convolutions and nothing else with weights"),
                           (not unbent(net, ("ReLU",)), "a convolution without ReLU"),
                           (any(k in ("AdaptiveAvgPool2d", "AvgPool2d") for k, _ in net["calls"][-3:]),
                            "no global average pooling head"))
        if problem:
            return problem
        sizes.append(net["params"])
    return "" if len(set(sizes)) == 3 else "the same network at every depth"


def _max_counterexample(s: dict) -> str:
    pair = s["max_nonlinear_counterexample"]
    try:
        x, y = ([float(v) for v in part] for part in pair)
    except (TypeError, ValueError):
        return "not a pair of lists of numbers"
    if len(x) != len(y) or not x:
        return "x and y of different lengths"
    return "" if abs(max(a + b for a, b in zip(x, y)) - (max(x) + max(y))) > 1e-6 else "max(x + y) = max(x) + max(y)"


def _modern_lenet(s: dict) -> str:
    net, parts = s["net"], segments(s["net"])
    kinds = [kind for kind, _ in net["calls"]]
    return problems((net["output"] == [2, 10], "no (N, 10) scores"),
                    ([kind for kind, _ in parts] == ["Conv2d", "Conv2d", "Linear", "Linear", "Linear"], "not LeNet's layers"),
                    (all("MaxPool2d" in between for _, between in parts[:2]), "a convolution not max-pooled"),
                    ("Sigmoid" not in kinds and "AvgPool2d" not in kinds, "a sigmoid or average pooling left"),
                    (not unbent(net, ("ReLU",)), "a weighted layer without ReLU"),
                    (not set(parts[-1][1]) & set(ACTIVATIONS), "an activation after the logits"))


def _any_lenet(s: dict) -> str:
    net = s["net"]
    return problems((net["output"] == [2, 10], "no (N, 10) scores"), (not unbent(net), "a weighted layer without an activation"),
                    (count(net, "Conv2d") >= 1, "no convolution"))


def _relu_levels(s: dict) -> str:
    """Levels of ReLU layers that compute the max of n numbers: the pairwise tree's ⌈log2 n⌉, or the construction of
    Bakaev, Brunck, Hertrich, Stade and Yehudayoff (2025) with ⌈log3(n − 1)⌉ + 1, computed here for each window."""
    def known(n):
        tree, clever = 0, 1
        while 2 ** tree < n:
            tree += 1
        while 3 ** (clever - 1) < n - 1:
            clever += 1
        return {tree, clever}
    answers = {4: s["relu_levels_2x2"], 9: s["relu_levels_3x3"]}
    return next((f"{levels!r} levels for {n} values" for n, levels in answers.items()
                 if isinstance(levels, bool) or levels not in known(n)), "")


H_O, W_O = "(floor((h + 2*p_h - k_h)/s_h) + 1)", "(floor((w + 2*p_w - k_w)/s_w) + 1)"
FORWARD_MEMORY = f"c_i*h*w + c_o*c_i*k_h*k_w + c_o*{H_O}*{W_O}"


def _same_formula(answer, forms: tuple[str, ...]) -> bool:
    """`answer` (a formula string) is one of `forms` up to algebra, by sympy (the audit's own comparison)."""
    import sympy
    try:
        got = sympy.sympify(str(answer), locals={"floor": sympy.floor, "ceiling": sympy.ceiling})
        return any(sympy.expand(got - sympy.sympify(form, locals={"floor": sympy.floor})) == 0 for form in forms)
    except (sympy.SympifyError, TypeError, SyntaxError):
        return False


def _convolution_adds(s: dict) -> str:
    return problems((_same_formula(s["forward_mults"], (f"c_o*{H_O}*{W_O}*c_i*k_h*k_w",)), "forward_mults wrong"),
                    (_same_formula(s["forward_adds"], (f"c_o*{H_O}*{W_O}*(c_i*k_h*k_w - 1)",
                                                       f"c_o*{H_O}*{W_O}*c_i*k_h*k_w")), "forward_adds not a counted form"))


def _backward_memory(s: dict) -> str:
    forms = (FORWARD_MEMORY, f"2*({FORWARD_MEMORY})", f"{FORWARD_MEMORY} + c_o", f"2*({FORWARD_MEMORY}) + 2*c_o")
    return "" if _same_formula(s["backward_memory"], forms) else "backward_memory not a counted form"


def _in_flops(answer, key: str) -> float | None:
    """answer[key] in FLOPs (a count in MACs, said so in "unit", is doubled), or None when it is not a count."""
    try:
        value, unit = float(answer[key]), str(answer.get("unit", "FLOPs")).lower()
    except (TypeError, KeyError, ValueError, AttributeError):
        return None
    return {"flops": value, "macs": 2 * value}.get(unit)


def _near(got: float | None, want: float, rel: float) -> bool:
    return got is not None and want > 0 and abs(got - want) <= rel * want


def _alexnet_flop_split(s: dict) -> str:
    net, answer = s["net"], s["alexnet_flop_split"]
    return problems((_near(_in_flops(answer, "conv"), net["conv_flops"], 0.03), "the convolutions' FLOPs are off"),
                    (_near(_in_flops(answer, "fc"), net["flops"] - net["conv_flops"], 0.03), "the dense layers' FLOPs are off"))


def _nin_counts(s: dict) -> str:
    net = s["net"]
    return problems((s["nin_params"] == net["params"], "not the parameter count"),
                    (_near(_in_flops(s["nin_flops"], "total"), net["flops"], 0.05), "the FLOPs are off"))


COUNTING = ("counting tools differ by more than one FLOP in what they add (biases, pooling, activations), so the "
            "exercise takes any count within its tolerance; the audit counts the network itself (a multiply-add "
            "is 2 FLOPs) and finds the answer inside it")


SAMPLED_SEEDS = 64


def _anynet_problems(config) -> list[str]:
    """The RegNetX principles a four-stage AnyNet configuration breaks, or ["invalid"] when it cannot be built."""
    try:
        d, w, g, b = (list(config[k]) for k in ("depths", "widths", "group_widths", "bot_muls"))
        valid = all(len(v) == 4 for v in (d, w, g, b)) and all(int(x) == x > 0 for x in d + w + g) and \
            all(x > 0 for x in b) and all(round(wi * bi) % gi == 0 for wi, gi, bi in zip(w, g, b))
    except (TypeError, KeyError, ValueError):
        return ["invalid"]
    if not valid:
        return ["invalid"]
    return [name for name, ok in (("bot_mul", len(set(b)) == 1), ("group_width", len(set(g)) == 1),
                                  ("widths", w == sorted(w)), ("depths", d == sorted(d))) if not ok]


def _anynet_sampler(s: dict) -> str:
    """Every sample follows all four principles, or breaks exactly the one asked to be broken."""
    for kind in (None, "bot_mul", "group_width", "widths", "depths"):
        for seed, config in enumerate(s[str(kind)]):
            broken = _anynet_problems(config)
            if broken != ([kind] if kind else []):
                return f"seed {seed}, violate={kind!r}: breaks {broken or 'nothing'}"
    return ""


DESIGN = ("another learning rate, width, kernel, padding or pooling window is a design choice the exercise leaves "
          "open (the grader trains at its own rate)")
ACCEPTS: dict[str, Accepts] = {
    "8.1/5.1": Accepts("a simplified AlexNet for 28×28 images: (N, 10) scores, two or more convolutions, ReLU after every "
                       "weighted layer but the last, pooling, fewer parameters and FLOPs than the book's AlexNet; " + DESIGN,
                       {"net": ("SmallAlexNet", {}, SMALL), "book": ("AlexNet", {}, BOOK)}, _small_alexnet),
    "8.1/5.2": Accepts("an AlexNet for native 28×28 images: (N, 10) scores, three or more convolutions, ReLU after every "
                       "weighted layer but the last, dropout, under half the book's AlexNet FLOPs; " + DESIGN,
                       {"net": ("AlexNet28", {}, SMALL), "book": ("AlexNet", {}, BOOK)}, _alexnet_28),
    "8.1/7": Accepts("LeNet with ReLU after every weighted layer but the last, dropout and no sigmoid; " + DESIGN,
                     {"net": ("LeNetDropout", {}, SMALL)}, _lenet_dropout),
    "8.4/3": Accepts("a GoogLeNet for 28×28 images: (1, 10) scores, the book's body (as many convolutions, each with "
                     "ReLU), a last stage no smaller than the book's at 96×96, a GoogLeNet's size and cost; " + DESIGN,
                     {"net": ("GoogLeNet28", {}, (1, 1, 28, 28)), "book": ("GoogleNet", {}, (1, 1, 28, 28)),
                      "book_96": ("GoogleNet", {}, (1, 1, 96, 96))}, _googlenet_28),
    "8.5/2": Accepts("the section's LeNet (two pooled convolutions, three dense layers, an activation after each but the "
                     "last) with batch norm after every convolution and hidden dense layer; " + DESIGN,
                     {"net": ("BNLeNet", {}, SMALL)}, _lenet_with_bn(("Conv2d", "Linear"))),
    "8.5/3": Accepts("the section's LeNet (two pooled convolutions, three dense layers, an activation after each but the "
                     "last) with batch norm after the convolutions only; " + DESIGN,
                     {"net": ("ConvBNLeNet", {}, SMALL)}, _lenet_with_bn(("Conv2d",))),
    "8.2/4": Accepts("a VGG for 56×56 and 84×84 images: (N, 10) scores at both sizes, at least two downsamplings, each "
                     "after two or more convolutions with ReLU, under a tenth of VGG-11's FLOPs at 224×224; which size "
                     "switches to a deeper stack, and the widths, are design choices the exercise leaves open",
                     {"net56": ("VGGSmall", {"input_size": 56}, (2, 1, 56, 56)),
                      "net84": ("VGGSmall", {"input_size": 84}, (2, 1, 84, 84)),
                      "vgg11": ("VGG", {"arch": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))}, BOOK)}, _vgg_small),
    "8.3/6": Accepts("NiN-like networks of 12, 16 and 20 convolutions (no dense layer), ReLU after each, a global "
                     "average pooling head and (1, 10) scores, larger with depth; the kernel of a stage is a design "
                     "choice the exercise leaves open",
                     {f"nin{d}": ("nin_family", {"depth": d}, (1, 1, 224, 224)) for d in (12, 16, 20)}, _nin_family),
    "7.6/1": Accepts("LeNet's five weighted layers with max pooling after each convolution, ReLU after every weighted "
                     "layer but the last and raw logits, no sigmoid or average pooling; the default `lr` is unused where "
                     "the grader trains at the book's rate, and " + DESIGN,
                     {"net": ("ModernLeNet", {}, SMALL)}, _modern_lenet),
    "7.6/2": Accepts("any convolutional network for 28×28 images with (N, 10) scores and an activation after every "
                     "weighted layer but the last: the exercise allows any architecture and judges held-out accuracy, "
                     "which the grader's own training measured", {"net": ("ImprovedLeNet", {}, SMALL)}, _any_lenet),
    "7.4/2.1": Accepts("the additions of a convolution's forward pass, c_i·k_h·k_w − 1 per output, or one more per output "
                       "where the bias's addition is counted (the exercise's two forms, compared by sympy)", {},
                       _convolution_adds, values=("forward_mults", "forward_adds")),
    "7.4/2.3": Accepts("the memory of the backward pass: the values held in the forward pass, or those and their "
                       "gradients (\"about twice\"), with or without the bias (the exercise's forms, compared by sympy)",
                       {}, _backward_memory, values=("backward_memory",)),
    "8.8/3": Accepts("a sampler of valid four-stage AnyNet configurations that follow RegNetX's four principles, or "
                     f"break exactly the one named ({SAMPLED_SEEDS} seeds of each kind, re-checked by the audit); the "
                     "ranges it draws from are the sampler's choice", {}, _anynet_sampler,
                     calls={str(kind): ("sample_anynet", [[[seed], {"violate": kind}] for seed in range(SAMPLED_SEEDS)])
                            for kind in (None, "bot_mul", "group_width", "widths", "depths")}),
    "7.5/3.3": Accepts("the levels of a known ReLU construction of the max of 4 and of 9 values: the pairwise tree "
                       "(⌈log2 n⌉) or the 2025 construction with ⌈log3(n − 1)⌉ + 1, both re-computed by the audit", {},
                       _relu_levels, values=("relu_levels_2x2", "relu_levels_3x3")),
    "8.1/1.2": Accepts("the FLOPs of the book's AlexNet on one 1×224×224 image, convolutions and dense layers each within "
                       "the check's 3 %; " + COUNTING, {"net": ("AlexNet", {}, BOOK)}, _alexnet_flop_split,
                       values=("alexnet_flop_split",)),
    "8.3/4": Accepts("NiN's exact parameter count and its FLOPs on one 1×224×224 image within the check's 5 %; " + COUNTING,
                     {"net": ("NiN", {}, BOOK)}, _nin_counts, values=("nin_params", "nin_flops")),
    "7.5/2": Accepts("any x, y of one length with max(x + y) ≠ max(x) + max(y) is a counterexample to the linearity of "
                     "max, re-computed by the audit", {}, _max_counterexample, values=("max_nonlinear_counterexample",)),
}


def measure(runtime, name: str, kwargs, input_shape: tuple | None, seconds: float = 60.0, func: str = "summary"):
    """probes.summary of `name(**kwargs)` in the runtime (or `func`, e.g. probes.answers of `name` on the calls
    `kwargs`), or None when it does not run."""
    args = [name, kwargs, list(input_shape)] if input_shape is not None else [name, kwargs]
    request = {"op": "probe", "module": probes.__name__, "source": _source_of(probes), "func": func,
               "args": args, "kwargs": {}, "seed": 0, "call_seconds": seconds,
               "wall_seconds": Limits.call_wall_seconds(seconds)}
    reply = runtime.request(request, request["wall_seconds"] + 5)
    return wire.unwrap(reply.get("value")) if reply.get("ok") else None


def check(runtime, exercise: str) -> tuple[bool, str]:
    """(True, the exercise's reason) when what is loaded in the runtime has the exercise's declared property;
    (False, what it lacks) otherwise, and (False, "") for an exercise with no declared property."""
    accepts = ACCEPTS.get(exercise)
    if accepts is None:
        return False, ""
    summaries = {}
    if accepts.values:
        reply = runtime.request({"op": "get", "names": list(accepts.values)}, 60)
        for name in accepts.values:
            entry = reply.get(name) or {}
            if not entry.get("ok"):
                return False, f"`{name}` cannot be read"
            summaries[name] = wire.unwrap(entry.get("value"))
    for label, (name, calls) in (accepts.calls or {}).items():
        summaries[label] = measure(runtime, name, calls, None, func=probes.answers.__name__)
        if not isinstance(summaries[label], list):
            return False, f"`{name}` does not answer"
    for label, (name, kwargs, shape) in accepts.networks.items():
        summaries[label] = measure(runtime, name, kwargs, shape)
        if not isinstance(summaries[label], dict):
            return False, f"`{name}` does not run"
    problem = accepts.problem(summaries)
    return (False, problem) if problem else (True, accepts.reason)
