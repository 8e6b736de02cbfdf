"""Kernels for elementwise expressions (one op's SCALAR, or a fused tree of them) with numpy
broadcasting, for every dtype scalar_expr knows (float32/64, int32/64, bool).

Before a call, the operands' strides in the broadcast output are collapsed: size-1 dims go,
and dims that are contiguous for every operand merge, so a [8, 64, 56, 56] + [1, 64, 1, 1] add
runs as two loops. The kernel is specialised on the rank that is left and on each operand's
innermost stride (1: contiguous, 0: one value for the whole row, or any), so the innermost
loop is a unit-stride loop that LLVM vectorises. The preparation is cached per signature of
input shapes and strides, so a repeated call costs a dict lookup and one ctypes call.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, Sequence

import numpy as np

from tostatic.codegen import emit, threads
from tostatic.codegen.emit import I64, PTR
from tostatic.ir import scalar_expr as se

_CFUNCS: dict[tuple[Any, ...], Any] = {}


def collapse(out_shape: tuple[int, ...], arrays: Sequence[np.ndarray]) -> tuple[list[int],
                                                                                list[list[int]]]:
    """(dims, element strides per operand) of the smallest loop nest equivalent to
    broadcasting `arrays` to the C-contiguous `out_shape`."""
    rank = len(out_shape)
    strides = []
    for a in arrays:
        s = [0] * rank
        off = rank - a.ndim
        for j, (n, st) in enumerate(zip(a.shape, a.strides)):
            if n != 1:
                s[off + j] = st // a.itemsize
        strides.append(s)
    out_strides, acc = [0] * rank, 1
    for d in range(rank - 1, -1, -1):
        out_strides[d], acc = acc, acc * out_shape[d]
    keep = [d for d in range(rank) if out_shape[d] != 1]
    dims = [out_shape[d] for d in keep] or [1]
    cols = [[s[d] for d in keep] or [0] for s in strides + [out_strides]]
    d = len(dims) - 1
    while d > 0:  # merge dim d-1 into d when every operand walks them as one
        if all(c[d - 1] == c[d] * dims[d] for c in cols):
            dims[d - 1:d + 1] = [dims[d - 1] * dims[d]]
            for c in cols:
                c[d - 1:d + 1] = [c[d]]
        d -= 1
    return dims, [c for c in cols[:-1]]


def _pattern(strides: list[list[int]]) -> str:
    return "".join("c" if s[-1] == 1 else "s" if s[-1] == 0 else "g" for s in strides)


def _build(expr: se.Expr, dtypes: tuple[str, ...], rank: int, pattern: str) -> Any:
    address = emit.compile_recipe(("elementwise", expr, dtypes, rank, pattern),
                                  lambda: _module(expr, dtypes, rank, pattern), ["ew"])["ew"]
    return ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * (len(dtypes) + 3)))(address)


def _module(expr: se.Expr, dtypes: tuple[str, ...], rank: int,
            pattern: str) -> emit.KernelModule:
    """void k(i64 *dims, i64 *strides, in_0, ..., in_n-1, out)."""
    n = len(dtypes)
    km = emit.KernelModule()
    fn, b = km.function("ew", [PTR, PTR] + [PTR] * (n + 1), noalias=n + 3)
    dims_p, strides_p, *ptrs = fn.args
    dims = [b.load(b.gep(dims_p, [emit.i64(d)], source_etype=I64), typ=I64) for d in range(rank)]
    strides = [[b.load(b.gep(strides_p, [emit.i64(k * rank + d)], source_etype=I64), typ=I64)
                for d in range(rank)] for k in range(n)]

    def nest(d: int, offs: list[Any], out_off: Any) -> None:
        if d == rank - 1:
            with emit.loop(b, 0, dims[d]) as i:
                def leaf(k: int) -> Any:
                    p = pattern[k]
                    idx = offs[k] if p == "s" else b.add(offs[k], i if p == "c" else
                                                        b.mul(i, strides[k][d]))
                    return emit.load(b, ptrs[k], idx, dtypes[k])
                value = emit.emit_expr(b, expr, leaf)
                emit.store(b, value, ptrs[n], b.add(out_off, i), expr.dtype)
            return
        inner = emit.i64(1)
        for dd in range(d + 1, rank):
            inner = b.mul(inner, dims[dd])
        with emit.loop(b, 0, dims[d]) as j:
            nest(d + 1, [b.add(o, b.mul(j, strides[k][d])) for k, o in enumerate(offs)],
                 b.add(out_off, b.mul(j, inner)))
    nest(0, [emit.i64(0)] * n, emit.i64(0))
    b.ret_void()
    return km


def kernel_ir(expr: se.Expr, dtypes: tuple[str, ...], rank: int = 1,
              pattern: str | None = None) -> str:
    """The IR text of one kernel (tests look at the code it becomes)."""
    return _module(expr, dtypes, rank, pattern or "c" * len(dtypes)).text()


class ElementwiseKernel:
    """callable(*arrays, out=None) -> [result] for `expr` over inputs of `dtypes`; inputs of
    other dtypes go to `fallback` (the numpy reference), as do zero-size results."""

    def __init__(self, expr: se.Expr, dtypes: Sequence[str],
                 fallback: Callable[..., list[np.ndarray]] | None = None):
        self.expr, self.dtypes = expr, tuple(dtypes)
        self.np_dtypes = tuple(np.dtype(d) for d in self.dtypes)
        self.out_dtype = np.dtype(expr.dtype)
        self.fallback = fallback
        self._prepared: dict[tuple[Any, ...], Any] = {}
        self.used = {e.value for e in expr.nodes() if e.kind == "arg"}
        self._last_calls: tuple[Any, ...] | None = None

    def _prepare(self, arrays: Sequence[np.ndarray]) -> Any:
        # an input the expression does not read takes no part in the broadcast
        arrays = [a if i in self.used else np.empty((), a.dtype) for i, a in enumerate(arrays)]
        out_shape = np.broadcast_shapes(*(a.shape for a in arrays))
        dims, strides = collapse(out_shape, arrays)
        rank, pattern = len(dims), _pattern(strides)
        key = (self.expr, self.dtypes, rank, pattern)
        cfunc = _CFUNCS.get(key)
        if cfunc is None:
            cfunc = _CFUNCS[key] = _build(self.expr, self.dtypes, rank, pattern)
        dims_a = np.array(dims, dtype=np.int64)
        strides_a = np.array(strides, dtype=np.int64).reshape(-1)
        # bytes each operand advances per step of the outermost loop (for threads' chunks)
        steps = [s[0] * a.itemsize for s, a in zip(strides, arrays)]
        inner = int(np.prod(dims[1:])) * self.out_dtype.itemsize
        return out_shape, cfunc, dims_a, strides_a, steps, inner

    def __call__(self, *arrays: Any, out: list[np.ndarray] | None = None) -> list[np.ndarray]:
        arrays = tuple(np.asarray(a) for a in arrays)
        sig = tuple((a.dtype, a.shape, a.strides) for a in arrays)
        prep = self._prepared.get(sig)
        if prep is None:
            if (tuple(a.dtype for a in arrays) != self.np_dtypes
                    or any(s < 0 or s % a.itemsize for a in arrays for s in a.strides)):
                return self._fall_back(arrays, out)
            prep = self._prepared[sig] = self._prepare(arrays)
        out_shape, cfunc, dims_a, strides_a, steps, inner = prep
        target = out[0] if out else None
        if (target is None or target.shape != out_shape or target.dtype != self.out_dtype
                or not target.flags.c_contiguous):
            target = np.empty(out_shape, dtype=self.out_dtype)
        if not target.size:
            return [target]
        pointers = [a.ctypes.data for a in arrays]
        out_p, rows = target.ctypes.data, int(dims_a[0])
        if len(arrays) + 3 <= threads.CALL_ARGS:
            parts = threads.parts_for(rows, target.size // rows, threads.MIN_NATIVE_ELEMENTS)
            if parts > 1:  # machine-code parts: no GIL switch (threads.parallel_calls)
                calls, _dims = self._calls(prep, parts, (*pointers, out_p))
                threads.parallel_calls(calls)
                return [target]

        def run(lo: int, hi: int) -> None:
            dims = dims_a if hi - lo == rows else np.array([hi - lo, *dims_a[1:]], np.int64)
            cfunc(dims.ctypes.data, strides_a.ctypes.data,
                  *(p + lo * st for p, st in zip(pointers, steps)), out_p + lo * inner)
        threads.parallel_for(rows, target.size // rows, run)
        return [target]

    def _calls(self, prep: tuple[Any, ...], parts: int, pointers: tuple[int, ...]
               ) -> tuple[np.ndarray, np.ndarray]:
        """threads.parallel_calls rows and the dims they point at (keep both while they run):
        the kernel over `parts` ranges of the outermost dim; kept for the last pointers (a
        plan's buffers recur)."""
        _, cfunc, dims_a, strides_a, steps, inner = prep
        key = (id(prep), parts, pointers)
        last = self._last_calls
        if last is not None and last[0] == key:
            return last[1], last[2]
        spans = threads.bounds(int(dims_a[0]), parts)
        dims = np.tile(dims_a, (parts, 1))
        dims[:, 0] = [hi - lo for lo, hi in spans]
        calls = np.zeros((parts, 1 + threads.CALL_ARGS), np.int64)
        calls[:, 0] = ctypes.cast(cfunc, ctypes.c_void_p).value
        calls[:, 1] = dims.ctypes.data + np.arange(parts) * dims.strides[0]
        calls[:, 2] = strides_a.ctypes.data
        for p, (lo, _) in enumerate(spans):
            calls[p, 3:3 + len(pointers)] = [a + lo * st for a, st in
                                             zip(pointers, [*steps, inner])]
        self._last_calls = (key, calls, dims)
        return calls, dims

    def _fall_back(self, arrays: Sequence[np.ndarray],
                   out: list[np.ndarray] | None) -> list[np.ndarray]:
        if self.fallback is None:
            raise TypeError(f"kernel for {self.dtypes} got "
                            f"{tuple(str(a.dtype) for a in arrays)} and has no fallback")
        return self.fallback(*arrays)
