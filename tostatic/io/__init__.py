"""paddle.io: datasets, samplers and the (single-process) DataLoader."""
from tostatic.frontend.io.dataloader import DataLoader, default_collate_fn  # noqa: F401
from tostatic.frontend.io.dataset import Dataset, IterableDataset, TensorDataset  # noqa: F401
from tostatic.frontend.io.sampler import (  # noqa: F401
    BatchSampler,
    RandomSampler,
    Sampler,
    SequenceSampler,
)

__all__ = ["BatchSampler", "DataLoader", "Dataset", "IterableDataset", "RandomSampler",
           "Sampler", "SequenceSampler", "TensorDataset"]
