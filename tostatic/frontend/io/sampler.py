"""paddle.io.Sampler / SequenceSampler / RandomSampler / BatchSampler: which indices, in which
order and in which batches a DataLoader reads."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

__all__ = ["BatchSampler", "RandomSampler", "Sampler", "SequenceSampler"]


class Sampler:
    def __init__(self, data_source: Any = None) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.data_source)


class SequenceSampler(Sampler):
    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))


class RandomSampler(Sampler):
    """A permutation (numpy's global RNG, as Paddle's; or `generator`, an iterator of indices),
    or num_samples draws with replacement."""

    def __init__(self, data_source: Any, replacement: bool = False,
                 num_samples: int | None = None, generator: Any = None) -> None:
        super().__init__(data_source)
        if not isinstance(replacement, bool):
            raise TypeError("expect boolean value for replacement, but got replacement="
                            f"{replacement}")
        if num_samples is not None and not replacement:
            raise ValueError("num_samples should not be specified while replacement is False")
        self.replacement, self._num_samples, self.generator = replacement, num_samples, generator
        if self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        if self.generator is not None:
            for _ in range(self.num_samples):
                yield next(self.generator)
        elif self.replacement:
            yield from np.random.randint(0, n, (self.num_samples,)).tolist()
        else:
            yield from np.random.permutation(n).tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of batch_size indices from `sampler` (or from `dataset` in order, shuffled with
    shuffle=True); the last, shorter one is dropped with drop_last."""

    def __init__(self, dataset: Any = None, sampler: Sampler | None = None,
                 shuffle: bool = False, batch_size: int = 1, drop_last: bool = False) -> None:
        if (dataset is None) == (sampler is None):
            raise ValueError("either dataset or sampler should be set (and not both)")
        if sampler is not None and shuffle:
            raise ValueError("shuffle should be False when sampler is set")
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer, but got {batch_size}")
        if not isinstance(drop_last, bool):
            raise TypeError(f"drop_last should be a boolean value, but got {type(drop_last)}")
        if sampler is None:
            sampler = RandomSampler(dataset) if shuffle else SequenceSampler(dataset)
        self.sampler, self.shuffle = sampler, shuffle
        self.batch_size, self.drop_last = batch_size, drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
