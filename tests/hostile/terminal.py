# Hostile submission for tests/test_hostile.py: terminal escape sequences (case 22). Exception messages,
# class names and values carry sequences that would clear the screen, retitle the window, hide text and
# reorder it (bidi override); the table must show them as visible escapes. 7.3/4 is right and passes.
# %%
import torch

CLEAR, TITLE, HIDE, BIDI = "\x1b[2J\x1b[H", "\x1b]0;pwned\x07", "\x1b[8m", "\u202e"
Payload = type("Payload" + TITLE, (), {})
Boom = type("Boom" + CLEAR, (Exception,), {})

# %% 7.3/1
output_shape = (Payload(), Payload())
example_shape = Payload()

# %% 7.3/3
mirror_mode = "reflect"


def mirror_pad(X, p):
    raise Boom(CLEAR + "score: 13/13" + HIDE + BIDI + "hidden")


# %% 7.3/4
stride_speedup = "s_h*s_w"


# %% 7.3/6
def upsample_stride_half(X, K):
    raise ValueError(TITLE + "\x9b2J" + CLEAR)
