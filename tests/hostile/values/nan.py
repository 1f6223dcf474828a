# 7.3/3 with a NaN where a border value belongs (case 11).
# expect: failed: contains nan at index (0, 1)
from torch.nn import functional as F


def mirror_pad(X, p):
    Y = F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0].clone()
    Y[0, 1] = float("nan")
    return Y
