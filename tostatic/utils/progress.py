"""A one-line progress bar for training scripts (tqdm-style, no dependency):

    for x, y in (bar := ProgressBar(loader, desc="epoch 1")):
        ...
        bar.set_postfix(loss=float(loss))

redrawn in place with '\\r' at most every `min_interval` seconds, finished with a newline.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator, TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    def __init__(self, iterable: Iterable[Any] | None = None, total: int | None = None,
                 desc: str = "", width: int = 24, file: TextIO | None = None,
                 min_interval: float = 0.1) -> None:
        self.iterable = iterable
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                total = None
        self.total, self.desc, self.width = total, desc, width
        self.file = file if file is not None else sys.stderr
        self.min_interval = min_interval
        self.n, self.postfix, self._drawn, self._drawn_n = 0, "", 0, -1
        self._start = self._last = time.perf_counter()

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("ProgressBar was given no iterable")
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in values.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self._last >= self.min_interval or self.n == self.total:
            self._last = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.perf_counter()) - self._start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        if self.total:
            done = int(self.width * min(self.n, self.total) / self.total)
            bar = "=" * done + (">" if done < self.width else "") + " " * (self.width - done - 1)
            count = f"{self.n}/{self.total} [{bar[:self.width]}]"
        else:
            count = f"{self.n}"
        parts = [self.desc, count, f"{elapsed:.1f}s", f"{rate:.1f}it/s", self.postfix]
        return " ".join(p for p in parts if p)

    def _draw(self, now: float | None = None) -> None:
        text = self.line(now)
        self._drawn_n = self.n
        self.file.write("\r" + text.ljust(self._drawn))  # blank what a longer line left
        self._drawn = len(text)
        self.file.flush()

    def close(self) -> None:
        if self._drawn_n != self.n:
            self._draw()
        self.file.write("\n")
        self.file.flush()
