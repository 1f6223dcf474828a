# Hostile submission for tests/test_hostile.py: several processes of one runtime, each under the
# per-process limit, together far past it (case 24). The test fills in @@CHUNK@@ (bytes per process).
# Two processes of 1 GiB fit the limit and must both hold theirs (7.3/1:example passes exactly then);
# mirror_pad is right but starts three processes that together go past the limit.
# %%
import subprocess
import sys
import time

import torch
from torch.nn import functional as F

CHUNK = @@CHUNK@@


def hold(count, size):
    """Start `count` processes that each write `size` bytes and keep them; how many held theirs
    while all of them were alive."""
    code = f"import time\nb = b'x' * {size}\nprint('held', flush=True)\ntime.sleep(60)"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(count)]
    held = [p.stdout.readline().strip() == "held" for p in procs]
    time.sleep(0.5)
    alive = [p.poll() is None for p in procs]
    for p in procs:
        p.kill()
        p.wait()
    return sum(h and a for h, a in zip(held, alive))


# %% 7.3/1
output_shape = ("floor((n_h + 2*p_h - k_h)/s_h) + 1", "floor((n_w + 2*p_w - k_w)/s_w) + 1")
example_shape = (2, 2) if hold(2, 2**30) == 2 else (0, 0)

# %% 7.3/3
mirror_mode = "reflect"
hoarded = []


def mirror_pad(X, p):
    if not hoarded:
        hoarded.append(hold(3, CHUNK))
    if X.dim() == 2:
        return F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0]
    return F.pad(X, (p, p, p, p), mode="reflect")
