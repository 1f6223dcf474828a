"""Judging that a network bends its signal between weighted layers (graders/probes/nonlinearity.py follows the
forward pass in the runtime), for the exercises whose networks apply an activation after every convolution and
hidden dense layer (AlexNet and LeNet variants, GoogLeNet, batch-norm LeNets).

What is judged is what the forward pass computes, not which modules are declared: an `nn.ReLU` swapped for
`nn.Identity` (or skipped in forward) fails, while `F.relu`, `nn.ReLU(inplace=True)`, a sigmoid or a block of
the student's own that applies any nonlinearity passes.
"""
from __future__ import annotations

from d2lgrade.core.checks import StudentError, fail
from graders.architecture import MEASURE_TIMEOUT, call_text, run_naming
from graders.probes import nonlinearity as probes


def _text(label) -> str:
    return str(label)[:120]       # the runtime's words: shown, never trusted beyond that


SATURATING = {"sigmoid", "sigmoid_", "tanh", "tanh_"}


def expect_activations(p, name: str, *args, input_shape=(2, 1, 28, 28), activation: str = "ReLU",
                       call: str | None = None, saturating: bool = True, **kwargs) -> int:
    """Fails naming the first weighted layer whose output reaches another weighted layer with no nonlinearity
    in between, or (`saturating=False`, AlexNet's exercises) one whose output only a sigmoid or tanh bends;
    returns how many weighted layer calls the forward pass made."""
    call = call or call_text(name, args, kwargs)
    reply = run_naming(p, probes.unbent_pairs, name, call, name, list(args), kwargs, list(input_shape),
                       timeout=MEASURE_TIMEOUT)
    if not isinstance(reply, dict) or not isinstance(reply.get("pairs"), list):
        raise StudentError(f"the runtime gave no readable answer about what `{call}` computes.")
    for pair in reply["pairs"]:
        if isinstance(pair, list) and len(pair) == 2:
            first, then = map(_text, pair)
            fail(f"in `{call}`, the output of {first} reaches {then} with no activation applied in between, so the "
                 f"two collapse into one linear map: apply a nonlinearity ({activation}) after {first}.")
    for entry in reply.get("bent") or [] if not saturating else []:
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list) and entry[1] \
                and set(map(str, entry[1])) <= SATURATING:
            fail(f"in `{call}`, the output of {_text(entry[0])} is bent only by {_text(entry[1][0])}, a saturating "
                 f"activation: this network uses {activation} after every convolution and hidden dense layer.")
    return int(reply.get("weighted") or 0)
