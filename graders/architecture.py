"""Shared by the chapter-8 graders: comparing architectures and counts (parameters, FLOPs) with the reference's, in the grader's process.

The student's model is measured inside the runtime by `graders/probes/architecture.py`; the reference's
model is measured here by the very same functions on the reference module's namespace, so both figures
come from one definition of "parameter" and "FLOP" (torch's FlopCounterMode: a multiply-add is 2 FLOPs).
"""
from __future__ import annotations

import math
import struct
from functools import lru_cache
from types import ModuleType

from d2lgrade.values.expected import Reference, computed
from d2lgrade.core.checks import NotAttempted, StudentError, StudentTimeout, fail
from graders import execution
from graders.probes import architecture as probes
from graders.probes import execution as execution_probes

UNITS = {"flops": 1, "macs": 2}      # how many FLOPs one unit of the answer is worth


@lru_cache(maxsize=None)
def _describe(module: ModuleType, name: str, args: tuple, kwargs: tuple, input_shape: tuple) -> dict:
    return probes.describe(vars(module), name, args, dict(kwargs), input_shape)


def describe_reference(ref: Reference, name: str, *args, input_shape=(1, 1, 224, 224), **kwargs) -> dict:
    """`describe` of the reference's `name(*args, **kwargs)`, measured once per process (in a student kit:
    the description recorded at release)."""
    return computed(ref, f"describe {name}", _describe, name, tuple(args), tuple(sorted(kwargs.items())),
                    tuple(input_shape))


MEASURE_TIMEOUT = 60     # seconds for one build: a model that cannot run on `meta` is measured on the CPU


def call_text(name: str, args: tuple = (), kwargs: dict | None = None) -> str:
    """`vgg(((1, 64),), num_classes=10)`: the student's call, as messages name it."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in (kwargs or {}).items()]
    return f"{name}({', '.join(parts)})"


def run_naming(p, fn, name: str, call: str, *args, timeout: float = MEASURE_TIMEOUT):
    """`p.run(fn, *args)`, with messages that name the student's `call` instead of the probe function."""
    try:
        return p.run(fn, *args, timeout=timeout)
    except (NotAttempted, StudentError, StudentTimeout) as exc:
        message = exc.message.replace(f"`{fn.__name__}` still raises", f"`{name}` still raises") \
            .replace(f"the probe {fn.__name__}", f"`{call}`").replace(f"`{fn.__name__}`", f"`{call}`")
        raise type(exc)(message, exc.detail) from None


EXECUTED_PARAMS = 200_000_000   # above this, a network is judged on the meta device alone


def describe_student(p, name: str, *args, input_shape=(1, 1, 224, 224), timeout: float = MEASURE_TIMEOUT,
                     **kwargs) -> dict:
    """`describe` of the student's `name(*args, **kwargs)`, measured in the runtime, restricted to the layers
    that do real work on real inputs (graders/execution.py); messages name that call."""
    call = call_text(name, args, kwargs)
    reply = run_naming(p, probes.describe, name, call, name, list(args), kwargs, list(input_shape), timeout=timeout)
    if not isinstance(reply, dict) or not isinstance(reply.get("layers"), list):
        raise StudentError(f"the runtime gave no readable answer about `{call}`.")
    if isinstance(reply.get("params"), int) and reply["params"] > EXECUTED_PARAMS:
        # Running it for real would need its weights and their gradients in memory (a VGG fed 224×224 images
        # behind a lazy dense layer holds 822 M): the memory limit would fire instead of the check's own verdict,
        # which the counts measured on the meta device already decide for a network this far off.
        return reply
    ran = run_naming(p, execution_probes.execution, name, call, name, list(args), kwargs, list(input_shape),
                     execution.trials_for(reply), p.check.seed, timeout=timeout)
    return execution.judge(ran, reply, call, input_shape)


def as_count(value, what: str) -> float:
    """A student's number (int, float, or a 0-d tensor) as a float; anything else is a clear error."""
    if hasattr(value, "item") and getattr(value, "numel", lambda: 0)() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StudentError(f"{what} should be a number, but it is {value!r}.")
    return float(value)


def magnitude(n: float) -> str:
    """1.79e9 -> '1.79 G', readable in a message."""
    for factor, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g}{suffix}"
    return f"{n:g}"


def is_rounding(value: float, exact: float) -> bool:
    """`value` is `exact` (also as a float32 holds it: a count summed in a float tensor), or `exact` rounded (up,
    down or to nearest) to some number of significant figures."""
    if abs(value - exact) < 0.5 or value == struct.unpack("f", struct.pack("f", exact))[0]:
        return True
    if exact == 0:
        return False
    places = math.floor(math.log10(abs(exact))) + 1
    for digits in range(1, places + 1):
        scale = 10 ** (places - digits)
        if any(abs(value - f(exact / scale) * scale) < 0.5 for f in (round, math.floor, math.ceil)):
            return True
    return False


def without_biases(description: dict) -> int:
    """The parameters of a `describe` record less the biases of its convolutions and dense layers: the other
    way a parameter count is stated."""
    biases = sum(h.get("out_channels" if kind == "Conv2d" else "out_features", 0) * bool(h.get("bias"))
                 for _, kind, h, _ in description["layers"] if kind in ("Conv2d", "Linear"))
    return description["params"] - biases


def expect_count(got, expected: float, what: str, rel: float = 0.01, hints: dict[str, float] | None = None,
                 exact: tuple[float, ...] = ()) -> None:
    """`got` within `rel` of `expected`; otherwise fail with how far off it is and, where `got` equals one of
    `hints` ({"what that number is": value}, e.g. the count without biases), which mistake that is.
    `exact`: the exact counts a right answer may state (e.g. with and without biases): the tolerance is then for
    rounded figures only, so a figure within it must be one of them or a rounding of one, never a precise miscount."""
    value = as_count(got, what)
    if abs(value - expected) <= rel * abs(expected):
        if exact and not any(is_rounding(value, form) for form in exact):
            fail(f"{what} is {value:,.0f}, close to the count but neither an exact count (with or without biases) nor "
                 "a rounding of one: a parameter count has exact values, so recount (or give it rounded).",
                 reveal=f"The reference counts {expected:,.0f}.")
        return
    # The count is the answer: hints name the mistake and the direction, the figure goes to `reveal` (a ratio
    # to three digits would give it back).
    reveal = f"The reference counts {magnitude(expected)}."
    for mistake, wrong in (hints or {}).items():
        if abs(value - wrong) <= rel * max(abs(wrong), 1):
            fail(f"{what} is {magnitude(value)}, which is {mistake}.", reveal=reveal)
    if value > 0 and expected > 0:
        ratio = value / expected
        orders = abs(round(math.log10(ratio)))
        scale = (f"{'above' if ratio > 1 else 'below'} the reference's" if 0.1 <= ratio <= 10 else
                 f"{orders} order{'s' if orders > 1 else ''} of magnitude {'above' if ratio > 1 else 'below'} the reference's")
        fail(f"{what} is {magnitude(value)}, {scale} (tolerance {rel:.0%}).", reveal=reveal)
    fail(f"{what} is {magnitude(value)}, not the reference's count.", reveal=reveal)


def infer_unit(answer: dict, expected: dict[str, float], rel: float) -> str | None:
    """The one unit ("FLOPs" or "MACs") in which every `answer[key]` lies within `rel` of `expected[key]`
    (FLOPs); None when neither or both do. A unit is inferred only where the numbers leave no doubt."""
    fits = []
    for unit, factor in (("FLOPs", UNITS["flops"]), ("MACs", UNITS["macs"])):
        try:
            values = {key: as_count(answer.get(key), key) * factor for key in expected}
        except StudentError:
            return None
        if all(abs(values[key] - want) <= rel * abs(want) for key, want in expected.items()):
            fits.append(unit)
    return fits[0] if len(fits) == 1 else None


def read_flops(answer: dict, key: str, what: str, inferred: str | None = None) -> float:
    """The FLOPs in `answer[key]`, reading the answer's "unit" ("FLOPs" or "MACs"), or `inferred` where the
    answer names none; with neither, an error rather than a guess from the magnitude."""
    unit = str(answer.get("unit", "")).strip().lower()
    if unit not in UNITS and "unit" not in answer and inferred:
        unit = inferred.lower()
    if unit not in UNITS:
        fail(f"{what}: say which unit the numbers are in with \"unit\": \"FLOPs\" or \"MACs\" "
             f"(got {answer.get('unit')!r}).")
    return as_count(answer.get(key), f"{what}[{key!r}]") * UNITS[unit]


def flops_from(answer: dict, key: str, what: str, expected: float | None = None, rel: float = 0.01) -> float:
    """`read_flops` of one number, its unit inferred from `expected` (FLOPs) where the answer names none."""
    inferred = infer_unit(answer, {key: expected}, rel) if expected is not None and "unit" not in answer else None
    return read_flops(answer, key, what, inferred)


def unit_note(answer: dict, inferred: str | None) -> str:
    """What a passed message says when the unit was inferred rather than given."""
    return f" (no \"unit\" given: read as {inferred}, the only unit in which the numbers match)" \
        if inferred and "unit" not in answer else ""
