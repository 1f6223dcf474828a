"""Exercises that ask for a computation "as a matrix product" (7.4/5's im2col): the grader checks that a
matrix product runs and that every output value comes from one (graders/probes/matrix_products.py adds
noise to each product's result in the runtime; outputs that stay the same were computed beside it)."""
import torch

from d2lgrade.core.checks import fail
from graders.probes.matrix_products import call_with_noisy_products

# A dot product per output value is a loop, not a matrix product: only these count as one.
MATMUL_OPS = {"mm", "mv", "bmm", "addmm", "addmv", "baddbmm", "addbmm"}


def expect_matrix_product(p, name: str, args: tuple, kwargs: dict, expected: torch.Tensor, task: str) -> None:
    """Fail unless `name`(*args, **kwargs) computes `expected` (`task`, in words) through a matrix product.
    Choose a call where nothing degenerates: a 1 × 1 kernel or a single output turns a product into a mul."""
    ops, poisoned = p.run(call_with_noisy_products, name, *args, **kwargs)
    if not set(ops) & MATMUL_OPS:
        fail(f"`{name}` gives the right values but computes them without a matrix product (it runs only "
             f"{', '.join(sorted(ops)[:6]) or 'no tensor operations'}); arrange the windows and the kernel as "
             "matrices and multiply them (`@`, torch.matmul).")
    if isinstance(poisoned, torch.Tensor) and tuple(poisoned.shape) == tuple(expected.shape):
        untouched = int(torch.isclose(poisoned.double(), expected.double(), rtol=1e-9, atol=1e-12).sum())
        if untouched:
            fail(f"`{name}` runs a matrix product, but {untouched} of the {expected.numel()} output values do not "
                 "come from it (when the grader adds noise to every product's result, those values stay the same): "
                 f"the product must compute {task}, not sit beside code that does.")
