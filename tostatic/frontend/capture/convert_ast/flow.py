"""The first transformers: early `return`, `for` loops and `break` / `continue` become flags
and `while` loops, so that every remaining compound statement has one entry and one exit and
can become a function the runtime runs once (Python value) or builds a region from (tensor).

- `return v` nested in control flow: `ret_flag = True; ret_value = v` (plus `break` in a
  loop); what follows a statement that may return runs under `if not ret_flag`; in a loop,
  `if ret_flag: break` after it; the function ends with `return ret_value`.
- `for t in it: body` -> `it_ = ForIter(it); i_ = 0; while it_.cond(i_): i_ = i_ + 1;
  t = it_.get(i_ - 1); body` (`range(...)` in the header becomes `Range(...)`, whose bounds may be
  tensors).
- `break` / `continue` -> flags; what follows a statement that may break runs under
  `if not (brk or cnt)`; the loop test gets `and not brk` (a for loop: `ForIter.cond(i_, brk)`
  and the body under `if not brk`, so a Python sequence stays an unrolled loop).
"""
from __future__ import annotations

import ast
import itertools

from tostatic.frontend.capture.convert_ast.names import (
    PREFIX,
    RET_FLAG,
    RET_VALUE,
    assign,
    call,
    const,
    contains,
    jst,
    located,
    name,
)

_LOOPS = (ast.While, ast.For)


def _not(x: ast.expr) -> ast.expr:
    return ast.UnaryOp(op=ast.Not(), operand=x)


class ReturnTransformer:
    """Early returns to flags (only when some `return` is nested in control flow)."""

    def apply(self, fn: ast.FunctionDef) -> None:
        nested = any(contains(s.body + getattr(s, "orelse", []), (ast.Return,))
                     for s in ast.walk(fn) if isinstance(s, (ast.If, *_LOOPS, ast.Try,
                                                             ast.With)))
        if not nested:
            return
        body = self._block(fn.body, False)
        first = fn.body[0]
        init = [assign(RET_FLAG, const(False)),
                assign(RET_VALUE, call(jst("UndefinedVar"), const(RET_VALUE)))]
        fn.body = [located(s, first) for s in init] + body + [
            located(ast.Return(value=call(jst("return_value"), name(RET_VALUE))), fn.body[-1])]

    def _block(self, stmts: list[ast.stmt], in_loop: bool) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for i, s in enumerate(stmts):
            if isinstance(s, ast.Return):
                new = [assign(RET_FLAG, const(True)),
                       assign(RET_VALUE, s.value if s.value is not None else const(None))]
                if in_loop:
                    new.append(ast.Break())
                out.extend(located(n, s) for n in new)
                return out  # the rest is unreachable
            may_return = contains([s], (ast.Return,))
            self._inside(s, in_loop)
            out.append(s)
            if may_return:
                rest = self._block(stmts[i + 1:], in_loop)
                if in_loop:
                    out.append(located(ast.If(test=name(RET_FLAG), body=[ast.Break()],
                                              orelse=[]), s))
                    out.extend(rest)
                elif rest:
                    out.append(located(ast.If(test=_not(name(RET_FLAG)), body=rest,
                                              orelse=[]), s))
                return out
        return out

    def _inside(self, s: ast.stmt, in_loop: bool) -> None:
        if isinstance(s, ast.If):
            s.body = self._block(s.body, in_loop) or [ast.Pass()]
            s.orelse = self._block(s.orelse, in_loop)
        elif isinstance(s, _LOOPS):
            s.body = self._block(s.body, True) or [ast.Pass()]
        elif isinstance(s, (ast.With, ast.Try)):
            s.body = self._block(s.body, in_loop) or [ast.Pass()]


class ForTransformer(ast.NodeTransformer):
    """`for` loops to `while` loops over an index (runtime.ForIter decides what it walks)."""

    def __init__(self, counter: itertools.count):
        self.counter = counter

    def visit_For(self, node: ast.For) -> list[ast.stmt]:  # noqa: N802
        self.generic_visit(node)
        n = next(self.counter)
        it, idx = f"{PREFIX}it_{n}", f"{PREFIX}i_{n}"
        source = node.iter
        if (isinstance(source, ast.Call) and isinstance(source.func, ast.Name)
                and source.func.id in ("range", "enumerate")):  # bounds / sizes from tensors
            helper = "Range" if source.func.id == "range" else "Enumerate"
            source = ast.Call(func=jst(helper), args=source.args, keywords=source.keywords)
        body = [assign(idx, ast.BinOp(left=name(idx), op=ast.Add(), right=const(1))),
                ast.Assign(targets=[node.target],
                           value=call(ast.Attribute(value=name(it), attr="get",
                                                    ctx=ast.Load()),
                                      ast.BinOp(left=name(idx), op=ast.Sub(), right=const(1)))),
                *node.body]
        loop = ast.While(test=call(ast.Attribute(value=name(it), attr="cond", ctx=ast.Load()),
                                   name(idx)),
                         body=body, orelse=node.orelse)
        loop._ts_for = True  # type: ignore[attr-defined]
        out = [assign(it, call(jst("ForIter"), source)), assign(idx, const(0)), loop]
        return [located(s, node) for s in out]


class BreakContinueTransformer(ast.NodeTransformer):
    """`break` / `continue` to flags, innermost loops first."""

    def __init__(self, counter: itertools.count):
        self.counter = counter

    def visit_While(self, node: ast.While) -> list[ast.stmt]:  # noqa: N802
        self.generic_visit(node)
        has_break = contains(node.body, (ast.Break,), loops=False)
        has_continue = contains(node.body, (ast.Continue,), loops=False)
        if not (has_break or has_continue):
            return [node]
        n = next(self.counter)
        brk = f"{PREFIX}brk_{n}" if has_break else None
        cnt = f"{PREFIX}cnt_{n}" if has_continue else None
        flags = [f for f in (brk, cnt) if f]
        is_for = getattr(node, "_ts_for", False)
        step = [node.body.pop(0)] if is_for else []  # i_ = i_ + 1: on every iteration
        body = self._block(node.body, brk, cnt, flags)
        before: list[ast.stmt] = []
        if brk:
            before.append(assign(brk, const(False)))
            if is_for:  # it_.cond(i_) -> it_.cond(i_, brk)
                node.test.args.append(name(brk))  # type: ignore[attr-defined]
                body = [ast.If(test=_not(name(brk)), body=body, orelse=[])]
            else:
                node.test = ast.BoolOp(op=ast.And(), values=[node.test, _not(name(brk))])
        if cnt:
            body = [assign(cnt, const(False)), *body]
        node.body = step + body
        return [located(s, node) for s in before] + [located(node, node)]

    def _block(self, stmts: list[ast.stmt], brk: str | None, cnt: str | None,
               flags: list[str]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for i, s in enumerate(stmts):
            if isinstance(s, ast.Break):
                out.append(located(assign(brk, const(True)), s))  # type: ignore[arg-type]
                return out
            if isinstance(s, ast.Continue):
                out.append(located(assign(cnt, const(True)), s))  # type: ignore[arg-type]
                return out
            jumps = contains([s], (ast.Break, ast.Continue), loops=False)
            self._inside(s, brk, cnt, flags)
            out.append(s)
            if jumps:
                rest = self._block(stmts[i + 1:], brk, cnt, flags)
                if rest:
                    test = (_not(name(flags[0])) if len(flags) == 1 else
                            ast.BoolOp(op=ast.And(), values=[_not(name(f)) for f in flags]))
                    out.append(located(ast.If(test=test, body=rest, orelse=[]), s))
                return out
        return out

    def _inside(self, s: ast.stmt, brk: str | None, cnt: str | None, flags: list[str]) -> None:
        if isinstance(s, ast.If):
            s.body = self._block(s.body, brk, cnt, flags) or [ast.Pass()]
            s.orelse = self._block(s.orelse, brk, cnt, flags)
        elif isinstance(s, (ast.With, ast.Try)):
            s.body = self._block(s.body, brk, cnt, flags) or [ast.Pass()]
