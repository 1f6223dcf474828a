"""What an "implement it yourself" exercise lets an answer use: the ATen operators an honest
implementation runs, and each exercise's forbidden library names and operators.

`source_scan.py` judges the submitted source against these rules and `trace_judge.py` the runtime's
operator trace.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# -- the ATen operators an implementation may run -----------------------------------------------------
VIEWS = {"view", "_unsafe_view", "reshape", "_reshape_alias", "alias", "as_strided", "select", "slice", "unsqueeze",
         "squeeze", "permute", "transpose", "t", "expand", "unbind", "split", "split_with_sizes", "chunk", "narrow",
         "diagonal", "unfold", "detach", "lift_fresh", "lift_fresh_copy", "view_as", "movedim", "resolve_conj",
         "resolve_neg", "_local_scalar_dense", "item", "is_nonzero", "equal", "dim", "numel",
         # the in-place forms of the same views (X.squeeze_(0) changes a view, computes nothing)
         "squeeze_", "unsqueeze_", "t_", "transpose_", "as_strided_", "swapaxes", "swapdims", "contiguous"}
CREATION = {"empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full", "full_like",
            "new_zeros", "new_ones", "new_full", "new_empty", "new_empty_strided", "fill", "fill_", "zero_", "arange",
            "linspace", "scalar_tensor", "eye", "clone", "copy", "copy_", "_to_copy", "to", "_copy_from",
            "_copy_from_and_resize", "resize_", "set_", "tensor"}
REARRANGING = {"cat", "stack", "flip", "roll", "index", "index_select", "index_put", "index_put_", "_index_put_impl_",
               "tril", "triu", "repeat", "repeat_interleave", "constant_pad_nd", "diag_embed", "diag", "rot90",
               "im2col", "col2im", "masked_fill", "masked_fill_", "masked_select", "nonzero", "scatter", "scatter_",
               "scatter_add", "scatter_add_", "gather", "take", "tile", "reflection_pad1d", "reflection_pad2d",
               "replication_pad1d", "replication_pad2d", "pad", "tensor_split", "unsafe_split", "unsafe_chunk",
               "flatten", "unflatten", "broadcast_to", "expand_as", "narrow_copy", "fliplr", "flipud", "block_diag",
               "tril_indices", "triu_indices", "_unsafe_index", "_unsafe_index_put", "view_copy", "_reshape_copy"}
# Accumulating values into the positions they belong to: how honest code adds products into outputs.
SCATTERING = {"index_add", "index_add_", "index_copy", "index_copy_", "index_fill", "index_fill_", "put", "put_",
              "scatter_reduce", "scatter_reduce_", "index_reduce", "index_reduce_", "take_along_dim", "masked_scatter",
              "masked_scatter_", "select_scatter", "slice_scatter", "diagonal_scatter", "as_strided_scatter",
              "bincount"}
# Asking about or promoting dtypes computes nothing.
TYPES = {"promote_types", "result_type", "can_cast", "is_floating_point", "is_complex", "is_same_size", "size",
         "stride", "sym_size", "sym_stride", "sym_numel", "storage_offset", "type_as"}
ARITHMETIC = {"add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "neg", "neg_", "sum", "mean", "prod",
              "pow", "pow_", "sqrt", "abs", "abs_", "reciprocal", "true_divide", "floor_divide", "remainder", "fmod",
              "square", "addcmul", "addcmul_", "addcdiv", "lerp", "cumsum", "cumprod", "sign", "round", "floor", "ceil",
              "trunc", "exp", "log", "isnan", "isfinite", "isinf", "all", "any", "logical_and", "logical_or",
              "logical_not", "bitwise_and", "bitwise_or", "bitwise_not", "count_nonzero", "sum_", "mean_", "dist",
              "multiply", "divide", "subtract", "negative", "rsqrt", "expm1", "log1p", "log2", "log10", "sin", "cos",
              "tanh", "sigmoid", "sgn", "float_power", "frac", "nan_to_num", "trace", "addr", "addr_", "kron"}
COMPARING = {"gt", "lt", "ge", "le", "eq", "ne", "where", "max", "min", "amax", "amin", "maximum", "minimum", "fmax",
             "fmin", "argmax", "argmin", "sort", "argsort", "topk", "kthvalue", "cummax", "cummin", "clamp", "clamp_",
             "clamp_min", "clamp_min_", "clamp_max", "clamp_max_", "heaviside", "relu", "relu_", "threshold",
             "threshold_", "hardtanh", "aminmax", "max_pool2d_with_indices", "logsumexp"}
MATMUL = {"mm", "mv", "bmm", "addmm", "addmv", "baddbmm", "addbmm", "dot", "vdot", "outer", "ger", "matmul", "inner",
          "tensordot", "einsum", "linalg_vecdot", "vecdot"}
CONVOLUTION_OPS = re.compile(r"conv|thnn_|_nnpack|mkldnn|cudnn|miopen")

ELEMENTARY = frozenset(VIEWS | CREATION | REARRANGING | SCATTERING | TYPES | ARITHMETIC | COMPARING | MATMUL)


@dataclass(frozen=True)
class Rules:
    """What an "implement it yourself" exercise lets an answer use.

    task: what the exercise asks the student to write, in words ("a convolution").
    forbidden: library routines that do that work, matched against each part of a resolved library
    name (`torch.nn.functional.conv2d` -> "conv2d") and against identifier-like string constants.
    forbidden_ops: ATen operators that do it (a pattern on the operator's name).
    allowed_ops: the ATen operators an honest implementation runs; anything else cannot be verified."""
    task: str
    forbidden: re.Pattern
    forbidden_ops: re.Pattern
    allowed_ops: frozenset = ELEMENTARY

    def without(self, *ops: str) -> "Rules":
        return Rules(self.task, self.forbidden, self.forbidden_ops, frozenset(self.allowed_ops - set(ops)))

    def plus(self, *ops: str) -> "Rules":
        return Rules(self.task, self.forbidden, self.forbidden_ops, frozenset(self.allowed_ops | set(ops)))


# -- the exercises' rules ---------------------------------------------------------------------------------
_RELU = {"relu", "relu_", "clamp", "clamp_", "clamp_min", "clamp_min_", "threshold", "threshold_"}
# scatter_reduce and index_reduce take a maximum as readily as a sum
_SELECTING = COMPARING | SCATTERING | {"masked_fill", "masked_fill_", "masked_select", "nonzero", "gather", "scatter",
                                       "scatter_", "scatter_add", "scatter_add_", "take", "sign", "sgn",
                                       "index_select"}

# corr\d+d: the book's own cross-correlations (d2l.corr2d; 7.4's corr2d_multi_in and corr2d_multi_in_out)
CONVOLUTION = Rules("a convolution", re.compile(r"conv|correlat|corr\d+d", re.I), CONVOLUTION_OPS)
TRANSPOSED_CONVOLUTION = Rules(
    "a transposed convolution from zero insertion and an ordinary convolution",
    re.compile(r"conv_transpose|ConvTranspose|^convolution$|conv\w*_input|_backward", re.I),
    re.compile(r"convolution_transposed|_backward|conv_transpose|slow_conv_transpose")).plus("convolution")
AVERAGE_POOLING = Rules("average pooling as a convolution",
                        re.compile(r"avg_pool|AvgPool|adaptive|lp_pool|LPPool|interpolate|upsample", re.I),
                        re.compile(r"avg_pool|adaptive|upsample|lp_pool")).plus("convolution")
MAX_POOLING_VIA_RELU = Rules(
    "max pooling from convolutions and ReLU",
    re.compile(r"max|min|sort|topk|kthvalue|where|gather|heaviside|logsumexp|masked|nonzero|hardtanh|^sign$|argm"
               r"|quantile|median|mode$", re.I),
    re.compile(r"max|min|sort|topk|kthvalue|^where$|gather|^gt$|^lt$|^ge$|^le$|^eq$|^ne$|heaviside|^sign$|sgn|"
               r"logsumexp|masked|nonzero|hardtanh|quantile|median|^mode$"),
    frozenset((ELEMENTARY - _SELECTING) | _RELU | {"convolution"}))
