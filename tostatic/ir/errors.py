"""Errors a user can cause; each says where (the user's line or the file offset) and what."""


class ToStaticError(Exception):
    """Base of tostatic's own errors."""


class ShapeError(ToStaticError, ValueError):
    """Shapes or dtypes of an op's inputs do not fit together."""


class UnsupportedError(ToStaticError, NotImplementedError):
    """Something the user asked for that tostatic cannot express (yet)."""


class FeedError(ToStaticError, ValueError):
    """A value fed to a compiled program does not match the program's input."""


class OutOfRangeError(ToStaticError, IndexError):
    """A tensor holds an index or id outside what an op accepts (found when the op runs)."""


class ProgramError(ToStaticError, ValueError):
    """A program read from a file that is not a valid Paddle program (a variable read before it
    is written, a sub-block reference out of range or in a cycle...); says where in it."""


class ExecutionError(ToStaticError, RuntimeError):
    """A kernel failed while a loaded model ran (e.g. dynamic dims that do not broadcast)."""
