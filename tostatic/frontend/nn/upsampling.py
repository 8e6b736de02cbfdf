"""paddle.nn.Upsample, UpsamplingNearest2D, UpsamplingBilinear2D (paddle/nn/layer/common.py,
3.3.1): no parameters, each calls F.interpolate with its fixed mode; PixelShuffle
(paddle/nn/layer/vision.py) calls F.pixel_shuffle."""
from __future__ import annotations

from typing import Any

from tostatic.frontend.nn import functional_common as F
from tostatic.frontend.nn.functional_vision import pixel_shuffle
from tostatic.frontend.nn.layer import Layer

DEFAULT_FORMAT = {3: "NCW", 4: "NCHW", 5: "NCDHW"}


def _describe(layer: Any) -> tuple[str, str]:
    main = (f"scale_factor={layer.scale_factor}" if layer.scale_factor is not None
            else f"size={layer.size}")
    return main, (f", name={layer.name}" if layer.name else "")


class Upsample(Layer):
    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: bool = False, align_mode: int = 0, data_format: str | None = None,
                 recompute_scale_factor: bool | None = None, name: str | None = None) -> None:
        super().__init__()
        self.size = size
        self.scale_factor = scale_factor
        self.mode = mode.lower()
        self.align_corners = align_corners
        self.align_mode = align_mode
        self.data_format = data_format
        self.recompute_scale_factor = recompute_scale_factor
        self.name = name

    def forward(self, x: Any) -> Any:
        if self.data_format is None:
            if len(x.shape) not in DEFAULT_FORMAT:
                raise ValueError("The dimension of the input tensor should only be 3-D, 4-D or "
                                 f"5-D, but the received dimension is {len(x.shape)}.")
            self.data_format = DEFAULT_FORMAT[len(x.shape)]
        return F.interpolate(x, size=self.size, scale_factor=self.scale_factor, mode=self.mode,
                             align_corners=self.align_corners, align_mode=self.align_mode,
                             data_format=self.data_format,
                             recompute_scale_factor=self.recompute_scale_factor,
                             name=self.name)

    def extra_repr(self) -> str:
        main, name = _describe(self)
        return (f"{main}, mode={self.mode}, align_corners={self.align_corners}, "
                f"align_mode={self.align_mode}, data_format={self.data_format}{name}")


class _Upsampling2D(Layer):
    MODE = "nearest"
    ALIGN_CORNERS = False

    def __init__(self, size: Any = None, scale_factor: Any = None, data_format: str = "NCHW",
                 name: str | None = None) -> None:
        super().__init__()
        if isinstance(size, int):
            size = [size, size]
        self.size = size
        self.scale_factor = scale_factor
        self.data_format = data_format
        self.name = name

    def forward(self, x: Any) -> Any:
        return F.interpolate(x, size=self.size, scale_factor=self.scale_factor,
                             mode=self.MODE, align_corners=self.ALIGN_CORNERS, align_mode=0,
                             data_format=self.data_format, name=self.name)

    def extra_repr(self) -> str:
        main, name = _describe(self)
        return f"{main}, data_format={self.data_format}{name}"


class UpsamplingNearest2D(_Upsampling2D):
    MODE = "nearest"
    ALIGN_CORNERS = False


class UpsamplingBilinear2D(_Upsampling2D):
    MODE = "bilinear"
    ALIGN_CORNERS = True


__all__ = ["Upsample", "UpsamplingBilinear2D", "UpsamplingNearest2D"]


class PixelShuffle(Layer):
    def __init__(self, upscale_factor: int, data_format: str = "NCHW",
                 name: str | None = None) -> None:
        super().__init__()
        if not isinstance(upscale_factor, int):
            raise TypeError("upscale factor must be int type")
        if data_format not in ("NCHW", "NHWC"):
            raise ValueError(f"Data format should be 'NCHW' or 'NHWC'.But recevie data "
                             f"format: {data_format}")
        self._upscale_factor = upscale_factor
        self._data_format = data_format
        self._name = name

    def forward(self, x: Any) -> Any:
        return pixel_shuffle(x, self._upscale_factor, self._data_format, self._name)

    def extra_repr(self) -> str:
        main = f"upscale_factor={self._upscale_factor}"
        if self._data_format != "NCHW":
            main += f", data_format={self._data_format}"
        return main + (f", name={self._name}" if self._name else "")
