"""pd.fused_attention's bound kernel: per head, q_h k_h^T by BLAS straight from the rows of
the QKV projection (a head's columns are a strided matrix BLAS reads as it is: no split copy),
the mask added and the softmax taken in place by one compiled row kernel
(codegen.rows.masked_softmax_kernel), and p v_h by BLAS straight into the head's columns of
the [batch, seq, heads * head_dim] result (no merge copy). The scores are kept head-major
([heads, batch, seq_q, seq_k], one scratch buffer), so with several threads each takes a
range of heads and its rows are one contiguous block for the row kernel.

Masks the kernel takes: none, or [batch or 1, 1, 1, seq_k] (padding masks, as BERT's);
another shape keeps the op's eager (the reference, which broadcasts any).

Where the process's BLAS has a CBLAS gemm (`blas_gemm`: numpy's OpenBLAS), the three steps
run as machine code instead (codegen/attention.py), unit by unit ((image, head) pairs,
image-major: a unit's scores are softmaxed while they are in cache, and p v follows; a part
holds whole images, the rows a GEMM split by rows gives the same thread), the units split
into parts that threads.parallel_calls runs GIL-free: a Python part costs 10-17 us to hand
over and takes the GIL between its three calls; a machine-code part a microsecond or two.
(BERT's batch 1 on two threads: 124 -> 68 us a call; batch 8: 480 -> 443 us.)

float32 on AVX-512 needs no BLAS at all: codegen/attention_tiles.py runs the units on the
packed GEMM's register tiles (OpenBLAS's small-matrix path reached 160-185 GFLOP/s on a
unit's products, the tiles ~250), each part with scratch of its own (k^T and one block of
scores, not the [heads, batch, sq, sk] scores: BERT's batch 8, one thread, 0.97 -> 0.76 ms a
call; two threads 0.57 -> 0.45).
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, Sequence

import numpy as np

from tostatic import codegen
from tostatic.codegen.calls import CallCache
from tostatic.codegen.threads import MIN_NATIVE_ELEMENTS, bounds, parts_for, part_calls
from tostatic.runtime import threads

# below this many flops a call runs on one thread (a hand-off costs 20-50 us)
PARALLEL_FLOPS = 4_000_000
# the register tiles from this many query rows: fewer do not pay for k^T's transpose (b 8,
# 4 heads of 64, 128 keys, one thread, us, BLAS -> tiles: 1 query 49 -> 58, 6: 63 -> 88,
# 8: 79 -> 83, 12: 218 -> 116, 32: 308 -> 190, 128: 970 -> 760)
TILES_MIN_QUERIES = 12


def _heads(x: np.ndarray, heads: int) -> np.ndarray:
    """[b, s, heads * d] -> [heads, b, s, d], a view (the last dim is unit-stride)."""
    b, s, hd = x.shape
    return x.reshape(b, s, heads, hd // heads).transpose(2, 0, 1, 3)


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


_GEMM: dict[str, tuple[int, int] | None] = {}
_GEMM_NAMES = {"float32": "sgemm", "float64": "dgemm"}


def blas_gemm(dtype: str) -> tuple[int, int] | None:
    """(address, integer bits) of the loaded BLAS's CBLAS ?gemm, or None: OpenBLAS's
    suffixed ILP64 symbols (numpy's wheels: scipy_cblas_sgemm64_), else plain cblas_?gemm
    with the integers its build reports (OpenBLAS's config says USE64BITINT; MKL's rt: LP64)."""
    if dtype not in _GEMM:
        found = None
        for path in threads._blas_libraries():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("scipy_", ""):
                for suffix in ("64_", ""):
                    f = getattr(lib, f"{prefix}cblas_{_GEMM_NAMES[dtype]}{suffix}", None)
                    if f is None or found:
                        continue
                    bits = 64 if suffix else _index_bits(lib, prefix)
                    found = (ctypes.cast(f, ctypes.c_void_p).value, bits)
        _GEMM[dtype] = found
    return _GEMM[dtype]


def _index_bits(lib: Any, prefix: str) -> int:
    config = getattr(lib, f"{prefix}openblas_get_config", None)
    if config is None:
        return 32
    config.restype = ctypes.c_char_p
    return 64 if b"USE64BITINT" in (config() or b"") else 32


def _native(q: np.ndarray, k: np.ndarray, v: np.ndarray, out: np.ndarray, heads: int,
            d: int, gemm: tuple[int, int]) -> np.ndarray | None:
    """The dims of codegen/attention.py's `heads` for these arrays (their row and image
    strides in elements), or None where BLAS cannot read them as they lie (a last dim not
    unit-stride, rows closer than a head's d, negative strides)."""
    size = q.itemsize
    steps = []
    for a in (q, k, v, out):
        st = a.strides
        if st[2] != size or any(x % size or x < 0 for x in st) or st[1] < d * size:
            return None
        steps += [st[1] // size, st[0] // size]
    sq = q.shape[1]
    return np.array([0, 0, heads, sq, k.shape[1], d, *steps, 0, gemm[0]], np.int64)


def attention_factory(attrs: dict[str, Any], ins: Sequence[np.ndarray], out: np.ndarray
                      ) -> tuple[list[tuple[str, tuple[int, ...], Any]],
                                 Callable[[list[np.ndarray]], Callable[..., None]], str] | None:
    """(scratch, binder, kind) as runtime.kernels.Bound takes them, or None (eager)."""
    if not codegen.enabled():
        return None
    q, k, v = ins[:3]
    mask = ins[3] if len(ins) > 3 else None
    heads = attrs["num_heads"]
    b, sq, hd = q.shape
    sk = k.shape[1]
    if q.dtype.name not in ("float32", "float64") or any(a.dtype != q.dtype for a in ins) \
            or k.shape != (b, sk, hd) or v.shape != (b, sk, hd) or not sq * sk:
        return None
    if mask is not None and (mask.shape[1:] != (1, 1, sk) or mask.shape[0] not in (1, b)):
        return None
    from tostatic.codegen import rows  # llvmlite loads on first use
    kernel = rows.masked_softmax_kernel(q.dtype.name)
    # mask row of score row r: (r / sq) % b, or row 0 of a one-row mask
    mask_step = sk if mask is not None and mask.shape[0] == b else 0
    workers = threads.current()
    flops = 4 * b * sq * sk * hd
    parts = min(workers, heads) if workers > 1 and flops >= PARALLEL_FLOPS else 1
    row_bytes = b * sq * sk * q.itemsize  # one head's scores
    d = hd // heads
    gemm = blas_gemm(q.dtype.name) if d else None
    tiles = None
    if d and q.dtype == np.float32 and sq >= TILES_MIN_QUERIES:
        from tostatic.codegen import attention_tiles  # llvmlite loads on first use
        tiles = attention_tiles if attention_tiles.available() else None
    if tiles is not None:  # our own register tiles: no BLAS needed (a 0 in the address)
        gemm, heads_kernel = (0, 64), tiles.heads_kernel()
    elif gemm is not None:
        from tostatic.codegen import attention as native  # llvmlite loads on first use
        heads_kernel = native.heads_kernel(q.dtype.name, gemm[1])
    units = heads * b
    # a unit's GEMMs (flops / 64, as the GEMMs' splits count) and its softmax
    unit_parts = parts_for(units, 4 * sq * sk * d // 64 + 4 * sq * sk, MIN_NATIVE_ELEMENTS)
    part_size = tiles.scratch_floats(sk, d) if tiles is not None else 0

    def bind(arrays: list[np.ndarray]) -> Callable[..., None]:
        scratch = arrays[0]  # the tiles' parts' scratch, else the scores [heads, b, sq, sk]
        zeros = np.zeros(sk, q.dtype)
        calls = CallCache()

        def prepare(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: tuple[np.ndarray, ...],
                    out: np.ndarray) -> Callable[[], None]:
            m = _address(mask[0] if mask else zeros)  # contiguous (run sees to it)
            dims = None if gemm is None else _native(q, k, v, out, heads, d, gemm)
            if dims is not None:
                dims[14] = mask_step
                table = np.tile(dims, (unit_parts, 1))
                table[:, :2] = bounds(units, unit_parts)
                if tiles is not None:  # each part's own scratch
                    table[:, 15] = np.arange(unit_parts) * part_size
                addresses = [_address(a) for a in (q, k, v, out, scratch)] + [m]
                part_rows = part_calls(heads_kernel, addresses, table)
                keep = (table, mask)  # (a mask copied for one run lives as long as its call)
                if unit_parts == 1:
                    return lambda: heads_kernel(*addresses, table.ctypes.data) if keep else None
                return lambda: threads.parallel_calls(part_rows) if keep else None
            q4, k4, v4, o4 = (_heads(a, heads) for a in (q, k, v, out))
            kt = k4.swapaxes(-1, -2)
            # (arrays the tiles cannot read: scores of their own, for this set of arrays)
            scores = np.empty((heads, b, sq, sk), q.dtype) if tiles is not None else \
                scratch.reshape(heads, b, sq, sk)
            base = _address(scores)

            def heads_range(lo: int, hi: int, _: int = 0) -> None:
                np.matmul(q4[lo:hi], kt[lo:hi], out=scores[lo:hi])
                kernel(base + lo * row_bytes, m, (hi - lo) * b * sq, sk, sq, b, mask_step)
                np.matmul(scores[lo:hi], v4[lo:hi], out=o4[lo:hi])

            def whole() -> None:
                np.matmul(q4, kt, out=scores)
                kernel(base, m, heads * b * sq, sk, sq, b, mask_step)
                np.matmul(scores, v4, out=o4)
            return whole if parts == 1 else (
                lambda: threads.parallel(heads_range, heads, parts))

        def run(q: np.ndarray, k: np.ndarray, v: np.ndarray, *mask: np.ndarray,
                out: np.ndarray) -> None:
            if mask and not mask[0].flags.c_contiguous:  # a copy of this run's values
                prepare(q, k, v, (np.ascontiguousarray(mask[0]),), out)()
            else:  # the arrays stay alive with their prepared call
                calls.get((q, k, v, *mask, out), lambda: prepare(q, k, v, mask, out))()
        return run
    size = unit_parts * part_size if tiles is not None else heads * b * sq * sk
    return [("attention-scores", (size,), q.dtype)], bind, "attention"
