"""Reading and writing Paddle's legacy inference files (.pdmodel, .pdiparams, .pdiparams.info).

Shared here: the error every reader raises for a malformed file, and the atomic writer every
writer uses, so that a crash or an exception midway never leaves a half-written file behind.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from tostatic.ir.errors import ToStaticError
from tostatic.ir.processes import process_alive

__all__ = ["FormatError", "atomic_write", "remove_stale_temps"]

# `.NAME.PID.RANDOM.tmp`: a temporary file of an atomic write, by the process PID
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


class FormatError(ToStaticError, ValueError):
    """A file is not in the expected format. Carries the file name and the byte offset."""

    def __init__(self, path: str | os.PathLike[str], offset: int | None, reason: str):
        self.path = os.fspath(path)
        self.offset = offset
        self.reason = reason
        where = "" if offset is None else f" at byte offset {offset}"
        super().__init__(f"{self.path}{where}: {reason}")


def _umask() -> int:
    # os.umask can only be read by setting it, which races with other threads; Linux has it here.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file next to `path` for binary writing; replace `path` only on success.

    The temp file lives in the same directory so that os.replace is an atomic rename. On any
    exception (including KeyboardInterrupt) the temp file is removed and `path` is untouched;
    temp files of writes that were killed (SIGKILL, power loss) go at the next success.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.{os.getpid()}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    remove_stale_temps(path)


def remove_stale_temps(prefix: str | os.PathLike[str]) -> None:
    """Remove the temporary files that killed writes of `prefix` (or of the files starting
    with it) left behind: those whose writing process is gone."""
    directory, base = os.path.split(os.path.abspath(os.fspath(prefix)))
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        m = _TMP.match(name)
        if m and m["name"].lstrip(".").startswith(base) and int(m["pid"]) != os.getpid() \
                and not process_alive(int(m["pid"])):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
