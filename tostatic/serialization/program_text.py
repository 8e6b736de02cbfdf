"""`print(program)` text of the `program` dialect, exactly as Paddle 3.3.1 prints a legacy Program.

A ProgramOp is a ProgramDesc, so the reference is what Paddle prints for a Program parsed from
desc bytes (`Program.parse_from_string`), i.e. `Program._to_readable_code` in
python/paddle/base/framework.py. The quirks below are Paddle's, reproduced on purpose:
- vars print sorted by name (C++ BlockDesc keeps them in a std::map), ops in file order;
- a desc has no creation order and no `trainable`: a var with the VarDesc `is_parameter` bit
  comes back as a trainable Parameter, and Paddle's Parameter constructor resets its
  stop_gradient to False. Pass `parameters` (name -> trainable) to print a live program's
  `param` markers instead; it then replaces the `is_parameter` bits, and vars print in the
  block's own (creation) order, as a live Python Program prints them. (Not mimicked: Paddle's
  parse moves an `is_parameter` var of a sub-block into block 0; Paddle never writes one.)
- attrs sorted by name; `op_callstack` is skipped but the separator before it is not, so an op
  whose last attr is `op_callstack` (or that has no attrs) ends in `, )`;
- an op type's "extra" attrs (use_mkldnn, is_test of conv2d, ...: Paddle's per-op extra-attr
  map, `_EXTRA_ATTRS` below) are runtime attrs in C++ and never print, although live programs
  serialize them (inference files have them clipped);
- values print as pybind hands them to Python: FLOAT widened from float32
  (0.10000000149011612), strings unquoted, lists as Python lists; BLOCK/VAR/VARS/SCALAR have
  their own spellings (see `_attr_value`);
- a tensor var without a tensor desc prints as Paddle's default TensorDesc: `shape()`, bool;
  non-tensor vars print `name : TYPE)` (stray paren); VarTypes pybind does not know print `???`.
`str(program)` ends with a newline after the last `}`; `print` adds one more.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

from tostatic.dialects import program as P
from tostatic.serialization import framework_pb2 as pb

__all__ = ["program_to_text", "block_to_text", "var_to_text", "op_to_text"]

# `str(VarType.X).split(".")[1]`: dtypes print as paddle dtype names, a few kinds are renamed,
# and enum values pybind does not register print as "???".
_TYPE_STR = {
    "BOOL": "bool", "UINT8": "uint8", "INT8": "int8", "INT16": "int16", "INT32": "int32",
    "INT64": "int64", "FP16": "float16", "FP32": "float32", "FP64": "float64", "BF16": "bfloat16",
    "COMPLEX64": "complex64", "COMPLEX128": "complex128", "FP8_E4M3FN": "float8_e4m3fn",
    "FP8_E5M2": "float8_e5m2", "RAW": "raw", "STRING": "pstring",
    **dict.fromkeys(("SIZE_T", "LOD_RANK_TABLE", "TUPLE", "FEED_LIST", "PSTRING", "SPARSE_CSR"),
                    "???"),
}


def _type_str(var_type_name: str) -> str:
    return _TYPE_STR.get(var_type_name, var_type_name)


def _tensor_desc(var: P.VarOp) -> tuple[str, tuple[int, ...]]:
    """(dtype VarType name, dims) as Paddle's VarDesc reads them (empty desc: BOOL, ())."""
    if var.raw_type is not None:
        vt = pb.VarType.FromString(var.raw_type)
        t = vt.dense_tensor.tensor if var.var_type == "DENSE_TENSOR" else vt.selected_rows
        return P.VAR_TYPE_NAMES.get(t.data_type, "???"), tuple(t.dims)
    if var.dtype_name is None:
        return "BOOL", ()
    return P.VAR_TYPE_NAMES[P.dtype_var_type(var.dtype_name)], var.shape or ()


def var_to_text(var: P.VarOp, parameters: Mapping[str, bool] | None = None) -> str:
    """One var line (without indentation); see the module docstring for `parameters`."""
    stop_gradient = var.stop_gradient
    if parameters is None:
        trainable = True if var.is_parameter else None
        if var.is_parameter:
            stop_gradient = False
    else:
        trainable = parameters.get(var.var_name)
    text = f"{var.var_name} : {_type_str(var.var_type)}"
    if var.var_type in ("DENSE_TENSOR", "SELECTED_ROWS"):
        dtype, shape = _tensor_desc(var)
        text += f".shape{shape}.dtype({_type_str(dtype)}).stop_gradient({stop_gradient})"
    else:
        text += ")"
    kind = "var" if trainable is None else "trainable param" if trainable else "param"
    return ("persist " if var.persistable else "") + f"{kind} {text}"


def _cpp_double(value: float) -> str:
    """`std::ostream << double` (default precision 6, %g); glibc prints NaN's sign."""
    if math.isnan(value):
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    return "%g" % value


def _scalar(value: bool | int | float | complex) -> str:
    """paddle::experimental::Scalar's ToString, which is also its Python repr."""
    if isinstance(value, bool):
        return f"Scalar(bool({int(value)}))"
    if isinstance(value, int):
        return f"Scalar(int64({value}))"
    if isinstance(value, float):
        return f"Scalar(float64({_cpp_double(value)}))"
    return f"Scalar(complex128(real:{_cpp_double(value.real)} imag:{_cpp_double(value.imag)}))"


def _attr_value(attr_type: str, value: object) -> str:
    if attr_type == "BLOCK":
        return f"block[{value}]"
    if attr_type == "BLOCKS":
        return f"blocks{value}"
    if attr_type == "VAR":
        return f"Var['{value}']"
    if attr_type == "VARS":
        return "Vars[" + ",".join(f"'{v}'" for v in value) + "]"  # type: ignore[attr-defined]
    if attr_type == "SCALAR":
        return _scalar(value)  # type: ignore[arg-type]
    if attr_type == "SCALARS":
        return "[" + ", ".join(_scalar(v) for v in value) + "]"  # type: ignore[attr-defined]
    # The rest print as Python's str of what pybind returns. FLOAT(S) values are C++ floats
    # widened to double (0.10000000149011612); the dialect already stores them as float32.
    return str(value)


def _slots(slots: list[str], names_of: Callable[[str], list[str]]) -> str:
    # std::map order: by bytes (same as code points for valid UTF-8).
    names = sorted(slots, key=lambda s: s.encode())
    return "{" + ", ".join(f"{s}={names_of(s)}" for s in names) + "}"


def op_to_text(op: P.OpOp) -> str:
    """One op line (without indentation), as `Operator._to_readable_code()`."""
    outputs = _slots(op.output_slots, op.output)
    inputs = _slots(op.input_slots, op.input)
    hidden = extra_attrs(op.op_type)
    names = sorted(n for n in op.attr_names if n not in hidden)
    attrs = ""
    for i, name in enumerate(names):
        if name == "op_callstack":
            continue
        attrs += f"{name} = {_attr_value(op.attr_type(name), op.attr(name))}"
        if i != len(names) - 1:
            attrs += ", "
    call = f"{op.op_type}(inputs={inputs}, {attrs})"
    return call if outputs == "{}" else f"{outputs} = {call}"


def block_to_text(block: P.BlockOp, parameters: Mapping[str, bool] | None = None) -> str:
    """One block, from `{ // block_idx:...` to the closing `}` (no trailing newline)."""
    program = block.parent_op()
    siblings = program.blocks if isinstance(program, P.ProgramOp) else [block]
    forward = -1 if block.forward_block_idx is None else block.forward_block_idx
    backward = next((b.idx for b in siblings if b.forward_block_idx == block.idx), -1)
    text = (f"{{ // block_idx:{block.idx}  parent_idx:{block.parent_idx}  "
            f"forward_idx:{forward}  backward_idx:{backward}\n")
    # a live program (parameters given) keeps creation order; a parsed desc is sorted
    variables = block.vars if parameters is not None else sorted(
        block.vars, key=lambda v: v.var_name.encode())
    for var in variables:
        text += f"    {var_to_text(var, parameters)}\n"
    text += "\n"
    for op in block.ops:
        text += f"    {op_to_text(op)}\n"
    return text + "}"


def program_to_text(program: P.ProgramOp, parameters: Mapping[str, bool] | None = None) -> str:
    """`str(program)` of the equivalent Paddle Program: every block, each followed by a newline.

    `parameters` maps the names of a live program's Parameters to their `trainable` flag
    (`{p.name: p.trainable for p in prog.all_parameters()}`); without it, vars with the
    `is_parameter` bit print as Paddle prints them after `parse_from_string`.
    """
    return "".join(block_to_text(b, parameters) + "\n" for b in program.blocks)


def extra_attrs(op_type: str) -> frozenset[str]:
    """Paddle 3.3.1's extra attrs of an op type; grad ops share their forward op's."""
    if op_type in _EXTRA_ATTRS:
        return _EXTRA_ATTRS[op_type]
    m = _GRAD_SUFFIX.fullmatch(op_type)
    if m is None or op_type in _GRADS_WITHOUT_EXTRA_ATTRS:
        return frozenset()
    return _EXTRA_ATTRS.get(m.group(1), frozenset())


def _parse_extra_attr_table(text: str) -> dict[str, frozenset[str]]:
    table: dict[str, frozenset[str]] = {}
    attrs: list[str] = []
    in_ops = False
    for line in text.splitlines():
        if line.startswith(" "):
            table.update(dict.fromkeys(line.split(), frozenset(attrs)))
            in_ops = True
        elif line:
            attrs, in_ops = (attrs if not in_ops else []) + line.split(), False
    return table


_GRAD_SUFFIX = re.compile(r"(.*?)(?:_grad|_double_grad|_triple_grad)(?:_grad)*")
_GRADS_WITHOUT_EXTRA_ATTRS = frozenset((
    "batch_norm_double_grad conv2d_double_grad elementwise_div_grad_grad "
    "elementwise_mul_grad_grad elementwise_mul_triple_grad elementwise_sub_grad_grad "
    "reshape2_grad_grad").split())

# `core.get_op_extra_attrs(op_type)` of Paddle 3.3.1 for every forward op type that has any:
# unindented lines name the attrs, the indented lines below them the op types.
_EXTRA_ATTRS = _parse_extra_attr_table("""
use_mkldnn use_onednn
    abs addmm angle baddbmm bicubic_interp_v2 bilinear_interp correlation elu fill_constant
    frobenius_norm gaussian_random hard_swish leaky_relu linear_interp_v2 log_softmax mish
    nearest_interp nearest_interp_v2 pad3d partial_concat partial_sum pool3d reduce_all reduce_amax
    reduce_amin reduce_any reduce_max reduce_mean reduce_min reduce_prod sgd shuffle_channel stack
    tdm_child trilinear_interp_v2
use_cudnn use_mkldnn use_onednn
    acosh asinh atanh ceil cos cosh exp expm1 floor l1_norm log log10 log1p log2 logsigmoid
    reciprocal renorm round rsqrt silu sin sinh softplus softsign sqrt square tan tanh tanh_shrink
mkldnn_data_type onednn_data_type use_mkldnn use_onednn
    bilinear_interp_v2 cast clip div_scale expand expand_v2 flatten_contiguous_range fusion_lstm
    gelu reduce_sum scale shape slice split squeeze2 sum
Scale_out Scale_x Scale_y mkldnn_data_type onednn_data_type use_mkldnn use_onednn use_quantizer
    elementwise_add elementwise_div elementwise_floordiv elementwise_fmax elementwise_fmin
    elementwise_heaviside elementwise_max elementwise_mod elementwise_mul elementwise_pow
    elementwise_sub grad_add
mkldnn_data_type onednn_data_type use_mkldnn use_onednn use_quantizer
    concat prior_box reshape reshape2
skip_eager_deletion_vars
    conditional_block pylayer while
Scale_in Scale_in_eltwise Scale_out Scale_weights fuse_alpha fuse_beta mkldnn_data_type
onednn_data_type use_cudnn use_mkldnn use_onednn
    fused_conv2d fused_conv3d
fix_seed seed
    dropout dropout_nd
force_fp32_output fuse_activation fuse_alpha fuse_beta fuse_relu is_test mkldnn_data_type
onednn_data_type use_cudnn use_mkldnn use_onednn workspace_size_MB
    conv2d_transpose depthwise_conv2d_transpose
is_test
    gru sequence_pool
is_test mkldnn_data_type onednn_data_type use_mkldnn use_onednn
    layer_norm prelu
mkldnn_data_type onednn_data_type use_cudnn use_mkldnn use_onednn
    relu sigmoid
moving_rate
    dequantize_linear quantize_linear
use_cudnn
    affine_grid grid_sampler
Scale_data Scale_weights Shift_data mkldnn_data_type onednn_data_type use_mkldnn use_onednn
    fusion_gru
Scale_in Scale_in_eltwise Scale_out Scale_weights exhaustive_search force_fp32_output
fuse_activation fuse_alpha fuse_beta fuse_relu fuse_relu_before_depthwise_conv
fuse_residual_connection is_test mkldnn_data_type onednn_data_type use_addto use_cudnn use_mkldnn
use_onednn use_quantizer workspace_size_MB
    depthwise_conv2d
Scale_in Scale_in_eltwise Scale_out Scale_weights force_fp32_output fuse_activation fuse_beta
fuse_relu fuse_relu_before_depthwise_conv fuse_residual_connection is_test mkldnn_data_type
onednn_data_type use_addto use_cudnn use_mkldnn use_onednn use_quantizer
    fused_conv2d_add_act
Scale_in Scale_out Scale_weights force_fp32_output fuse_activation fuse_alpha fuse_beta
fused_output_scale fused_reshape2_shape mkldnn_data_type onednn_data_type use_mkldnn use_onednn
use_quantizer
    fc
Scale_out Scale_x Scale_y force_fp32_output mkldnn_data_type onednn_data_type use_quantizer
    matmul
Scale_out Scale_x Scale_y mkldnn_data_type onednn_data_type use_mkldnn use_onednn use_quantizer
x_data_format y_data_format
    elementwise_min
beta use_mkldnn use_onednn
    swish
custom_neg_classes epmap height_sections table_names trainer_id
    nce
data_format
    fused_transpose
data_format is_test mkldnn_data_type onednn_data_type use_cudnn use_mkldnn use_onednn
    softmax
data_format mkldnn_data_type onednn_data_type use_mkldnn use_onednn
    transpose2
data_format use_cudnn
    sequence_softmax
deterministic force_cpu rng_name
    seed
epmap height_sections is_distributed is_sparse remote_prefetch slot table_names trainer_id
    lookup_table_v2
exhaustive_search force_fp32_output fuse_activation fuse_alpha fuse_beta fuse_relu
fuse_residual_connection is_test mkldnn_data_type onednn_data_type use_addto use_cudnn use_mkldnn
use_onednn workspace_size_MB
    conv3d
exhaustive_search force_fp32_output is_test mkldnn_data_type onednn_data_type use_addto use_cudnn
use_mkldnn use_onednn workspace_size_MB
    conv2d
force_fp32_output fuse_activation fuse_alpha fuse_beta fuse_relu is_test mkldnn_data_type
onednn_data_type use_cudnn use_mkldnn use_onednn
    conv2d_transpose_bias
force_fp32_output mkldnn_data_type onednn_data_type use_mkldnn use_onednn
    matmul_v2
force_fp32_output scale_out scale_x scale_y use_mkldnn use_onednn
    mul
fuse_with_relu use_mkldnn use_onednn
    batch_norm
is_test mkldnn_data_type onednn_data_type use_mkldnn use_onednn use_quantizer
    pool2d
is_test use_mkldnn use_onednn
    lrn
seed
    randperm
slot
    lookup_table
threshold use_mkldnn use_onednn
    relu6
use_cudnn use_mkldnn use_onednn workspace_size_MB
    conv3d_transpose
""")
