# Hostile submission for tests/test_hostile.py: a stride-0 answer (case 21). The agent is patched to send
# tensors as they are, and the kernel is a 16000x16000 view of one element: a few hundred bytes on the
# wire, 2 GiB for a grader that casts it to float64. The grader must refuse it, not copy it; the formula
# of 7.2/2.4 is right and keeps its point.
# %%
import sys

import torch

agent = sys.modules["_d2lgrade_agent"]
honest = agent.plain


def plain(value, depth=0):
    if type(value) is torch.Tensor:
        return {"__tensor__": value, "device": "cpu", "requires_grad": False}
    return honest(value, depth)


agent.plain = plain


# %% 7.2/2.2
def second_derivative_kernel():
    return torch.zeros(1).expand(16000, 16000)


# %% 7.2/2.4
min_kernel_size_derivative = "d + 1"
