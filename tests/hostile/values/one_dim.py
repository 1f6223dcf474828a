# 7.3/3 returning the right values flattened to 1-D (case 11).
# expect: failed: (same number of values: reshape it)
from torch.nn import functional as F


def mirror_pad(X, p):
    return F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0].flatten()
