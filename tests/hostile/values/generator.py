# 7.3/3 returning a generator of rows instead of a tensor (case 11).
# expect: failed: returned a generator; a tensor was expected
from torch.nn import functional as F


def mirror_pad(X, p):
    return (row for row in F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0])
