# 7.3/3 returning a 0-dim tensor (its sum) instead of the padded matrix (case 11).
# expect: failed: has shape (), expected
from torch.nn import functional as F


def mirror_pad(X, p):
    return F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0].sum()
