"""Paddle's `assert` op: a program that checks a condition when it runs (what an `assert`
on a tensor in converted code becomes)."""
from __future__ import annotations

from typing import Any

import numpy as np

from tostatic.ir.attributes import INT, attr
from tostatic.ir.opdef import Abstract, From, Legacy, PdOp, pd_op


@pd_op
class Assert(PdOp):
    """Fails the run when the one-element `cond` is false, printing up to `summarize`
    entries of each `data` tensor (all of them when -1)."""

    name = "pd.assert"
    INPUTS = ("cond", "*data")
    ATTRS = {"summarize": attr(INT, 20)}
    NUM_RESULTS = 0
    EFFECTS = True  # a check: never folded away or removed
    NONDIFF = True  # no results
    PADDLE = Legacy("assert", {"Cond": "cond", "Data": "*data"}, {},
                    {"summarize": From("INT", "summarize")}, keeps_extra_attrs=True)
    NAME_HINT = "assert"

    @staticmethod
    def infer(cond: Abstract, data: list[Abstract], summarize: int) -> list[Abstract]:
        return []

    @staticmethod
    def eager(cond: np.ndarray, data: list[np.ndarray], summarize: int) -> list[Any]:
        c = np.asarray(cond)
        if c.size != 1:
            raise ValueError(f"assert: the condition must hold one element, got shape "
                             f"{list(c.shape)}")
        if not bool(c.reshape(-1)[0]):
            shown = [np.asarray(d).reshape(-1)[:None if summarize < 0 else summarize].tolist()
                     for d in data]
            raise AssertionError(f"The condition of the assert op is false"
                                 + (f"; data: {shown}" if shown else ""))
        return []
