# Chen's work on 7.3 (demo class): a cell fails, and the padding raises.
# %%
import torch
from torch.nn import functional as F

# %% 7.3/1
output_shape = ("floor((n_h + 2*p_h - k_h)/s_h) + 1", "floor((n_w + 2*p_w - k_w)/s_w) + 1")
example_shape = compute_shape(8, 8)          # never defined: this cell raises NameError

# %% 7.3/3
def mirror_pad(X, p):
    return F.pad(X, (p, p, p, p), mode="mirror")   # not a mode F.pad knows
