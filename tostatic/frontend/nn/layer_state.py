"""What a Layer holds, as data: its buffers, its state dict (save, load, structured names) and the
dtype / device moves of its tensors. A mixin of `Layer` (layer.py), kept apart so that the
layer's structure and calling protocol stay readable on their own."""
from __future__ import annotations

import warnings
from collections import OrderedDict, namedtuple
from typing import Any, Callable, Iterator

import numpy as np

from tostatic.frontend.tensor.tensor import Parameter, Tensor
from tostatic.ir import dtypes


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class LayerState:
    """Buffers, state dicts and dtype moves; relies on Layer's `_parameters`, `_buffers`,
    `_sub_layers` and `_state_dict_hooks`."""

    # --- buffers ---
    def register_buffer(self, name: str, tensor: Tensor | None, persistable: bool = True) -> None:
        if "_buffers" not in self.__dict__:
            raise ValueError("super().__init__() should be called first")
        if not isinstance(name, str):
            raise TypeError("The name of buffer should be a string, but received "
                            f"{type(name).__name__}.")
        if "." in name:
            raise KeyError("The name of buffer can not contain `.`, because when you access the "
                           "newly added buffer in the form of `self.**.**`, it will cause "
                           "AttributeError.")
        if name == "":
            raise KeyError("The name of buffer can not be empty.")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists.")
        if tensor is not None and (not isinstance(tensor, Tensor)
                                   or isinstance(tensor, Parameter)):
            raise TypeError("The registered buffer should be a Paddle.Tensor, but received "
                            f"{type(tensor).__name__}.")
        self._buffers[name] = tensor
        if persistable:
            self._non_persistable_buffer_names_set.discard(name)
        else:
            self._non_persistable_buffer_names_set.add(name)

    def buffers(self, include_sublayers: bool = True) -> list[Tensor]:
        return [b for _, b in self.named_buffers(include_sublayers=include_sublayers)]

    def named_buffers(self, prefix: str = "", include_sublayers: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        named = (self.named_sublayers(prefix=prefix, include_self=True,
                                      remove_duplicate=remove_duplicate)
                 if include_sublayers else zip([prefix], [self]))
        for layer_prefix, sublayer in named:
            for key, buffer in sublayer._buffers.items():
                if buffer is None or id(buffer) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(buffer))
                yield layer_prefix + ("." if layer_prefix else "") + key, buffer

    def get_buffer(self, target: str) -> Tensor:
        module_path, _, buffer_name = target.rpartition(".")
        mod = self.get_sublayer(module_path)
        if not hasattr(mod, buffer_name):
            raise AttributeError(mod._get_name() + " has no attribute `" + buffer_name + "`")
        buffer = getattr(mod, buffer_name)
        if buffer_name not in mod._buffers:
            raise AttributeError("`" + buffer_name + "` is not a buffer")
        return buffer

    def clear_gradients(self, set_to_zero: bool = True) -> None:
        for p in self.parameters():
            if getattr(p, "trainable", True) and p.grad is not None:
                if set_to_zero:
                    p.grad = Tensor(np.zeros_like(p.grad.numpy()), stop_gradient=True)
                else:
                    p.grad = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.clear_gradients(set_to_zero=not set_to_none)

    # --- state dict ---
    def _state_dict_impl(self, destination: OrderedDict | None = None,
                         include_sublayers: bool = True, structured_name_prefix: str = "",
                         include_non_persistable_buffer: bool = False, use_hook: bool = True,
                         keep_vars: bool = True) -> OrderedDict:
        """Own parameters, then own persistable buffers, then each sublayer, depth first."""
        if destination is None:
            destination = OrderedDict()
        for name, data in self._parameters.items():
            if data is not None:
                destination[structured_name_prefix + name] = data if keep_vars else data.detach()
        for name, buffer in self._buffers.items():
            if buffer is None:
                continue
            if include_non_persistable_buffer \
                    or name not in self._non_persistable_buffer_names_set:
                destination[structured_name_prefix + name] = (buffer if keep_vars
                                                              else buffer.detach())
        if include_sublayers:
            for layer_name, layer_item in self._sub_layers.items():
                if layer_item is not None:
                    layer_item._state_dict_impl(destination, include_sublayers,
                                                structured_name_prefix + layer_name + ".",
                                                include_non_persistable_buffer, use_hook,
                                                keep_vars)
        if use_hook:
            for hook in self._state_dict_hooks.values():
                result = hook(destination)
                if result is not None:
                    destination = result
        return destination

    def state_dict(self, *args: Any, **kwargs: Any) -> OrderedDict:
        """state_dict(destination=None, include_sublayers=True, structured_name_prefix='',
        use_hook=True, keep_vars=True); or the torch form state_dict(destination, prefix, ...)."""
        if (len(args) >= 2 and isinstance(args[1], str)) or "prefix" in kwargs:  # torch API
            for idx, key in enumerate(["destination", "prefix", "keep_vars"][:len(args)]):
                if key in kwargs:
                    raise TypeError(f"got multiple values for argument '{key}'")
                kwargs[key] = args[idx]
            return self._state_dict_impl(destination=kwargs.get("destination", None),
                                         include_sublayers=True,
                                         structured_name_prefix=kwargs.get("prefix", ""),
                                         include_non_persistable_buffer=False, use_hook=True,
                                         keep_vars=kwargs.get("keep_vars", False))
        return self._state_dict_impl(*args, **kwargs)

    def to_static_state_dict(self, destination: OrderedDict | None = None,
                             include_sublayers: bool = True, structured_name_prefix: str = "",
                             use_hook: bool = True) -> OrderedDict:
        """Like state_dict() but with non-persistable buffers too (what jit.save sees)."""
        return self._state_dict_impl(destination, include_sublayers, structured_name_prefix,
                                     include_non_persistable_buffer=True, use_hook=use_hook)

    def set_state_dict(self, state_dict: Any = None, use_structured_name: bool = True,
                       **kwargs: Any) -> tuple[list[str], list[str]]:
        """Copy values into parameters and persistable buffers; returns (missing, unexpected).

        As in Paddle, a key this layer has but `state_dict` lacks is warned about and listed
        in `missing_keys`; keys nobody claims are `unexpected_keys`. Unlike Paddle (which
        warns, skips, and lists the key as both missing and unexpected), a shape mismatch
        raises ValueError naming the key and both shapes, before anything is written.
        """
        if "stat_dict" in kwargs:  # Paddle's deprecated spelling
            warnings.warn("The argument `stat_dict` has deprecated, please change it to "
                          "`state_dict`.", DeprecationWarning)
            state_dict = kwargs.pop("stat_dict")
        if kwargs:
            raise TypeError(f"set_state_dict() got unexpected arguments {sorted(kwargs)}")
        missing_keys: list[str] = []
        match_keys: set[str] = set()
        unexpected_keys: list[str] = []
        matched: list[tuple[Tensor, Any]] = []
        for key, param in self._state_dict_impl(use_hook=False).items():
            key_name = key if use_structured_name else param.name
            state = state_dict.get(key_name, None)
            if state is None:
                missing_keys.append(key_name)
                warnings.warn(f"Skip loading for {key}. {key_name} is not found in the "
                              "provided dict.")
                continue
            if isinstance(state, (dict, list)):
                if len(state) != len(param):
                    raise ValueError(f"{key_name} receives the length of {len(state)}, "
                                     f"but the expected shape is {len(param)}")
            else:
                shape = state.shape() if callable(getattr(state, "shape", None)) \
                    else np.shape(state)
                if list(shape) != list(param.shape):
                    raise ValueError(f"{key_name} receives a shape {list(shape)}, but the "
                                     f"expected shape is {list(param.shape)}.")
            match_keys.add(key_name)
            matched.append((param, state))
        for key in state_dict.keys():
            if key not in match_keys:
                unexpected_keys.append(key)
        for param, state in matched:
            param.set_value(state)
        return missing_keys, unexpected_keys

    set_dict = set_state_dict
    load_dict = set_state_dict

    def load_state_dict(self, state_dict: Any, strict: bool = True,
                        assign: bool = False) -> _IncompatibleKeys:
        missing_keys, unexpected_keys = self.set_state_dict(state_dict, use_structured_name=True)
        error_msgs: list[str] = []
        if strict:
            if unexpected_keys:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected_keys)))
            if missing_keys:
                error_msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing_keys)))
        if error_msgs:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                self.__class__.__name__, "\n\t".join(error_msgs)))
        return _IncompatibleKeys(missing_keys, unexpected_keys)

    # --- device / dtype ---
    def to(self, device: Any = None, dtype: Any = None, blocking: bool | None = None,
           non_blocking: bool | None = None) -> "LayerState":
        """Everything lives on the CPU, so `device` is accepted and ignored; `dtype` casts
        every parameter and buffer. Like Paddle, any non-trivial call sets each layer's
        `_dtype` to `dtype` — so `to('cpu')` leaves Linear's repr saying `dtype=None`."""
        return self._to_impl(device=device, dtype=dtype, blocking=blocking,
                             non_blocking=non_blocking, include_sublayers=True,
                             floating_only=False)

    def _to_impl(self, device: Any = None, dtype: Any = None, blocking: bool | None = None,
                 non_blocking: bool | None = None, include_sublayers: bool = True,
                 floating_only: bool = False) -> "LayerState":
        if device is None and dtype is None and blocking is None and non_blocking is None:
            return self
        if device is not None and isinstance(device, str):
            dev = device.lower().split(":")[0]
            if dev not in ("cpu", "gpu", "xpu", "npu", "cuda", "gpu_pinned", "cpu_pinned"):
                raise ValueError(f"The device must be a string which is like 'cpu', 'gpu', "
                                 f"'gpu:x', 'xpu', 'xpu:x', but received {device}")
        target = None if dtype is None else dtypes.convert_dtype(dtype)

        def transform(t: Tensor) -> Tensor:
            if target is None:
                return t
            if floating_only and not t.dtype.is_floating:
                return t
            if target.numpy is None:
                raise TypeError(f"tostatic cannot hold {target.name} tensors (no numpy dtype)")
            if t._data.dtype != target.numpy:
                t._data = t._data.astype(target.numpy)
            return t

        self._apply(transform, dtype, include_sublayers)
        return self

    def _apply(self, func: Callable[[Tensor], Tensor], dtype: Any,
               include_sublayers: bool = True) -> None:
        if include_sublayers:
            for layer in self.children():
                layer._apply(func, dtype, include_sublayers)
        for param in self._parameters.values():
            if param is not None:
                func(param)
        for key, buf in self._buffers.items():
            if buf is not None:
                self._buffers[key] = func(buf)
        self._dtype = dtype

    def astype(self, dtype: Any = None) -> "LayerState":
        valid = ["bfloat16", "float16", "float32", "float64", "int8", "int16", "int32", "int64",
                 "uint8", "complex64", "complex128", "bool"]
        if isinstance(dtype, (dtypes.DType, np.dtype)) or (type(dtype) is str and dtype in valid):
            dt = dtypes.convert_dtype(dtype)
            self._to_impl(dtype=dt, include_sublayers=True)  # also sets every layer's _dtype
            return self
        raise ValueError("dtype value error, must be 'bfloat16', 'float16', 'float32', "
                         "'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'complex64', "
                         "'complex128', 'bool', or paddle.dtype, numpy.dtype, but receive "
                         + str(dtype))

    def _cast_floating(self, dtype: dtypes.DType, excluded_layers: Any = None) -> "LayerState":
        excluded = [] if excluded_layers is None else excluded_layers
        if isinstance(excluded, type):
            excluded = [excluded]
        elif isinstance(excluded, (list, tuple)):
            excluded = list(excluded)
        else:
            raise TypeError("excluded_layers should be type nn.Layer or list, but got "
                            f"{type(excluded).__name__}.")

        def layer_trans(layer: LayerState) -> None:
            if type(layer) in excluded:
                return
            layer._to_impl(dtype=dtype, floating_only=True, include_sublayers=False)

        return self.apply(layer_trans)

    def float(self, excluded_layers: Any = None) -> "LayerState":
        return self._cast_floating(dtypes.float32, excluded_layers)

    def float16(self, excluded_layers: Any = None) -> "LayerState":
        return self._cast_floating(dtypes.float16, excluded_layers)

    def double(self) -> "LayerState":
        return self._cast_floating(dtypes.float64)

    def half(self) -> "LayerState":
        return self._cast_floating(dtypes.float16)

    def cpu(self) -> "LayerState":
        return self

    def cuda(self, device: Any = None) -> "LayerState":
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "LayerState":
        for p in self.parameters():
            p.stop_gradient = not requires_grad
        return self
