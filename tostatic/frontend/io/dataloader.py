"""paddle.io.DataLoader, single process: batches of samples collated as Paddle's
default_collate_fn does (numpy arrays and numbers stacked, Tensors stacked, dicts and
sequences field by field), every numpy array of the batch made a Tensor. num_workers > 0 is
accepted and runs in this process (tostatic has no worker processes)."""
from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterator

import numpy as np

from tostatic.frontend.io.dataset import IterableDataset
from tostatic.frontend.io.sampler import BatchSampler
from tostatic.frontend.tensor.manipulation import stack
from tostatic.frontend.tensor.tensor import Tensor, to_tensor

__all__ = ["DataLoader", "default_collate_fn"]


def default_collate_fn(batch: list[Any]) -> Any:
    sample = batch[0]
    if isinstance(sample, np.ndarray):
        return np.stack(batch, axis=0)
    if isinstance(sample, Tensor):
        return stack(batch, axis=0)
    if isinstance(sample, numbers.Number):
        return np.array(batch)
    if isinstance(sample, (str, bytes)):
        return batch
    if isinstance(sample, Mapping):
        return {key: default_collate_fn([d[key] for d in batch]) for key in sample}
    if isinstance(sample, Sequence):
        if any(len(s) != len(sample) for s in batch):
            raise RuntimeError("fields number not same among samples in a batch")
        return [default_collate_fn(list(fields)) for fields in zip(*batch)]
    raise TypeError(f"batch data con only contains: tensor, numpy.ndarray, dict, list, number, "
                    f"but got {type(sample)}")


def _to_tensors(data: Any) -> Any:
    if isinstance(data, np.ndarray):
        return to_tensor(data)
    if isinstance(data, Mapping):
        return {k: _to_tensors(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_to_tensors(v) for v in data]
    return data


class DataLoader:
    def __init__(self, dataset: Any, feed_list: Any = None, places: Any = None,
                 return_list: bool = True, batch_sampler: BatchSampler | None = None,
                 batch_size: int | None = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn: Callable[[list[Any]], Any] | None = None, num_workers: int = 0,
                 use_buffer_reader: bool = True, prefetch_factor: int = 2,
                 use_shared_memory: bool = True, timeout: int = 0,
                 worker_init_fn: Callable[[int], None] | None = None,
                 persistent_workers: bool = False) -> None:
        if num_workers < 0:
            raise ValueError("num_workers should be a non-negative value")
        self.dataset, self.return_list = dataset, return_list
        self.collate_fn = collate_fn
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle:
                raise ValueError(f"IterableDataset not support shuffle, but got shuffle={shuffle}")
            if batch_sampler is not None:
                raise ValueError("IterableDataset expect unspecified batch_sampler")
            self.batch_size, self.drop_last, self.batch_sampler = batch_size, drop_last, None
            return
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or drop_last:
                raise ValueError("batch_size/shuffle/drop_last should not be set when "
                                 "batch_sampler is given")
            self.batch_sampler: BatchSampler | None = batch_sampler
            self.batch_size = None
        elif batch_size is None:
            self.batch_sampler, self.batch_size = None, None  # one sample at a time, uncollated
        else:
            self.batch_sampler = BatchSampler(dataset=dataset, batch_size=batch_size,
                                              shuffle=shuffle, drop_last=drop_last)
            self.batch_size = batch_size
        self.drop_last = drop_last

    def __len__(self) -> int:
        if self._iterable:
            raise ValueError("length of IterableDataset not supported")
        return len(self.batch_sampler) if self.batch_sampler is not None else len(self.dataset)

    def _collate(self, samples: list[Any]) -> Any:
        return (self.collate_fn or default_collate_fn)(samples)

    def _batches(self) -> Iterator[Any]:
        if self._iterable:
            if self.batch_size is None:
                yield from self.dataset
                return
            batch: list[Any] = []
            for sample in self.dataset:
                batch.append(sample)
                if len(batch) == self.batch_size:
                    yield self._collate(batch)
                    batch = []
            if batch and not self.drop_last:
                yield self._collate(batch)
        elif self.batch_sampler is None:
            for i in range(len(self.dataset)):
                sample = self.dataset[i]
                yield self.collate_fn([sample]) if self.collate_fn else sample
        else:
            for indices in self.batch_sampler:
                yield self._collate([self.dataset[i] for i in indices])

    def __iter__(self) -> Iterator[Any]:
        for batch in self._batches():
            yield _to_tensors(batch)

    def __call__(self) -> Iterator[Any]:
        return self.__iter__()
