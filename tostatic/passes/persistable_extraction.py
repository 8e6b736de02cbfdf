"""persistable-extraction: captured parameters and buffers become named persistables."""
from __future__ import annotations

import numpy as np
from xdsl.rewriter import Rewriter

from tostatic.ops.core import Capture, Constant, Persistable, array_to_dense
from tostatic.passes.base import CompilePass, CompileState, PassError, entry, register


@register
class PersistableExtraction(CompilePass):
    """Snapshot every `pd.capture`: parameters and buffers (and captured tensors larger than
    `max-constant-elements`) become `pd.persistable` ops named like Paddle's variables
    (`linear_0.w_0`) whose data moves into the weights; small captured tensors become
    `pd.constant`. Two different tensors with one name is an error."""

    name = "persistable-extraction"
    options = {"max-constant-elements": 16}

    def apply(self, module, state: CompileState) -> None:
        limit = int(self.values["max-constant-elements"])
        owners: dict[str, int] = {}
        for op in self.ops(entry(module).body.walk()):
            if not isinstance(op, Capture):
                continue
            index = op.attr_values()["index"]
            if index >= len(state.captures):
                raise PassError(f"persistable-extraction: pd.capture #{index} "
                                f"({op.attr_values()['var_name']}) refers to a tensor of the "
                                f"traced program, which textual IR does not carry; dump the IR "
                                f"after this pass to work on it with tostatic opt", op)
            cap = state.captures[index]
            tensor, array = cap.tensor, cap.tensor.numpy()
            if cap.kind == "tensor" and not tensor.persistable and array.size <= limit:
                new = Constant.make([], {"value": array_to_dense(np.asarray(array))},
                                    [op.results[0].type])
            else:
                name = tensor.name
                if owners.setdefault(name, id(tensor)) != id(tensor):
                    raise ValueError(f"persistable-extraction: two different tensors are both "
                                     f"named {name!r}; give them distinct names")
                trainable = bool(getattr(tensor, "trainable", False))
                new = Persistable.make([], {"var_name": name,
                                            "structured_name": cap.structured_name,
                                            "trainable": trainable,
                                            "is_parameter": cap.kind == "param"},
                                       [op.results[0].type])
                state.weights[name] = array.copy() if state.snapshot_weights else array
                if cap.structured_name is not None:
                    entry_ = {"structured_name": cap.structured_name,
                              "stop_gradient": bool(tensor.stop_gradient)}
                    if cap.kind == "param":
                        entry_["trainable"] = trainable
                    state.info[name] = entry_
            new.attributes.update(op.attributes)
            Rewriter.replace_op(op, new)
