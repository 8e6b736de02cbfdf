"""Converting one user function: its source, the transformers in order, compiling it where
it was (the user's file and lines, its globals, its closure), and `Call`, which converted
code wraps every call in so the user functions and methods it calls are converted too.

Library code is not converted (tostatic, paddle, numpy, the standard library, site-packages):
it has no tensor-dependent Python control flow that converting would fix, and converting it
would be slow. The result is cached per function.
"""
from __future__ import annotations

import ast
import builtins
import functools
import inspect
import itertools
import os
import sysconfig
import textwrap
import types
import weakref
from typing import Any, Callable

from tostatic.frontend.capture.convert_ast import control, flow, log, loops, runtime
from tostatic.frontend.capture.convert_ast.names import JST, walk_scope
from tostatic.frontend.capture.tracing import Tracer
from tostatic.frontend.nn.layer import Layer
from tostatic.ir import builder as builders
from tostatic.ir.errors import UnsupportedError
from tostatic.ir.location import user_location

_LIBRARY_MODULES = ("tostatic", "paddle", "numpy", "xdsl", "scipy", "pytest", "_pytest")
_LIBRARY_DIRS = tuple(os.path.abspath(p) + os.sep for p in {
    sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
    sysconfig.get_paths()["platlib"]})

_cache: "weakref.WeakKeyDictionary[Callable, Callable]" = weakref.WeakKeyDictionary()
_plain: "weakref.WeakSet[Callable]" = weakref.WeakSet()  # functions left as they are
_active: dict[Any, int] = {}  # code object of a converted function running -> region depth


class ConversionError(UnsupportedError):
    """Constructs the converter cannot turn into a program, all of one function together."""


def _is_library(fn: Callable) -> bool:
    module = getattr(fn, "__module__", None) or ""
    if module.split(".")[0] in _LIBRARY_MODULES:
        return True
    path = os.path.abspath(getattr(fn.__code__, "co_filename", ""))
    return path.startswith(_LIBRARY_DIRS) or not os.path.exists(path)


def _problems(fn_node: ast.FunctionDef, filename: str) -> list[str]:
    """What cannot be converted, found before running anything."""
    found = []
    for node in walk_scope(fn_node.body):
        what = None
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            what = ("`yield`: a converted function cannot be a generator; return a list or "
                    "tensor instead")
        elif isinstance(node, ast.Await):
            what = "`await`: a converted function cannot be a coroutine"
        elif isinstance(node, (ast.While, ast.For)) and node.orelse:
            what = (f"`{'while' if isinstance(node, ast.While) else 'for'} ... else`: move "
                    f"the else block after the loop, guarded by a flag the loop's break sets")
        if what:
            found.append(f"  {filename}:{node.lineno}: {what}")
    return found


def _parse(fn: Callable) -> tuple[ast.FunctionDef, str]:
    source = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(source)
    ast.increment_lineno(tree, fn.__code__.co_firstlineno - 1)
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        raise TypeError("not a function definition")
    return node, fn.__code__.co_filename


def _transform(fn: Callable) -> tuple[ast.FunctionDef, str]:
    node, filename = _parse(fn)
    problems = _problems(node, filename)
    if problems:
        raise ConversionError(f"to_static cannot convert {fn.__qualname__} "
                              f"({filename}:{node.lineno}):\n" + "\n".join(problems))
    node.decorator_list = []
    counter = itertools.count()
    params = node.args.posonlyargs + node.args.args
    self_name = params[0].arg if params else None
    in_class = "__class__" in fn.__code__.co_freevars or "." in fn.__qualname__.replace(
        "<locals>.", "")
    flow.ReturnTransformer().apply(node)
    _visit_body(node, flow.ForTransformer(counter))
    _visit_body(node, flow.BreakContinueTransformer(counter))
    _visit_body(node, control.ExpressionTransformer(self_name, in_class))
    control.bind_locals(node)
    globals_ = {n for s in walk_scope(node.body) if isinstance(s, ast.Global) for n in s.names}
    _visit_body(node, control.StatementTransformer(counter, globals_))
    return node, filename


def _visit_body(fn: ast.FunctionDef, transformer: ast.NodeTransformer) -> None:
    module = ast.Module(body=fn.body, type_ignores=[])
    transformer.generic_visit(module)
    fn.body = module.body


def convert_function(fn: Callable) -> Callable:
    """`fn` converted (cached), or `fn` itself when it is library code or has no source."""
    cached = _cache.get(fn)
    if cached is not None:
        return cached
    if fn in _plain:
        return fn
    if (_is_library(fn) or fn.__name__ == "<lambda>" or getattr(fn, "_not_to_static", False)
            or JST in fn.__code__.co_freevars):
        _plain.add(fn)  # (asked again on every call converted code makes)
        return fn
    try:
        node, filename = _transform(fn)
    except (OSError, TypeError, SyntaxError):  # no source (built in a REPL, exec'd...)
        _plain.add(fn)
        return fn
    code = fn.__code__
    node.name = f"{node.name}__converted"  # the user's name inside still means the original
    freevars = [v for v in code.co_freevars]
    factory = ast.FunctionDef(
        name="__ts_factory",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=a) for a in [JST, *freevars]],
                           vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                           defaults=[]),
        body=[node, ast.Return(value=ast.Name(id=node.name, ctx=ast.Load()))],
        decorator_list=[], returns=None, type_params=[])
    ast.copy_location(factory, node)
    module = ast.fix_missing_locations(ast.Module(body=[factory], type_ignores=[]))
    log.code(f"converted {fn.__qualname__} ({filename}:{node.lineno})", ast.unparse(node))
    compiled = compile(module, filename, "exec")
    factory_code = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
    cells = []
    for cell in fn.__closure__ or ():
        try:
            cells.append(cell.cell_contents)
        except ValueError:
            cells.append(runtime.UndefinedVar("a free variable"))
    make = types.FunctionType(factory_code, fn.__globals__)
    converted = make(_namespace(), *cells)
    converted.__defaults__ = fn.__defaults__
    converted.__kwdefaults__ = fn.__kwdefaults__
    converted = functools.wraps(fn)(converted)
    converted.__wrapped__ = fn
    wrapper = _guard_recursion(fn, converted)
    log.decision(1, f"converted {fn.__qualname__} ({filename}:{node.lineno})")
    _cache[fn] = wrapper
    return wrapper


def _guard_recursion(fn: Callable, converted: Callable) -> Callable:
    """A converted function called again from inside a branch or loop on a tensor that it
    runs itself recurses on a tensor: that never ends while capturing."""
    key = fn.__code__

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        tracer = builders.current()
        depth = tracer.region_depth() if isinstance(tracer, Tracer) else 0
        if key in _active and depth > _active[key]:
            raise UnsupportedError(
                f"{fn.__qualname__} calls itself at {user_location()} inside a branch or loop "
                f"on a tensor: recursion on a tensor cannot be captured (it would not end); "
                f"rewrite it as a while loop")
        outer = _active.get(key)
        _active[key] = depth
        try:
            return converted(*args, **kwargs)
        finally:
            if outer is None:
                del _active[key]
            else:
                _active[key] = outer
    return run


_BUILTINS = {len: runtime.convert_len}


def Call(f: Any) -> Any:  # noqa: N802
    """The callable converted code calls for `f`."""
    if isinstance(f, types.BuiltinFunctionType) or f is builtins.range:
        return _BUILTINS.get(f, f)
    if isinstance(f, types.FunctionType):
        return convert_function(f)
    if isinstance(f, types.MethodType) and isinstance(f.__func__, types.FunctionType):
        conv = convert_function(f.__func__)
        return f if conv is f.__func__ else types.MethodType(conv, f.__self__)
    if isinstance(f, Layer):
        forward = type(f).forward
        forward = getattr(forward, "_function", forward)  # a @to_static forward: its function
        if (isinstance(forward, types.FunctionType) and not f._forward_pre_hooks
                and not f._forward_post_hooks
                and (type(f)._build_once is Layer._build_once or f._built)):
            conv = convert_function(forward)
            return types.MethodType(conv, f) if conv is not forward else f
        return f
    static = getattr(f, "_call_target", None)
    if static is not None and hasattr(f, "_function"):  # a StaticFunction: what it wraps
        target = f._call_target()
        if isinstance(target, functools.partial):
            return functools.partial(convert_function(target.func), *target.args)
        return convert_function(target)
    return f


def convert_target(target: Callable) -> Callable:
    """What to_static traces instead of `target` (a function, or a partial binding a Layer)."""
    if isinstance(target, functools.partial) and isinstance(target.func, types.FunctionType):
        return functools.partial(convert_function(target.func), *target.args,
                                 **target.keywords)
    return Call(target)


_HELPERS = ("And", "Assert", "Enumerate", "Eq", "ForIter", "IfExp", "Not", "NotEq", "Or",
            "Range", "UndefinedVar", "With", "cond_bool", "cond_float", "cond_int", "cond_item", "cond_numpy", "convert_ifelse",
            "convert_len", "return_value")


@functools.cache
def _namespace() -> types.SimpleNamespace:
    """What converted code calls as `_tsj`."""
    ns = types.SimpleNamespace(**{n: getattr(runtime, n) for n in _HELPERS})
    ns.convert_while = loops.convert_while
    ns.Call = Call
    return ns
