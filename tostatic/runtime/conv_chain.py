"""An NHWC 1x1 convolution whose one reader is a depthwise convolution (MobileNetV2's expand
-> depthwise, with the projection 1x1 after it when that reads only the depthwise's result;
or a depthwise and its projection alone, as in MobileNetV2's first block), run band by band
of output rows: the expanded rows a band of the depthwise needs are computed into a small
buffer (codegen/gemm.py's packed GEMM on those input pixels, its epilogue fused) and read
back from it by the depthwise kernel (codegen/depthwise_nhwc.py) while they are in L2, so the
expanded map (4.8 MB at 112x112x96, 1.8 MB at 56x56x144: past the 2 MiB L2, written to L3
and read back) is never written whole; with the projection, the depthwise writes its band
into a second buffer that the projection's GEMM reads (its bias and residual fused).

A band's buffer starts at the first input row the band needs; rows the previous band of the
same part already computed (the 3x3 window's overlap: 2 rows at stride 1, 1 at stride 2)
are moved to its front (libc's memmove), not computed again. The whole chain is one table of
machine-code calls (GEMM, memmove, depthwise per band) that threads.parallel_calls runs: one
part on one thread (no Python between bands), or contiguous runs of bands a part, each part
with a buffer of its own, on several. The depthwise kernel is handed a base pointer moved
back by the band's first row, so its own row arithmetic (image, row * stride - pad) lands in
the buffer; rows outside the band are never read (the band holds all the window needs).
"""
from __future__ import annotations

import ctypes
import os
from typing import Any, Sequence

import numpy as np

from tostatic.codegen import threads
from tostatic.codegen.threads import CALL_ARGS

# output rows of the depthwise a band: on one thread, on several (where a part's first band
# computes its overlap rows again). Measured with MobileNetV2's chains, interleaved, against
# the two kernels unfused (b1 1t: bands of 2 / 4 / 8 / 16 rows 0.86 / 0.83 / 0.87 / 0.90 of
# the unfused time at 112x112 16->96 s2, 0.99 / 0.96 / 0.84 / 0.97 at 56x56 24->144; b1 2t,
# in 2 parts: 8 rows 1.09 / 0.96, 4 rows 0.83 / 0.89; in a part a band: 1.4-1.6)
BAND_ROWS = 8
BAND_ROWS_SPLIT = 4
# on several threads: bands a part at least (each part's first band computes its overlap
# rows again), and no chain with fewer bands than parts a split needs (7x7 and 14x14 planes
# at batch 1: the unfused kernels split by channels instead, codegen/depthwise_nhwc.py)
MIN_BANDS_A_PART = 3
MAX_SPLIT_WEIGHT_BYTES = 256 << 10  # see worth_it
_MEMMOVE = ctypes.cast(ctypes.CDLL(None).memmove, ctypes.c_void_p).value


class ExpandDepthwise:
    """expand: x [N, H, W, Cin] @ w1 [Cin, Cmid] (+ its epilogue: bias, activation) ->
    depthwise (the DepthwiseNHWC `dw`, bound to [N, H, W, Cmid]) into out [N, OH, OW, Cmid],
    or, with a `project` GEMM (W [Cmid, Cout], its epilogue: bias, residual, activation),
    the depthwise's band into a second buffer and the projection into out [N, OH, OW, Cout].
    `gemm` and `project` are gemm.PackedGemm (mode "matmul").
    run(x, extras1, extras2, out, scratch, extras3)."""

    def __init__(self, gemm: Any, dw: Any, x_shape: Sequence[int], ksize: tuple[int, int],
                 strides: tuple[int, int], dilations: tuple[int, int],
                 band_rows: int | None = None, parts: int | None = None,
                 project: Any = None):
        self.gemm, self.dw, self.project = gemm, dw, project
        n, h, wd, cin = x_shape
        _, oh, ow, cmid = dw.shape
        self.n, self.h, self.wd, self.cin, self.cmid, self.oh = n, h, wd, cin, cmid, oh
        self.ow, self.cout = ow, project.n if project is not None else cmid
        self.shape = (n, oh, ow, self.cout)
        (kh, _), (sh, _), (dh, _) = ksize, strides, dilations
        pt = dw.dims[5]
        self.band = max(1, band_rows if band_rows is not None else
                        BAND_ROWS if threads.num_threads() == 1 else BAND_ROWS_SPLIT)

        def rows_of(r0: int, r1: int) -> tuple[int, int]:  # input rows output rows r0..r1 read
            return max(0, r0 * sh - pt), min(h, (r1 - 1) * sh - pt + (kh - 1) * dh + 1)
        self.rows_of = rows_of
        bands = [(r, min(oh, r + self.band)) for r in range(0, oh, self.band)]
        self.bands = [(i, r0, r1) for i in range(n) for r0, r1 in bands]
        self.buffer_rows = 0 if gemm is None else max(
            b - a for a, b in (rows_of(r0, r1) for _, r0, r1 in self.bands))
        self.part_bounds = self._parts(parts)
        # a part's buffers: the expanded rows, and (project) the depthwise's band
        self.band_floats = self.band * ow * cmid if project is not None else 0
        self.scratch_floats = len(self.part_bounds) * (self.buffer_rows * wd * cmid
                                                       + self.band_floats)
        self._gemms: dict[tuple[int, int], Any] = {}
        self.dtype = np.dtype(np.float32)
        self._calls: dict[tuple[int, ...], Any] = {}

    def _parts(self, parts: int | None) -> list[tuple[int, int]]:
        """Runs of bands, a part each (`parts`, or): one on one thread (halo rows moved,
        never recomputed); on several, up to PARTS_PER_THREAD a thread when the work allows
        (the depthwise's rule: codegen/depthwise_nhwc.py)."""
        if parts is None:
            t = threads.num_threads()
            parts = min(t * threads.PARTS_PER_THREAD,
                        max(t, len(self.bands) // MIN_BANDS_A_PART)) if t > 1 else 1
        return threads.bounds(len(self.bands), max(1, min(parts, len(self.bands))))

    def worth_it(self) -> bool:
        """On several threads, whether every thread gets bands (else the unfused kernels,
        which split by channels, are faster) and the 1x1 weights, read again for each band,
        stay in L2 beside it (MobileNetV2's 14x14 96->576->96 / 160 and 7x7 160->960->160
        chains, 0.44-1.2 MB of weights: 1.06-1.14x the unfused time on 2 threads, 0.94-1.02x
        on one)."""
        t = threads.num_threads()
        weights = sum(g.packed.nbytes for g in (self.gemm, self.project) if g is not None)
        return t == 1 or len(self.bands) >= t * 2 and weights <= MAX_SPLIT_WEIGHT_BYTES

    def _gemm_row(self, which: int, pixels: int, xa: int, oa: int,
                  ea: Sequence[int]) -> tuple[list, Any]:
        """A parallel_calls row of the expand (which 0) or the projection (1) on `pixels`
        rows of x at xa into oa."""
        g = self._gemms.get((which, pixels))
        if g is None:
            if which == 0:
                g = self.gemm.prepare_strides((pixels, self.cmid), self.cin, self.cmid,
                                              [0] * len(ea), split=False)
            else:
                g = self.project.prepare_strides(
                    (pixels, self.cout), self.cmid, self.cout,
                    [0 if kind == "bias" else self.cout for kind in self.project.kinds],
                    split=False)
            self._gemms[(which, pixels)] = g
        return g.row(xa, oa, ea)

    def calls(self, x: int, extras1: Sequence[int], extras2: Sequence[int], out: int,
              scratch: int, extras3: Sequence[int] = ()
              ) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """(calls, starts, keep): parallel_calls' table for these addresses (bytes)."""
        h, wd, cin, cmid, oh, ow = self.h, self.wd, self.cin, self.cmid, self.oh, self.ow
        dw = self.dw
        project = self.project
        kinds3 = project.kinds if project is not None else ()
        ptrs = (ctypes.c_void_p * max(1, len(extras2)))(*extras2)
        keep: list[Any] = [ptrs]
        rows: list[list[int]] = []
        starts = [0]
        row_bytes = wd * cmid * 4
        expanded_bytes = len(self.part_bounds) * self.buffer_rows * row_bytes
        for p, (b0, b1) in enumerate(self.part_bounds):
            buf = scratch + p * self.buffer_rows * row_bytes
            band_buf = scratch + expanded_bytes + p * self.band_floats * 4
            have: tuple[int, int, int] | None = None  # (image, first, end) rows in buf
            for i, r0, r1 in self.bands[b0:b1]:
                lo, hi = self.rows_of(r0, r1)
                start = lo
                expand = self.gemm is not None  # (none: the depthwise reads x)
                if expand and have is not None and have[0] == i and have[2] > lo:
                    start = have[2]  # rows lo..start are in the buffer: to its front
                    rows.append([_MEMMOVE, buf, buf + (lo - have[1]) * row_bytes,
                                 (start - lo) * row_bytes])
                if hi > start and expand:
                    call, kept = self._gemm_row(0, (hi - start) * wd,
                                                x + (i * h + start) * wd * cin * 4,
                                                buf + (start - lo) * row_bytes, extras1)
                    rows.append(call)
                    keep.append(kept)
                have = (i, lo, hi)
                dims = np.array(dw.dims[:9] + [i * oh + r0, i * oh + r1, 0, cmid], np.int64)
                keep.append(dims)
                # (the depthwise's row arithmetic lands in buf)
                base = x if self.gemm is None else buf - (i * h + lo) * row_bytes
                at = (i * oh + r0) * ow  # the band's first output pixel
                rows.append([ctypes.cast(dw.f, ctypes.c_void_p).value, base,
                             dw.w.ctypes.data, ctypes.addressof(ptrs),
                             out if project is None else band_buf - at * cmid * 4,
                             dims.ctypes.data, dw.zeros.ctypes.data])
                if project is not None:  # the band's depthwise output, projected
                    call, kept = self._gemm_row(
                        1, (r1 - r0) * ow, band_buf, out + at * self.cout * 4,
                        [e if kind == "bias" else e + at * self.cout * 4
                         for e, kind in zip(extras3, kinds3)])
                    rows.append(call)
                    keep.append(kept)
            starts.append(len(rows))
        table = np.zeros((len(rows), 1 + CALL_ARGS), np.int64)
        for j, r in enumerate(rows):
            table[j, :len(r)] = [v - (1 << 64) if v >= 1 << 63 else v for v in r]
        keep.append((dw.w, dw.zeros))
        return table, np.array(starts, np.int64), keep

    def run(self, x: np.ndarray, extras1: Sequence[np.ndarray], extras2: Sequence[np.ndarray],
            out: np.ndarray, scratch: np.ndarray, extras3: Sequence[np.ndarray] = ()) -> None:
        """The call table is made once per set of arrays (a plan's: the same each run);
        operands not contiguous float32 (a transpose's view) go through copies."""
        if not out.flags.c_contiguous or out.dtype != self.dtype or scratch.dtype != self.dtype:
            raise ValueError("expand-depthwise: the result must be contiguous float32")
        arrays = (x, out, scratch, *extras1, *extras2, *extras3)
        if not all(a.flags.c_contiguous and a.dtype == self.dtype for a in arrays):
            x, extras1, extras2, extras3 = (
                np.ascontiguousarray(x, self.dtype),
                *([np.ascontiguousarray(e, self.dtype) for e in es]
                  for es in (extras1, extras2, extras3)))
            calls, starts, _keep = self._made(x, extras1, extras2, out, scratch, extras3)
            threads.parallel_calls(calls, starts)
            return
        key = tuple(map(id, arrays))
        entry = self._calls.get(key)
        if entry is None:
            if len(self._calls) >= 4:
                self._calls.clear()
            entry = self._calls[key] = (arrays, self._made(x, extras1, extras2, out, scratch,
                                                           extras3))
        calls, starts, _ = entry[1]
        threads.parallel_calls(calls, starts)

    def _made(self, x: np.ndarray, extras1: Sequence[np.ndarray],
              extras2: Sequence[np.ndarray], out: np.ndarray, scratch: np.ndarray,
              extras3: Sequence[np.ndarray]) -> Any:
        if scratch.size < self.scratch_floats or out.shape != self.shape or any(
                e.size != (self.cout if kind == "bias" else out.size)
                for e, kind in zip(extras3, self.project.kinds if self.project else ())):
            raise ValueError("expand-depthwise: operands of other shapes than bound")
        return self.calls(x.ctypes.data, [e.ctypes.data for e in extras1],
                          [e.ctypes.data for e in extras2], out.ctypes.data, scratch.ctypes.data,
                          [e.ctypes.data for e in extras3])


# --------------------------------------------------------------------------- bind

# TOSTATIC_FUSE_CHAINS=0: each convolution its own step (tests compare both; a TOSTATIC_
# setting, so plan caches are keyed on it)
ENV = "TOSTATIC_FUSE_CHAINS"
CHAIN_KIND = "expand-depthwise"  # what the profile calls the fused step
PROJECT_KIND = "expand-dw-project"  # ... with the projection 1x1 after it
PROJECT = True  # chains take the projection too (when the depthwise's result is its only)
DW_PROJECT_KIND = "dw-project"  # a depthwise (no expand before it) and its projection
FUSED_KIND = "fused"  # the expand's step: run by its reader's


def make(x_shape: Sequence[int], w1: np.ndarray | None, steps1: Sequence[str],
         w2: np.ndarray,
         strides: tuple[int, int], pads: tuple[tuple[int, int], tuple[int, int]],
         dilations: tuple[int, int], steps2: Sequence[str], band_rows: int | None = None,
         parts: int | None = None, w3: np.ndarray | None = None,
         steps3: Sequence[str] = ()) -> ExpandDepthwise | None:
    """The chain for x [N, H, W, Cin] -> 1x1 conv w1 [Cmid, Cin, 1, 1] with epilogue steps1
    (bias, activation: no residual) -> depthwise w2 [Cmid, 1, kh, kw] with steps2 (->
    1x1 conv w3 [Cout, Cmid, 1, 1] with steps3); w1 None: the depthwise of x, then w3 (not
    None). None where a part has no compiled kernel (numpy kernels asked for, no AVX-512, a
    step without code)."""
    from tostatic import codegen
    if not codegen.enabled():
        return None
    from tostatic.codegen import depthwise_nhwc  # llvmlite loads on first use
    from tostatic.ir.epilogue_rules import epilogue_expr
    from tostatic.ir.scalar_expr import NotScalar
    from tostatic.runtime import packed_gemm
    n, h, wd, cin = x_shape
    cmid = cin if w1 is None else w1.shape[0]
    if (w1 is None and w3 is None or "add" in steps1 or w2.ndim != 4
            or w1 is not None and (w1.shape != (cmid, cin, 1, 1) or w1.dtype != np.float32)
            or w2.shape[:2] != (cmid, 1) or w2.dtype != np.float32
            or w3 is not None and (w3.ndim != 4 or w3.shape[1:] != (cmid, 1, 1)
                                   or w3.dtype != np.float32)):
        return None
    g = None if w1 is None else packed_gemm._gemm(
        "matmul", np.ascontiguousarray(w1.reshape(cmid, cin).T), steps1)
    project = None if w3 is None else packed_gemm._gemm(
        "matmul", np.ascontiguousarray(w3.reshape(w3.shape[0], cmid).T), steps3)
    if w1 is not None and g is None or w3 is not None and project is None:
        return None
    try:
        expr, kinds = epilogue_expr(steps2, "float32") if steps2 else (None, ())
        dw = depthwise_nhwc.DepthwiseNHWC((n, h, wd, cmid), w2, strides, pads, dilations,
                                          expr, kinds)
    except (NotScalar, KeyError):
        return None
    return ExpandDepthwise(g, dw, x_shape, tuple(w2.shape[2:]), strides, dilations,
                           band_rows, parts, project)


def _operands(extras: Sequence[np.ndarray], steps: Sequence[str]) -> list[np.ndarray]:
    kinds = [s for s in steps if s in ("bias", "add")]
    return [np.ascontiguousarray(e, np.float32).reshape(-1) if s == "bias"
            else np.ascontiguousarray(e, np.float32) for e, s in zip(extras, kinds)]


def expand_depthwise(x: np.ndarray, w1: np.ndarray | None, steps1: Sequence[str],
                     extras1: Sequence[np.ndarray], w2: np.ndarray, strides: tuple[int, int],
                     pads: tuple[tuple[int, int], tuple[int, int]],
                     dilations: tuple[int, int], steps2: Sequence[str],
                     extras2: Sequence[np.ndarray], band_rows: int | None = None,
                     parts: int | None = None, w3: np.ndarray | None = None,
                     steps3: Sequence[str] = (),
                     extras3: Sequence[np.ndarray] = ()) -> np.ndarray:
    """The chain on arrays (what the tests compare with numpy): a bias is [C], a residual
    the result's shape; `parts` forces a split (else by the work)."""
    k = make(x.shape, w1, steps1, w2, strides, pads, dilations, steps2, band_rows, parts,
             w3, steps3)
    if k is None:
        raise ValueError("expand-depthwise: no compiled kernel for these operands")
    out = np.empty(k.shape, np.float32)
    scratch = np.empty(k.scratch_floats, np.float32)
    k.run(np.ascontiguousarray(x), _operands(extras1, steps1), _operands(extras2, steps2),
          out, scratch, _operands(extras3, steps3))
    return out


def _steps(op: Any) -> tuple[str, ...]:
    return tuple(op.attr_values().get("epilogue", ()))


def _chain(op1: Any, op2: Any, ins1: Sequence[np.ndarray], ins2: Sequence[np.ndarray],
           out: np.ndarray, op3: Any = None, ins3: Sequence[np.ndarray] = ()
           ) -> ExpandDepthwise | None:
    """The ExpandDepthwise of a 1x1 NHWC conv op1 read only by the NHWC depthwise op2 (read
    only by the 1x1 NHWC conv op3), or None where a part has no compiled kernel for its
    shapes or epilogue, or the chain would not split over the threads."""
    x, w1, mid, w2 = ins1[0], ins1[1], ins2[0], ins2[1]
    steps1, steps2 = _steps(op1), _steps(op2)
    w3, steps3 = (ins3[1], _steps(op3)) if op3 is not None else (None, ())
    if (x.ndim != 4 or mid.ndim != 4 or x.dtype != np.float32 or w2.ndim != 4
            or any(a.dtype != np.float32 for a in (*ins1, *ins2, *ins3))
            or len(ins1) != 2 + sum(s == "bias" for s in steps1)
            or mid.shape != (*x.shape[:3], w1.shape[0])):
        return None
    k = make(x.shape, w1, steps1, w2, *_window(op2, mid.shape[1:3], w2.shape[2:]), steps2,
             w3=w3, steps3=steps3)
    if k is None or k.shape != out.shape or not k.worth_it():
        return None
    return k


def _only_reader(slot: int, readers: dict[int, list[int]], steps: Sequence[Any],
                 chosen: Sequence[tuple[str, Any]], outputs: Sequence[int],
                 kind: str) -> int | None:
    """The one step reading `slot`, as its first input only, when it binds `kind`."""
    users = readers.get(slot, [])
    if len(users) != 1 or slot in outputs:
        return None
    k = users[0]
    how, what = chosen[k]
    if how != "bound" or what.kind != kind or steps[k][1][0] != slot or \
            steps[k][1].count(slot) != 1 or len(steps[k][2]) != 1:
        return None
    return k


def fuse_chains(ops: Sequence[Any], steps: list[Any], chosen: list[tuple[str, Any]],
                record: Sequence[Any], outputs: Sequence[int], bound: Any) -> None:
    """In place: each 1x1 NHWC conv step (kind gemm-1x1-nhwc) whose result only an NHWC
    depthwise step reads, and the 1x1 NHWC conv step reading only the depthwise's result,
    become FUSED_KIND, and the last of them one CHAIN_KIND (PROJECT_KIND) step over all
    their inputs (x, w1, extras1, w2, extras2[, w3, extras3]). `bound` makes the Bound."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "off", "no"):
        return
    expanded: set[int] = set()  # depthwise steps with an expand before them (whole or none)
    readers: dict[int, list[int]] = {}
    for k, (_, ins, _) in enumerate(steps):
        for i in set(ins):
            readers.setdefault(i, []).append(k)
    for k1, (how, what) in enumerate(chosen):
        if how != "bound" or what.kind != "gemm-1x1-nhwc" or len(steps[k1][2]) != 1:
            continue
        k2 = _only_reader(steps[k1][2][0], readers, steps, chosen, outputs, "depthwise-nhwc")
        if k2 is None:
            continue
        expanded.add(k2)
        k3 = _only_reader(steps[k2][2][0], readers, steps, chosen, outputs, "gemm-1x1-nhwc") \
            if PROJECT else None
        ins = [steps[k][1] for k in (k1, k2, k3) if k is not None]
        # (with a projection after it, the whole chain or none: where the three do not pay,
        # as over 256 KB of weights on several threads, the two measured no better)
        made = _chain(ops[k1], ops[k2], *[[record[i] for i in s] for s in ins[:2]],
                      record[steps[k2 if k3 is None else k3][2][0]],
                      *(() if k3 is None else (ops[k3], [record[i] for i in ins[2]])))
        if made is None:
            continue
        last = k3 if k3 is not None else k2
        sizes = [len(s) for s in ins]

        def bind(arrays: list[np.ndarray], chain: Any = made, sizes: list[int] = sizes) -> Any:
            scratch = arrays[0]
            n1, n2 = sizes[0], sizes[0] + sizes[1] - 1  # (x, w1, e1 | w2, e2 | w3, e3)

            def run(*args: np.ndarray, out: np.ndarray) -> None:
                chain.run(args[0], args[2:n1], args[n1 + 1:n2], out, scratch, args[n2 + 1:])
            return run
        for k in (k1, k2, k3):
            if k is not None and k != last:
                chosen[k] = (FUSED_KIND, None)
        chosen[last] = ("bound", bound([("chain", (made.scratch_floats,), np.float32)], bind,
                                       PROJECT_KIND if k3 is not None else CHAIN_KIND))
        steps[last] = (steps[last][0], [i for j, s in enumerate(ins) for i in s[j > 0:]],
                       steps[last][2])
    for k2, (how, what) in enumerate(chosen):  # depthwise -> projection, no expand before
        if not PROJECT or how != "bound" or what.kind != "depthwise-nhwc" or k2 in expanded:
            continue
        k3 = _only_reader(steps[k2][2][0], readers, steps, chosen, outputs, "gemm-1x1-nhwc")
        if k3 is None:
            continue
        ins2, ins3 = steps[k2][1], steps[k3][1]
        made = _dw_project(ops[k2], ops[k3], [record[i] for i in ins2],
                           [record[i] for i in ins3], record[steps[k3][2][0]])
        if made is None:
            continue

        def bind_dw(arrays: list[np.ndarray], chain: Any = made, n2: int = len(ins2)) -> Any:
            scratch = arrays[0]

            def run(*args: np.ndarray, out: np.ndarray) -> None:  # (x, w2, e2 | w3, e3)
                chain.run(args[0], (), args[2:n2], out, scratch, args[n2 + 1:])
            return run
        chosen[k2] = (FUSED_KIND, None)
        chosen[k3] = ("bound", bound([("chain", (made.scratch_floats,), np.float32)], bind_dw,
                                     DW_PROJECT_KIND))
        steps[k3] = (steps[k3][0], list(ins2) + list(ins3[1:]), steps[k3][2])


def _dw_project(op2: Any, op3: Any, ins2: Sequence[np.ndarray], ins3: Sequence[np.ndarray],
                out: np.ndarray) -> ExpandDepthwise | None:
    """The chain of an NHWC depthwise op2 read only by the 1x1 NHWC conv op3 (no expand
    before it: MobileNetV2's first block), or None (as _chain)."""
    x, w2, w3 = ins2[0], ins2[1], ins3[1]
    if x.ndim != 4 or w2.ndim != 4 or any(a.dtype != np.float32 for a in (*ins2, *ins3)):
        return None
    k = make(x.shape, None, (), w2, *_window(op2, x.shape[1:3], w2.shape[2:]), _steps(op2),
             w3=w3, steps3=_steps(op3))
    if k is None or k.shape != out.shape or not k.worth_it():
        return None
    return k


def _window(op: Any, plane: Sequence[int], ksize: Sequence[int]) -> tuple[Any, Any, Any]:
    """The depthwise op's (strides, paddings, dilations) on an NHWC plane of (h, w)."""
    from tostatic.ir.op_rules import pair, resolve_pads
    a = op.attr_values()
    strides = pair(op.name, "strides", a["strides"])
    pads, dilations = resolve_pads(op.name, plane, tuple(ksize), strides, a["paddings"],
                                   a["padding_algorithm"],
                                   pair(op.name, "dilations", a["dilations"]))
    return strides, pads, dilations
