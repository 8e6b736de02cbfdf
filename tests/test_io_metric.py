"""tostatic.io (datasets, samplers, DataLoader), tostatic.metric and the progress bar: the same
code in tostatic and real Paddle 3.3.1 gives the same batches (structure, shapes, dtypes,
values) and accuracies; numpy checks for shuffling and hand-computed accuracies."""
from __future__ import annotations

import io

import numpy as np
import pytest

import tostatic
from tostatic.utils import ProgressBar


def sample_dataset(P, kind):
    class D(P.io.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            x = np.arange(3, dtype=np.float32) + i
            return {"tuple": (x, np.array([i], np.int64)), "array": x, "dict": {"a": x, "b": i},
                    "int": (x, i), "float": (x, 1.5 * i), "tensor": P.to_tensor(x)}[kind]

    return D()


def describe(v):
    """A batch as plain data: structure, shapes, dtypes and values."""
    if hasattr(v, "numpy") and hasattr(v, "shape"):
        return ("T", list(v.shape), str(v.dtype).replace("paddle.", ""), v.numpy().tolist())
    if isinstance(v, dict):
        return {k: describe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [type(v).__name__] + [describe(x) for x in v]
    return v


LOADERS = {
    "tuple": dict(batch_size=2),
    "array": dict(batch_size=2, drop_last=True),
    "dict": dict(batch_size=3),
    "int": dict(batch_size=4),
    "float": dict(batch_size=2),
    "tensor": dict(batch_size=2),
}


@pytest.mark.interop
@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_dataloader_batches_match_paddle(real_paddle, kind):
    def batches(P):
        loader = P.io.DataLoader(sample_dataset(P, kind), **LOADERS[kind])
        return len(loader), [describe(b) for b in loader]

    assert batches(tostatic) == batches(real_paddle)


@pytest.mark.interop
def test_tensor_and_iterable_datasets_and_samplers_match_paddle(real_paddle):
    data = np.arange(12, dtype=np.float32).reshape(6, 2)

    def run(P):
        ds = P.io.TensorDataset([P.to_tensor(data), P.arange(6)])
        out = [len(ds), describe(ds[2])]
        out.append(list(P.io.BatchSampler(ds, batch_size=4)))
        out.append(list(P.io.BatchSampler(sampler=P.io.SequenceSampler(ds), batch_size=4,
                                          drop_last=True)))
        out.append([describe(b) for b in P.io.DataLoader(ds, batch_size=4)])

        class Stream(P.io.IterableDataset):
            def __iter__(self):
                for i in range(5):
                    yield np.array([i], np.float32), i

        out.append([describe(b) for b in P.io.DataLoader(Stream(), batch_size=2)])
        out.append([describe(b) for b in P.io.DataLoader(Stream(), batch_size=2,
                                                         drop_last=True)])
        return out

    assert run(tostatic) == run(real_paddle)


def test_shuffle_visits_every_sample_once_per_epoch():
    ds = tostatic.io.TensorDataset([tostatic.to_tensor(np.arange(10, dtype=np.float32))])
    loader = tostatic.io.DataLoader(ds, batch_size=3, shuffle=True)
    np.random.seed(1)
    first = np.concatenate([b[0].numpy() for b in loader])
    second = np.concatenate([b[0].numpy() for b in loader])
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(10))
    assert first.tolist() != list(range(10)) or second.tolist() != list(range(10))
    assert [len(b[0]) for b in loader] == [3, 3, 3, 1]


def test_loader_errors():
    class Stream(tostatic.io.IterableDataset):
        def __iter__(self):
            yield np.zeros(1)

    with pytest.raises(ValueError, match="shuffle"):
        tostatic.io.DataLoader(Stream(), shuffle=True)
    with pytest.raises(ValueError, match="length"):
        len(tostatic.io.DataLoader(Stream()))
    with pytest.raises(ValueError, match="batch_size"):
        tostatic.io.BatchSampler(list(range(3)), batch_size=0)


PRED = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.1, 0.3]],
                np.float32)
LABEL = np.array([[1], [1], [0], [0]], np.int64)


@pytest.mark.interop
def test_accuracy_matches_paddle(real_paddle):
    def run(P):
        m = P.metric.Accuracy(topk=(1, 2))
        correct = m.compute(P.to_tensor(PRED), P.to_tensor(LABEL))
        out = [describe(correct), m.update(correct), m.name()]
        m.update(m.compute(P.to_tensor(PRED[:2]), P.to_tensor(LABEL[:2, 0])))
        out.append(m.accumulate())
        single = P.metric.Accuracy()
        single.update(single.compute(P.to_tensor(PRED), P.to_tensor(np.eye(3)[LABEL[:, 0]])))
        out += [single.accumulate(), single.name()]
        for k in (1, 2):
            acc = P.metric.accuracy(P.to_tensor(PRED), P.to_tensor(LABEL), k=k)
            out.append(describe(acc))
        return out

    got, want = run(tostatic), run(real_paddle)
    assert got[:4] == want[:4]
    assert got[4] == pytest.approx(want[4]) and got[5] == want[5]
    for g, w in zip(got[6:], want[6:]):
        assert g[:3] == w[:3] and g[3] == pytest.approx(w[3])


def test_accuracy_by_hand():
    m = tostatic.metric.Accuracy(topk=(1, 2))
    m.update(m.compute(tostatic.to_tensor(PRED), tostatic.to_tensor(LABEL)))
    assert m.accumulate() == [2 / 4, 3 / 4]  # top-1 right: rows 0, 3; top-2 also row 2
    m.reset()
    assert m.accumulate() == [0.0, 0.0]


def test_progress_bar_is_one_line():
    out = io.StringIO()
    bar = ProgressBar(range(4), desc="epoch 1", file=out, min_interval=0)
    for i in bar:
        bar.set_postfix(loss=1.0 / (i + 1))
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("epoch 1 4/4 [") and "loss=0.25" in last
