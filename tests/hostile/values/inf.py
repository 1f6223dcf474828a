# 7.3/3 with an infinity in the middle (case 11).
# expect: failed: contains inf at index
from torch.nn import functional as F


def mirror_pad(X, p):
    Y = F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0].clone()
    Y[p, p] = float("inf")
    return Y
