"""paddle.nn.functional.affine_grid, grid_sample and pixel_shuffle (paddle/nn/functional/
vision.py, 3.3.1).

affine_grid writes `affine_grid` as Paddle's static branch does (output_shape as an
attribute, or a Tensor in OutputShape). grid_sample writes `grid_sampler` as Paddle 2.x
wrote it (helper `grid_sample`): Paddle 3.3.1 builds it in the new IR only.
"""
from __future__ import annotations

from typing import Any

from tostatic.frontend.tensor.dispatch import apply
from tostatic.frontend.tensor.manipulation import is_tensor
from tostatic.frontend.tensor.naming import helper
from tostatic.ir import builder as builders
from tostatic.ops import rearrange, sampling


def affine_grid(theta: Any, out_shape: Any, align_corners: bool = True,
                name: str | None = None) -> Any:
    """The sampling grid of the affine maps theta (N, 2, 3) or (N, 3, 4) for an output of
    shape out_shape ([N, C, H, W] or [N, C, D, H, W])."""
    if not is_tensor(theta):
        raise TypeError("The theta should be a Tensor.")
    shape_inputs: list[Any] = []
    attrs: dict[str, Any] = {"align_corners": align_corners}
    if is_tensor(out_shape) and builders.current() is not None:
        shape_inputs = [out_shape]
    else:
        values = out_shape.numpy().reshape(-1).tolist() if is_tensor(out_shape) else out_shape
        if len(values) == 0:
            raise ValueError("The out_shape cannot be empty.")
        attrs["output_shape"] = tuple(int(v) for v in values)
    with helper("affine_grid", name):
        return apply(sampling.AffineGrid, theta, *shape_inputs, **attrs)


def grid_sample(x: Any, grid: Any, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool = True, name: str | None = None) -> Any:
    """x sampled at grid's normalised positions (bilinear or nearest; zeros, border or
    reflection outside)."""
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"The mode of grid sample function should be in ['bilinear', "
                         f"'nearest'], but got: {mode}")
    if padding_mode not in ("zeros", "reflection", "border"):
        raise ValueError(f"The padding mode of grid sample function should be in ['zeros', "
                         f"'reflection', 'border'], but got: {padding_mode}")
    if not isinstance(align_corners, bool):
        raise ValueError(f"The align corners should be bool, but got: {align_corners}")
    if len(x.shape) not in (4, 5):
        raise ValueError(f"grid_sample: x must be 4-D or 5-D, got shape {x.shape}")
    with helper("grid_sample", name):
        return apply(sampling.GridSample, x, grid, mode=mode, padding_mode=padding_mode,
                     align_corners=align_corners)


__all__ = ["affine_grid", "grid_sample"]


def pixel_shuffle(x: Any, upscale_factor: int, data_format: str = "NCHW",
                  name: str | None = None) -> Any:
    """Channels into space: [N, C*r*r, H, W] -> [N, C, H*r, W*r] (r = upscale_factor)."""
    if len(x.shape) != 4:
        raise ValueError(f"Input x should be 4D tensor, but received x with the shape of "
                         f"{list(x.shape)}")
    if not isinstance(upscale_factor, int):
        raise TypeError("upscale factor must be int type")
    if data_format not in ("NCHW", "NHWC"):
        raise ValueError(f"Attr(data_format) should be 'NCHW' or 'NHWC'.But recevie "
                         f"Attr(data_format): {data_format} ")
    with helper("pixel_shuffle", name):
        return apply(rearrange.PixelShuffle, x, upscale_factor=upscale_factor,
                     data_format=data_format)
