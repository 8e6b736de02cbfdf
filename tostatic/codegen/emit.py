"""LLVM IR building blocks every kernel family shares: element types, a module whose text
names its functions `__NAME__...` (the engine renames them after the IR's hash), counted loops,
and scalar expressions (ir.scalar_expr) turned into instructions.

Loops are plain counted loops over unit-stride memory with `noalias` pointers: LLVM's loop
vectoriser turns them into host-width vector code (the engine asks for 512-bit vectors where
AVX-512 exists). Reductions set fast-math flags so their order may change (as numpy's pairwise
sums do); elementwise arithmetic sets none, so results round as numpy's.
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from llvmlite import ir

from tostatic.codegen import engine, mathfns
from tostatic.ir import scalar_expr as se

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()
VALUE_TYPES = {"float32": F32, "float64": F64, "int32": I32, "int64": I64, "bool": I1}
MEMORY_TYPES = {**VALUE_TYPES, "bool": I8}  # numpy's bool is a byte
FAST = ("fast",)  # reductions: reassociation lets LLVM vectorise them


class KernelModule:
    """An IR module for the host; `function` adds a kernel named `__NAME__<suffix>`."""

    def __init__(self) -> None:
        self.module = ir.Module(name="tostatic_kernel")
        h = engine.host()
        self.module.triple = h["triple"]
        self.module.data_layout = h["data_layout"]
        self._loop_md: dict[tuple[Any, ...], Any] = {}

    def function(self, suffix: str, args: list[ir.Type],
                 noalias: int = 0) -> tuple[ir.Function, ir.IRBuilder]:
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), args), f"__NAME__{suffix}")
        fn.attributes.add("nounwind")
        for a in fn.args[:noalias]:
            a.add_attribute("noalias")
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    def no_unroll(self) -> Any:
        """Loop metadata (`loop`'s latch_md) that keeps a loop rolled: a row loop of scalar
        stores fully unrolled into hundreds made LLVM's dead store elimination and SLP
        vectoriser the slowest part of compiling a module."""
        return self.loop_md("llvm.loop.unroll.disable")

    def rolled(self) -> Any:
        """Loop metadata for a short loop run once a call (a tile's edge): neither unrolled
        nor vectorised (either made the packed GEMM's column kernels a third of its
        module's machine code)."""
        return self.loop_md("llvm.loop.unroll.disable", ("llvm.loop.vectorize.enable", False))

    def loop_md(self, *properties: Any) -> Any:
        """A loop's metadata node of `properties` (names, or (name, bool) pairs), one per
        set in the module."""
        if properties not in self._loop_md:
            m = self.module
            self._loop_md[properties] = m.add_metadata([m.add_metadata(
                [ir.MetaDataString(m, p)] if isinstance(p, str) else
                [ir.MetaDataString(m, p[0]), I1(int(p[1]))]) for p in properties])
        return self._loop_md[properties]

    def text(self) -> str:
        width = f'"prefer-vector-width"="{engine.vector_width_bits()}"'
        text = str(self.module).replace(") nounwind", f") nounwind {width}")
        for node in self._loop_md.values():  # the self-referencing node LLVM wants of a
            ref = node.get_reference()  # loop's metadata (llvmlite cannot build one)
            text = text.replace(f"{ref} = !{{", f"{ref} = distinct !{{ {ref},", 1)
        return text


def masked_load_store(module: ir.Module, vector: ir.VectorType) -> tuple[ir.Function,
                                                                         ir.Function]:
    """LLVM's masked load and store of `vector` (a mask of one i1 a lane), declared once
    a module: the kernels' tails and zero borders."""
    element = {"float": "f32", "double": "f64"}[str(vector.element)]
    suffix = f"v{vector.count}{element}.p0"
    names = (f"llvm.masked.load.{suffix}", f"llvm.masked.store.{suffix}")
    if names[0] not in module.globals:
        mask = ir.VectorType(I1, vector.count)
        ir.Function(module, ir.FunctionType(vector, [PTR, I32, mask, vector]), names[0])
        ir.Function(module, ir.FunctionType(ir.VoidType(), [vector, PTR, I32, mask]),
                    names[1])
    return module.globals[names[0]], module.globals[names[1]]


def plain_or_masked_load(b: ir.IRBuilder, at: Any, vector: ir.VectorType, plain: Any,
                         load: ir.Function, mask: Any, passthru: Any) -> Any:
    """The vector at `at`: a plain load where the i1 `plain`, else `load` (masked_load_store's)
    under `mask`. (On this CPU a masked load from memory, or a plain one whose lanes a
    select then drops, which LLVM folds into one, runs at half the speed of a plain load
    when the line is not in L1: ResNet's max pool at batch 8, 1.3 -> 2.7 ms.)"""
    with b.if_else(plain) as (then, otherwise):
        with then:
            v_plain = b.load(at, typ=vector, align=4)
            from_plain = b.block
        with otherwise:
            v_masked = b.call(load, [at, I32(4), mask, passthru])
            from_masked = b.block
    v = b.phi(vector)
    v.add_incoming(v_plain, from_plain)
    v.add_incoming(v_masked, from_masked)
    return v


def compile_functions(km: KernelModule, suffixes: list[str]) -> dict[str, int]:
    """Addresses of the module's kernels, by suffix."""
    names = [f"__NAME__{s}" for s in suffixes]
    addresses = engine.compile_module(km.text(), names)
    return {s: addresses[n] for s, n in zip(suffixes, names)}


def compile_recipe(recipe: tuple[Any, ...], build: Callable[[], KernelModule],
                   suffixes: list[str]) -> dict[str, int]:
    """compile_functions(build(), suffixes), where `recipe` (a tuple with a deterministic
    repr) says all that `build` depends on besides codegen's own code: a warm start then
    loads the machine code without building the IR (engine.compile_recipe)."""
    names = [f"__NAME__{s}" for s in suffixes]
    addresses = engine.compile_recipe(recipe, lambda: build().text(), names)
    return {s: addresses[n] for s, n in zip(suffixes, names)}


class LaterFunction:
    """A kernel compiled meanwhile (engine.compile_recipe_later): called, or given where
    ctypes wants a function (`_as_parameter_`: ctypes.cast, a foreign call's argument), it
    waits for its machine code. Only a first-ever start makes these (a warm one gets the
    ctypes function itself)."""

    __slots__ = ("_addresses", "_name", "_nargs", "_function")

    def __init__(self, addresses: Callable[[], dict[str, int]], name: str,
                 nargs: int) -> None:
        self._addresses, self._name, self._nargs = addresses, name, nargs
        self._function: Any = None

    def resolve(self) -> Any:
        if self._function is None:
            address = self._addresses()[self._name]
            self._function = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * self._nargs)(address)
        return self._function

    @property
    def _as_parameter_(self) -> Any:
        return self.resolve()

    def __call__(self, *args: Any) -> None:
        (self._function or self.resolve())(*args)


_LATER: dict[tuple[Any, ...], Any] = {}


def function_later(recipe: tuple[Any, ...], build: Callable[[], str], name: str,
                   nargs: int) -> Any:
    """The void function `name` (of `nargs` pointers) of the module `build()` (its IR text,
    `__NAME__` names) as a ctypes function, or, where it is not in the cache and there are
    cores to spare, a LaterFunction while it compiles on a thread of its own; made once a
    process per recipe (which names everything the module depends on)."""
    key = (recipe, name, nargs)
    f = _LATER.get(key)
    if isinstance(f, LaterFunction) and f._function is not None:
        f = _LATER[key] = f._function  # compiled by now: called directly from here on
    if f is None:
        f = _LATER[key] = _function_later(recipe, build, name, nargs)
    return f


def _function_later(recipe: tuple[Any, ...], build: Callable[[], str], name: str,
                    nargs: int) -> Any:
    addresses = engine.compile_recipe_later(recipe, build, [name])
    if not getattr(addresses, "ready", False):
        return LaterFunction(addresses, name, nargs)
    return ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * nargs)(addresses()[name])


def i64(v: int) -> ir.Constant:
    return I64(v)


def smaller(b: ir.IRBuilder, x: Any, y: Any) -> Any:
    """The signed minimum of two integers (a loop nest's last, partial tile)."""
    return b.select(b.icmp_signed("<", x, y), x, y)


@contextmanager
def loop(b: ir.IRBuilder, start: Any, stop: Any, step: Any = 1,
         latch_md: Any = None) -> Iterator[Any]:
    """for (i = start; i < stop; i += step): the body is built inside the `with`; `step` an
    int or an i64 value, `latch_md` the loop's metadata (e.g. no unrolling) if given."""
    fn = b.block.function
    pre = b.block
    head, body, end = (fn.append_basic_block(n) for n in ("head", "body", "end"))
    start = i64(start) if isinstance(start, int) else start
    stop = i64(stop) if isinstance(stop, int) else stop
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64)
    i.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", i, stop), body, end)
    b.position_at_end(body)
    yield i
    nxt = b.add(i, i64(step) if isinstance(step, int) else step, flags=["nsw"])
    i.add_incoming(nxt, b.block)
    br = b.branch(head)
    if latch_md is not None:
        br.set_metadata("llvm.loop", latch_md)
    b.position_at_end(end)


def alloca(b: ir.IRBuilder, t: ir.Type, init: Any) -> Any:
    """A stack slot in the entry block (LLVM promotes it to a register), set to `init`."""
    with b.goto_entry_block():
        slot = b.alloca(t)
    b.store(init, slot)
    return slot


def element(b: ir.IRBuilder, base: Any, index: Any, dtype: str) -> Any:
    return b.gep(base, [index], source_etype=MEMORY_TYPES[dtype])


def load(b: ir.IRBuilder, base: Any, index: Any, dtype: str) -> Any:
    v = b.load(element(b, base, index, dtype), typ=MEMORY_TYPES[dtype])
    return b.icmp_unsigned("!=", v, I8(0)) if dtype == "bool" else v


def store(b: ir.IRBuilder, value: Any, base: Any, index: Any, dtype: str) -> None:
    if dtype == "bool":
        value = b.zext(value, I8)
    b.store(value, element(b, base, index, dtype))


def constant(dtype: str, value: Any) -> ir.Constant:
    return VALUE_TYPES[dtype](int(value) if dtype == "bool" else value)


# --- scalar expressions -----------------------------------------------------------------------

_FCMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "=="}
_ICMP = {**_FCMP, "ne": "!="}


def _maxmin(b: ir.IRBuilder, kind: str, x: Any, y: Any, dtype: str) -> Any:
    """numpy's maximum / minimum: a NaN on either side is the result."""
    op = ">" if kind == "max" else "<"
    if dtype in se.FLOATS:
        pick = b.or_(b.fcmp_ordered(op, x, y), b.fcmp_unordered("uno", x, x))
    elif dtype == "bool":
        pick = b.icmp_unsigned(op, x, y)
    else:
        pick = b.icmp_signed(op, x, y)
    return b.select(pick, x, y)


def _maxmin_constant(b: ir.IRBuilder, kind: str, x: Any, c: Any) -> Any:
    """numpy's maximum / minimum of x and a constant neither NaN nor zero: c > x ? c : x
    (a NaN x is the result), the form x86 lowers to one maxps / minps. _maxmin's 'or x is
    NaN' took a compare, a compare for NaN, a mask or and a blend: relu6's clip at 6 in the
    GEMM's epilogue cost a quarter of MobileNetV2's small-K 1x1 convolutions. (Zero stays
    with _maxmin: there c > x ? c : x would give -0 for max(-0, 0), numpy +0.)"""
    pick = b.fcmp_ordered(">" if kind == "max" else "<", c, x)
    return b.select(pick, c, x)


def _trunc_div(b: ir.IRBuilder, x: Any, y: Any) -> Any:
    """C's x / y without its traps: y == 0 gives 0, MIN / -1 wraps."""
    t = x.type
    zero, one, minus_one = t(0), t(1), t(-1)
    special = b.or_(b.icmp_signed("==", y, zero), b.icmp_signed("==", y, minus_one))
    q = b.sdiv(x, b.select(special, one, y))
    q = b.select(b.icmp_signed("==", y, minus_one), b.sub(zero, x), q)
    return b.select(b.icmp_signed("==", y, zero), zero, q)


def _cast(b: ir.IRBuilder, x: Any, src: str, dst: str) -> Any:
    to = VALUE_TYPES[dst]
    if dst == "bool":
        if src in se.FLOATS:
            return b.fcmp_unordered("!=", x, x.type(0.0))
        return b.icmp_signed("!=", x, x.type(0))
    if src == "bool":
        return b.uitofp(x, to) if dst in se.FLOATS else b.zext(x, to)
    if src in se.FLOATS and dst in se.FLOATS:
        return b.fpext(x, to) if dst == "float64" else b.fptrunc(x, to)
    if src in se.FLOATS:
        return b.fptosi(x, to)
    if dst in se.FLOATS:
        return b.sitofp(x, to)
    return b.sext(x, to) if dst == "int64" and src == "int32" else b.trunc(x, to)


def _float_op(b: ir.IRBuilder, kind: str, x: Any) -> Any:
    if kind in ("sqrt", "floor"):
        return mathfns._intrinsic(b, f"llvm.{kind}", x)
    return mathfns.unary_float(b, kind, x)


def _emit_node(b: ir.IRBuilder, e: se.Expr, a: list[Any]) -> Any:
    k, floats = e.kind, e.args and e.args[0].dtype in se.FLOATS
    if k == "const":
        return constant(e.dtype, e.value)
    if k in ("add", "sub", "mul"):
        name = ("f" if floats else "") + k
        return getattr(b, name)(a[0], a[1])
    if k == "div":
        return b.fdiv(a[0], a[1])
    if k == "tdiv":
        return _trunc_div(b, a[0], a[1])
    if k == "neg":
        return b.fneg(a[0]) if floats else b.sub(a[0].type(0), a[0])
    if k in ("max", "min"):
        c = e.args[1]
        if floats and c.kind == "const" and c.value == c.value and c.value != 0:
            return _maxmin_constant(b, k, a[0], a[1])
        return _maxmin(b, k, a[0], a[1], e.dtype)
    if k == "abs":
        if floats:
            return mathfns._intrinsic(b, "llvm.fabs", a[0])
        return b.select(b.icmp_signed("<", a[0], a[0].type(0)), b.sub(a[0].type(0), a[0]), a[0])
    if k in _ICMP:
        if floats:
            if k == "ne":
                return b.fcmp_unordered("!=", a[0], a[1])
            return b.fcmp_ordered(_FCMP[k], a[0], a[1])
        src = e.args[0].dtype
        return (b.icmp_unsigned if src == "bool" else b.icmp_signed)(_ICMP[k], a[0], a[1])
    if k == "select":
        return b.select(a[0], a[1], a[2])
    if k == "cast":
        return _cast(b, a[0], e.args[0].dtype, e.dtype)
    if k == "pow":
        return mathfns._intrinsic(b, "llvm.pow", a[0], a[1])
    if k in ("exp", "log", "sqrt", "tanh", "erf", "floor"):
        return _float_op(b, k, a[0])
    logical: dict[str, Callable[..., Any]] = {"and": b.and_, "or": b.or_, "xor": b.xor}
    if k in logical:
        return logical[k](a[0], a[1])
    if k == "not":
        return b.xor(a[0], I1(1))
    raise se.NotScalar(f"no code for {k}")


def emit_expr(b: ir.IRBuilder, expr: se.Expr, leaf: Callable[[int], Any]) -> Any:
    """The value of `expr` for one element; `leaf(i)` gives input i's value (loaded once)."""
    values: dict[se.Expr, Any] = {}
    for e in expr.nodes():
        if e.kind == "arg":
            values[e] = leaf(e.value)
        else:
            values[e] = _emit_node(b, e, [values[x] for x in e.args])
    return values[expr]


# expression nodes emitted on whole vectors; any other makes the epilogue go lane by lane
VECTOR_KINDS = {"arg", "const", "add", "sub", "mul", "div", "neg", "max", "min", "select",
                "lt", "le", "gt", "ge", "eq", "ne"}


def splat(b: ir.IRBuilder, s: Any, n: int) -> Any:
    """`s` in all n lanes of a vector."""
    vt = ir.VectorType(s.type, n)
    v = b.insert_element(ir.Constant(vt, ir.Undefined), s, I32(0))
    return b.shuffle_vector(v, ir.Constant(vt, ir.Undefined), ir.Constant(
        ir.VectorType(I32, n), [0] * n))


def vector_expr(b: ir.IRBuilder, expr: se.Expr, leaf: Any, n: int) -> Any:
    """`expr` on vectors of n lanes; nodes without vector code go lane by lane (LLVM's SLP
    vectoriser joins the lanes where it can)."""
    nodes = list(expr.nodes())
    if all(e.kind in VECTOR_KINDS for e in nodes):
        values: dict[se.Expr, Any] = {}
        for e in nodes:
            if e.kind == "arg":
                values[e] = leaf(e.value)
            elif e.kind == "const":
                values[e] = splat(b, constant(e.dtype, e.value), n)
            else:
                values[e] = _emit_node(b, e, [values[x] for x in e.args])
        return values[expr]
    leaves: dict[int, Any] = {}
    out = None
    for lane in range(n):
        def lane_leaf(k: int, lane: int = lane) -> Any:
            if k not in leaves:
                leaves[k] = leaf(k)
            return b.extract_element(leaves[k], I32(lane))
        s = emit_expr(b, expr, lane_leaf)
        out = b.insert_element(out if out is not None else ir.Constant(
            ir.VectorType(s.type, n), ir.Undefined), s, I32(lane))
    return out
