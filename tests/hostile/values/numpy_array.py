# 7.3/3 returning a NumPy array with the right values instead of a tensor (case 11).
# expect: failed: returned a ndarray; a tensor was expected
from torch.nn import functional as F


def mirror_pad(X, p):
    return F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0].numpy()
