"""Conv / matmul epilogues: y = act(y + bias) over a GEMM's output, in place, in one pass
(the bias broadcast along the channel axis). `act` names a pd activation op ("pd.relu",
"pd.relu6", "pd.hardswish", "pd.sigmoid", "pd.swish", ...) whose SCALAR rule, with its
default attributes, is the code; the kernel is the fused elementwise one.

`RowsEpilogue` is a fused conv's whole epilogue (bias, residual adds, activations, in its
order) as one pass over the rows (channels) of a GEMM's output: from a block of the GEMM
still in cache to the output, or in place. numpy's passes (a bias add, then max, then min
for relu6) cost 3-4x the 1x1 convolution's GEMM on MobileNetV2's expanded layers.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, Sequence

import numpy as np

from tostatic.codegen import emit, threads
from tostatic.codegen.elementwise import ElementwiseKernel
from tostatic.codegen.emit import I64, PTR
from tostatic.ir import scalar_expr as se
from tostatic.ir.epilogue_rules import chain_expr, epilogue_expr

_KERNELS: dict[tuple[Any, ...], ElementwiseKernel] = {}
_ROWS: dict[tuple[Any, ...], Any] = {}


def _rows_module(expr: se.Expr, kinds: tuple[str, ...], dtype: str,
                 inplace: bool) -> emit.KernelModule:
    """void k(src, dst, extras (pointers), i64 *dims = [first row, end row, cols, ld src,
    ld dst, rows per bias period, ld of each extra]). In place, dst is src: two pointers to
    one row would make LLVM's overlap check fail and run the scalar loop."""
    km = emit.KernelModule()
    fn, b = km.function("rows", [PTR] * 4)
    src, dst, extras_p, dims_p = fn.args
    first, end, cols, lds, ldd, period, *lde = (
        b.load(b.gep(dims_p, [emit.i64(i)], source_etype=I64), typ=I64)
        for i in range(6 + len(kinds)))
    extras = [b.load(b.gep(extras_p, [emit.i64(k)], source_etype=PTR), typ=PTR)
              for k in range(len(kinds))]
    with emit.loop(b, first, end) as r:
        srow = emit.element(b, src, b.mul(r, lds), dtype)
        drow = srow if inplace else emit.element(b, dst, b.mul(r, ldd), dtype)
        consts = {k: emit.load(b, extras[k], b.srem(r, period), dtype)
                  for k, kind in enumerate(kinds) if kind == "bias"}
        erows = {k: emit.element(b, extras[k], b.mul(r, lde[k]), dtype)
                 for k, kind in enumerate(kinds) if kind == "add"}
        with emit.loop(b, 0, cols) as q:
            def leaf(i: int) -> Any:
                if i == 0:
                    return emit.load(b, srow, q, dtype)
                return consts[i - 1] if i - 1 in consts else emit.load(b, erows[i - 1], q,
                                                                       dtype)
            emit.store(b, emit.emit_expr(b, expr, leaf), drow, q, dtype)
    b.ret_void()
    return km


class RowsEpilogue:
    """A fused conv's epilogue `steps` over 2-D row-major blocks (unit stride along a row):
    `run(src, dst, extras, period)` writes into dst; a bias extra is indexed by row % period
    (the channel), an add extra is a block of dst's shape. Raises NotScalar when a step has
    no code."""

    def __init__(self, steps: Sequence[str], dtype: str):
        if dtype not in se.FLOATS:
            raise se.NotScalar(f"epilogue of {dtype}")
        expr, self.kinds = epilogue_expr(steps, dtype)
        self.expr, self.dtype = expr, dtype
        self._compiled(expr, dtype, True)  # the plans' in-place one now (NotScalar here)

    def _compiled(self, expr: se.Expr, dtype: str, inplace: bool) -> Any:
        key = (expr, self.kinds, dtype, inplace)
        f = _ROWS.get(key)
        if f is None:
            address = emit.compile_recipe(
                ("rows-epilogue", *key),
                lambda: _rows_module(expr, self.kinds, dtype, inplace), ["rows"])["rows"]
            f = _ROWS[key] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 4)(address)
        return f

    def run(self, src: np.ndarray, dst: np.ndarray, extras: Sequence[np.ndarray],
            period: int) -> None:
        self.prepare(src, dst, extras, period)()

    def prepare(self, src: np.ndarray, dst: np.ndarray, extras: Sequence[np.ndarray],
                period: int) -> Callable[[], None]:
        """The call, its arguments read once (see calls.CallCache)."""
        rows, cols = dst.shape
        item = dst.itemsize
        lde = [e.strides[0] // item if kind == "add" else 0
               for e, kind in zip(extras, self.kinds)]
        ptrs = (ctypes.c_void_p * max(1, len(extras)))(*[e.ctypes.data for e in extras])
        head = [src.strides[0] // item, dst.strides[0] // item, period]
        base = (src.ctypes.data, dst.ctypes.data, ctypes.addressof(ptrs))
        f = self._compiled(self.expr, self.dtype, base[0] == base[1] and head[0] == head[1])
        chunks: dict[tuple[int, int], tuple[np.ndarray, int]] = {}

        def chunk(a: int, b: int) -> None:
            dims = chunks.get((a, b))
            if dims is None:
                arr = np.array([a, b, cols, *head, *lde], dtype=np.int64)
                dims = chunks[(a, b)] = (arr, arr.ctypes.data)
            f(*base, dims[1])

        def call() -> None:
            _keep = (ptrs, src, dst, extras)  # noqa: F841 (alive while the call may run)
            threads.parallel_for(rows, cols, chunk)
        return call


def activation_expr(act: str | None, value: se.Expr, **attrs: Any) -> se.Expr:
    """`act`'s scalar rule applied to `value` (None: the value itself)."""
    if act is None:
        return value
    from tostatic.ir.opdef import REGISTRY  # (xDSL: only for bias_act's named ops)

    cls = REGISTRY.get(act)
    if cls is None or cls.SCALAR is None:
        raise se.NotScalar(f"{act} is not an elementwise activation")
    return cls.SCALAR(value, **{**cls.normalize_attrs({}), **attrs})


def bias_act(y: np.ndarray, bias: np.ndarray | None = None, act: str | None = None,
             axis: int = 1, out: np.ndarray | None = None, **attrs: Any) -> np.ndarray:
    """act(y + bias) with `bias` [C] along `axis` of y; written into `out` (y itself for an
    in-place epilogue) when given, contiguous and of y's shape."""
    dtype = y.dtype.name
    x = se.arg(0, dtype)
    operands = [y]
    if bias is not None:
        value = x + se.arg(1, dtype)
        shape = [1] * y.ndim
        shape[axis] = -1
        operands.append(np.asarray(bias, dtype=y.dtype).reshape(shape))
    else:
        value = x
    key = (dtype, bias is not None, act, tuple(sorted(attrs.items())))
    kernel = _KERNELS.get(key)
    if kernel is None:
        expr = activation_expr(act, value, **attrs)
        kernel = _KERNELS[key] = ElementwiseKernel(expr, [dtype] * len(operands))
    return kernel(*operands, out=[out] if out is not None else None)[0]


def chain_kernel(epilogue: Sequence[str], dtype: str, operands: int) -> ElementwiseKernel:
    """The compiled epilogue: kernel(y, *extras, out=[y]) applies every step in one pass over
    y (extras broadcast against y as numpy would: a bias [N] along y's last dim)."""
    key = ("chain", tuple(epilogue), dtype)
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = ElementwiseKernel(chain_expr(epilogue, dtype),
                                                   [dtype] * (operands + 1))
    return kernel
