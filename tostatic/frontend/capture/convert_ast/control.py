"""The last transformers: expressions (`and` / `or` / `not`, conditional expressions,
`assert`, calls, what a condition may apply to a tensor), then `if` and `while` statements as
nested functions the runtime runs or builds regions from.

    if test: A else: B   ->   def true_fn(): nonlocal x, y; A
                              def false_fn(): nonlocal x, y; B
                              _tsj.convert_ifelse(test, true_fn, false_fn,
                                                  lambda: (x, y), set_args, ("x", "y"))
    while test: A        ->   _tsj.convert_while(lambda: test, body_fn, get, set, names)

`x, y` are the names the statement assigns; every local of the function is bound on entry
(`x = _tsj.UndefinedVar("x")`), so that `nonlocal` always finds it and a variable read before
it is set says so by name.
"""
from __future__ import annotations

import ast
import itertools

from tostatic.frontend.capture.convert_ast.names import (
    JST,
    PREFIX,
    assigned,
    call,
    const,
    declared,
    jst,
    lambda_,
    located,
    name,
)

# what a condition may apply to a tensor (a Python value elsewhere): builtin -> helper
_IN_CONDITION = {"bool": "cond_bool", "int": "cond_int", "float": "cond_float"}
_IN_CONDITION_METHODS = {"numpy": "cond_numpy", "item": "cond_item"}


class ConditionRewriter(ast.NodeTransformer):
    """Inside an if / while / assert test: `bool(x)`, `int(x)`, `float(x)`, `x.numpy()`,
    `x.item()` keep a tensor symbolic."""

    def visit_Call(self, node: ast.Call) -> ast.AST:  # noqa: N802
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Name) and f.id in _IN_CONDITION and len(node.args) == 1:
            return ast.copy_location(call(jst(_IN_CONDITION[f.id]), node.args[0]), node)
        if (isinstance(f, ast.Attribute) and f.attr in _IN_CONDITION_METHODS
                and not node.args and not node.keywords):
            return ast.copy_location(call(jst(_IN_CONDITION_METHODS[f.attr]), f.value), node)
        return node


def _is_helper(f: ast.expr) -> bool:
    return isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == JST


class ExpressionTransformer(ast.NodeTransformer):
    """Boolean operators, conditional expressions, assert and calls."""

    def __init__(self, self_name: str | None, in_class: bool):
        self.self_name = self_name
        self.in_class = in_class

    def _condition(self, test: ast.expr) -> ast.expr:
        return ConditionRewriter().visit(test)

    def visit_If(self, node: ast.If) -> ast.AST:  # noqa: N802
        node.test = self._condition(node.test)
        return self.generic_visit(node)

    def visit_While(self, node: ast.While) -> ast.AST:  # noqa: N802
        node.test = self._condition(node.test)
        return self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:  # noqa: N802
        self.generic_visit(node)
        helper = "And" if isinstance(node.op, ast.And) else "Or"
        return ast.copy_location(call(jst(helper), *[lambda_(v) for v in node.values]), node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:  # noqa: N802
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
            helper = "Eq" if isinstance(node.ops[0], ast.Eq) else "NotEq"
            return ast.copy_location(call(jst(helper), node.left, node.comparators[0]), node)
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:  # noqa: N802
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return ast.copy_location(call(jst("Not"), node.operand), node)
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:  # noqa: N802
        node.test = self._condition(node.test)
        self.generic_visit(node)
        return ast.copy_location(call(jst("IfExp"), node.test, lambda_(node.body),
                                      lambda_(node.orelse)), node)

    def visit_Assert(self, node: ast.Assert) -> ast.AST:  # noqa: N802
        node.test = self._condition(node.test)
        self.generic_visit(node)
        msg = lambda_(node.msg) if node.msg is not None else const(None)
        return ast.copy_location(ast.Expr(value=call(jst("Assert"), node.test, msg)), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:  # noqa: N802
        self.generic_visit(node)
        f = node.func
        if _is_helper(f):
            return node
        if isinstance(f, ast.Name) and f.id == "super" and not node.args and self.in_class:
            if self.self_name:  # super() from a nested function needs its arguments
                node.args = [name("__class__"), name(self.self_name)]
            return node
        node.func = ast.copy_location(call(jst("Call"), f), f)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:  # noqa: N802
        return node  # a nested def is converted when it is called

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815
    visit_ClassDef = visit_FunctionDef  # noqa: N815

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:  # noqa: N802
        return node


def bind_locals(fn: ast.FunctionDef) -> None:
    """Bind every local on entry to an UndefinedVar naming it."""
    params = {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)}
    params |= {a.arg for a in (fn.args.vararg, fn.args.kwarg) if a is not None}
    skip = params | declared(fn.body)
    init = [ast.Assign(targets=[name(n, True)], value=call(jst("UndefinedVar"), const(n)))
            for n in assigned(fn.body) if n not in skip]
    fn.body = [located(s, fn.body[0]) for s in init] + fn.body


class StatementTransformer(ast.NodeTransformer):
    """`if` and `while` as nested functions and a runtime call."""

    def __init__(self, counter: itertools.count, global_names: set[str],
                 context: list[tuple[str, int]] | None = None):
        self.counter = counter
        self.global_names = global_names
        self.context = context or []  # enclosing try / with: (kind, line)

    def _decls(self, names: list[str]) -> list[ast.stmt]:
        local = [n for n in names if n not in self.global_names]
        glob = [n for n in names if n in self.global_names]
        out: list[ast.stmt] = []
        if local:
            out.append(ast.Nonlocal(names=local))
        if glob:
            out.append(ast.Global(names=glob))
        return out

    def _def(self, fname: str, names: list[str], body: list[ast.stmt]) -> ast.FunctionDef:
        return ast.FunctionDef(name=fname, args=lambda_(const(0)).args,
                               body=self._decls(names) + (body or [ast.Pass()]),
                               decorator_list=[], returns=None, type_params=[])

    def _get_set(self, n: int, names: list[str]) -> tuple[ast.expr, ast.stmt, str]:
        get = lambda_(ast.Tuple(elts=[name(x) for x in names], ctx=ast.Load()))
        set_name = f"{PREFIX}set_{n}"
        arg = f"{PREFIX}values"
        body: list[ast.stmt] = self._decls(names)
        if names:
            body.append(ast.Assign(targets=[ast.Tuple(elts=[name(x, True) for x in names],
                                                      ctx=ast.Store())], value=name(arg)))
        else:
            body.append(ast.Pass())
        set_def = ast.FunctionDef(
            name=set_name, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=arg)],
                                              vararg=None, kwonlyargs=[], kw_defaults=[],
                                              kwarg=None, defaults=[]),
            body=body, decorator_list=[], returns=None, type_params=[])
        return get, set_def, set_name

    def _where(self) -> ast.expr:
        return ast.Tuple(elts=[ast.Tuple(elts=[const(k), const(line)], ctx=ast.Load())
                               for k, line in self.context], ctx=ast.Load())

    def _context(self, node: ast.stmt, kind: str) -> ast.AST:
        self.context.append((kind, node.lineno))
        try:
            return self.generic_visit(node)
        finally:
            self.context.pop()

    def visit_Try(self, node: ast.Try) -> ast.AST:  # noqa: N802
        return self._context(node, "try")

    def visit_With(self, node: ast.With) -> ast.AST:  # noqa: N802
        for item in node.items:  # a context manager from user code is reported if it
            item.context_expr = call(jst("With"), item.context_expr)  # wraps tensor flow
        return self._context(node, "with")

    def visit_If(self, node: ast.If) -> list[ast.stmt]:  # noqa: N802
        names = [x for x in assigned(node.body + node.orelse)]
        self.generic_visit(node)
        n = next(self.counter)
        t, f = f"{PREFIX}true_fn_{n}", f"{PREFIX}false_fn_{n}"
        get, set_def, set_name = self._get_set(n, names)
        run = ast.Expr(value=call(jst("convert_ifelse"), node.test, name(t), name(f), get,
                                  name(set_name), _names(names), self._where(),
                                  line=const(node.lineno)))
        out = [self._def(t, names, node.body), self._def(f, names, node.orelse), set_def, run]
        return [located(s, node) for s in out]

    def visit_While(self, node: ast.While) -> list[ast.stmt]:  # noqa: N802
        names = assigned(node.body + [node.test])
        self.generic_visit(node)
        n = next(self.counter)
        body = f"{PREFIX}body_{n}"
        get, set_def, set_name = self._get_set(n, names)
        run = ast.Expr(value=call(jst("convert_while"), lambda_(node.test), name(body), get,
                                  name(set_name), _names(names), self._where(),
                                  line=const(node.lineno)))
        out = [self._def(body, names, node.body), set_def, run]
        return [located(s, node) for s in out]

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:  # noqa: N802
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815
    visit_ClassDef = visit_FunctionDef  # noqa: N815


def _names(names: list[str]) -> ast.expr:
    return ast.Tuple(elts=[const(x) for x in names], ctx=ast.Load())
