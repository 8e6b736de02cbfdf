"""A per-thread setting changed for the length of a `with` block, restored after (also when
the block raises or nests): codegen's llvmlite lock pass (module_parts) and the plan cache's
answering store (prepared) are both such settings."""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator


@contextlib.contextmanager
def set_for_block(local: threading.local, name: str, value: Any) -> Iterator[None]:
    """`local.<name>` is `value` in this thread until the block ends, then what it was."""
    before = getattr(local, name, None)
    setattr(local, name, value)
    try:
        yield
    finally:
        setattr(local, name, before)
