"""paddle.nn.Layer, as Paddle 3.x has it (paddle/nn/layer/layers.py), for eager CPU models.

What matters for compiled models is that names come out exactly as Paddle's: layer full names
(`simple_net_0`, `linear_3`), parameter names (`linear_3.w_0`), and the structured names of
`state_dict()` (`layers.2.weight`), in Paddle's order.
"""
from __future__ import annotations

import copy
import re
import warnings
import weakref
from collections import OrderedDict
from typing import Any, Callable, Iterator

import numpy as np

from tostatic.ir import names as unique_name
from tostatic.frontend.nn.layer_state import LayerState
from tostatic.frontend.nn.param_attr import ParamAttr
from tostatic.frontend.tensor.tensor import Parameter, Tensor
from tostatic.ir import dtypes
from tostatic.ir import builder as builders
from tostatic.frontend.nn import initializer as init_mod

_first_cap_re = re.compile("(.)([A-Z][a-z]+)")
_all_cap_re = re.compile("([a-z])([A-Z])")


def _convert_camel_to_snake(name: str) -> str:
    """Paddle's rule: `SimpleNet` → `simple_net`, `BatchNorm2D` → `batch_norm2d`,
    `ReLU` → `re_lu`."""
    s1 = _first_cap_re.sub(r"\1_\2", name)
    return _all_cap_re.sub(r"\1_\2", s1).lower()


def _scope_dist2single(dist_scope: str) -> str:
    mapping = {
        "row_parallel_linear": "linear",
        "column_parallel_linear": "linear",
        "vocab_parallel_embedding": "embedding",
    }
    return mapping.get(dist_scope, dist_scope)


def _addindent(string: str, indent: int) -> str:
    s1 = string.split("\n")
    if len(s1) == 1:
        return string
    s2 = [(indent * " ") + line for line in s1[1:]]
    return s1[0] + "\n" + "\n".join(s2)


def _default_dtype_name() -> str:
    """Paddle's global default dtype (LayerHelperBase.get_default_dtype), as a string."""
    return dtypes.default_float().name


# --- parameter-name uniqueness (Paddle's DygraphParameterNameChecker) -------------------------
# Paddle keeps one checker per unique-name generator: `unique_name.guard()` resets both.
_used_param_names: "weakref.WeakKeyDictionary[Any, set[str]]" = weakref.WeakKeyDictionary()
_used_param_names_fallback: set[str] = set()


def _param_name_used(name: str) -> bool:
    """True if `name` was already given to a parameter; otherwise records it."""
    gen = unique_name._current
    try:
        used = _used_param_names.setdefault(gen, set())
    except TypeError:  # generator not weak-referenceable: keep a plain module-level set
        used = _used_param_names_fallback
    if name in used:
        return True
    used.add(name)
    return False


class HookRemoveHelper:
    """Returned by register_forward_*_hook; `.remove()` unregisters the hook."""

    next_hook_id: int = 0

    def __init__(self, hooks: OrderedDict, *, extra_hook_dict: Any = None) -> None:
        self._hooks_ref = weakref.ref(hooks)
        self._hook_id = HookRemoveHelper.next_hook_id
        HookRemoveHelper.next_hook_id += 1
        self._extra_hooks_ref: tuple = ()
        if extra_hook_dict is not None:
            if isinstance(extra_hook_dict, list):
                self._extra_hooks_ref = tuple(weakref.ref(d) for d in extra_hook_dict)
            else:
                self._extra_hooks_ref = (weakref.ref(extra_hook_dict),)

    def remove(self) -> None:
        hooks = self._hooks_ref()
        if hooks is not None and self._hook_id in hooks:
            del hooks[self._hook_id]
        for ref in self._extra_hooks_ref:
            extra = ref()
            if extra is not None and self._hook_id in extra:
                del extra[self._hook_id]


class Layer(LayerState):
    """Base class of every layer: holds parameters, buffers and sublayers, calls `forward`."""

    training: bool

    def __init__(self, name_scope: str | None = None, dtype: Any = "float32") -> None:
        self.training = True
        if name_scope is None:
            name_scope = _convert_camel_to_snake(self.__class__.__name__)
            name_scope = _scope_dist2single(name_scope)
        self._full_name = unique_name.generate(name_scope)
        self._built = False
        self._dtype = dtype
        self._init_in_dynamic_mode = True

        self._parameters: OrderedDict[str, Parameter | None] = OrderedDict()
        self._buffers: OrderedDict[str, Tensor | None] = OrderedDict()
        self._non_persistable_buffer_names_set: set[str] = set()
        self._sub_layers: OrderedDict[str, Layer | None] = OrderedDict()
        self._loaddict_holder: OrderedDict = OrderedDict()

        self._forward_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._forward_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._forward_pre_hooks_with_kwargs_flag: OrderedDict[int, bool] = OrderedDict()
        self._forward_post_hooks_with_kwargs_flag: OrderedDict[int, bool] = OrderedDict()
        self._forward_post_hooks_always_called: OrderedDict[int, bool] = OrderedDict()
        self._state_dict_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._casted_by_pure_fp16 = False
        self._cast_to_low_precision = True

    # --- torch-flavoured aliases Paddle 3 provides ---
    @property
    def _modules(self) -> OrderedDict:
        return self._sub_layers

    @_modules.setter
    def _modules(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise TypeError(f"_modules must be dict-like, got {type(value)}")
        self._sub_layers.clear()
        self._sub_layers.update(value)

    @property
    def _non_persistent_buffers_set(self) -> set[str]:
        return self._non_persistable_buffer_names_set

    @_non_persistent_buffers_set.setter
    def _non_persistent_buffers_set(self, value: Any) -> None:
        if not isinstance(value, set):
            raise TypeError(f"_non_persistent_buffers_set must be a set, got {type(value)}")
        self._non_persistable_buffer_names_set.clear()
        self._non_persistable_buffer_names_set.update(value)

    # --- modes ---
    def train(self, mode: bool = True) -> "Layer":
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for layer in self.sublayers():
            layer.training = mode
        return self

    def eval(self) -> "Layer":
        self.training = False
        for layer in self.sublayers():
            layer.training = False
        return self

    def apply(self, fn: Callable[["Layer"], None]) -> "Layer":
        for layer in self.children():
            layer.apply(fn)
        fn(self)
        return self

    def full_name(self) -> str:
        return self._full_name

    def _get_name(self) -> str:
        return self.__class__.__name__

    # --- hooks ---
    def register_forward_post_hook(self, hook: Callable, *, prepend: bool = False,
                                   with_kwargs: bool = False,
                                   always_call: bool = False) -> HookRemoveHelper:
        helper = HookRemoveHelper(
            self._forward_post_hooks,
            extra_hook_dict=[self._forward_post_hooks_with_kwargs_flag,
                             self._forward_post_hooks_always_called])
        self._forward_post_hooks[helper._hook_id] = hook
        if with_kwargs:
            self._forward_post_hooks_with_kwargs_flag[helper._hook_id] = True
        if always_call:
            self._forward_post_hooks_always_called[helper._hook_id] = True
        if prepend:
            self._forward_post_hooks.move_to_end(helper._hook_id, last=False)
        return helper

    register_forward_hook = register_forward_post_hook

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> HookRemoveHelper:
        helper = HookRemoveHelper(self._forward_pre_hooks,
                                  extra_hook_dict=self._forward_pre_hooks_with_kwargs_flag)
        self._forward_pre_hooks[helper._hook_id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs_flag[helper._hook_id] = True
        if prepend:
            self._forward_pre_hooks.move_to_end(helper._hook_id, last=False)
        return helper

    def register_state_dict_hook(self, hook: Callable) -> HookRemoveHelper:
        helper = HookRemoveHelper(self._state_dict_hooks)
        self._state_dict_hooks[helper._hook_id] = hook
        return helper

    # --- parameters ---
    def create_parameter(self, shape: Any, attr: Any = None, dtype: Any = None,
                         is_bias: bool = False, default_initializer: Any = None,
                         device: Any = None) -> Parameter | None:
        """Paddle's LayerHelperBase.create_parameter in dygraph mode.

        Name `<full_name>.w_<k>` (`.b_<k>` for biases) unless the attr names it; default
        initializer XavierUniform for weights, Constant(0) for biases; `attr=False` → None.
        """
        temp_attr = copy.deepcopy(attr)
        if isinstance(temp_attr, str) and temp_attr == "":
            temp_attr = None
        attr = ParamAttr._to_attr(temp_attr)
        if not attr:
            return None
        assert isinstance(attr, ParamAttr)
        shape = [int(s) for s in (shape.shape if isinstance(shape, Tensor) else shape)]
        for i, size in enumerate(shape):
            assert size >= 0, ("Expected every dim's size to be larger than or equal to 0, "
                               f"but the size of the {i}-th dim is {size}")
        dt = dtypes.convert_dtype(dtype if dtype else _default_dtype_name())
        if is_bias:
            suffix = "b"
            if init_mod._global_bias_initializer() is not None:
                default_initializer = init_mod._global_bias_initializer()
        else:
            suffix = "w"
            if init_mod._global_weight_initializer() is not None:
                default_initializer = init_mod._global_weight_initializer()
        if attr.name is None:
            attr.name = unique_name.generate(".".join([self._full_name, suffix]))

        if default_initializer is None and attr.initializer is None:
            if dt.name not in ("float16", "float32", "float64", "bfloat16", "int8"):
                raise TypeError(
                    "Can not create parameter with default initializer when dtype is not "
                    "['float16', 'float32', 'float64', 'bfloat16', 'float'] type. Set "
                    "default_initializer to fit the parameter dtype!")
            if is_bias:
                attr._set_default_bias_initializer()
            else:
                attr._set_default_param_initializer()
        else:
            attr._set_default_initializer(default_initializer)

        if _param_name_used(attr.name):
            raise ValueError(
                f"parameter name [{attr.name}] have be been used. In dygraph mode, the name of "
                "parameter can't be same.Please check the parameter attr value passed to "
                "self.create_parameter or constructor of dygraph Layers")
        if dt.numpy is None:
            raise TypeError(f"tostatic cannot hold {dt.name} parameters (no numpy dtype)")
        static = builders.static_builder()
        if static is not None:  # static mode: a parameter of the programs
            return static.create_parameter(attr.name, shape, dt, attr.initializer,
                                           attr.trainable)
        param = Parameter(np.zeros(shape, dtype=dt.numpy), name=attr.name,
                          trainable=attr.trainable)
        param.optimize_attr = {"learning_rate": attr.learning_rate}
        param.regularizer = attr.regularizer
        param.do_model_average = attr.do_model_average
        param.need_clip = attr.need_clip
        param.is_distributed = False
        attr.initializer(param)
        return param

    def get_parameter(self, target: str) -> Parameter:
        module_path, _, param_name = target.rpartition(".")
        mod = self.get_sublayer(module_path)
        if not hasattr(mod, param_name):
            raise AttributeError(mod._get_name() + " has no attribute `" + param_name + "`")
        param = getattr(mod, param_name)
        if not isinstance(param, Parameter):
            raise AttributeError("`" + param_name + "` is not an nn.Parameter")
        return param

    def parameters(self, include_sublayers: bool = True) -> list[Parameter]:
        return [p for _, p in self.named_parameters(include_sublayers=include_sublayers)]

    def named_parameters(self, prefix: str = "", include_sublayers: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        named = (self.named_sublayers(prefix=prefix, include_self=True,
                                      remove_duplicate=remove_duplicate)
                 if include_sublayers else zip([prefix], [self]))
        for layer_prefix, sublayer in named:
            for key, param in sublayer._parameters.items():
                if param is None or id(param) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(param))
                yield layer_prefix + ("." if layer_prefix else "") + key, param

    def add_parameter(self, name: str, parameter: Parameter | None) -> Parameter | None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError("super().__init__() should be called firstly.")
        if not isinstance(name, str):
            raise TypeError("The name of parameter should be a string, but received "
                            f"{type(name).__name__}.")
        if "." in name:
            raise KeyError("The name of parameter can not contain `.`, because when you access "
                           "the newly added parameter in the form of `self.**.**`, it will "
                           "cause AttributeError.")
        if name == "":
            raise KeyError("The name of parameter can not be empty.")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"The parameter '{name}' already exists.")
        if parameter is not None and not isinstance(parameter, Parameter):
            raise TypeError("The parameter to be added should be a Parameter, but received "
                            f"{type(parameter).__name__}.")
        self._parameters[name] = parameter
        return parameter

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self.add_parameter(name, param)

    # --- sublayers ---
    def add_sublayer(self, name: str, sublayer: "Layer | None") -> "Layer | None":
        assert isinstance(sublayer, Layer) or sublayer is None
        self._sub_layers[name] = sublayer
        return sublayer

    def add_module(self, name: str, module: "Layer | None") -> None:
        self.add_sublayer(name, module)

    register_module = add_module

    def get_sublayer(self, target: str) -> "Layer":
        if target == "":
            return self
        mod: Layer = self
        for item in target.split("."):
            if not hasattr(mod, item):
                raise AttributeError(mod._get_name() + " has no attribute `" + item + "`")
            mod = getattr(mod, item)
            if not isinstance(mod, Layer):
                raise AttributeError("`" + item + "` is not an nn.Layer")
        return mod

    get_submodule = get_sublayer

    def set_sublayer(self, target: str, layer: "Layer", strict: bool = False) -> None:
        if target == "":
            raise ValueError("Cannot set the sublayer without a target name!")
        atoms = target.split(".")
        if not isinstance(layer, Layer):
            raise ValueError(f"`module` is not an nn.Layer, found {type(layer)}")
        parent = self if len(atoms) == 1 else self.get_sublayer(".".join(atoms[:-1]))
        if strict and not hasattr(parent, atoms[-1]):
            raise AttributeError(parent._get_name() + " has no attribute `" + atoms[-1] + "`")
        if hasattr(parent, atoms[-1]) and not isinstance(getattr(parent, atoms[-1]), Layer):
            raise AttributeError("`" + atoms[-1] + "` is not an nn.Layer")
        setattr(parent, atoms[-1], layer)

    set_submodule = set_sublayer

    def children(self) -> Iterator["Layer"]:
        for _, layer in self.named_children():
            yield layer

    def named_children(self) -> Iterator[tuple[str, "Layer"]]:
        memo: set[int] = set()
        for name, layer in self._sub_layers.items():
            if layer is not None and id(layer) not in memo:
                memo.add(id(layer))
                yield name, layer

    def sublayers(self, include_self: bool = False) -> list["Layer"]:
        return [layer for _, layer in self.named_sublayers(include_self=include_self)]

    def named_sublayers(self, prefix: str = "", include_self: bool = False,
                        layers_set: set | None = None,
                        remove_duplicate: bool = True) -> Iterator[tuple[str, "Layer"]]:
        if layers_set is None:
            layers_set = set()
        if include_self and self not in layers_set:
            if remove_duplicate:
                layers_set.add(self)
            yield prefix, self
        for key, layer in self._sub_layers.items():
            if layer is None:
                continue
            layer_prefix = prefix + ("." if prefix else "") + key
            yield from layer.named_sublayers(prefix=layer_prefix, include_self=True,
                                             layers_set=layers_set,
                                             remove_duplicate=remove_duplicate)

    def modules(self) -> Iterator["Layer"]:
        for _, module in self.named_modules():
            yield module

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Layer"]]:
        return self.named_sublayers(prefix=prefix, include_self=True, layers_set=memo,
                                    remove_duplicate=remove_duplicate)

    # --- calling ---
    def _build_once(self, *args: Any, **kwargs: Any) -> None:
        pass

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def backward(self, *inputs: Any) -> Any:
        raise ValueError("Layer shouldn't implement backward")

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        if (not self._forward_pre_hooks and not self._forward_post_hooks
                and (type(self)._build_once is Layer._build_once or self._built)):
            return self.forward(*inputs, **kwargs)
        return self._dygraph_call_func(*inputs, **kwargs)

    def _dygraph_call_func(self, *inputs: Any, **kwargs: Any) -> Any:
        outputs = None
        called_always: set[int] = set()

        def inner():
            nonlocal outputs, inputs, kwargs
            for hook_id, hook in self._forward_pre_hooks.items():
                if hook_id in self._forward_pre_hooks_with_kwargs_flag:
                    result = hook(self, inputs, kwargs)
                    if result is not None:
                        if isinstance(result, tuple) and len(result) == 2:
                            inputs, kwargs = result
                        else:
                            raise RuntimeError("forward pre-hook must return None or a tuple of "
                                               f"(new_args, new_kwargs), but got {result}.")
                else:
                    result = hook(self, inputs)
                    if result is not None:
                        inputs = result if isinstance(result, tuple) else (result,)
            if not self._built:
                self._build_once(*inputs, **kwargs)
                self._built = True
            outputs = self.forward(*inputs, **kwargs)
            for hook_id, hook in self._forward_post_hooks.items():
                if hook_id in self._forward_post_hooks_always_called:
                    called_always.add(hook_id)
                if hook_id in self._forward_post_hooks_with_kwargs_flag:
                    result = hook(self, inputs, kwargs, outputs)
                else:
                    result = hook(self, inputs, outputs)
                if result is not None:
                    outputs = result
            return outputs

        try:
            return inner()
        except Exception:
            for hook_id, hook in self._forward_post_hooks.items():
                if hook_id in self._forward_post_hooks_always_called \
                        and hook_id not in called_always:
                    try:
                        if hook_id in self._forward_post_hooks_with_kwargs_flag:
                            result = hook(self, inputs, kwargs, outputs)
                        else:
                            result = hook(self, inputs, outputs)
                        if result is not None:
                            outputs = result
                    except Exception as e:  # noqa: BLE001 - Paddle silences these too
                        warnings.warn("forward hook with ``always_call=True`` raised an "
                                      "exception that was silenced as another error was raised "
                                      f"in forward: {e!s}")
            raise

    # --- attribute routing (Paddle's __getattr__/__setattr__/__delattr__) ---
    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        if "_parameters" in d and name in d["_parameters"]:
            param = d["_parameters"][name]
            builder = builders.current()
            if builder is not None and param is not None:
                builder.touch(param)  # Paddle declares parameters when read
            return param
        if "_sub_layers" in d and name in d["_sub_layers"]:
            return d["_sub_layers"][name]
        if "_buffers" in d and name in d["_buffers"]:
            return d["_buffers"][name]
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        """Paddle's rule: a Parameter, Layer or Tensor value is kept in its store (and leaves
        the others); None may clear a name a store holds; any other value for such a name is
        a TypeError."""
        if isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)
        for slot, kind, what, type_name in _ATTRIBUTE_STORES:
            store = self.__dict__.get(slot)
            if isinstance(value, kind):
                if store is None:
                    raise ValueError("super().__init__() should be called first")
                for other in [self.__dict__] + [self.__dict__.get(s, {}) for s, *_ in
                                                _ATTRIBUTE_STORES if s != slot]:
                    other.pop(name, None)
                if slot == "_buffers":
                    # a plain Tensor attribute is a buffer, non-persistable unless it was
                    # registered with register_buffer (then it keeps its persistability)
                    if name not in store:
                        self._non_persistable_buffer_names_set.add(name)
                    if not value.name:
                        value.name = unique_name.generate("_buffers_" + name)
                store[name] = value
                return
            if store is not None and name in store:
                if value is not None:
                    raise TypeError(f"assignment to {what} '{name}' should be of type "
                                    f"{type_name} or None, but got '{type(value).__name__}'")
                store[name] = None
                return
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._sub_layers:
            del self._sub_layers[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistable_buffer_names_set.discard(name)
        else:
            object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        return (dir(self.__class__) + list(self.__dict__.keys()) + list(self._parameters.keys())
                + list(self._sub_layers.keys()) + list(self._buffers.keys()))

    # --- repr ---
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra_lines = self.extra_repr().split("\n")
        sublayer_lines = []
        for name, layer in self._sub_layers.items():
            sublayer_lines.append("(" + name + "): " + _addindent(repr(layer), 2))
        final_str = self.__class__.__name__ + "("
        if len(extra_lines) > 1:
            final_str += "\n  " + "\n  ".join(extra_lines) + "\n"
        elif len(extra_lines) == 1:
            final_str += extra_lines[0]
        if sublayer_lines:
            final_str += "\n  " + "\n  ".join(sublayer_lines) + "\n"
        final_str += ")"
        return final_str


__all__ = ["Layer", "HookRemoveHelper", "ParamAttr"]


# Layer.__setattr__'s stores, in the order it tries them (a Parameter is also a Tensor):
# (attribute, the values it keeps, and their names in Paddle's error messages)
_ATTRIBUTE_STORES = (("_parameters", Parameter, "parameter", "Parameter"),
                     ("_sub_layers", Layer, "sublayer", "Layer"),
                     ("_buffers", Tensor, "buffers", "core.DenseTensor"))
