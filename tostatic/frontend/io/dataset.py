"""paddle.io.Dataset / IterableDataset / TensorDataset."""
from __future__ import annotations

from typing import Any, Iterator, Sequence

__all__ = ["Dataset", "IterableDataset", "TensorDataset"]


class Dataset:
    """Map-style: subclasses define __getitem__(idx) and __len__."""

    def __getitem__(self, idx: int) -> Any:
        raise NotImplementedError(f"'{type(self).__name__}' not implement in function "
                                  f"__getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"'{type(self).__name__}' not implement in function __len__")


class IterableDataset(Dataset):
    """A stream of samples: subclasses define __iter__."""

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"'{type(self).__name__}' not implement in function __iter__")

    def __getitem__(self, idx: int) -> Any:
        raise RuntimeError(f"'{type(self).__name__}' should not be called for IterableDataset")

    def __len__(self) -> int:
        raise RuntimeError(f"'{type(self).__name__}' should not be called for IterableDataset")


class TensorDataset(Dataset):
    """Sample i is (t[i] for t in tensors); all must have the same first dimension."""

    def __init__(self, tensors: Sequence[Any]) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        if any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            raise ValueError("tensors not have same shape of the 1st dimension")
        self.tensors = list(tensors)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]
