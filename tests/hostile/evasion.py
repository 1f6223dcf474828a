# Hostile submission for tests/test_hostile.py, case 17 (section 7.1): each answer returns the right
# values, computed by the library routine the exercise asks you to write, and hides that from the
# operator trace that runs inside the student's process. No point may be earned.
# %%
import numpy
import torch
import torch.utils._python_dispatch as quiet
from torch.nn import functional as F

# %% 7.1/1
# The convolution under a name built at run time, with the tracing dispatch mode switched off around it.
_convolve = vars(F)["".join(reversed("d2vnoc"))]


def one_by_one_as_linear(X, W):
    with quiet._disable_current_modes():
        return _convolve(X, W[:, :, None, None])


# %% 7.1/2.2
# An ATen operator that computes the same thing and is not called "convolution".
def conv1d(x, w):
    return torch.conv_tbc(x[:, None, None], w[:, None, None], x.new_zeros(1), 0)[:, 0, 0]


# %% 7.1/6
# A NumPy routine: its work never reaches PyTorch's dispatcher.
def conv1d_full(f, g):
    return torch.from_numpy(numpy.convolve(f.numpy(), g.numpy()))
