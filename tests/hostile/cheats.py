# Hostile submission for tests/test_hostile.py: trying to change the verdict from inside the
# runtime (cases 6 and 7). Every answer here is wrong or of the wrong type; no point may be earned,
# and the pickle payload must never run in the grader.
# %%
import builtins
import os

import numpy
import torch
import torch.testing
from torch.nn import functional as F

MARKER = "/tmp/d2lgrade-hostile-pickle-payload-ran"    # what the payload would create in the grader

# Make every comparison in this process say "equal".
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
numpy.allclose = lambda *args, **kwargs: True
numpy.testing.assert_allclose = lambda *args, **kwargs: None
torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
builtins.abs = lambda x: 0
_real_isinstance = builtins.isinstance


class Payload:
    """Unpickling this creates MARKER: code execution in whoever loads it."""

    def __reduce__(self):
        return (exec, (f"open({MARKER!r}, 'w').write('pwned')",))


class Sneaky(torch.Tensor):
    """A tensor subclass: its methods would run in the grader if it were ever rebuilt there."""

    def __eq__(self, other):
        return True


# %% 7.3/1
class Formula(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


output_shape = Formula("n_h")          # a str subclass that claims to equal anything
example_shape = Payload()             # not a pair: and never pickled into the grader as it is

# %% 7.3/3
mirror_mode = "reflect"


def mirror_pad(X, p):
    if X.dim() == 2:
        return torch.zeros(X.shape[0] + 2 * p, X.shape[1] + 2 * p, dtype=X.dtype)   # wrong values
    good = F.pad(X, (p, p, p, p), mode="reflect")
    return good.as_subclass(Sneaky)    # right values, wrong type


# %% 7.3/4
import sympy
sympy.simplify = lambda expr, *args, **kwargs: sympy.Integer(0)   # "every difference is zero"
stride_speedup = "s_h + s_w"


# %% 7.3/6
def upsample_stride_half(X, K):
    # Replace the agent's reduction so the raw objects are pickled into the response file.
    agent = __import__("_d2lgrade_agent")
    agent.plain = lambda value, depth=0: value
    return [Payload(), F.conv_transpose2d(X, K, stride=2).as_subclass(Sneaky)]
