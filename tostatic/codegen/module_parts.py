"""A large generated module compiled as several parts at once, one a core: a first-ever start
(an empty kernel cache) spends its time in LLVM, and the large modules (the packed GEMM's,
the Winograd tile GEMMs') are sets of separate functions (micro kernels, column tails).

`split` cuts a module's IR text into parts at its function definitions, balanced by size:
every part keeps the module's header, its declarations and its metadata, declares the
functions the other parts define, and defines its share with external linkage (their names
carry the module's hash, engine.compile_module, so no two modules' symbols meet). The parts'
objects are loaded into the one engine together, which links the calls between them.

llvmlite serialises every call into LLVM behind one process-wide lock; LLVM itself compiles
modules of distinct contexts on distinct threads safely. `run` lets its worker threads pass
that lock (only they, only while they compile a part in their own context with their own
target machine): two parts of the ResNet-50 GEMM modules took 0.48 s instead of 0.89 on
two cores. Where llvmlite's lock is not the one known here, the parts compile one after
the other (`parallel` False).
"""
from __future__ import annotations

import contextlib
import os
import struct
import threading
from typing import Any, Callable

from tostatic.ir.thread_setting import set_for_block

MAGIC = b"TSOBJS01"  # a cache file of several objects: MAGIC, count, lengths, objects
SPLIT_BYTES = 150_000  # IR text below this compiles whole (a part costs ~10 ms of set-up)
_FREE = threading.local()


def workers() -> int:
    """Threads a module's parts compile on: TOSTATIC_COMPILE_THREADS, else the usable cores
    (at most 4)."""
    given = os.environ.get("TOSTATIC_COMPILE_THREADS", "")
    if given.strip().isdigit():
        return max(1, int(given))
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def split(text: str, parts: int) -> list[str]:
    """The module `text` as up to `parts` modules (`[text]` when it is small, has fewer than
    two definitions, or holds anything but declarations, definitions and metadata)."""
    if parts < 2 or len(text) < SPLIT_BYTES:
        return [text]
    header: list[str] = []
    declares: list[str] = []
    defines: list[tuple[str, str]] = []  # (declaration, definition)
    metadata: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("define "):
            end = lines.index("}", i)
            head = line.replace("define internal ", "define ", 1)
            body = "\n".join([head, *lines[i + 1:end + 1]])
            defines.append((_declaration(head), body))
            i = end + 1
            continue
        if line.startswith("declare "):
            declares.append(line)
        elif line.startswith("!"):
            metadata.append(line)
        elif line.startswith(("target ", ";")):
            header.append(line)
        elif line.strip():
            return [text]  # (a global, attributes: kept whole)
        i += 1
    if len(defines) < 2:
        return [text]
    shares: list[list[int]] = [[] for _ in range(min(parts, len(defines)))]
    sizes = [0] * len(shares)
    for d in sorted(range(len(defines)), key=lambda d: -len(defines[d][1])):
        k = sizes.index(min(sizes))
        shares[k].append(d)
        sizes[k] += len(defines[d][1])
    out = []
    for share in shares:
        own = set(share)
        others = [defines[d][0] for d in range(len(defines)) if d not in own]
        out.append("\n".join([*header, *declares, *others, "",
                              *(defines[d][1] + "\n" for d in sorted(share)), *metadata, ""]))
    return out


def _declaration(define_line: str) -> str:
    """`define void @"f"(args) attributes` -> `declare void @"f"(args)`."""
    depth, start = 0, define_line.index("(")
    for j in range(start, len(define_line)):
        depth += {"(": 1, ")": -1}.get(define_line[j], 0)
        if depth == 0:
            return "declare " + define_line[len("define "):j + 1]
    raise ValueError("unbalanced parentheses in a function's definition")


def pack(objects: list[bytes]) -> bytes:
    """One cache file of several objects (a single object is stored as itself)."""
    if len(objects) == 1:
        return objects[0]
    lengths = struct.pack(f"<{len(objects)}Q", *map(len, objects))
    return MAGIC + struct.pack("<I", len(objects)) + lengths + b"".join(objects)


def unpack(data: bytes) -> list[bytes]:
    """The objects of a cache file (`pack`); ValueError when it is cut short."""
    if not data.startswith(MAGIC):
        return [data]
    try:
        (count,) = struct.unpack_from("<I", data, len(MAGIC))
        at = len(MAGIC) + 4
        lengths = struct.unpack_from(f"<{count}Q", data, at)
    except struct.error as e:
        raise ValueError("a kernel cache file of several objects is cut short") from e
    at += 8 * count
    if at + sum(lengths) != len(data):
        raise ValueError("a kernel cache file of several objects is cut short")
    out = []
    for n in lengths:
        out.append(data[at:at + n])
        at += n
    return out


class _PerThreadLock:
    """llvmlite's lock for every thread but `run`'s workers while they compile."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        if getattr(_FREE, "on", False):
            return True
        return self.real.acquire(*args, **kwargs)

    def release(self) -> None:
        if not getattr(_FREE, "on", False):
            self.real.release()


def parallel() -> bool:
    """Whether parts can compile at once: llvmlite's lock made passable for `run`'s
    workers (done once)."""
    try:
        from llvmlite.binding import ffi  # noqa: PLC0415 (llvmlite loads on first use)
        lock = ffi.lib._lock
        inner = lock._lock
    except AttributeError:
        return False
    if not isinstance(inner, _PerThreadLock):
        if not (hasattr(inner, "acquire") and hasattr(inner, "release")):
            return False
        lock._lock = _PerThreadLock(inner)
    return True


def unlocked() -> contextlib.AbstractContextManager[None]:
    """This thread's llvmlite calls pass llvmlite's lock (see `parallel`) until the end of
    the `with`: for LLVM work in a context and with a target machine of the thread's own."""
    return set_for_block(_FREE, "on", True)


def run(parts: list[str], compile_part: Callable[[str, int], bytes]) -> list[bytes]:
    """compile_part(text, slot) of every part, each on its own thread (slot 0 this one):
    compile_part must use a context and a target machine of its own per slot."""
    if len(parts) == 1 or not parallel():
        return [compile_part(p, 0) for p in parts]
    results: list[Any] = [None] * len(parts)
    errors: list[BaseException] = []

    def work(slot: int) -> None:
        try:
            with unlocked():
                results[slot] = compile_part(parts[slot], slot)
        except BaseException as e:  # noqa: BLE001 (raised on the calling thread)
            errors.append(e)
    threads = [threading.Thread(target=work, args=(s,), daemon=True)
               for s in range(1, len(parts))]
    for t in threads:
        t.start()
    work(0)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
