"""Imports that make many long-lived objects, done without the garbage collector walking them.

Importing tostatic's ops and xDSL makes some 200k objects (classes, their dicts) and no
garbage; at the usual threshold the collector would walk them ~100 times (45 ms of a start).
`few_collections` raises the threshold around such an import, and moves what it made to the
oldest generation (freeze then unfreeze: two list splices), which only full collections walk:
left young, the next collections walked them all again (~20 ms of a start). Used by the lazy
`tostatic` package (tostatic/__init__.py) and the predictor, which import on first use.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(max(100_000, before[0]), *before[1:])
    try:
        yield
    finally:
        # (not when the program froze objects itself: its frozen ones stay frozen)
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.set_threshold(*before)
