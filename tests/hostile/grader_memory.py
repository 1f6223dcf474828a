# Hostile submission for tests/test_hostile.py: an answer the wire admits (250 MiB of float16, near the
# cap) whose float64 copy in the grader is 1 GiB (case 25). Under the batch worker's memory limit that
# copy fails in the grader: one check errs, the worker, the row and the rest of the batch go on.
# %% 7.2/2.2
import torch


def second_derivative_kernel():
    return torch.zeros(16000, 8192, dtype=torch.float16)


# %% 7.2/2.4
min_kernel_size_derivative = "d + 1"
