"""Whether a process of this host may still run: temporary files name their writer's pid, so
a later writer can remove those a killed one left (serialization's atomic saves, codegen's
kernel cache). Here, below both, and light enough for a warm start's path."""
from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this host may still be running (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
