# Eli's work on 7.2 (demo class): only the written answers so far.
# %%
import torch

# %% [markdown] 7.2/1
# The filter responds on both sides of the diagonal line, once positive and once negative.

# %% [markdown] 7.2/3
# The loop-based corr2d still gets gradients in PyTorch because autograd records the indexing writes.
