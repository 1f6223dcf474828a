# 7.3/3 returning a tensor on the wrong device: "meta" exists on every machine (case 11).
# expect: error: meta tensor
from torch.nn import functional as F


def mirror_pad(X, p):
    return F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0].to("meta")
