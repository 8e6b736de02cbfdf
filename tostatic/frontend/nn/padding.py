"""paddle.nn.Pad1D, Pad2D, Pad3D (paddle/nn/layer/common.py, 3.3.1): no parameters, each
calls F.pad; an int padding pads every side by it."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn import functional_common as F
from tostatic.frontend.nn.layer import Layer


class _PadnD(Layer):
    _n_dim = 1

    def __init__(self, padding: Any, mode: str = "constant", value: float = 0.0,
                 data_format: str = "NCL", name: str | None = None) -> None:
        super().__init__()
        self.padding = padding if isinstance(padding, (list, tuple)) or hasattr(
            padding, "shape") else [padding] * (self._n_dim * 2)
        self._mode = mode
        self.value = value
        self._data_format = data_format
        self._name = name

    def forward(self, x: Any) -> Any:
        return F.pad(x, pad=self.padding, mode=self._mode, value=self.value,
                     data_format=self._data_format, name=self._name)

    def extra_repr(self) -> str:
        name_str = f", name={self._name}" if self._name else ""
        return (f"padding={self.padding}, mode={self._mode}, value={self.value}, "
                f"data_format={self._data_format}{name_str}")


class Pad1D(_PadnD):
    _n_dim = 1


class Pad2D(_PadnD):
    _n_dim = 2

    def __init__(self, padding: Any, mode: str = "constant", value: float = 0.0,
                 data_format: str = "NCHW", name: str | None = None) -> None:
        super().__init__(padding, mode, value, data_format, name)


class Pad3D(_PadnD):
    _n_dim = 3

    def __init__(self, padding: Any, mode: str = "constant", value: float = 0.0,
                 data_format: str = "NCDHW", name: str | None = None) -> None:
        super().__init__(padding, mode, value, data_format, name)


__all__ = ["Pad1D", "Pad2D", "Pad3D"]
