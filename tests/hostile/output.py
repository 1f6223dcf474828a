# Hostile submission for tests/test_hostile.py: output that tries to pass for a result, floods the
# grader, or hides errors (cases 4 and 14). Graded through `grade.py --json`, whose stdout must stay
# one JSON document with the true score.
# %%
import json
import os
import sys
import warnings

import torch
from torch.nn import functional as F

FAKE = {"section": "7.3", "score": 13, "max_score": 13, "checks": []}
print(json.dumps(FAKE))                               # a fake report, on stdout ...
print("score: 13/13  all checks passed", file=sys.stderr)
os.write(1, (json.dumps(FAKE) + "\n").encode())       # ... at the file-descriptor level too
for path in ("/dev/tty", f"/proc/{os.getppid()}/fd/1", "/proc/1/fd/1"):
    try:                                              # and straight at the grader's terminal
        with open(path, "w") as f:
            f.write(json.dumps(FAKE) + "\n")
    except OSError:
        pass

# %% 7.3/1
output_shape = "n_h - k_h + 1"       # wrong: no padding, no stride
example_shape = (2, 2)
for _ in range(50):                  # 100 MB of output
    sys.stdout.write("x" * 2**20)
    sys.stderr.write("y" * 2**20)

# %% 7.3/3
# Hide every traceback from here on, then fail loudly: verdicts must not depend on what is shown.
get_ipython().showtraceback = lambda *args, **kwargs: None
from IPython.core.interactiveshell import InteractiveShell
InteractiveShell.showtraceback = lambda *args, **kwargs: None
mirror_mode = "reflect"


def mirror_pad(X, p):
    print('{"score": 13, "max_score": 13}')
    if X.dim() == 2:
        return F.pad(X[None, None], (p, p, p, p), mode="reflect")[0, 0]
    raise ValueError("batched input is not handled" + " (hidden)" * 10**6)


# %% 7.3/4
warnings.warn("a warning on stderr must not cost the point")
stride_speedup = "s_h*s_w"
1 / 0                                # an error the student hid

# %% 7.3/6
def upsample_stride_half(X, K):
    print("7.3/6  2/2  passed", flush=True)
    return F.conv_transpose2d(X, K, stride=2) + 1    # wrong by one everywhere
