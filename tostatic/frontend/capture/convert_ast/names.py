"""What the transformers need to know about names and statements: which names a piece of
code assigns, whether it returns / breaks, the generated names, building small AST nodes.

Scopes stop at nested functions, lambdas, classes and comprehensions: what they bind is
theirs, not the converted function's.
"""
from __future__ import annotations

import ast
from typing import Iterable, Iterator

JST = "_tsj"  # the runtime helpers (convert_ast.runtime), a parameter of the factory
RET_FLAG = "__ts_ret_flag"
RET_VALUE = "__ts_ret_value"
PREFIX = "__ts_"

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp,
           ast.SetComp, ast.DictComp, ast.GeneratorExp)


def walk_scope(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Every node of `nodes`, not descending into nested scopes (their nodes are still
    yielded themselves: a def binds its name)."""
    stack = list(nodes)[::-1]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPES):
            continue
        stack.extend(list(ast.iter_child_nodes(node))[::-1])


def _target_names(target: ast.AST, out: list[str]) -> None:
    if isinstance(target, ast.Name):
        out.append(target.id)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for t in target.elts:
            _target_names(t, out)
    elif isinstance(target, ast.Starred):
        _target_names(target.value, out)


def assigned(nodes: Iterable[ast.AST]) -> list[str]:
    """Names the statements bind in their own scope, in order of first appearance."""
    out: list[str] = []
    for node in walk_scope(nodes):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                _target_names(t, out)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            if node.value is not None or isinstance(node, ast.AugAssign):
                _target_names(node.target, out)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            _target_names(node.target, out)
        elif isinstance(node, ast.NamedExpr):
            _target_names(node.target, out)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    _target_names(item.optional_vars, out)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.append(node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                out.append((alias.asname or alias.name).split(".")[0])
    seen: set[str] = set()
    return [n for n in out if not (n in seen or seen.add(n))]  # type: ignore[func-returns-value]


def declared(nodes: Iterable[ast.AST]) -> set[str]:
    """Names declared global or nonlocal."""
    out: set[str] = set()
    for node in walk_scope(nodes):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            out.update(node.names)
    return out


def contains(nodes: Iterable[ast.AST], kinds: tuple[type, ...], loops: bool = True) -> bool:
    """Whether a node of `kinds` is among `nodes` (in this scope; `loops=False`: not inside
    nested loops either, for break / continue, which belong to the innermost loop)."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, kinds):
            return True
        if isinstance(node, _SCOPES):
            continue
        if not loops and isinstance(node, (ast.While, ast.For, ast.AsyncFor)):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


def name(id_: str, store: bool = False) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Store() if store else ast.Load())


def jst(attr: str) -> ast.Attribute:
    return ast.Attribute(value=name(JST), attr=attr, ctx=ast.Load())


def call(func: ast.expr, *args: ast.expr, **kwargs: ast.expr) -> ast.Call:
    return ast.Call(func=func, args=list(args),
                    keywords=[ast.keyword(arg=k, value=v) for k, v in kwargs.items()])


def assign(target: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[name(target, True)], value=value)


def const(value: object) -> ast.Constant:
    return ast.Constant(value=value)


def lambda_(body: ast.expr) -> ast.Lambda:
    return ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[],
                                         kw_defaults=[], kwarg=None, defaults=[]), body=body)


def located(node: ast.AST, like: ast.AST) -> ast.AST:
    """`node` and everything in it without a location at `like`'s line."""
    for n in ast.walk(node):
        if "lineno" in n._attributes and getattr(n, "lineno", None) is None:
            ast.copy_location(n, like)
    return node
